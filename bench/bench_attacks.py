"""Benchmark of the insider attack suite (issue 13 part 2): what an attacker with read access to
``linkage.duckdb`` and no key recovers from the current encodings.

One synthetic population is simulated and encoded with the real partner kit into a linkage zone
(:mod:`bench.attacks.zone`); every attack in :mod:`bench.attacks` runs on that file with the strong and
the weak reference (:mod:`bench.attacks.reference`), and the scorer (:mod:`bench.attacks.score`, the only
code that reads truth and keys) grades the guesses. Prints one JSON object on stdout (progress on stderr)
and writes it to ``bench/results/<date>-attacks-<n>.json``.

    .venv/bin/python bench/bench_attacks.py --persons 20000 --seed 20261121
        [--home DIR] [--keep] [--seeds 50] [--seed-sweep 25,100] [--strengths strong,weak] [--no-write]

``--home DIR`` keeps the population (keys, extracts, truth, zone) there and reuses it on the next run;
without it everything lives in a temporary directory that is deleted. Runs pinned to one core. Timings
are CPU seconds of each attack (the machine is shared; see bench/README.md).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core: no BLAS threads
    os.environ.setdefault(_v, "1")

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.benchlib import child_usage, log, machine, pin_one_core

SEED = 20261121


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers: per attack, share of records / persons recovered and precision, all guesses
    and the attacker's own >= 0.9 cut-off."""
    out: dict[str, Any] = {}
    for attack, r in results.items():
        row: dict[str, Any] = {}
        parts = {**r["fields"], **r["combined"]}
        for name, v in parts.items():
            a, h = v["conf>=0"], v["conf>=0.9"]
            row[name] = {"records": a["records"], "persons": a["persons"], "precision": a["precision"],
                         "records_conf90": h["records"], "precision_conf90": h["precision"]}
            if "records_within_2_years" in v:
                row[name]["records_within_2_years"] = v["records_within_2_years"]
        out[attack] = row
    return out


