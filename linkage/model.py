"""A Fellegi–Sunter model over encodings (scheme 6: scheme 4 plus the whole-name filters salted by the SSN and by the
street address, ADR 0016 and ADR 0017), with Splink 5
(DESIGN.md, "Linkage on encodings"; ADR 0009).

Only the linkage zone is read: tokens and hardened Bloom filters keyed by (source, source_record_id). Schemes
2 and 3 salt each field by another (``partner_kit.encode``), so every comparison knows when it *can* compare:

* names (salted by the exact date of birth): where the dates of birth are equal, full token > first/last
  swapped > (surname) compound part > Dice bands on the folded, balanced bigram filters, with (first name) one
  name by the nickname table below the highest band (scheme 8, ADR 0019), one Metaphone code below the middle band
  (a name written two ways: MUHAMMAD / MOHAMED, CHEN / CHAN; scheme 9, ADR 0020) and the order-free whole-name
  filter (every name word, scheme 3, ADR 0014) above the lowest band > else; where they
  differ or are missing the names cannot be compared (a null level: no evidence either way), except through
  the name tokens salted by the SSN ("same name, same SSN": pairs with one SSN and a DOB typo) and, where both
  name fields changed, the whole-name filter salted by the SSN (scheme 5, ADR 0016: typos, swapped fields), and
  the whole-name filter salted by the street address (scheme 6, ADR 0017: pairs at one address, one of them
  without a date of birth or with another);
* date of birth: full token (term-frequency adjusted) > positional-digit filter Dice >= 0.93 (one or two
  digits, a day/month swap) > same year > same month and day > Dice >= 0.89 > else. The filter and both
  tokens are salted by the names, so these fuzzy levels say "same name, nearly the same birthday";
* SSN: full token > positional-digit filter Dice >= 0.92 (a typo or a transposition; salted by DOB) >
  last four > else;
* address > ZIP (salted by DOB, or by the names) > else; sex, middle initial and suffix (salted by DOB:
  null where the dates of birth differ).

Blocking rules are chosen from the data at hand (:func:`choose_blocking_rules`); every comparison's m is
trained by EM (:func:`train`), and the run refuses a model that left any level untrained.

The engine is a parameter (:mod:`linkage.engine`: DuckDB by default, or Apache Spark through Splink's
Spark backend, :mod:`linkage.spark`, for collaboratives that outgrow one machine): the same settings in
either SQL dialect, and a model trained on one is saved in DuckDB's (:func:`model_in_dialect`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from linkage.engine import Engine
from partner_kit.nicknames import MAX_FORMAL

__all__ = ["CANDIDATE_BLOCKING_RULES", "MODEL_VERSION", "PRUNE_ON", "EncodingSchemeError", "KeyVersionError",
           "LinkageParams", "blocking_rules", "build_settings", "choose_blocking_rules", "dice_sql", "dob_day_sample",
           "input_fingerprint", "model_in_dialect", "prepare_inputs", "pruned_rules", "pruning", "sibling_rule",
           "train", "untrained_levels"]

MODEL_VERSION = "vpdc-linkage/10"
#: the encoding scheme this model reads (``partner_kit.encode.ENCODING_SCHEME``); rows of any other are refused
ENCODING_SCHEME = "vpdc-encoding-10"  # 16 characters: token-shaped (scheme 10 drops the "v")

#: encodings column → short name used in the model (kept short: Splink repeats them in every SQL).
COLUMNS = {
    "enc_fn_full": "fn", "enc_ln_full": "ln", "enc_ln_part1": "ln_p1", "enc_ln_part2": "ln_p2",
    "enc_nm_pair": "nm_pair", "enc_mn_init": "mi", "enc_sfx": "sfx", "enc_sex": "sex", "enc_zip": "zip",
    "enc_dob_full": "dob", "enc_nm_y": "nm_y", "enc_nm_md": "nm_md", "enc_nm_zip": "nm_zip",
    "enc_ssn_full": "ssn", "enc_ssn_last4": "ssn4", "enc_addr": "addr", "enc_fn_ssn": "fn_ssn",
    "enc_ln_ssn": "ln_ssn", "enc_fn_addr": "fn_addr", "enc_fn_ph": "fn_ph", "enc_ln_ph": "ln_ph",
    "enc_fn_zip": "fn_z", "enc_ln_zip": "ln_z",
    **{f"enc_fn_alt{i}": f"fn_a{i}" for i in range(1, MAX_FORMAL + 1)},
}
BLOOMS = {"enc_fn_bf": "fn_bf", "enc_ln_bf": "ln_bf", "enc_nw_bf": "nw_bf", "enc_nws_bf": "nws_bf",
          "enc_nwa_bf": "nwa_bf", "enc_dobp_bf": "dob_bf", "enc_ssnp_bf": "ssn_bf"}


class KeyVersionError(Exception):
    """Encodings made under different linkage key versions cannot be compared: tokens would never match."""


class EncodingSchemeError(KeyVersionError):
    """Encodings of another scheme (an older kit) cannot be compared with these: every partner must re-encode."""


@dataclass(frozen=True)
class LinkageParams:
    """Thresholds, seeds and the blocking budget. Recorded in every model file and report."""

    predict_threshold: float = 0.5  # pairs kept from prediction
    cluster_threshold: float = 0.9  # pairs that join records into one person
    seed: int = 20261121
    u_max_pairs: float = 2e6
    #: Splink samples u in this many chunks per comparison and stops once every level has 100 pairs (its default,
    #: 10). 1: one query per comparison and no early stop. On a small population few levels reach 100 pairs, so all
    #: ten run: on Spark in local mode each chunk is a query with about 0.4 s of planning (33 of 96 s on the
    #: 400-person test population), on DuckDB a few milliseconds
    u_chunks: int = 10
    #: on the folded, balanced name filters (0.5 = unrelated bits; names under one salt share the mask, so
    #: two unrelated names sit near 0.8-0.9, one differing bigram near 0.96)
    dice_bands: tuple[float, float, float] = (0.95, 0.92, 0.89)
    #: two name filters under one salt share their mask (scheme 10: the date and the other name's initial): unrelated
    #: names under one salt 0.67 and up, two salts 0.5 +- 0.03 (at most 0.63), measured on 20,000 persons (ADR 0022)
    salt_shared_dice: float = 0.65
    #: on the positional DOB filter under one name salt, measured (ADR 0009): a one- or two-digit typo or a
    #: day/month swap 0.88-0.98 (median 0.94), the same year 0.85-0.95, an unrelated date 0.77-0.92 (median 0.85)
    dob_dice_bands: tuple[float, float] = (0.93, 0.89)
    #: on the positional SSN filter: a typo 0.97, a transposition 0.94, unrelated SSNs 0.75-0.86
    ssn_dice: float = 0.92
    #: on the order-free whole-name filter (scheme 3, ADR 0014): a name level of its own, below the name's own
    #: Dice bands but above its lowest one, for pairs whose names moved between fields (family name first, a
    #: middle name merged into the given name) and changed once more besides. 0.94, not 0.92: at 1,000,000
    #: persons different persons born on one day with one surname and short given names (filters always hold 256
    #: of 512 bits, so short names sit closer) reached 0.92 by chance; Asian false links 1.67x -> 1.43x the overall
    #: rate, F1 0.99086 -> 0.99093 (ADR 0014, amendment)
    whole_name_dice: float = 0.94
    #: on the whole-name filter salted by the SSN (scheme 5, ADR 0016): names compare where the SSNs agree and the
    #: dates of birth differ or one is missing, with typos and swapped fields. The filter of two different names
    #: under one SSN sits near 0.7 (short names: both folded halves sparse); the level sits where the DOB-salted
    #: whole-name level does, and only for pairs whose two name fields both changed (:data:`BOTH_CHANGED`: one
    #: surname with a close given name, DANIEL / DANIELLE, MARIA / MARIO, reaches 0.94-0.98 under one SSN)
    ssn_whole_name_dice: float = 0.94
    #: on the whole-name filter salted by the street address (scheme 6, ADR 0017): names compare at one address where
    #: the dates of birth differ or one is missing. At one address live relatives with one surname and close given
    #: names; the level's u is counted among such pairs (dates plainly different), so a household's likeness is
    #: priced in, and it sits where the other whole-name levels do
    addr_whole_name_dice: float = 0.94
    #: two records born on one day whose whole names are at least this close are not held apart as siblings.
    #: Measured on the demo (same-DOB pairs): twins' whole names reach at most 0.887 (Asian) and 0.910 (others),
    #: true pairs the sibling rule would hold apart start at 0.903 (Asian); 0.87 let twins through
    sibling_whole_name_dice: float = 0.89
    #: ... nor those whose first names are at least this close (a typo, not another name). It was the lowest name
    #: band (0.89), where two short different names land by chance (different persons with different first names
    #: reached it in 3.9 % of Asian same-DOB pairs, 2.2 % of others); 0.92 in about 0.25 % of both
    sibling_first_name_dice: float = 0.92
    #: a candidate blocking rule that alone makes more comparisons per record than this is not used
    max_comparisons_per_record: float = 400.0
    #: training on pairs born on one day (EM session and the salted comparisons' u) uses a seeded sample of
    #: birth days when all of them would give more pairs than this: 38 million pairs at 1,000,000 persons made a
    #: 19.6 GiB temp table and 8 minutes of EM; a random set of days is an unbiased sample of such pairs. At
    #: 1,000,000 persons 2 million pairs (about 43,000 expected matches among them) train as well as 5 million
    #: (pairwise F1 0.99082 both; with addresses sampled too, training took 36 s instead of 55 s)
    dob_training_pairs: float = 2e6
    #: likewise for the EM session on pairs at one address (a seeded share of addresses; 3 million pairs at
    #: 1,000,000 persons)
    addr_training_pairs: float = 2e6
    #: the held-out error estimate (``linkage.holdout``) links every record again with the SSN hidden; above this
    #: many records it links those without an SSN and the records of a seeded sample of SSN values, about this many
    #: in all. At 1,000,000 persons (1.4 million records) all of them took 76 s against 34 s for the SSN-bearing
    #: records alone, which made the run slower than plaintext Splink; the estimate was as close to the truth
    holdout_records: int = 1_000_000
    #: a candidate rule kept only when it adds at least this share of the expected matches found
    min_marginal_match_share: float = 0.00005
    #: hold apart two records born on one day whose first names differ and nothing else personal agrees
    #: (:func:`sibling_rule`: twins, which Fellegi-Sunter links on their shared surname, birthday and address)
    separate_same_birthday_siblings: bool = True
    #: estimate precision and recall with the SSN held out (``linkage.holdout``, ADR 0012)
    holdout_estimate: bool = True
    #: DuckDB's memory limit for the run (its default is 80 % of RAM, which DuckDB fills with cached pages and
    #: in-memory working tables: 10 GB peak at 1,000,000 persons). Above it DuckDB spills to the linkage zone's
    #: own temp folder (``<linkage db>.tmp``, private like the zone). None keeps DuckDB's default.
    memory_limit: str | None = "3GB"


def dice_sql(col: str, dialect: str = "duckdb") -> str:
    """Dice similarity of the Bloom filter ``col`` between the two records of a pair, as SQL of ``dialect``.

    The filters' own bit counts are precomputed per record (``<col>_n``, null where the filter is): per pair only
    the AND is counted. DuckDB holds a filter as :data:`FILTER_WORDS` ``BIGINT`` columns and sums the words' AND
    popcounts (a ``BIT`` column's AND allocates a new bit string per pair: six times slower over the 38 million
    pairs of one birth date at 1,000,000 persons); Spark as an array of the same 64-bit words
    (:func:`linkage.spark.export_inputs`), summed the same way. Both then compute ``2 * common / (n_l + n_r)`` in double
    precision from the same integers: the same value, bit for bit (tests/integration/test_spark.py).
    Null where either filter is null (a missing field), in both.
    """
    return _dice_of(f"{col}_l", f"{col}_r", f"{col}_n_l", f"{col}_n_r", dialect)


#: a filter is 64 bytes (the landing zone's ``bloom_bytes``: every stored filter is checked to be that long), held
#: in the linkage input as this many 64-bit words (``<filter>_w0`` ...), DuckDB's fastest form for the AND's popcount
FILTER_WORDS = 8


def filter_words(col: str) -> list[str]:
    """The input columns holding filter ``col``'s words (``fn_bf`` -> ``fn_bf_w0`` .. ``fn_bf_w7``)."""
    return [f"{col}_w{i}" for i in range(FILTER_WORDS)]


