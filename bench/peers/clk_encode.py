"""Encode person records as CLKs (cryptographic long-term keys, Bloom filters) with clkhash: the peer
of the project's own identifier encoding, for benchmarks.

Runs in the peer benchmark venv (.venv-bench), never in the project's .venv.

Input CSV columns: record_id, first_name, last_name, dob (YYYY-MM-DD), sex, zip and, optionally, ssn, address,
middle_initial, suffix (a column that is absent is blank in every row); any value may be blank (= missing, no bits).
Values are normalised before hashing (see normalise()); the linkage schema is clk_schema.json (v3):
first/last name bigrams, dob positional digits, sex, zip positional digits, SSN positional digits, address
(street line) bigrams, middle initial and suffix exact; 1024-bit filter, blake2b.

Secret: the env var named by --secret-env (default BENCH_CLK_SECRET), or --secret-file (first line).
Every party must use the same secret and schema for their CLKs to be comparable.

Output (--output): JSON {"format": "vpdc-bench-clks/1", "dataset", "record_ids": [...],
"clks": [base64, ...], ...}; read by anonlink_link.py ("clks" is the anonlink-client layout).

Parallelism: clkhash hashes in chunks of 10,000 records, one worker process per chunk, up to
os.cpu_count() workers by default. Inputs of fewer than 10,000 records are ALWAYS hashed in-process
on one core, whatever --workers says. --single-core (= --workers 1) forces in-process hashing.
--repeat K replicates the input K times with per-copy distinct values (throughput measurements on
bigger inputs only: clkhash caches per-value encodings, so exact copies would be flattered).

stdout: exactly one JSON object {"tool": "clkhash", "version", "records", "seconds", "records_per_s",
"peak_rss_mb", "cores_used", ...}. seconds covers the hashing only (not CSV reading or writing).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import os
import re
import resource
import sys
import threading
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import psutil

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from clkhash import schema as clk_schema  # noqa: E402
from clkhash.clk import generate_clks  # noqa: E402
from clkhash.serialization import serialize_bitarray  # noqa: E402

HERE = Path(__file__).resolve().parent
COLUMNS = ["record_id", "first_name", "last_name", "dob", "sex", "zip"]
#: optional input columns (schema order after COLUMNS): blank when the CSV lacks them (e.g. bench_kit.py's layout)
OPTIONAL = ["ssn", "address", "middle_initial", "suffix"]
CLKHASH_CHUNK = 10_000  # clkhash.clk.generate_clks_from_csv_as_stream chunk size (hard-coded there)
_WS = re.compile(r"\s+")
_NONDIGIT = re.compile(r"[^0-9]")
_NONALNUM = re.compile(r"[^a-z0-9]")
_DOB = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


class RssSampler(threading.Thread):
    """Samples the RSS of this process plus all its descendants (clkhash workers). The sum counts
    copy-on-write pages shared after fork once per process, so it is an upper bound."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = 0
        self.max_children = 0
        self._stop_evt = threading.Event()

    def sample(self) -> None:
        total = 0
        try:
            total = self.proc.memory_info().rss
            children = self.proc.children(recursive=True)
        except psutil.Error:
            children = []
        n = 0
        for c in children:
            try:
                total += c.memory_info().rss
                n += 1
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)
        self.max_children = max(self.max_children, n)

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self.sample()
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()
        self.sample()


