"""Check a partner's own profile against a sample of its extract, before the warehouse adopts it.

A partner's IT staff writes ``profiles/<partner>.json`` at its site and runs ``vpdc-kit profile check`` on a
sample file. The report says, per check, whether it passes, and what to change if not: the profile's own
structure (every field, by name), the file's header against the columns the profile names, the text
encoding, each content column against its declared type, values or pattern, the identifier roles (how many
rows have a name, a date of birth in the declared format, ...), and a trial encoding (rows encoded and
rejected, by rule). It reports counts and column names only, never a value: the sample holds identifiers.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from envelope.keys import LinkageSecret
from partner_kit.encode import Encoder
from partner_kit.extract import SchemaError, _decode_columns, _header, encode_extract
from partner_kit.geocode import AddressPoints
from partner_kit.normalise import NormaliseError, parse_date
from partner_kit.profiles import ExtractProfile, ProfileError, load_profile

__all__ = ["CheckResult", "ProfileReport", "check_profile"]


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str  # pass | warn | fail
    detail: str
    column: str | None = None


@dataclass
class ProfileReport:
    partner: str
    extract_type: str
    sample: str
    rows: int = 0
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def add(self, check: str, ok: bool | str, detail: str, column: str | None = None) -> None:
        status = ok if isinstance(ok, str) else ("pass" if ok else "fail")
        self.checks.append(CheckResult(check, status, detail, column))

    def as_dict(self) -> dict[str, Any]:
        return {"partner": self.partner, "extract_type": self.extract_type, "sample": self.sample, "rows": self.rows,
                "passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def check_profile(partner: str, extract_type: str, sample: Path, *, profiles_dir: Path | None = None,
                  today: date | None = None, max_rows: int = 200_000) -> ProfileReport:
    """Check ``partner``'s profile for ``extract_type`` against ``sample`` (its first ``max_rows`` rows).

    Never raises for a problem of the profile or the file: every problem is a failed check in the report.
    """
    today = today or date.today()
    report = ProfileReport(partner, extract_type, Path(sample).name)
    try:
        profile = load_profile(partner, extract_type, profiles_dir)
    except ProfileError as exc:
        report.add("profile", False, str(exc))
        return report
    report.add("profile", True, f"{profile.schema_version}: {profile.kind} extract, "
                                f"{len(profile.content)} content columns, encoding {profile.encoding}")
    sample = Path(sample)
    if not sample.is_file() or sample.stat().st_size == 0:
        report.add("file", False, f"{sample.name}: no such file, or empty")
        return report
    try:
        header = _header(sample, profile)
    except SchemaError as exc:
        report.add("header", False, str(exc).replace(str(sample), sample.name))
        return report
    expected = profile.expected_columns()
    missing, unexpected = sorted(expected - set(header)), sorted(set(header) - expected)
    report.add("header", not missing and not unexpected,
               "every column the profile names is present and no other" if not (missing or unexpected) else
               "; ".join(([f"missing {missing}"] if missing else []) +
                         ([f"not in the profile {unexpected} (the kit refuses a file with a column it was not told "
                           "about: add it to content only if it holds no identifier)"] if unexpected else [])))
    if missing:
        return report
    table = _read_sample(sample, profile, header, max_rows, report)
    if table is None:
        return report
    report.rows = table.num_rows
    _check_content(profile, table, report)
    _check_identifiers(profile, table, report, today)
    _trial_encode(profile, sample, report, today)
    return report


def _read_sample(sample: Path, profile: ExtractProfile, header: list[str], max_rows: int,
                 report: ProfileReport) -> pa.Table | None:
    try:
        reader = pacsv.open_csv(sample, read_options=pacsv.ReadOptions(column_names=header, skip_rows=1,
                                                                       use_threads=False),
                                parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
                                convert_options=pacsv.ConvertOptions(column_types={c: pa.binary() for c in header},
                                                                     strings_can_be_null=False,
                                                                     quoted_strings_can_be_null=False))
        batches, n = [], 0
        undecodable: Counter[str] = Counter()
        for batch in reader:
            batches.append(_decode_columns(batch, profile.encoding,
                                           lambda _i, col, _rule, _msg: undecodable.update([col])))
            n += batch.num_rows
            if n >= max_rows:
                break
    except pa.ArrowInvalid as exc:
        report.add("csv", False, f"cannot be read as {profile.delimiter!r}-delimited CSV: "
                                 f"{str(exc).splitlines()[0][:200]}")
        return None
    report.add("encoding", not undecodable,
               f"every value is {profile.encoding} text" if not undecodable else
               f"values that are not {profile.encoding} text in {dict(undecodable)}: declare the file's encoding "
               "(e.g. \"cp1252\" for Windows exports)")
    table = pa.Table.from_batches(batches) if batches else pa.table({c: pa.array([], pa.string()) for c in header})
    return table.slice(0, max_rows)


def _check_content(profile: ExtractProfile, table: pa.Table, report: ProfileReport) -> None:
    for col, spec in profile.content.items():
        values = pc.utf8_trim_whitespace(table.column(col).combine_chunks())
        present = values.filter(pc.not_equal(values, ""))
        blank = len(values) - len(present)
        problems = []
        if spec.get("required") and blank:
            problems.append(f"{blank} blank values in a required column")
        if "values" in spec:
            unknown = len(present) - pc.sum(pc.is_in(present, value_set=pa.array(spec["values"], pa.string()))).as_py()
            if unknown:
                problems.append(f"{unknown} values outside the declared values ({len(spec['values'])} codes)")
        if "pattern" in spec:
            miss = len(present) - (pc.sum(pc.match_substring_regex(present, spec["pattern"])).as_py() or 0)
            if miss:
                problems.append(f"{miss} values do not match the declared pattern")
        if spec["type"] in ("int", "date", "timestamp"):
            bad = _unparseable(present, spec)
            if bad:
                problems.append(f"{bad} values are not {spec['type']}s"
                                + (f" in format {spec.get('format')}" if spec.get("format") else ""))
        if spec["type"] == "string" and "values" not in spec and "pattern" not in spec:
            problems.append("free text: declare its values or a pattern (the warehouse refuses undeclared text, "
                            "which is where identifiers hide)")
        report.add("content", not problems, "; ".join(problems) or f"{len(present)} values as declared", col)


def _unparseable(values: pa.Array, spec: dict[str, Any]) -> int:
    from datetime import datetime

    typ, fmt = spec["type"], spec.get("format")
    bad = 0
    for v in pc.unique(values).to_pylist():
        try:
            if typ == "int":
                int(v)
            else:
                datetime.strptime(v, fmt or ("%Y-%m-%d" if typ == "date" else "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            bad += pc.sum(pc.equal(values, v)).as_py()
    return bad


def _check_identifiers(profile: ExtractProfile, table: pa.Table, report: ProfileReport, today: date) -> None:
    ids = profile.identifiers
    n = table.num_rows or 1
    for role in ("first_name", "last_name", "formatted_name", "ssn", "address", "zip", "sex"):
        col = ids.get(role)
        if not col:
            continue
        values = pc.utf8_trim_whitespace(table.column(col).combine_chunks())
        filled = pc.sum(pc.not_equal(values, "")).as_py() or 0
        status = "pass" if filled / n >= 0.5 or role in ("ssn", "address") else "warn"
        report.add(f"identifier {role}", status, f"{filled} of {table.num_rows} rows have a value", col)
    if ids.get("dob"):
        col, fmt = ids["dob"], ids.get("dob_format", "%Y-%m-%d")
        values = pc.utf8_trim_whitespace(table.column(col).combine_chunks())
        counts: Counter[str] = Counter()
        for v in pc.unique(values).to_pylist():
            rows = pc.sum(pc.equal(values, v)).as_py()
            try:
                counts["parsed" if parse_date(v, fmt, latest=today) else "blank"] += rows
            except NormaliseError as exc:
                counts[exc.rule] += rows
        bad = counts["date_format"] + counts["date_range"]
        report.add("identifier dob", "pass" if bad <= 0.01 * n else "fail",
                   f"{counts['parsed']} parse in format {fmt}, {counts['blank']} blank, {counts['date_format']} in "
                   f"another format, {counts['date_range']} out of range", col)
    if ids.get("sex") and ids.get("sex_map"):
        values = pc.utf8_trim_whitespace(table.column(ids["sex"]).combine_chunks())
        unmapped = len(values) - (pc.sum(pc.is_in(values, value_set=pa.array(list(ids["sex_map"]) + [""]))).as_py() or 0)
        report.add("identifier sex_map", unmapped == 0, f"{unmapped} values not in sex_map", ids["sex"])
    if ids.get("dob_format") and not re.search(r"%[dmYyb]", ids["dob_format"]):
        report.add("identifier dob_format", False, "dob_format is not a strptime format (e.g. %m/%d/%Y)")


def _trial_encode(profile: ExtractProfile, sample: Path, report: ProfileReport, today: date) -> None:
    """Encode the sample with a throwaway key (nothing is kept): the kit's own verdict, row by row."""
    import os

    encoder = Encoder(LinkageSecret.from_master("v1", os.urandom(32)))
    with tempfile.TemporaryDirectory(prefix="vpdc-profile-check-") as tmp:
        try:
            # a trial: no address points needed (every tract comes out unplaced)
            s = encode_extract(profile, sample, Path(tmp) / "trial.parquet", encoder, today=today,
                               address_points=AddressPoints() if profile.geocode else None)
        except SchemaError as exc:
            report.add("trial encoding", False, str(exc).replace(str(sample), sample.name))
            return
    rejected = sum(s.rejected.values())
    share = rejected / max(s.rows_read, 1)
    report.add("trial encoding", "pass" if share == 0 else ("warn" if share < 0.01 else "fail"),
               f"{s.rows_encoded} of {s.rows_read} rows encoded; rejected by rule: {dict(s.rejected) or 'none'}")