def filter_columns_sql(blob: str, col: str) -> str:
    """SQL select items making filter ``col``'s input columns from a stored filter (``BLOB`` expression ``blob``): its
    words (:func:`filter_words`) and its bit count ``<col>_n``, all null where the filter is."""
    words = ", ".join(f"({blob})[{1 + 8 * i}:{8 + 8 * i}]::BIT::BIGINT as {w}" for i, w in enumerate(filter_words(col)))
    return f"{words}, bit_count(({blob})::BIT)::integer as {col}_n"


def _word(ref: str, i: int) -> str:
    """Word ``i`` of a filter as referenced in SQL: ``l.fn_bf`` -> ``l.fn_bf_w0``, ``fn_bf_l`` -> ``fn_bf_w0_l``."""
    m = None if "." in ref else re.fullmatch(r"(\w+)_([lr])", ref)
    return f"{m[1]}_w{i}_{m[2]}" if m else f"{ref}_w{i}"


def _dice_of(a: str, b: str, n_a: str, n_b: str, dialect: str) -> str:
    if dialect == "spark":
        common = f"aggregate(zip_with({a}, {b}, (x, y) -> bit_count(x & y)), 0, (s, c) -> s + c)"
        return f"(cast({common} as double) * 2.0 / nullif({n_a} + {n_b}, 0))"
    if dialect != "duckdb":
        raise ValueError(f"no Dice expression for SQL dialect {dialect!r} (duckdb or spark)")
    common = " + ".join(f"bit_count({_word(a, i)} & {_word(b, i)})::integer" for i in range(FILTER_WORDS))
    return f"(({common}) * 2.0 / nullif({n_a} + {n_b}, 0))"


_dice = dice_sql  # the name earlier tests import


#: ``dob_k`` is the DOB token again under another name: Splink leaves out of an EM session every comparison
#: that reads a column of its blocking rule, and the "not comparable" levels must not take the name
#: comparisons out of the session blocked on ``dob``
DOB_DIFFERS = "(dob_k_l is null or dob_k_r is null or dob_k_l <> dob_k_r)"


#: the name level of pairs with one SSN and different (or missing) dates of birth (its u is counted, not sampled)
SSN_NAME_LABEL = "DOB differs: same name, same SSN"
#: the name level of such pairs whose names are close but not equal, field by field or in no order (scheme 5)
SSN_WORDS_LABEL = "DOB differs: same SSN, all name words close"
#: ... reached only when neither name field is unchanged under that SSN: one surname and a close given name under one
#: SSN is as often a parent's SSN on a child's record (DANIEL / DANIELLE LEE: whole-name Dice 0.97) as a typo, and
#: the unchanged field keeps its exact SSN-salted level anyway
BOTH_CHANGED = "not coalesce(fn_ssn_l = fn_ssn_r or ln_ssn_l = ln_ssn_r, false)"
#: the address level of pairs at one address, one of them without a date of birth, whose name words are close
#: (scheme 6)
ADDR_WORDS_LABEL = "DOB missing: same address and all name words close"
#: below it, the same first name at one address, the surname not close (scheme 7): a surname changed by marriage or
#: written with one part of two
ADDR_FIRST_LABEL = "DOB missing: same address and first name"
#: the address level of pairs whose names agree under the ZIP's salt, a date missing, the addresses not one (or one
#: missing): never reached by pairs born on one day, its u is counted
NAMES_ZIP_LABEL = "DOB missing: same names and ZIP, not one address"
NOT_ONE_ADDRESS = "not coalesce(addr_l = addr_r, false)"
#: the agreement levels whose u is counted over all pairs rather than sampled (:func:`_salted_u`)
COUNTED_U_LABELS = (SSN_NAME_LABEL, SSN_WORDS_LABEL, ADDR_WORDS_LABEL, ADDR_FIRST_LABEL, NAMES_ZIP_LABEL)


#: the name level of one name: its tokens, salted by the date of birth and the other name's initial, are equal (scheme
#: 10, ADR 0022)
SAME_NAME_LABEL = "same name (under the other name's initial)"
#: below it, the same name under the date and the ZIP where the other name's initial differs (scheme 10): a surname
#: changed by marriage, a compound surname's other part, a nickname of another initial, at one ZIP; and twins of two
#: initials at one ZIP, so its own weight
SAME_NAME_ZIP_LABEL = "same name at one ZIP, the other name's initial differs"


#: the name level of one Metaphone code (scheme 9, ADR 0020)
SOUND_LABEL = "one Metaphone code (a name written two ways)"
#: the first-name level of a name and its nickname by the kit's table (scheme 8, ADR 0019)
NICKNAME_LABEL = "nickname or formal name of one name (name table)"
#: the formal-name token columns (``enc_fn_alt1..3``)
FORMAL_NAME_COLUMNS = tuple(v for k, v in COLUMNS.items() if k.startswith("enc_fn_alt"))


def nickname_sql(ref: Callable[[str, str], str], *, direct: bool = False) -> str:
    """SQL: the two records' first names are one name by the kit's nickname table (scheme 8, ADR 0019): one's first-name
    token is among the other's formal-name tokens, or their formal-name tokens meet (JIM and JIMMY, both JAMES).
    ``direct``: only the first (a name and a formal name of it: BILL / WILLIAM), not two names that share a formal
    name or a nickname (ROBERT and WILLIAM share BILL). ``ref(column, side)`` writes a column of one side ("l" or "r")
    in the caller's style (``fn_l`` in Splink's comparisons, ``l.fn`` elsewhere). Null (unknown) where a first name
    is missing."""
    def among(col: str, side: str, other: str) -> str:
        return f"{ref(col, side)} in ({', '.join(ref(a, other) for a in FORMAL_NAME_COLUMNS)})"
    terms = [among("fn", "l", "r"), among("fn", "r", "l")]
    if not direct:
        terms += [among(a, "l", "r") for a in FORMAL_NAME_COLUMNS]
    return "(" + " or ".join(terms) + ")"