def normalise(row: dict[str, str]) -> tuple[list[str], dict[str, bool]]:
    """Row -> values in schema order. Names: trimmed, lower case, inner whitespace collapsed.
    dob: YYYY-MM-DD (month/day may be 1 digit) or YYYYMMDD -> YYYYMMDD digits, not calendar-checked
    (FEBRL's corrupted dates such as 1952-02-31 still hash); other shapes -> blank, counted in dob_unparsed.
    sex: M/F (first letter, case-insensitive); U, X, anything else -> blank (missing).
    zip: digits only, first 5; fewer than 3 digits -> blank.
    ssn: digits only; anything but 9 digits -> blank, counted in ssn_unparsed.
    address: trimmed, lower case, inner whitespace collapsed.
    middle_initial: first letter of the value, lower case (a-z; anything else -> blank).
    suffix: lower case, letters and digits only (jr, sr, ii, ...); more than 5 characters -> blank."""
    def g(k: str) -> str:
        return (row.get(k) or "").strip()

    first = _WS.sub(" ", g("first_name").lower())
    last = _WS.sub(" ", g("last_name").lower())
    dob_raw = g("dob")
    m = _DOB.fullmatch(dob_raw)
    if m:
        dob = f"{m[1]}{int(m[2]):02d}{int(m[3]):02d}"
    elif len(dob_raw) == 8 and dob_raw.isdigit():
        dob = dob_raw
    else:
        dob = ""
    dob_bad = bool(dob_raw) and not dob
    sex = g("sex")[:1].upper()
    if sex not in ("M", "F"):
        sex = ""
    z = _NONDIGIT.sub("", g("zip"))[:5]
    if len(z) < 3:
        z = ""
    ssn_raw = g("ssn")
    ssn = _NONDIGIT.sub("", ssn_raw)
    if len(ssn) != 9:
        ssn = ""
    address = _WS.sub(" ", g("address").lower())
    mi = g("middle_initial")[:1].lower()
    if not ("a" <= mi <= "z"):
        mi = ""
    sfx = _NONALNUM.sub("", g("suffix").lower())
    if len(sfx) > 5:
        sfx = ""
    return ([g("record_id"), first, last, dob, sex, z, ssn, address, mi, sfx],
            {"dob_unparsed": dob_bad, "ssn_unparsed": bool(ssn_raw) and not ssn})