def _names_target(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's target on the hardened zone: under 1 % of persons' first names, surnames or both recovered by
    any attack, at any confidence cut-off, with the strongest reference list."""
    worst: dict[str, Any] = {"rate": 0.0}
    for key, r in results.items():
        if not key.startswith("scheme3_after/strong"):
            continue
        for attack, rep in r.items():
            for part in ("first", "last", "first+last"):
                block = rep["fields"].get(part) or rep["combined"].get(part)
                for cut, v in ((c, x) for c, x in (block or {}).items() if c.startswith("conf>=")):
                    if v.get("persons") is not None and v["persons"] > worst["rate"]:
                        worst = {"rate": v["persons"], "attack": attack, "part": part, "cutoff": cut}
    return {"met": worst["rate"] < 0.01, "worst_persons_share": worst}


def _known_records_target(attacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same target for the colluding partner's known-records attacks: the share of persons the partner does
    not hold whose name (the attack's words) is read, under 1 % for every attack. (What it learns of its own
    clients, where else they appear, is linkage itself.)"""
    def share(r: dict[str, Any]) -> float:
        # every route (same salt, another salt), at the attack's cut-off or at any similarity
        return max([(v.get("persons_the_partner_does_not_hold") or {}).get(f) or 0.0 for v in r.values()
                    if isinstance(v, dict) for f in ("persons_recovered_share", "persons_recovered_share_at_any_dice")]
                   + [0.0])

    shares = {k: share(r) for k, r in attacks.items()}
    worst = max(shares, key=lambda k: shares[k])
    return {"met": shares[worst] < 0.01, "worst": worst, "worst_persons_share": shares[worst], "shares": shares}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--home", type=Path, help="population directory (kept and reused)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary population directory")
    ap.add_argument("--seeds", type=int, default=50, help="seed names for the Bloom filter attack")
    ap.add_argument("--seed-sweep", default="25,100", help="other seed counts to try (strong list), '' for none")
    ap.add_argument("--strengths", default="strong,weak")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/")
    ap.add_argument("--oracle-seeds", type=int, default=50,
                    help="also run the Bloom attack seeded with this many TRUE names per column (0: skip)")
    ap.add_argument("--known-records-only", action="store_true",
                    help="only the colluding partner's known-records attacks (they scale to 1,000,000 persons; the "
                         "frequency, profile and Bloom attacks do not)")
    args = ap.parse_args(argv)

    cpu = pin_one_core()
    from bench.attacks.reference import reference
    from bench.attacks.suite import grade, run_attacks
    from bench.attacks.truth import truth_table
    from bench.attacks.zone import build_population

    tmp = None
    home = args.home
    if home is None:
        tmp = Path(tempfile.mkdtemp(prefix="vpdc-bench-attacks-"))
        home = tmp / "home"
    try:
        t0 = time.perf_counter()
        log(f"population: {args.persons:,} persons, seed {args.seed}, in {home}")
        pop = build_population(home, persons=args.persons, seed=args.seed, log=log)
        setup_s = time.perf_counter() - t0
        truth = truth_table(pop)
        import duckdb

        from bench.attacks import hardening_experiments as hx

        # "before": the same population under scheme 1 (the kit before ADR 0009), rebuilt by the legacy encoder
        # of the hardening experiments from the kit's own normalised plaintext, under a fresh random key
        before_db = home / "linkage.scheme1.duckdb"
        if not before_db.exists() and not args.known_records_only:
            hx.write_zone(hx.encode(hx.plaintext(pop), hx.Enc(os.urandom(32)), **hx.CANDIDATES["current"]), before_db)
        zones = {"scheme1_before": before_db, "scheme3_after": pop.linkage_db}
        if args.known_records_only:
            zones = {"scheme3_after": pop.linkage_db}
        zone: dict[str, Any] = {}
        for label, db in zones.items():
            with duckdb.connect(str(db), read_only=True) as con:
                zone[label] = dict(zip(("records", "first_name_tokens", "surname_tokens", "sources"), con.execute(
                    "select count(*), count(distinct enc_fn_full), count(distinct enc_ln_full), count(distinct source) "
                    "from encodings").fetchone(), strict=True))
        zone["persons"] = int(truth["person_id"].nunique())
        # "scheme3_after" names the kit's zone (a stable key for reading results side by side); which scheme it
        # holds is recorded here (scheme 4, ADR 0015, differs from 3 only in how digests are computed)
        from partner_kit.encode import ENCODING_SCHEME

        zone["after_encoding_scheme"] = ENCODING_SCHEME
        results: dict[str, Any] = {}
        oracle: dict[str, Any] = {}
        for label, db in ({} if args.known_records_only else zones).items():
            for strength in [s for s in args.strengths.split(",") if s]:
                log(f"{label}: attacks with the {strength} reference (profiles from an independent population, "
                    f"seed {args.seed + 1})")
                ref = reference(strength, persons=args.persons, seed=args.seed + 1)
                guesses, seconds = run_attacks(db, ref, bloom_seeds=args.seeds)
                results[f"{label}/{strength}"] = grade(db, truth, guesses, seconds)
                for name, sec in seconds.items():
                    log(f"  {name}: {sec:.1f} CPU s")
            if args.oracle_seeds:
                log(f"{label}: Bloom attack seeded with the true names of the {args.oracle_seeds} most frequent tokens")
                ref = reference("strong", persons=args.persons, seed=args.seed + 1)
                try:
                    oracle[label] = hx.oracle_seeded_bloom(db, truth, ref, args.oracle_seeds)
                except Exception as exc:  # noqa: BLE001 - the attack may not apply to a zone at all
                    oracle[label] = {"not_applicable": f"{type(exc).__name__}: {exc}"[:300]}
        # scheme 3's whole-name filter: a colluding partner (the largest) knows the names of all its records
        from bench.attacks import whole_name
        from bench.attacks.score import score_whole_name, union_read

        log("scheme 3 whole-name filter: known-records attack (the largest partner colludes)")
        colluding = str(truth["source"].value_counts().index[0])
        filters = {  # key: (column, salt, log line, what the routes mean)
            "whole": ("enc_nw_bf", "enc_dob_full", None, None),
            "ssn": ("enc_nws_bf", "enc_ssn_full", "scheme 5 whole-name filter salted by the SSN: records grouped by "
                    "the SSN token", "same_birth_date = records of one SSN (one salt); other_birth_date = another SSN"),
            "addr": ("enc_nwa_bf", "enc_addr", "scheme 6 whole-name filter salted by the street address: records "
                     "grouped by address", "same_birth_date = records at one address (one salt); other_birth_date = "
                     "another address"),
            # a keyed deterministic token, not a filter: equal or not; what it holds is the first name
            "fn_addr": ("enc_fn_addr", "enc_addr", "scheme 7 first-name token salted by the street address: records "
                        "grouped by address, tokens compared for equality", "same_birth_date = records at one address "
                        "(one salt); other_birth_date = another address; words = the first name"),
            # scheme 9's sound tokens: keyed deterministic tokens salted by the DOB; what they hold is a name's code,
            # what the attacker wants is the name: a known record of one birth date with the same code lends its name
            "fn_sound": ("enc_fn_ph", "enc_dob_full", "scheme 9 first-name Metaphone token salted by the DOB: records "
                         "grouped by birth date, tokens compared for equality", "same_birth_date = records of one "
                         "birth date (one salt); other_birth_date = another; words = the first name"),
            "ln_sound": ("enc_ln_ph", "enc_dob_full", "scheme 9 surname Metaphone token salted by the DOB",
                         "same_birth_date = records of one birth date (one salt); other_birth_date = another; "
                         "words = the surname"),
            # the name tokens themselves (scheme 2 on): another person born on a client's birthday with the client's
            # first name (or surname) was read; scheme 10 salts each by the DOB and the other name's initial, so the
            # other person must share that initial too (the records are still grouped by birth date: equal tokens
            # imply one date)
            "fn_dob": ("enc_fn_full", "enc_dob_full", "first-name token (salt: DOB; scheme 10: and the surname's "
                       "initial)", "same_birth_date = records of one birth date; words = the first name"),
            "ln_dob": ("enc_ln_full", "enc_dob_full", "surname token (salt: DOB; scheme 10: and the first name's "
                       "initial)", "same_birth_date = records of one birth date; words = the surname"),
            # scheme 10's names salted by the DOB and the ZIP: another person of one name, birthday and ZIP (a twin)
            "fn_zip": ("enc_fn_zip", "enc_dob_full", "scheme 10 first-name token salted by the DOB and the ZIP",
                       "same_birth_date = records of one birth date; words = the first name"),
            "ln_zip": ("enc_ln_zip", "enc_dob_full", "scheme 10 surname token salted by the DOB and the ZIP",
                       "same_birth_date = records of one birth date; words = the surname"),
            # the per-field name filters, salted like the tokens: equal names under one salt give equal filters, and a
            # close one (Dice >= the attack's cut-off) lends its name
            "fn_bf": ("enc_fn_bf", "enc_dob_full", "first-name filter (salted like the first-name token)",
                      "same_birth_date = records of one birth date; words = the first name"),
            "ln_bf": ("enc_ln_bf", "enc_dob_full", "surname filter (salted like the surname token)",
                      "same_birth_date = records of one birth date; words = the surname"),
        }
        name_of = {"fn_addr": "first", "fn_sound": "first", "ln_sound": "last", "fn_dob": "first", "ln_dob": "last",
                   "fn_zip": "first", "ln_zip": "last", "fn_bf": "first", "ln_bf": "last"}
        known_records: dict[str, dict[str, Any]] = {}
        union_guesses: dict[str, list[tuple[Any, float]]] = {"first": [], "last": []}
        for key, (column, salt, line, routes) in filters.items():
            if line:
                log(line)
            t1 = time.process_time()
            tr = truth.assign(words=truth[name_of[key]]) if key in name_of else truth
            kn = tr.loc[tr["source"] == colluding, ["source", "source_record_id", "words"]]
            g = whole_name.attack(pop.linkage_db, kn, column=column, salt=salt)
            if key in name_of:  # kept for the union over every encoding of one name
                union_guesses[name_of[key]].append((g, 1e-9 if not column.endswith("_bf") else whole_name.THRESHOLD))
            r = score_whole_name(g, tr, colluding)
            r["cpu_seconds"] = round(time.process_time() - t1, 2)
            known_records[key] = r | ({"routes": routes} if routes else {})
        whole, whole_ssn, whole_addr = known_records["whole"], known_records["ssn"], known_records["addr"]
        first_addr = known_records["fn_addr"]
        sound_tokens = {"first_name": known_records["fn_sound"], "surname": known_records["ln_sound"]}
        dob_name_tokens = {"first_name": known_records["fn_dob"], "surname": known_records["ln_dob"]}
        zip_name_tokens = {"first_name": known_records["fn_zip"], "surname": known_records["ln_zip"]}
        name_filters = {"first_name": known_records["fn_bf"], "surname": known_records["ln_bf"]}
        log("scheme 8 formal-name tokens: known-records attack inside each birth date (the same partner colludes)")
        t1 = time.process_time()
        tr = truth.assign(words=truth["first"])
        kn = tr.loc[tr["source"] == colluding, ["source", "source_record_id", "words"]]
        formal_g = whole_name.formal_names_attack(pop.linkage_db, kn)
        formal = score_whole_name(formal_g, tr, colluding, threshold=1e-9)
        formal["cpu_seconds"] = round(time.process_time() - t1, 2)
        union_guesses["first"].append((formal_g, 1e-9))
        # an attacker runs them all: the persons whose first name (surname) any of them reads
        union = {name: union_read(gs, truth.assign(words=truth[name]), colluding) for name, gs in union_guesses.items()}
        formal["routes"] = ("same_birth_date = records of one birth date: a record's first-name token among a known "
                            "record's formal-name tokens or the reverse; guess = the table's first candidate")
        sweep: dict[str, Any] = {}
        if args.seed_sweep and not args.known_records_only:
            from bench.attacks import bloom

            ref = reference("strong", persons=args.persons, seed=args.seed + 1)
            for label, db in zones.items():
                for n in [int(x) for x in args.seed_sweep.split(",") if x]:
                    log(f"{label}: Bloom attack with {n} seeds (strong list)")
                    t1 = time.process_time()
                    g = bloom.attack(db, ref, seeds=n)
                    r = grade(db, truth, {"bloom": g})["bloom"]
                    sweep[f"{label}/{n}"] = {"cpu_seconds": round(time.process_time() - t1, 2),
                                             **{k: v["conf>=0"]["records"] for k, v in {**r["fields"], **r["combined"]}.items()}}
        out = {
            "benchmark": "attacks", "persons": args.persons, "seed": args.seed, "bloom_seeds": args.seeds,
            "cpu": cpu, "machine": machine(), "zone": zone, "setup_seconds": round(setup_s, 1),
            "summary": {k: summary(r) for k, r in results.items()},
            "bloom_seed_sweep": sweep, "bloom_with_true_seeds_records": oracle, "whole_name_known_records": whole,
            "whole_name_ssn_salted_known_records": whole_ssn, "whole_name_address_salted_known_records": whole_addr,
            "first_name_address_salted_known_records": first_addr, "formal_name_tokens_known_records": formal,
            "sound_tokens_known_records": sound_tokens, "dob_salted_name_tokens_known_records": dob_name_tokens,
            "zip_salted_name_tokens_known_records": zip_name_tokens, "name_filters_known_records": name_filters,
            "every_encoding_of_one_name_known_records": union,
            "results": results,
            "target": {"names_persons_max": 0.01, "met": _names_target(results),
                       "known_records_met": _known_records_target({
                           "whole_name": whole, "whole_name_ssn_salted": whole_ssn,
                           "whole_name_address_salted": whole_addr, "first_name_address_salted": first_addr,
                           "formal_name_tokens": formal, "sound_first_name": sound_tokens["first_name"],
                           "sound_surname": sound_tokens["surname"], "dob_salted_first_name": dob_name_tokens["first_name"],
                           "dob_salted_surname": dob_name_tokens["surname"],
                           "zip_salted_first_name": zip_name_tokens["first_name"],
                           "zip_salted_surname": zip_name_tokens["surname"], "first_name_filter": name_filters["first_name"],
                           "surname_filter": name_filters["surname"],
                           "every_first_name_encoding": {"same_birth_date": {"persons_the_partner_does_not_hold":
                                                                              union["first"]}},
                           "every_surname_encoding": {"same_birth_date": {"persons_the_partner_does_not_hold":
                                                                           union["last"]}}})},
            "known_records_only": args.known_records_only, **child_usage(),
        }
        text = json.dumps(out, default=str)
        print(text)
        if not args.no_write:
            kind = "attacks-known-records" if args.known_records_only else "attacks"
            path = BENCH / "results" / f"{date.today().isoformat()}-{kind}-{_size_label(args.persons)}.json"
            path.write_text(json.dumps(out, indent=1, default=str) + "\n")
            log(f"wrote {path}")
        return 0
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