def _suffixed(col: str, side: str) -> str:
    return f"{col}_{side}"


def sibling_rule(params: LinkageParams = LinkageParams(), l: str = "l", r: str = "r") -> str:
    """SQL over two model-input records (aliases ``l`` and ``r``): true when they look like two siblings born on
    one day (twins, triplets) rather than one person (ADR 0012).

    Both dates of birth present and equal; first names that compare (scheme 10 salts them by the date and the
    surname's initial: their filters share a mask, Dice at least ``salt_shared_dice``, only where the surnames' initials
    agree, as twins' do; a surname changed to another initial is not a sibling); both first names present and
    different (not equal, not swapped with
    the surname, not within ``sibling_first_name_dice`` of each other: a rewritten name, not a typo; not a name and
    a formal name of it by the kit's nickname table where the sexes do not differ, scheme 8: BILL and WILLIAM are
    one person's names, not twins'. Two names that only share a formal name or a nickname are twins' names as
    often as one person's, ROBERT and WILLIAM share BILL, and ANDREW / ANDREA are a brother and a sister: those
    stay apart, ADR 0019 amendment); all their name words, in no order, not within ``sibling_whole_name_dice`` of
    each other (scheme 3: one name written family name first, or with the middle name moved, is one person, ADR
    0014); the SSNs do not
    agree (missing on either side, or neither equal nor one typo apart); the middle initials do not agree
    (missing or different). Such pairs share a surname, a birthday, an address and a ZIP, which Fellegi-Sunter
    counts as four independent agreements (the match weight of twins was 0.9997 on the demo) when for siblings
    they are one fact. An edge between them does not join two records into one person; the edge is
    kept (its probability is the model's) and the run counts how many were held apart.
    """
    def dice(col: str) -> str:
        return _dice_of(f"{l}.{col}", f"{r}.{col}", f"{l}.{col}_n", f"{r}.{col}_n", "duckdb")

    nickname = nickname_sql(lambda col, side: f"{l if side == 'l' else r}.{col}", direct=True)
    return (f"coalesce({l}.dob = {r}.dob and coalesce({dice('fn_bf')} >= {params.salt_shared_dice}, false) "
            f"and {l}.fn <> {r}.fn and coalesce({l}.nm_pair <> {r}.nm_pair, true) "
            f"and not coalesce({nickname} and not coalesce({l}.sex <> {r}.sex, false), false) "
            f"and coalesce({dice('fn_bf')} < {params.sibling_first_name_dice}, true) "
            f"and coalesce({dice('nw_bf')} < {params.sibling_whole_name_dice}, true) "
            f"and not coalesce({l}.ssn = {r}.ssn or {dice('ssn_bf')} >= {params.ssn_dice}, false) "
            f"and not coalesce({l}.mi = {r}.mi, false), false)")


def build_settings(params: LinkageParams = LinkageParams(), rules: Sequence[str] | None = None,
                   dialect: str = "duckdb") -> Any:
    """The Splink settings: comparisons over scheme-4 encodings and the prediction blocking rules (SQL).

    ``dialect`` is the engine's SQL dialect ("duckdb" or "spark"): only the Dice expressions differ.
    """

    def _dice(col: str) -> str:
        return dice_sql(col, dialect)

    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    hi, mid, lo = params.dice_bands
    dob_hi, dob_lo = params.dob_dice_bands

    def not_comparable(label: str) -> Any:
        return cll.CustomLevel(DOB_DIFFERS, label_for_charts=label).configure(is_null_level=True)

    def name(col: str, bf: str, extra: list[Any], after_close: list[Any] | None = None) -> Any:
        return cl.CustomComparison(output_column_name=f"{'first' if col == 'fn' else 'last'}_name", comparison_levels=[
            cll.NullLevel(f"{bf}_n"),  # null exactly where the filter is
            # where the dates differ, the SSN-salted name token still says "same name" for pairs with one SSN
            cll.CustomLevel(f"{col}_ssn_l = {col}_ssn_r and {DOB_DIFFERS}", label_for_charts=SSN_NAME_LABEL),
            cll.CustomLevel(f"{_dice('nws_bf')} >= {params.ssn_whole_name_dice} and {DOB_DIFFERS} and {BOTH_CHANGED}",
                            label_for_charts=SSN_WORDS_LABEL),
            not_comparable("dates of birth differ: not comparable"),
            # the name is salted by the date and the other name's initial (scheme 10, ADR 0022); under the date and
            # the ZIP it still agrees where that initial changed (a surname by marriage, a nickname) at one ZIP: a
            # level of its own, as twins of two initials at one ZIP reach it too (one level for both cost a third of
            # precision's lead on 20,000 persons: false links 56 -> 87 records)
            cll.CustomLevel(f"{col}_l = {col}_r", label_for_charts=SAME_NAME_LABEL),
            cll.CustomLevel(f"{col}_z_l = {col}_z_r", label_for_charts=SAME_NAME_ZIP_LABEL),
            cll.CustomLevel(f"nm_pair_l = nm_pair_r and {col}_l <> {col}_r", label_for_charts="first/last swapped"),
            *extra,
            cll.CustomLevel(f"{_dice(bf)} >= {hi}", label_for_charts=f"Dice >= {hi}"),
            *(after_close or []),
            cll.CustomLevel(f"{_dice(bf)} >= {mid}", label_for_charts=f"Dice >= {mid}"),
            # one name written two ways (vowels, doubled letters, KH/H, Q/K): few shared bigrams, one code
            cll.CustomLevel(f"{col}_ph_l = {col}_ph_r", label_for_charts=SOUND_LABEL),
            cll.CustomLevel(f"{_dice('nw_bf')} >= {params.whole_name_dice}",
                            label_for_charts=f"all name words, in no order: Dice >= {params.whole_name_dice}"),
            cll.CustomLevel(f"{_dice(bf)} >= {lo}", label_for_charts=f"Dice >= {lo}"),
            cll.ElseLevel(),
        ])

    compound = ("(ln_l = ln_p1_r or ln_l = ln_p2_r or ln_r = ln_p1_l or ln_r = ln_p2_l "
                "or ln_p1_l = ln_p1_r or ln_p2_l = ln_p2_r)")
    # a nickname (BILL / WILLIAM) below a one-letter difference (the table lists spellings too: JONATHAN / JOHNATHAN
    # is a typo's level), above the lower Dice bands, where two different short names land by chance
    first = name("fn", "fn_bf", [], [cll.CustomLevel(nickname_sql(_suffixed), label_for_charts=NICKNAME_LABEL)])
    last = name("ln", "ln_bf", [cll.CustomLevel(compound, label_for_charts="compound surname part")])
    dob = cl.CustomComparison(output_column_name="dob", comparison_levels=[
        cll.NullLevel("dob"),
        cll.ExactMatchLevel("dob", term_frequency_adjustments=True),
        cll.CustomLevel(f"{_dice('dob_bf')} >= {dob_hi}", label_for_charts=f"same name, Dice >= {dob_hi}"),
        cll.CustomLevel("nm_y_l = nm_y_r", label_for_charts="same name, same year"),
        cll.CustomLevel("nm_md_l = nm_md_r", label_for_charts="same name, same month and day"),
        cll.CustomLevel(f"{_dice('dob_bf')} >= {dob_lo}", label_for_charts=f"same name, Dice >= {dob_lo}"),
        cll.ElseLevel(),
    ])
    ssn = cl.CustomComparison(output_column_name="ssn", comparison_levels=[
        cll.NullLevel("ssn4"),
        cll.ExactMatchLevel("ssn"),
        cll.CustomLevel(f"not {DOB_DIFFERS} and {_dice('ssn_bf')} >= {params.ssn_dice}",
                        label_for_charts=f"Dice >= {params.ssn_dice}"),
        cll.ExactMatchLevel("ssn4"),
        cll.ElseLevel(),
    ])
    names_zip = f"nm_zip_l = nm_zip_r and (dob_k_l is null or dob_k_r is null) and {NOT_ONE_ADDRESS}"
    address = cl.CustomComparison(output_column_name="address", comparison_levels=[
        # where a date of birth is missing the names cannot be compared (they are salted by it): the name-salted
        # ZIP token says "same names and same ZIP", the only name evidence such a pair has (where both dates exist
        # but differ, the date's own name-salted levels carry it already). Here, not in the ZIP comparison: it
        # implies the addresses are not one, which the "else" level below would count against the pair again; at
        # one address the levels below say "same names" (once, not twice). Before the null level: it holds for a
        # pair without an address too
        cll.CustomLevel(names_zip, label_for_charts=NAMES_ZIP_LABEL),
        cll.NullLevel("addr"),
        # where a date of birth is missing the names compare only here (scheme 6): one level for "same address and
        # close names", not one in each name comparison, which would count one fact twice. Not where both dates
        # exist and differ: at one address that is as often a parent and a child of one name (on the demo 55 % of
        # such pairs were one person, 96 % where a date was missing), and the date's own levels weigh it
        cll.CustomLevel(f"addr_l = addr_r and {_dice('nwa_bf')} >= {params.addr_whole_name_dice} "
                        "and (dob_k_l is null or dob_k_r is null)", label_for_charts=ADDR_WORDS_LABEL),
        cll.CustomLevel("addr_l = addr_r and fn_addr_l = fn_addr_r and (dob_k_l is null or dob_k_r is null)",
                        label_for_charts=ADDR_FIRST_LABEL),
        cll.ExactMatchLevel("addr"),
        cll.ElseLevel(),
    ])
    zip_code = cl.CustomComparison(output_column_name="zip", comparison_levels=[
        cll.NullLevel("zip"),
        # the address comparison's names-and-ZIP level says "same ZIP" already
        cll.CustomLevel(names_zip, label_for_charts="same names and ZIP: weighed in the address comparison"
                        ).configure(is_null_level=True),
        cll.CustomLevel("zip_l = zip_r or nm_zip_l = nm_zip_r", label_for_charts="same ZIP"),
        not_comparable("dates of birth differ: not comparable"),
        cll.ElseLevel(),
    ])

    def salted_exact(col: str, label: str) -> Any:
        return cl.CustomComparison(output_column_name=label, comparison_levels=[
            cll.NullLevel(col), not_comparable("dates of birth differ: not comparable"), cll.ExactMatchLevel(col),
            cll.ElseLevel()])

    settings = SettingsCreator(
        link_type="link_and_dedupe",
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        comparisons=[first, last, dob, salted_exact("sex", "sex"), ssn, address, zip_code, salted_exact("mi", "mi"),
                     salted_exact("sfx", "sfx")],
        blocking_rules_to_generate_predictions=list(rules if rules is not None else blocking_rules()),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )
    return settings