def _alpha(k: int) -> str:
    out = ""
    while True:
        k, r = divmod(k, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[r] + out
        if k == 0:
            return out


def replicate(base: list[list[str]], times: int) -> list[list[str]]:
    """The input followed by times-1 copies whose non-blank values are made distinct per copy (names get
    a letter suffix, dob, zip and SSN digits are shifted, the address gets a word; middle initial and suffix
    stay). Exact copies would be misleading: clkhash memoises the encoding of each field value
    (functools.lru_cache, 2**17 entries), so identical copies hash ~2-3x faster than new records. With this scheme each copy has the value overlap of the original
    file, and no overlap with the other copies: a no-cross-copy-reuse (pessimistic) scale-up."""
    rows = list(base)
    for k in range(1, times):
        sfx = _alpha(k)
        for rid, first, last, dob, sex, z, ssn, address, mi, suffix in base:
            rows.append([
                f"{rid}#{k}",
                first + sfx if first else "",
                last + sfx if last else "",
                f"{(int(dob) + 7919 * k) % 10**8:08d}" if dob else "",
                sex,
                f"{(int(z) + 37 * k) % 10**len(z):0{len(z)}d}" if z else "",
                f"{(int(ssn) + 104729 * k) % 10**9:09d}" if ssn else "",
                address + " " + sfx if address else "",
                mi,
                suffix,
            ])
    return rows


def read_secret(args: argparse.Namespace) -> str:
    if args.secret_file:
        s = Path(args.secret_file).read_text(encoding="utf-8").splitlines()
        s = s[0].strip() if s else ""
        if not s:
            sys.exit(f"clk_encode: secret file {args.secret_file} is empty")
        return s
    s = os.environ.get(args.secret_env, "")
    if not s:
        sys.exit(f"clk_encode: no secret: set ${args.secret_env} or pass --secret-file")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, type=Path, help="CSV: record_id,first_name,last_name,dob,sex,zip[,ssn,address,middle_initial,suffix]")
    ap.add_argument("--output", type=Path, help="CLKs JSON for anonlink_link.py (omit to only time)")
    ap.add_argument("--limit", type=int, help="encode only the first N records")
    ap.add_argument("--dataset", help="dataset name stored in the output (default: input file stem)")
    ap.add_argument("--schema", type=Path, default=HERE / "clk_schema.json")
    ap.add_argument("--secret-env", default="BENCH_CLK_SECRET", help="env var holding the secret")
    ap.add_argument("--secret-file", help="file whose first line is the secret (overrides the env var)")
    par = ap.add_mutually_exclusive_group()
    par.add_argument("--single-core", action="store_true",
                     help="hash in-process on one core (clkhash max_workers=1)")
    par.add_argument("--workers", type=int,
                     help="clkhash worker processes (default: clkhash's own, os.cpu_count())")
    ap.add_argument("--repeat", type=int, default=1,
                    help="replicate the input K times to time bigger inputs; copies get distinct values "
                         "(see replicate()) so clkhash's per-value cache is not flattered")
    ap.add_argument("--no-validate", action="store_true", help="skip clkhash's per-value validation")
    args = ap.parse_args(argv)

    secret = read_secret(args)
    schema_text = args.schema.read_bytes()
    schema = clk_schema.from_json_dict(json.loads(schema_text))
    workers = 1 if args.single_core else args.workers  # None = clkhash default

    sampler = RssSampler()
    sampler.start()

    t_read = time.perf_counter()
    with args.input.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"clk_encode: {args.input} lacks columns {missing}")
        rows: list[list[str]] = []
        dob_unparsed = ssn_unparsed = 0
        optional_present = [c for c in OPTIONAL if c in (reader.fieldnames or [])]
        for i, r in enumerate(reader):
            if args.limit is not None and i >= args.limit:
                break
            vals, flags = normalise(r)
            dob_unparsed += flags["dob_unparsed"]
            ssn_unparsed += flags["ssn_unparsed"]
            rows.append(vals)
    if args.repeat > 1:
        rows = replicate(rows, args.repeat)
    read_s = time.perf_counter() - t_read
    n = len(rows)

    # What clkhash will do (clkhash.clk.generate_clks_from_csv_as_stream): in-process below one chunk.
    if n < CLKHASH_CHUNK or workers == 1:
        planned = 1
        mode = "in-process"
    else:
        planned = workers if workers is not None else multiprocessing.cpu_count()
        mode = "processes"

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rc0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    clks = generate_clks(rows, schema, secret, validate=not args.no_validate, max_workers=workers)
    seconds = time.perf_counter() - t0
    while multiprocessing.active_children():  # reap clkhash's workers so their CPU time is counted
        time.sleep(0.01)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rc1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
             + rc1.ru_utime - rc0.ru_utime + rc1.ru_stime - rc0.ru_stime)

    write_s = 0.0
    if args.output:
        t_w = time.perf_counter()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": "vpdc-bench-clks/1",
            "tool": "clkhash",
            "version": version("clkhash"),
            "dataset": args.dataset or args.input.stem,
            "schema": str(args.schema),
            "schema_sha256": hashlib.sha256(schema_text).hexdigest(),
            "bits": schema.l,
            "record_ids": [r[0] for r in rows],
            "clks": [serialize_bitarray(c) for c in clks],
        }
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        tmp.replace(args.output)
        write_s = time.perf_counter() - t_w

    sampler.stop()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    peak = max(sampler.peak, self_peak)
    popcounts = [c.count() for c in clks]
    processes_seen = sampler.max_children
    cores_used = max(1, min(processes_seen, os.cpu_count() or 1)) if mode == "processes" else 1

    print(json.dumps({
        "tool": "clkhash",
        "version": version("clkhash"),
        "records": n,
        "seconds": round(seconds, 4),
        "records_per_s": round(n / seconds, 1) if seconds > 0 else None,
        "peak_rss_mb": round(peak / 2**20, 1),
        "cores_used": cores_used,
        "mode": mode,
        "workers_requested": "clkhash-default" if workers is None else workers,
        "worker_processes_planned": planned if mode == "processes" else 0,
        "worker_processes_seen": processes_seen,
        "cpu_seconds": round(cpu_s, 3),
        "cpu_per_wall": round(cpu_s / seconds, 2) if seconds > 0 else None,
        "machine_cores": os.cpu_count(),
        "read_seconds": round(read_s, 4),
        "write_seconds": round(write_s, 4),
        "bits": schema.l,
        "mean_popcount": round(sum(popcounts) / n, 1) if n else None,
        "empty_clks": sum(1 for p in popcounts if p == 0),
        "dob_unparsed": dob_unparsed,
        "ssn_unparsed": ssn_unparsed,
        "optional_columns_present": optional_present,
        "features_present": {c: sum(1 for r in rows if r[i]) for i, c in enumerate(COLUMNS + OPTIONAL) if i},
        "repeat": args.repeat,
        "dataset": args.dataset or args.input.stem,
        "output": str(args.output) if args.output else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
