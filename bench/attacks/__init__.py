"""Insider attacks on the linkage zone's encodings, and a separate scorer (issue 13 part 2).

Threat model: an insider with read access to ``linkage.duckdb`` (table ``encodings``) and NO key, plus
public reference data (name-frequency lists, published per-agency tables). Every attack has the
interface ``attack(linkage_db: Path, reference: Reference) -> Guesses`` (plaintext guesses per token, each
with the attacker's own confidence) and reads nothing else.

* :mod:`frequency`: rank alignment of full name tokens (Kuzu et al. 2011 on deterministic tokens).
* :mod:`side_tokens`: alignment inside first-initial and Metaphone groups, first and last names in one
  token domain.
* :mod:`bloom`: Bloom filter pattern mining seeded by decoded names (Niedermeyer et al. 2014; Christen,
  Ranbaduge, Vatsalan, Schnell 2017/2018), typos and compound surnames included.
* :mod:`profiles`: birth-year and ZIP tokens against per-agency profiles (``source`` is in clear), birth
  years chained by SSN pairs (a graph signal in the spirit of Vidanage et al.).

The other side, which alone may use truth and keys: :mod:`zone` (builds a linkage zone with the real
kit), :mod:`truth` (the kit's plaintext per record via an identity encoder), :mod:`score`. :mod:`suite`
runs and grades everything; ``bench/bench_attacks.py`` is the benchmark, ``hardening_experiments.py``
re-encodes a population under candidate encodings, ``tests/integration/test_linkage_attacks.py`` keeps a
small version in ``make test``. Synthetic data only.
"""