#: Candidate prediction blocking rules over scheme-3 encodings (SQL on l./r.), cheapest routes first. Each
#: catches one way a true pair can differ: a typo in one name (the other name + DOB), a name change or a
#: nickname (surname or first name + DOB), swapped fields, a DOB error (names + year, names + month/day,
#: names + ZIP), records without a DOB (SSN, address), anything else sharing a birthday and sex.
CANDIDATE_BLOCKING_RULES: tuple[tuple[str, str], ...] = (
    ("first name and last name (and DOB)", "l.fn = r.fn and l.ln = r.ln"),
    ("swapped names (and DOB)", "l.nm_pair = r.nm_pair"),
    ("SSN", "l.ssn = r.ssn"),
    ("names and birth year", "l.nm_y = r.nm_y"),
    ("names and birth month/day", "l.nm_md = r.nm_md"),
    ("names and ZIP", "l.nm_zip = r.nm_zip"),
    ("address", "l.addr = r.addr"),
    ("surname (and DOB)", "l.ln = r.ln"),
    ("first name (and DOB)", "l.fn = r.fn"),
    ("first name and ZIP (and DOB)", "l.fn_z = r.fn_z"),
    ("surname and ZIP (and DOB)", "l.ln_z = r.ln_z"),
    ("DOB and sex", "l.dob = r.dob and l.sex = r.sex"),
    ("DOB", "l.dob = r.dob"),
    ("SSN last four and ZIP (and DOB)", "l.ssn4 = r.ssn4 and l.zip = r.zip"),
)


def blocking_rules() -> list[str]:
    """Every candidate rule (before :func:`choose_blocking_rules` has looked at the data)."""
    return [sql for _, sql in CANDIDATE_BLOCKING_RULES]


#: the comparisons that must all disagree (each at its "else" level, none missing) for a blocked pair to be
#: skipped before scoring (:func:`pruning`): the identifying ones; the others (date of birth, sex, middle initial,
#: suffix) may agree
PRUNE_ON = ("first_name", "last_name", "ssn", "address", "zip")
#: comparisons of PRUNE_ON whose missing value may stand in for a disagreement in a skipped pair, tried in turn
#: until the bound falls under the threshold (a third of records carry no SSN: requiring it to be present kept
#: 24 of the 38 million pairs of one birth date at 1,000,000 persons)
MISSING_AS_NO_EVIDENCE: tuple[tuple[str, ...], ...] = (("ssn", "address", "zip"), ("ssn",), ())
#: the pruning bound allows for the zone growing to this many times its records before the next retrain (term
#: frequencies of rare values fall as it grows)
PRUNE_GROWTH = 2.0


def _blocking_sql(condition: str) -> str:
    """A comparison level's condition (``"fn_l"``, ``fn_bf_n_r``) in blocking-rule form (``l.fn``, ``r.fn_bf_n``)."""
    # quoted as DuckDB ("fn_l") or Spark (`fn_l`) quotes identifiers
    return re.sub(r'(?<![\w.])["`]?([A-Za-z_][A-Za-z0-9_]*?)_([lr])["`]?(?![\w])', r"\2.\1", condition)


def pruning(model: dict[str, Any], records: int, params: LinkageParams, *,
            always_null: Sequence[str] = ()) -> dict[str, Any]:
    """Skip, before scoring, the blocked pairs that cannot reach ``params.predict_threshold`` under this model.

    A pair of one birth date (38 million at 1,000,000 persons, most of them nothing else in common) costs a full
    comparison vector to score and is then dropped below the threshold. The trained model bounds it: when every
    comparison of :data:`PRUNE_ON` disagrees (its "else" level; for those of :data:`MISSING_AS_NO_EVIDENCE`, its
    else level or a missing value), the match weight is at most the prior, plus those levels' Bayes factors (a
    missing value's is 1), plus the largest factor of every other comparison (term frequencies at their most
    favourable: a value seen once in ``records`` times :data:`PRUNE_GROWTH`). When that bound is under the
    threshold such pairs are skipped, with exactly the output that scoring them would have given; the first set of
    :data:`MISSING_AS_NO_EVIDENCE` whose bound is under it is used, and with none nothing is skipped.

    ``always_null``: comparisons whose fields are blank in every record of this run (the held-out run's SSN): they
    contribute exactly nothing and are left out of the condition.

    Returns ``{"condition": SQL for blocking rules (``l.``/``r.``) that keeps the other pairs, or None,
    "max_match_probability": the bound, "comparisons": PRUNE_ON used, "missing_allowed": ...}``.
    """
    out: dict[str, Any] = {"condition": None}
    for allowed in MISSING_AS_NO_EVIDENCE:
        out = _pruning(model, records, params, always_null, allowed)
        if out.get("condition"):
            break
    return out


def _pruning(model: dict[str, Any], records: int, params: LinkageParams, always_null: Sequence[str],
             allowed: Sequence[str]) -> dict[str, Any]:
    lam = model.get("probability_two_random_records_match") or 0.0
    if not 0 < lam < 1:
        return {"condition": None, "reason": "no trained prior", "comparisons": []}
    weight = math.log2(lam / (1 - lam))
    keep, used = [], []
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        levels = comp["comparison_levels"]
        if name in always_null:
            continue
        scored = [lv for lv in levels if not lv.get("is_null_level")]
        if any(lv.get("m_probability") is None or lv.get("u_probability") is None for lv in scored):
            return {"condition": None, "reason": f"{name}: a level is untrained", "comparisons": []}
        bf = [math.log2(max(lv["m_probability"], 1e-300) / max(lv["u_probability"], 1e-300)) for lv in scored]
        if name in PRUNE_ON:
            if str(levels[-1].get("sql_condition", "")).strip().upper() != "ELSE":
                return {"condition": None, "reason": f"{name}: no disagreement level", "comparisons": []}
            # a skipped pair is at the else level, or (where allowed) at a null level: a factor of 1
            weight += max(bf[-1], 0.0) if name in allowed else bf[-1]
            used.append(name)
            keep.extend(_blocking_sql(lv["sql_condition"]) for lv in levels[:-1]
                        if not (name in allowed and lv.get("is_null_level")))
        else:
            best = max(bf + [0.0])  # a missing value (null level) is a factor of 1
            for lv, b in zip(scored, bf, strict=True):
                if lv.get("tf_adjustment_column") and lv.get("tf_adjustment_weight"):
                    # Splink's term-frequency factor: u over the value's frequency, to the level's weight
                    tf = max(1.0, lv["u_probability"] * records * PRUNE_GROWTH) ** lv["tf_adjustment_weight"]
                    best = max(best, b + math.log2(tf))
            weight += best
    bound = 1 / (1 + 2 ** -weight)
    out = {"max_match_probability": bound, "comparisons": used, "missing_allowed": [a for a in allowed if a in used],
           "threshold": params.predict_threshold}
    if not keep or bound >= params.predict_threshold:
        return out | {"condition": None, "reason": "the bound does not fall under the threshold"}
    return out | {"condition": " or ".join(f"coalesce({k}, false)" for k in _cheap_first(keep))}


#: a level condition that is only a Dice threshold on one filter (blocking-rule form of :func:`dice_sql`)
_DICE_AT_LEAST = re.compile(r"(.*nullif\(l\.(\w+)_n \+ r\.\2_n, 0\)\)) >= ([0-9.]+)")


def _dice_threshold(condition: str) -> tuple[str, float] | None:
    """(filter, threshold) where ``condition`` is exactly ``Dice(filter) >= threshold``, else None."""
    m = _DICE_AT_LEAST.fullmatch(condition.strip())
    if not m or m[1] != _dice_of(f"l.{m[2]}", f"r.{m[2]}", f"l.{m[2]}_n", f"r.{m[2]}_n", "duckdb"):
        return None
    return m[2], float(m[3])


def _conjuncts(sql: str) -> list[str]:
    """``sql`` split at its top-level ``and`` (outside parentheses and quotes); whole where it has a top-level
    ``or`` (``a or b and c``: splitting would regroup it)."""
    parts, depth, start, quoted = [], 0, 0, False
    low = sql.lower()
    for i, ch in enumerate(sql):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and low.startswith(" or ", i):
            return [sql.strip()]
        elif not quoted and depth == 0 and low.startswith(" and ", i):
            parts.append(sql[start:i].strip())
            start = i + 5
    parts.append(sql[start:].strip())
    return [p for p in parts if p]


def _cheap_first(conditions: Sequence[str]) -> list[str]:
    """The pruning's disjuncts (level conditions, any of which keeps a pair) in the same meaning, cheaper to test.

    The condition is tested on every pair of one birth date (38 million at 1,000,000 persons), and nearly all of
    them fail every disjunct, so each is evaluated: a Dice (``bit_count`` of two filters' AND) costs far more
    than an equality. Three rewrites that keep the set of pairs kept exactly: a disjunct repeated in two
    comparisons is tested once; a Dice threshold on a filter is dropped where a lower one on the same filter is
    itself a disjunct (``>= 0.95`` is implied by ``>= 0.89``); and the disjuncts, and the conjuncts inside each,
    are ordered with the Dice tests last, so DuckDB's short-circuiting ``or`` / ``and`` rarely reach them (both
    are commutative in SQL's three-valued logic, and each disjunct is wrapped in ``coalesce(..., false)``)."""
    lowest: dict[str, float] = {}
    for c in conditions:
        if d := _dice_threshold(c):
            lowest[d[0]] = min(lowest.get(d[0], 1.0), d[1])
    out: list[str] = []
    for c in conditions:
        if (d := _dice_threshold(c)) and d[1] > lowest[d[0]]:
            continue
        parts = _conjuncts(c)
        c = " and ".join(sorted(parts, key=lambda p: "bit_count" in p)) if len(parts) > 1 else c.strip()
        if c not in out:
            out.append(c)
    return sorted(out, key=lambda c: c.count("bit_count"))


def _equi_columns(sql: str) -> frozenset[str] | None:
    """The columns of a rule made only of ``l.x = r.x`` conjuncts (None for any other rule)."""
    cols = set()
    for part in re.split(r"\s+and\s+", sql.strip(), flags=re.IGNORECASE):
        m = re.fullmatch(r"\(?\s*l\.(\w+)\s*=\s*r\.(\w+)\s*\)?", part.strip())
        if not m or m[1] != m[2]:
            return None
        cols.add(m[1])
    return frozenset(cols) or None


def pruned_rules(rules: Sequence[str], prune: dict[str, Any]) -> list[str]:
    """The blocking rules with :func:`pruning`'s condition (unchanged when there is none)."""
    cond = prune.get("condition")
    return [f"({r}) and ({cond})" if cond else r for r in rules]


def choose_blocking_rules(model: dict[str, Any], engine: Engine, views: Sequence[str], total: int,
                          params: LinkageParams) -> dict[str, Any]:
    """Blocking rules chosen from the data at hand, with Splink's blocking analysis and the trained model.

    1. Splink's ``count_comparisons_from_blocking_rules`` counts each candidate's comparisons on these
       records (a sample above 50,000); a rule above ``max_comparisons_per_record`` is not used.
    2. The trained model scores every pair the remaining rules make (Splink's ``predict``); each rule's
       coverage of the expected matches (the sum of match probabilities of the pairs it makes) is read from
       the scored pairs, and rules are kept greedily by how much they add, while they add at least
       ``min_marginal_match_share`` of it.
    3. The recall ceiling is estimated from the model: the expected matches among the blocked pairs over the
       expected matches among all pairs (lambda times the number of pairs). On synthetic data the evaluation
       reports the true ceiling beside it.

    Returns the report: per candidate its comparisons, marginal expected matches and whether it is kept;
    ``rules`` (the kept SQL, in order); ``table``: the scored pairs (above ``predict_threshold``) that the
    kept rules make, the run's predictions; ``pruning``: whether pairs that cannot reach the threshold were
    skipped before scoring (:func:`pruning`) and the bound that allowed it. ``model`` is the trained Splink model
    (``save_model_to_json``). ``engine``: where the pairs are counted and scored (:mod:`linkage.engine`).
    """
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    db_api = engine.db_api
    sample = 1.0 if total <= 50_000 else max(0.05, 50_000 / total)
    dfs = [db_api.register(engine.frame(v)) for v in views]
    counts = []
    for label, sql in CANDIDATE_BLOCKING_RULES:
        r = count_comparisons_from_blocking_rules(dfs, blocking_rules=[sql], link_type="link_and_dedupe",
                                                  source_dataset_column_name="source_dataset",
                                                  record_sample_proportion=sample)[0]
        counts.append({"rule": label, "sql": sql, "comparisons": int(r["cumulative_comparison_count"]),
                       "comparisons_per_record": round(r["cumulative_comparison_count"] / max(total, 1), 2),
                       "estimated": bool(r.get("is_estimate"))})
    within_budget = [c for c in counts if c["comparisons_per_record"] <= params.max_comparisons_per_record]
    for c in counts:
        c["over_budget"] = c not in within_budget
    # a rule whose pairs another usable rule makes too (DOB and sex, when DOB is usable) can add nothing: not scored
    usable = []
    cols = {id(c): _equi_columns(c["sql"]) for c in within_budget}
    for c in within_budget:
        mine = cols[id(c)]
        wider = next((d for d in within_budget if mine and cols[id(d)] and cols[id(d)] < mine), None)
        if wider is not None:
            c |= {"redundant_with": wider["rule"], "marginal_expected_matches": 0.0, "kept": False}
        else:
            usable.append(c)
    # pairs that cannot reach the threshold under the trained model are skipped, not scored (the output is the
    # same): in the rule that makes the most pairs, scored last so that no other rule re-tests the condition
    prune = pruning(model, total, params)
    order = sorted(usable, key=lambda c: c["comparisons"])
    sqls = [c["sql"] for c in order[:-1]] + pruned_rules([order[-1]["sql"]], prune) if order else []
    linker = make_linker(db_api, views, model | {"blocking_rules_to_generate_predictions": sqls})
    pred = linker.inference.predict(threshold_match_probability=params.predict_threshold)
    engine.table("_block_cover", f"""
        select p.source_dataset_l, p.unique_id_l, p.source_dataset_r, p.unique_id_r, p.match_probability,
               {", ".join(f"coalesce({c['sql']}, false) as r{i}" for i, c in enumerate(usable))}
        from {pred.physical_name} p
        join link_input l on l.source_dataset = p.source_dataset_l and l.unique_id = p.unique_id_l
        join link_input r on r.source_dataset = p.source_dataset_r and r.unique_id = p.unique_id_r""")

    def gain(i: int, covered: str) -> str:  # a sum over the pairs of rule i not yet covered, in either dialect
        return f"coalesce(sum(case when r{i} and not ({covered}) then match_probability end), 0)"

    expected_all = engine.rows("select coalesce(sum(match_probability), 0) from _block_cover")[0][0]
    kept: list[int] = []
    covered = "false"
    remaining = list(range(len(usable)))
    while remaining:
        gains = engine.rows("select " + ", ".join(gain(i, covered) for i in remaining) + " from _block_cover")[0]
        best = max(range(len(remaining)), key=lambda j: (gains[j], -usable[remaining[j]]["comparisons"]))
        if expected_all <= 0 or gains[best] < params.min_marginal_match_share * expected_all:
            break
        i = remaining.pop(best)
        usable[i]["marginal_expected_matches"] = round(float(gains[best]), 2)
        kept.append(i)
        covered = " or ".join(f"r{j}" for j in kept)
    for i in remaining:
        usable[i]["marginal_expected_matches"] = round(float(engine.rows(
            f"select {gain(i, covered)} from _block_cover")[0][0]), 2)
    for i, c in enumerate(usable):
        c["kept"] = i in kept
    lam = model.get("probability_two_random_records_match")
    pairs_all = total * (total - 1) / 2
    found = engine.rows(f"select coalesce(sum(match_probability), 0) from _block_cover where {covered}")[0][0]
    engine.table("_block_kept", "select source_dataset_l, unique_id_l, source_dataset_r, unique_id_r, "
                 f"match_probability from _block_cover where {covered}")
    # the kept rules with the one that makes the most pairs last (where pruning applies: linkage.holdout)
    rules = [usable[i]["sql"] for i in sorted(kept, key=lambda i: usable[i]["comparisons"])]
    return {"candidates": counts, "rules": rules, "kept_labels": [usable[i]["rule"] for i in kept],
            "expected_matches_found": round(float(found), 1),
            "expected_matches_all_candidates": round(float(expected_all), 1),
            "expected_matches_population": round(lam * pairs_all, 1) if lam else None,
            "recall_ceiling_estimate": round(min(1.0, found / (lam * pairs_all)), 4) if lam and pairs_all else None,
            "share_of_candidates_matches_kept": round(found / expected_all, 5) if expected_all else None,
            "record_sample_proportion": sample, "table": "_block_kept",
            "pruning": {k: v for k, v in prune.items() if k != "condition"} | {
                "applied": bool(prune.get("condition")) and bool(order), "rule": order[-1]["rule"] if order else None}}


def prepare_inputs(con: duckdb.DuckDBPyConnection, *, table: str = "link_input", incremental: bool = False) -> dict[str, Any]:
    """Define the model's input from the current loads of the linkage zone.

    One row per (source, source_record_id), from its newest current load (where a record sits in two current
    loads, two periods' extracts both carrying it, only its newest row is kept); Bloom filters as 64-bit words
    (:func:`filter_words`), with their bit counts. A table, rebuilt by every run: Splink reads its inputs in
    every query, and a view recomputed the words from the stored filters each time (at 1,000,000 persons the
    table costs about 7 s once and saved about 30 s of a 165 s run). ``incremental`` is accepted for callers of
    an earlier era and changes nothing: the table always holds the current loads.

    Raises:
        KeyVersionError: when current encodings come from more than one linkage key version.
    """
    del incremental
    version = link_version(con)
    # the newest complete load of each (source, extract, period) under that version: during a rotation's
    # transition the old version is linked until every period has been re-sent under the new one
    con.execute("""create or replace table link_loads as
        select load_id, created_at from (
            select load_id, created_at, row_number() over (partition by source, extract_type, period
                                                          order by created_at desc, loaded_at desc, load_id desc) rn
            from loads where state = 'complete' and linkage_key_version is not distinct from ?)
        where rn = 1""", [version])
    versions = con.execute(
        "select e.linkage_key_version, e.source, count(*) from encodings e join link_loads l using (load_id) "
        "group by all order by 1, 2").fetchall()
    if len({v[0] for v in versions}) > 1:
        detail = ", ".join(f"{src} {n:,} rows under {v}" for v, src, n in versions)
        raise KeyVersionError(f"current encodings mix linkage key versions ({detail}); "
                              "every partner must re-encode under one version before linkage")
    have = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                      "where table_name = 'encodings' and table_schema = 'main'").fetchall()}
    # per source: its rows on each scheme and the periods they came in (what the partner must encode again)
    schemes = con.execute("select " + ("e.enc_scheme" if "enc_scheme" in have else "null") + ", e.source, count(*), "
                          "string_agg(distinct lo.period, ', ' order by lo.period) from encodings e "
                          "join link_loads l using (load_id) join loads lo using (load_id) "
                          "group by all order by 1, 2").fetchall()
    other = [(str(v), src, n, periods) for v, src, n, periods in schemes if v != ENCODING_SCHEME]
    if other:
        detail = ", ".join(f"{src} {n:,} rows under {v} (periods {periods})" for v, src, n, periods in other)
        raise EncodingSchemeError(f"current encodings include another encoding scheme ({detail}; this linkage reads "
                                  f"{ENCODING_SCHEME}): those partners must re-send their extracts encoded with the "
                                  "current kit before linkage (ADR 0014)")
    cols = ", ".join(f"e.{k} as {v}" for k, v in COLUMNS.items()) + ", e.enc_dob_full as dob_k"
    blooms = ", ".join(filter_columns_sql(f"e.{k}", v) for k, v in BLOOMS.items())
    select = (f"select e.source as source_dataset, e.source_record_id as unique_id, e.linkage_key_version, "
              f"e.load_id, l.created_at as load_created_at, {cols}, {blooms} "
              "from encodings e join link_loads l using (load_id)")
    dupes = con.execute("select count(*) - count(distinct (e.source, e.source_record_id)) from encodings e "
                        "join link_loads l using (load_id)").fetchall()[0][0]
    for (kind,) in con.execute("select table_type from information_schema.tables where table_name = ? "
                               "and table_schema = 'main'", [table]).fetchall():
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {table}")
    con.execute(f"create table {table} as " + select)
    if dupes:
        _newest_only(con, table)
        counts = dict(con.execute(f"select source_dataset, count(*) from {table} group by 1").fetchall())
    else:
        counts = {}
        for _, src, n in versions:
            counts[src] = counts.get(src, 0) + n
    return {"key_version": versions[0][0] if versions else None, "records": counts}


def link_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The linkage-secret version to link on: the one under which the most (source, extract, period) have a
    complete load, the newest on a tie. Before a rotation every period is under the old version; during its
    transition the old one still covers every period; once every partner has re-sent, the new one does too
    and wins the tie (ADR 0005). None when nothing is loaded."""
    rows = con.execute("select linkage_key_version, count(distinct (source, extract_type, period)) from loads "
                       "where state = 'complete' group by 1").fetchall()
    if not rows:
        return None
    return max(rows, key=lambda r: (r[1], int(r[0][1:]) if str(r[0])[1:].isdigit() else -1))[0]


def _newest_only(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Keep one row per (source, record): the one of the newest current load.

    A record is in two current loads only when two periods' extracts both carry it. Such keys are rare
    (none in the synthetic extracts), so they are found first and only their rows are ranked: a window
    over every wide row of a million-record table cost 7 of the 9 seconds of building it.
    """
    dupes = con.execute(f"select count(*) - count(distinct (source_dataset, unique_id)) from {table}").fetchall()[0][0]
    if not dupes:
        return
    con.execute(f"""delete from {table} where rowid in (
        select rid from (
            select t.rowid as rid, row_number() over (partition by t.source_dataset, t.unique_id
                                                      order by t.load_created_at desc, t.load_id desc) as rn
            from {table} t semi join (select source_dataset, unique_id from {table} group by all having count(*) > 1) d
                on t.source_dataset = d.source_dataset and t.unique_id = d.unique_id)
        where rn > 1)""")


def input_fingerprint(con: duckdb.DuckDBPyConnection, table: str = "link_input") -> str:
    """A fingerprint of the training data: SHA-256 over aggregates of the (source, record id, load id) keys.

    The load id is the envelope id, and an envelope's payload never changes, so the same records
    re-sent or re-encoded (a new load) give another fingerprint; no encoding enters the hash.
    """
    # order-independent aggregates of a 64-bit hash per key (no sort of a million strings): a fingerprint
    # to tell training sets apart, not a cryptographic commitment
    n, x, total = con.execute(
        f"select count(*), coalesce(bit_xor(hash(source_dataset, unique_id, load_id)), 0), "
        f"coalesce(sum(hash(source_dataset, unique_id, load_id)::hugeint), 0) from {table}").fetchall()[0]
    return hashlib.sha256(f"{n}|{x}|{total}".encode()).hexdigest()


def source_views(engine: Engine, table: str = "link_input") -> list[str]:
    """One view per source: Splink's link_and_dedupe takes one input per dataset."""
    names = []
    for (src,) in engine.rows(f"select distinct source_dataset from {table} order by 1"):
        name = f"{table}_{src}"
        # views cannot take parameters: inline the literal, quoted (source names are partner ids: [a-z0-9_])
        engine.view(name, f"select * from {table} where source_dataset = '{src.replace(chr(39), chr(39) * 2)}'")
        names.append(name)
    return names


#: comparisons salted by the date of birth: they compare only pairs born on one day
SALTED_BY_DOB = ("first_name", "last_name", "sex", "zip", "mi", "sfx")


def train(linker: Any, params: LinkageParams, engine: Engine, views: Sequence[str],
          table: str = "link_input") -> dict[str, Any]:
    """Train the model; returns it (Splink's model JSON) with every level estimated from these records.

    1. lambda from two deterministic rules, u of every comparison by seeded random sampling.
    2. The names, sex, middle initial and suffix are salted by the date of birth, so they compare only
       within pairs born on one day, and random pairs almost never are (their sampled u rests on a few
       dozen pairs, half of them the same person). Their u is re-estimated on the pairs that share a date
       of birth and are *not* the same person by a held-out identifier: both have an SSN, the SSNs differ
       and are not one typo apart (positional filter Dice below ``ssn_dice``), and their addresses differ;
       each comparison counted only among those whose other name(s) differ plainly, so that one person's
       records with a mistyped SSN and a new address do not pass as non-matches (:func:`_salted_u`).
    3. m by EM on three blockings, u fixed: pairs with one date of birth (names, SSN, address, sex, middle
       initial, suffix), with one SSN (the date of birth among them) and with one address. Each session
       estimates every comparison but those in its blocking rule, so together they train all;
       :func:`fill_unobserved` and :func:`untrained_levels` say which level no session observed.
    """
    from splink import block_on

    _clamp_underflowing_em_parameters()
    linker.training.estimate_probability_two_random_records_match(
        ["l.fn = r.fn and l.ln = r.ln", "l.ssn = r.ssn and l.dob = r.dob"], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=params.u_max_pairs, seed=params.seed,
                                                     num_chunks=params.u_chunks)
    model = linker.misc.save_model_to_json()
    days = dob_day_sample(engine, table, params)
    _salted_u(model, engine, table, days, params)
    linker = make_linker(engine.db_api, views, model)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob") if days is None else f"l.dob = r.dob and {days.replace('dob', 'l.dob')}")
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("ssn"))
    addresses = key_sample(engine, table, "addr", params.addr_training_pairs, params.seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("addr") if addresses is None else f"l.addr = r.addr and {addresses.replace('addr', 'l.addr')}")
    return linker.misc.save_model_to_json()


def _clamp_underflowing_em_parameters() -> None:
    """Splink 5's EM maximisation step can compute an m or u probability below the 1e-300 that its own setter
    accepts (a level whose pairs all have match probabilities that underflow, e.g. 5e-324 on a 400-person test
    population) and then raises mid-training. Such a level is evidence of a non-match either way; the records it
    builds its lookup from are clamped to Splink's own minimum (``M_U_CLAMP_MIN``) before the setter sees them.
    Installed once, idempotent."""
    import splink.internals.expectation_maximisation as em
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    if getattr(em.m_u_records_to_lookup_dict, "vpdc_clamped", False):
        return
    original = em.m_u_records_to_lookup_dict

    def clamped(records: list[dict[str, Any]]) -> dict[str, dict[int, Any]]:
        for r in records:
            for k in ("m_probability", "u_probability"):
                v = r.get(k)
                if isinstance(v, float) and v < M_U_CLAMP_MIN:
                    r[k] = M_U_CLAMP_MIN
        return original(records)

    clamped.vpdc_clamped = True  # type: ignore[attr-defined]
    em.m_u_records_to_lookup_dict = clamped


def dob_day_sample(engine: Engine | duckdb.DuckDBPyConnection, table: str, params: LinkageParams) -> str | None:
    """A SQL condition on ``dob`` keeping a seeded share of birth days, so that the pairs born on one day number
    about ``params.dob_training_pairs``; None when all of them are fewer (every pair is used)."""
    return key_sample(engine, table, "dob", params.dob_training_pairs, params.seed)


def key_sample(engine: Engine | duckdb.DuckDBPyConnection, table: str, column: str, budget: float,
               seed: int) -> str | None:
    """A SQL condition on ``column`` keeping a seeded share of its values, so that the pairs sharing a value
    number about ``budget``; None when all of them are fewer (every pair is used). A random set of values is an
    unbiased sample of the pairs blocked on the column: every pair of a kept value is kept. ``engine``: an
    engine (:mod:`linkage.engine`) or the linkage zone's DuckDB connection."""
    sql = (f"select coalesce(sum(n * (n - 1) / 2), 0) from (select count(*) n from {table} "
           f"where {column} is not null group by {column})")
    pairs = engine.rows(sql)[0][0] if hasattr(engine, "rows") else engine.execute(sql).fetchall()[0][0]
    if pairs <= budget:
        return None
    keep = max(1, round(1000 * budget / pairs))
    if getattr(engine, "dialect", "duckdb") == "spark":  # Spark's hash is another (signed) function: another sample
        return f"pmod(hash({column}, {int(seed)}), 1000) < {keep}"
    return f"hash({column}, {int(seed)}) % 1000 < {keep}"


#: each unordered pair of records once, in the SQL both engines read (DuckDB's row comparison is not Spark's)
ORDERED_PAIR = ("(l.source_dataset < r.source_dataset or "
                "(l.source_dataset = r.source_dataset and l.unique_id < r.unique_id))")


def _salted_u(model: dict[str, Any], engine: Engine, table: str, days: str | None = None,
              params: LinkageParams = LinkageParams()) -> int:
    """Set u of the DOB-salted comparisons from held-out non-matches born on one day (on the sampled days when
    ``days`` is given: :func:`dob_day_sample`); returns their number."""
    # DuckDB's input holds each filter as words, Spark's as one array of them (linkage.spark.export_inputs)
    filters = [w for b in BLOOMS.values() for w in (filter_words(b) if engine.dialect == "duckdb" else [b])]
    cols = [*COLUMNS.values(), *filters, *(f"{b}_n" for b in BLOOMS.values()), "dob_k"]
    sel = ", ".join(f"l.{c} as {c}_l, r.{c} as {c}_r" for c in cols)
    # on the joined records' own columns: Spark's WHERE cannot read the select list's aliases (DuckDB's can)
    ssn_dice = _dice_of("l.ssn_bf", "r.ssn_bf", "l.ssn_bf_n", "r.ssn_bf_n", engine.dialect)
    engine.table("_u_pairs", f"""
        select {sel} from {table} l join {table} r on l.dob = r.dob and {ORDERED_PAIR}
        where l.ssn is not null and r.ssn is not null and l.ssn <> r.ssn
          {'and ' + days.replace('dob', 'l.dob') if days else ''}
          and coalesce({ssn_dice}, 0) < {LinkageParams.ssn_dice} and coalesce(l.addr <> r.addr, true)""")
    n = engine.rows("select count(*) from _u_pairs")[0][0]
    lo = params.dice_bands[-1]

    def apart(col: str) -> str:
        """Both records name this field and the names are plainly different (not equal, not swapped, below the
        lowest Dice band); false where either is missing."""
        dice = _dice_of(f"{col}_bf_l", f"{col}_bf_r", f"{col}_bf_n_l", f"{col}_bf_n_r", engine.dialect)
        return (f"coalesce({col}_l <> {col}_r and coalesce(nm_pair_l <> nm_pair_r, true) "
                f"and {dice} < {lo}, false)")

    # The pairs above include true pairs whose SSN was mistyped past one typo and whose address changed: a few
    # in a large population, 6 % of them on FEBRL4, where they made an exact first name 12 times likelier among
    # "non-matches" than among the true ones (u 0.038 against 0.0032). Each comparison's u is counted among the
    # pairs whose OTHER name(s) differ plainly (one person's records keep at least one name close): the same
    # conditional independence Fellegi-Sunter assumes, and it keeps twins (one surname, two given names) in the
    # surname's count. Measured on FEBRL4: 1 % true pairs left among the first name's pairs.
    #
    # Scheme 10 (ADR 0022) salts each name by the date and the other name's initial, so a name's filter, sound code,
    # formal names and surname parts compare only in pairs whose other names share an initial (the filters share a
    # mask: Dice far above the 0.5 of two salts). Those levels' u is counted among such pairs: counted among all, the
    # pairs of two initials (nearly every pair of two surnames) could not reach them, their u shrank by the share of
    # one initial (to the add-one floor on 20,000 persons), and twins (one surname: one salt) were weighed as if their
    # close first names were rare. The name's own level (its token, or its ZIP-salted token) and the DOB-salted
    # levels (swapped fields, all name words) are reachable across the initials: counted among all
    def shared(col: str) -> str:
        dice = _dice_of(f"{col}_bf_l", f"{col}_bf_r", f"{col}_bf_n_l", f"{col}_bf_n_r", engine.dialect)
        return f"coalesce({dice} >= {params.salt_shared_dice}, false)"

    only = {"first_name": apart("ln"), "last_name": apart("fn")}
    one_salt = {"first_name": shared("fn"), "last_name": shared("ln")}
    counted = _counted_u(engine, table, params)
    for comp in model["comparisons"]:
        if comp["output_column_name"] not in SALTED_BY_DOB:
            continue
        levels = comp["comparison_levels"]
        case = " ".join(f"when {lv['sql_condition']} then {i}" for i, lv in enumerate(levels)
                        if lv.get("sql_condition") and lv["sql_condition"].strip().upper() != "ELSE")
        name = comp["output_column_name"]
        where = only.get(name, f"{apart('fn')} and {apart('ln')}")
        counts = dict(engine.rows(f"select case {case} else {len(levels) - 1} end g, count(*) from _u_pairs "
                                  f"where {where} group by 1")) if n else {}  # none: keep the sampled u
        within = {i for i, lv in enumerate(levels)
                  if name in one_salt and _WITHIN_SALT.search(lv.get("sql_condition") or "")}
        counts_one = dict(engine.rows(f"select case {case} else {len(levels) - 1} end g, count(*) from _u_pairs "
                                      f"where {where} and {one_salt[name]} group by 1")) if n and within else {}
        null_levels = {i for i, lv in enumerate(levels) if lv.get("is_null_level")}
        scored = [i for i in range(len(levels)) if i not in null_levels
                  and levels[i].get("label_for_charts") not in COUNTED_U_LABELS]
        total = sum(counts.get(i, 0) for i in scored)
        total_one = sum(counts_one.get(i, 0) for i in scored)
        # no held-out non-match compares on this field (e.g. a suffix, recorded on few records): keep the sampled
        # u rather than the smoothing's even split, which would say nothing while looking trained
        for i in scored if total else ():
            # add-one smoothing: a level no held-out non-match reached (an exact name among a few hundred
            # pairs born on one day) gets a small u, not none; none would make the level evidence of nothing
            c, t = (counts_one, total_one) if i in within and total_one else (counts, total)
            levels[i]["u_probability"] = (c.get(i, 0) + 1) / (t + len(scored))
    for comp in model["comparisons"]:  # the counted levels, in whichever comparison they sit
        for lv in comp["comparison_levels"]:
            label = lv.get("label_for_charts")
            if label in counted:
                lv["u_probability"] = counted[label](comp["output_column_name"])
    return n


#: a name level that reads the name's filter, sound code, formal names or surname parts: reachable only under one salt
#: (scheme 10: the date and the other name's initial), its u counted among such pairs (:func:`_salted_u`)
_WITHIN_SALT = re.compile(r"\b(?:fn|ln)_(?:bf(?:_w\d)?|ph|a\d|p\d)_[lr]\b")  # DuckDB's words, Spark's arrays


def _counted_u(engine: Engine, table: str, params: LinkageParams) -> dict[str, Any]:
    """u of the agreement levels that random sampling cannot weigh (:data:`COUNTED_U_LABELS`), by comparison name.

    Each is reached only by pairs whose dates of birth differ or are missing, and nearly all pairs that agree on
    such a token (one SSN and one name, or the same names in one ZIP) with a date typo or a missing date are the
    same person: counting them all as non-matches made u an upper bound, 40 times this estimate for the names-and-ZIP
    level on 20,000 demo persons. Non-matches are counted where both dates exist and differ plainly (:func:`_plainly_other_dob`:
    namesakes in one ZIP, a parent's SSN on a child's record), as a share of the pairs with both dates; for the
    names-and-ZIP level, which needs a missing date, times the share of pairs with one missing. A floor of one
    pair: a level no such pair reached gets the u of one pair, not none.
    """
    records = engine.rows(f"select count(*), count(dob) from {table}")[0]
    pairs, dated = records[0] * (records[0] - 1) / 2, records[1] * (records[1] - 1) / 2
    if not dated:
        return {}
    missing_share = max(pairs - dated, 1) / max(pairs, 1)  # add-one here too: no record without a date, no zero
    other = _plainly_other_dob(params, engine.dialect)

    @functools.cache  # a level in both name comparisons asks twice
    def share(join: str, where: str = "true") -> float:
        n = engine.rows(f"select count(*) from {table} l join {table} r on {join} and {ORDERED_PAIR} "
                        f"where {other} and {where}")[0][0]
        return max(n, 1) / dated

    words = _dice_of("l.nws_bf", "r.nws_bf", "l.nws_bf_n", "r.nws_bf_n", engine.dialect)
    at_home = _dice_of("l.nwa_bf", "r.nwa_bf", "l.nwa_bf_n", "r.nwa_bf_n", engine.dialect)
    return {
        NAMES_ZIP_LABEL: lambda _: missing_share * share("l.nm_zip = r.nm_zip", "not coalesce(l.addr = r.addr, false)"),
        SSN_NAME_LABEL: lambda comp: share(f"l.{'fn_ssn' if comp == 'first_name' else 'ln_ssn'} = "
                                           f"r.{'fn_ssn' if comp == 'first_name' else 'ln_ssn'}"),
        # the filter is salted by the SSN: no pair of two SSNs reaches the level
        SSN_WORDS_LABEL: lambda _: share("l.ssn = r.ssn", f"coalesce({words}, 0) >= {params.ssn_whole_name_dice} "
                                         "and not coalesce(l.fn_ssn = r.fn_ssn or l.ln_ssn = r.ln_ssn, false)"),
        # salted by the address, reached where a date is missing: relatives of one name at one address (a parent and
        # a child, plainly other dates) are its non-matches
        ADDR_WORDS_LABEL: lambda _: missing_share * share("l.addr = r.addr",
                                                          f"coalesce({at_home}, 0) >= {params.addr_whole_name_dice}"),
        # the first name alone, where the name words are not close (else the level above): a relative of one first
        # name at one address (a parent and a child), plainly other dates
        ADDR_FIRST_LABEL: lambda _: missing_share * share("l.addr = r.addr",
                                                          f"l.fn_addr = r.fn_addr and coalesce({at_home}, 0) < "
                                                          f"{params.addr_whole_name_dice}"),
    }


def _plainly_other_dob(params: LinkageParams, dialect: str) -> str:
    """SQL over ``l``/``r``: both dates of birth present and plainly different, not a typo: other token, other
    year and other month and day under the names' salt, and the positional filter below its lowest band."""
    dice = _dice_of("l.dob_bf", "r.dob_bf", "l.dob_bf_n", "r.dob_bf_n", dialect)
    return (f"l.dob is not null and r.dob is not null and l.dob <> r.dob and coalesce(l.nm_y <> r.nm_y, true) "
            f"and coalesce(l.nm_md <> r.nm_md, true) and coalesce({dice} < {params.dob_dice_bands[1]}, true)")


#: Splink's floor for m and u (``splink.internals.comparison_level.M_U_CLAMP_MIN``): where EM leaves a level it never saw
M_U_CLAMP_MIN = 1e-300


def fill_unobserved(model: dict[str, Any]) -> list[str]:
    """Give a level that no training pair reached a value, and say so (returned, and shown in the report).

    A level EM never observed (a rare pattern, e.g. swapped names among pairs born on one day that are
    not the same person) has no estimate; Splink would drop it from scoring. It gets m = u (match weight 0:
    evidence neither way), and the run's report lists it.
    """
    filled = []
    for comp in model["comparisons"]:
        for lv in comp["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            ok_m, ok_u = (isinstance(v, (int, float)) and v > 0 for v in (m, u))
            if ok_m and m <= 10 * M_U_CLAMP_MIN and lv.get("label_for_charts") in COUNTED_U_LABELS:
                # an agreement level whose u is counted: EM left m at Splink's clamp floor because no training pair
                # reached it (scheme 5's SSN-salted level is rare on a small population); left so, it would weigh
                # about -900 bits against the few pairs that reach it in prediction. Not observed: weight 0
                ok_m = False
            if ok_m and ok_u:
                continue
            us = [x["u_probability"] for x in comp["comparison_levels"] if not x.get("is_null_level")
                  and isinstance(x.get("u_probability"), (int, float)) and x["u_probability"] > 0]
            if ok_m and us:
                # seen among matches (EM) but in no sampled non-match: u is at most what the sample could see;
                # the comparison's smallest observed u is a conservative stand-in (weight under-, not over-stated)
                lv["u_probability"] = min(us)
                filled.append(f"{comp['output_column_name']}: {lv.get('label_for_charts', '')} "
                              "(no sampled non-match: u = the comparison's smallest u)")
                continue
            # weight 0: a level no training pair reached is evidence neither way
            lv["m_probability"] = lv["u_probability"] = m if ok_m else (u if ok_u else 1e-6)
            filled.append(f"{comp['output_column_name']}: {lv.get('label_for_charts', '')} "
                          f"(not observed in training: weight 0)")
    return filled


def untrained_levels(model: dict[str, Any]) -> list[str]:
    """``comparison: level`` of every non-null level whose m or u is not trained (None, or not observed)."""
    out = []
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if not isinstance(m, (int, float)) or not isinstance(u, (int, float)) or math.isnan(m) or m <= 0:
                out.append(f"{comp['output_column_name']}: {level.get('label_for_charts', '')}")
    return out


def make_linker(db_api: Any, inputs: Sequence[str], settings: Any) -> Any:
    from splink import Linker

    sdfs = [db_api.register(name) for name in inputs]
    return Linker(sdfs, settings, log_level=logging.ERROR)


def model_json(linker: Any, *, key_version: str | None, fingerprint: str, params: LinkageParams) -> dict[str, Any]:
    """The saved model: Splink's settings and parameters with our version, key version and data fingerprint."""
    return {"model_version": MODEL_VERSION, "linkage_key_version": key_version, "training_fingerprint": fingerprint,
            "params": asdict(params), "splink": linker.misc.save_model_to_json()}


def model_in_dialect(model: dict[str, Any], params: LinkageParams, dialect: str) -> dict[str, Any]:
    """The same trained Splink model with its SQL in another engine's dialect.

    Splink refuses settings of another dialect than its database API's, and the Dice levels cannot be
    transpiled (``BIT`` against arrays of words). So each comparison level takes the SQL that
    :func:`build_settings` writes for ``dialect``, level by level; every trained value (lambda, m, u, term
    frequencies) and the blocking rules (plain equalities) stay as they are. Saved models are kept in DuckDB's
    dialect, so either engine's run can read the other's model.

    Raises:
        ValueError: the model's comparisons are not the ones :func:`build_settings` makes (another model version).
    """
    import copy

    target = build_settings(params, [], dialect).get_settings(dialect).as_dict()
    out = copy.deepcopy(model)
    if [c["output_column_name"] for c in out["comparisons"]] != [c["output_column_name"] for c in target["comparisons"]]:
        raise ValueError("the model's comparisons are not this version's: retrain with a full run")
    for comp, want in zip(out["comparisons"], target["comparisons"], strict=True):
        if [lv.get("label_for_charts") for lv in comp["comparison_levels"]] != \
                [lv.get("label_for_charts") for lv in want["comparison_levels"]]:
            raise ValueError(f"{comp['output_column_name']}: the model's levels are not this version's: retrain")
        for level, new in zip(comp["comparison_levels"], want["comparison_levels"], strict=True):
            level["sql_condition"] = new["sql_condition"]
    out["sql_dialect"] = dialect
    for rule in out.get("blocking_rules_to_generate_predictions", []):
        if isinstance(rule, dict):
            rule["sql_dialect"] = dialect
    return out
