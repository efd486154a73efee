"""Validation suites for incoming extracts, as code, with Great Expectations 1.x.

One suite per partner schema, built from the partner's profile (the same contract the kit encodes
with): column set and types, encoding formats and key versions, Bloom filter length, value sets and
patterns of code columns, date ranges, null-rate thresholds, row count equal to the manifest, and
unique source record ids.

GX validates the payload chunk by chunk (pandas batches of ``chunk_rows``), never the whole extract
at once; counts are summed across chunks and thresholds applied to the totals. The mechanical checks
of the ~20 encoding columns (token format, Bloom length, null rates) run in Arrow on the same chunks:
through GX/pandas they took most of an ingestion's time. Row count and
uniqueness need the whole file and are computed over it with Arrow/DuckDB. Results carry counts and
column names only: GX runs with a result format that excludes unexpected values.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from envelope.format import Manifest
from partner_kit import BLOOM_COLUMNS, ENCODING_COLUMNS, ExtractProfile
from partner_kit.encode import ENCODING_SCHEME
from workspace import Home
from workspace.files import atomic_write

__all__ = ["CheckOutcome", "ValidationReport", "ValidationSettings", "describe_suite", "validate_payload"]

TOKEN_RE = r"^[A-Za-z0-9_-]{16}$"
RECORD_ID_RE = r"^[A-Za-z0-9_-]{20}$"
#: Default null-rate ceilings for identifier encodings: above these, linkage quality would collapse.
DEFAULT_MAX_NULL = {"enc_fn_full": 0.05, "enc_ln_full": 0.05, "enc_sex": 0.10, "enc_dob_full": 0.20}
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "exclude_unexpected_values": True,
                  "include_unexpected_rows": False, "return_unexpected_index_query": False}


@dataclass(frozen=True)
class ValidationSettings:
    """Warehouse-side expectations that do not come from the partner profile."""

    accepted_key_versions: tuple[str, ...] = ("v1",)
    bloom_bytes: int = 64
    earliest_event: str = "2000-01-01"
    chunk_rows: int = 250_000
    #: null-rate ceilings judge a rate: below this many rows one missing value is not a trend
    min_rows_for_rates: int = 200


def settings_for(home: Home) -> ValidationSettings:
    """The validation settings of a warehouse: the linkage key versions its settings accept."""
    from workspace.settings import load_settings

    return ValidationSettings(accepted_key_versions=load_settings(home).accepted_linkage_versions)


@dataclass
class CheckOutcome:
    """One check over the whole payload. ``severity`` error blocks the load; warn is reported only."""

    check: str
    column: str | None
    severity: str
    passed: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.check}:{self.column}" if self.column else self.check


@dataclass
class ValidationReport:
    file: str
    envelope_id: str
    partner: str
    extract_type: str
    period: str
    schema_version: str
    rows: int
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed or c.severity != "error" for c in self.checks)

    def failures(self, severity: str = "error") -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed and c.severity == severity]

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "checks"}, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}

    def summary(self) -> str:
        bad = self.failures()
        if not bad:
            return f"{len(self.checks)} checks passed"
        return "; ".join(f"{c.key}: {c.detail or f'{c.unexpected_count} of {c.element_count} unexpected'}"
                         for c in bad)

    def write(self, reports_dir: Path) -> tuple[Path, Path]:
        """Write JSON and a self-contained HTML page (no external scripts or styles)."""
        reports_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.partner}_{self.extract_type}_{self.period}_{self.envelope_id[:12]}"
        jpath, hpath = reports_dir / f"{stem}.json", reports_dir / f"{stem}.html"
        atomic_write(jpath, json.dumps(self.as_dict(), indent=2))
        rows = "".join(
            f"<tr class={'ok' if c.passed else c.severity}><td>{html.escape(c.check)}</td>"
            f"<td>{html.escape(c.column or '')}</td><td>{c.severity}</td><td>{'pass' if c.passed else 'FAIL'}</td>"
            f"<td>{c.element_count:,}</td><td>{c.unexpected_count:,}</td><td>{html.escape(c.detail)}</td></tr>"
            for c in self.checks)
        atomic_write(hpath,
            "<!doctype html><meta charset=utf-8><title>validation</title><style>body{font:14px sans-serif}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd}.error{background:#fdd}.warn{background:#ffd}</style>"
            f"<h1>{html.escape(self.partner)} / {html.escape(self.extract_type)} / {html.escape(self.period)}</h1>"
            f"<p>envelope {html.escape(self.envelope_id)} · schema {html.escape(self.schema_version)} · "
            f"{self.rows:,} rows · <b>{'PASSED' if self.passed else 'FAILED'}</b></p>"
            "<p>Counts and column names only; no record values are ever shown.</p>"
            "<table><tr><th>check</th><th>column</th><th>severity</th><th>result</th><th>rows</th>"
            f"<th>unexpected</th><th>detail</th></tr>{rows}</table>")
        return jpath, hpath


@cache
def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context


def _expectations(profile: ExtractProfile, manifest: Manifest, settings: ValidationSettings,
                  now: datetime) -> list[tuple[Any, str, str | None, float]]:
    """(expectation, check name, column, max unexpected share) for the GX suite of this schema."""
    import great_expectations.expectations as gxe
    import pandas as pd

    schema = profile.output_schema(previous_ids=bool(manifest.extra.get("previous_key_version"))) \
        if hasattr(manifest, "extra") else profile.output_schema()
    out: list[tuple[Any, str, str | None, float]] = []
    gx_columns = [c for c in schema.names if c not in ENCODING_COLUMNS]
    out.append((gxe.ExpectTableColumnsToMatchSet(column_set=gx_columns, exact_match=True), "columns", None, 0.0))
    for ref in ("source_record_id", "source_record_id_prev", "person_record_id",
                profile.group_ref["name"] if profile.group_ref else None):
        if ref and ref in schema.names:
            out.append((gxe.ExpectColumnValuesToNotBeNull(column=ref), "not_null", ref, 0.0))
            out.append((gxe.ExpectColumnValuesToMatchRegex(column=ref, regex=RECORD_ID_RE), "id_format", ref, 0.0))
    out.append((gxe.ExpectColumnValuesToBeInSet(column="linkage_key_version", value_set=[manifest.linkage_key_version]),
                "key_version", "linkage_key_version", 0.0))
    if "birth_year" in schema.names:
        out.append((gxe.ExpectColumnValuesToBeBetween(column="birth_year", min_value=1900, max_value=now.year),
                    "range", "birth_year", 0.0))
    for col, spec in {**profile.content, **profile.derived_content}.items():
        if "values" in spec:
            out.append((gxe.ExpectColumnValuesToBeInSet(column=col, value_set=spec["values"]), "value_set", col, 0.0))
        if "pattern" in spec:
            out.append((gxe.ExpectColumnValuesToMatchRegex(column=col, regex=spec["pattern"]), "pattern", col, 0.0))
        if "min" in spec or "max" in spec:
            out.append((gxe.ExpectColumnValuesToBeBetween(column=col, min_value=spec.get("min"),
                                                          max_value=spec.get("max")), "range", col, 0.0))
        if spec["type"] in ("date", "timestamp"):
            out.append((gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=pd.Timestamp(settings.earliest_event),
                max_value=pd.Timestamp(now.replace(tzinfo=None))), "date_range", col, 0.0))
        if spec.get("required"):
            out.append((gxe.ExpectColumnValuesToNotBeNull(column=col), "not_null", col, 0.0))
        elif "max_null_rate" in spec:
            out.append((gxe.ExpectColumnValuesToNotBeNull(column=col), "null_rate", col, spec["max_null_rate"]))
    return out


def describe_suite(profile: ExtractProfile, settings: ValidationSettings = ValidationSettings(),
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """Every check the warehouse runs on this partner schema, in order, with the engine that runs it.

    What an engineer or steward reviews: the Great Expectations suite (built in code from the profile,
    the same contract the kit encodes with), the Arrow checks of the encoding columns, and the
    whole-file checks. Values in the result are the expectations' parameters, never data.
    """
    from types import SimpleNamespace

    now = now or datetime.now()
    rows: list[dict[str, Any]] = [
        {"engine": "arrow", "check": "schema_version", "column": None, "rule": f"manifest schema = {profile.schema_version}"},
        {"engine": "arrow", "check": "column_types", "column": None,
         "rule": "columns, order and Arrow types equal the profile's output schema: "
                 + ", ".join(f"{f.name} {f.type}" for f in profile.output_schema())},
        {"engine": "arrow", "check": "key_version_accepted", "column": None,
         "rule": f"linkage key version in {list(settings.accepted_key_versions)}"},
        {"engine": "arrow", "check": "encoding_scheme", "column": None,
         "rule": f"manifest encoding_scheme = {ENCODING_SCHEME} (persons extracts)"},
        {"engine": "arrow", "check": "bloom_parameters", "column": None, "rule": f"bloom_bits = {settings.bloom_bytes * 8}"},
        {"engine": "arrow", "check": "row_count", "column": None, "rule": "rows = manifest row_count"},
        {"engine": "duckdb", "check": "unique", "column": "source_record_id", "rule": "no repeated value in the file"},
    ]
    manifest = SimpleNamespace(linkage_key_version=settings.accepted_key_versions[0])
    for exp, check, col, max_share in _expectations(profile, manifest, settings, now):  # type: ignore[arg-type]
        kwargs = {k: v for k, v in exp.configuration.kwargs.items() if v is not None}
        rows.append({"engine": "great_expectations", "check": check, "column": col,
                     "rule": f"{type(exp).__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
                             + (f", at most {max_share:.0%} unexpected" if max_share else "")})
    for col in profile.output_schema().names:
        if col in BLOOM_COLUMNS:
            rows.append({"engine": "arrow", "check": "bloom_length", "column": col,
                         "rule": f"every value {settings.bloom_bytes} bytes"})
        elif col in ENCODING_COLUMNS:
            rows.append({"engine": "arrow", "check": "token_format", "column": col, "rule": f"matches {TOKEN_RE}"})
        if col in DEFAULT_MAX_NULL:
            rows.append({"engine": "arrow", "check": "null_rate", "column": col,
                         "rule": f"at most {DEFAULT_MAX_NULL[col]:.0%} null (judged from {settings.min_rows_for_rates} rows)"})
    return rows


def id_columns(profile: ExtractProfile) -> list[str]:
    """The columns of pseudonymous record ids (the kit's keyed ids, ``RECORD_ID_RE``)."""
    names = profile.output_schema(previous_ids=True).names
    refs = ("source_record_id", "source_record_id_prev", "person_record_id",
            profile.group_ref["name"] if profile.group_ref else None)
    return [r for r in refs if r and r in names]


def keyed_spec(profile: ExtractProfile, settings: ValidationSettings = ValidationSettings()) -> dict[str, Any]:
    """The columns whose values the kit computes with the linkage secret, with their exact width: the detector
    tests them against text (:func:`landing.detector.scan_batches`)."""
    from landing.detector import keyed_columns

    names = profile.output_schema(previous_ids=True).names
    return keyed_columns(names, id_columns=id_columns(profile), bloom_columns=BLOOM_COLUMNS,
                         token_columns=[c for c in ENCODING_COLUMNS if c not in BLOOM_COLUMNS],
                         bloom_bytes=settings.bloom_bytes)


def _to_pandas(batch: pa.RecordBatch) -> Any:
    """Arrow → pandas for GX, without the encoding columns: dates as datetime64 (GX cannot compare object dates)."""
    table = pa.Table.from_batches([batch])
    table = table.select([c for c in table.column_names if c not in ENCODING_COLUMNS])
    return table.to_pandas(date_as_object=False)


def _encoding_checks(batch: pa.RecordBatch, settings: ValidationSettings, totals: dict[tuple[str, str], list[int]]) -> None:
    """Format, Bloom length and null counts of the encoding columns, in Arrow.

    These checks are mechanical and run on ~20 columns of a million rows; Great Expectations over
    pandas spent most of ingestion on them (it re-filters the whole frame per expectation).
    """
    import pyarrow.compute as pc

    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if name not in ENCODING_COLUMNS:
            continue
        valid = col.filter(pc.is_valid(col))
        n, nulls = len(col), col.null_count
        if name in BLOOM_COLUMNS:
            bad = int(pc.sum(pc.not_equal(pc.binary_length(valid), settings.bloom_bytes)).as_py() or 0)
            key = ("bloom_length", name)
        else:
            bad = len(valid) - int(pc.sum(pc.match_substring_regex(valid, TOKEN_RE)).as_py() or 0)
            key = ("token_format", name)
        t = totals.setdefault(key, [0, 0])
        t[0] += len(valid)
        t[1] += bad
        if name in DEFAULT_MAX_NULL:
            t = totals.setdefault(("null_rate", name), [0, 0])
            t[0] += n
            t[1] += nulls


def _totals_from_stats(stats: dict[str, list[int]]) -> dict[tuple[str, str], list[int]]:
    """The Arrow encoding checks' totals from the detector's counts of the same pass (:func:`keyed_spec`)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for name, (non_null, ill, nulls, rows) in stats.items():
        if name not in ENCODING_COLUMNS:
            continue  # record ids: GX checks their format (id_format)
        totals[("bloom_length" if name in BLOOM_COLUMNS else "token_format", name)] = [non_null, ill]
        if name in DEFAULT_MAX_NULL:
            totals[("null_rate", name)] = [rows, nulls]
    return totals


def validate_payload(payload: Path, profile: ExtractProfile, manifest: Manifest, *, now: datetime,
                     settings: ValidationSettings = ValidationSettings(), file_name: str = "",
                     encoding_stats: dict[str, list[int]] | None = None) -> ValidationReport:
    """Validate a decrypted payload against its partner schema. Never raises on bad data: reports it.

    ``encoding_stats``: the detector's counts of the encoding columns from its own pass over this payload
    (``scan_batches(keyed_stats=...)``); given, the encoding columns are not read again here.
    """
    report = ValidationReport(file_name or Path(payload).name, manifest.envelope_id, manifest.partner,
                              manifest.extract_type, manifest.period, manifest.schema_version, manifest.row_count)
    pf = pq.ParquetFile(payload)
    previous = manifest.extra.get("previous_key_version")
    expected = profile.output_schema(previous_ids=bool(previous))

    # 1. schema version and column types (Arrow schema equality: exact, including order)
    ok_version = manifest.schema_version == profile.schema_version
    report.checks.append(CheckOutcome("schema_version", None, "error", ok_version, 1, int(not ok_version),
                                      "" if ok_version else f"manifest says {manifest.schema_version}, "
                                      f"warehouse expects {profile.schema_version}"))
    actual = pf.schema_arrow
    diff = _schema_diff(expected, actual)
    report.checks.append(CheckOutcome("column_types", None, "error", not diff, len(expected), len(diff), "; ".join(diff)))
    for label, version in (("", manifest.linkage_key_version), ("previous ", previous)):
        if label and version is None:
            continue
        ok_key = version in settings.accepted_key_versions
        report.checks.append(CheckOutcome("key_version_accepted", None, "error", ok_key, 1, int(not ok_key),
                                          "" if ok_key else f"{label}linkage key version {str(version)[:20]} is not "
                                          f"accepted (accepted: {', '.join(settings.accepted_key_versions)})"))
    scheme = manifest.extra.get("encoding_scheme")
    if scheme is not None and scheme != ENCODING_SCHEME and any(c in ENCODING_COLUMNS for c in actual.names):
        report.checks.append(CheckOutcome("encoding_scheme", None, "error", False, 1, 1,
                                          f"encoded with {str(scheme)[:40]}, the warehouse links {ENCODING_SCHEME}: "
                                          "install the current partner kit and encode this period again"))
        diff = diff or ["encoding scheme"]
    bloom_bits = manifest.extra.get("bloom_bits")
    if bloom_bits is not None and bloom_bits != settings.bloom_bytes * 8:
        report.checks.append(CheckOutcome("bloom_parameters", None, "error", False, 1, 1,
                                          f"manifest bloom_bits {bloom_bits}, warehouse expects {settings.bloom_bytes * 8}"))
    if diff or not ok_version:
        return report  # value checks against the wrong schema would only add noise

    # 2. whole-file checks: row count and uniqueness
    rows = pf.metadata.num_rows
    report.checks.append(CheckOutcome("row_count", None, "error", rows == manifest.row_count, rows,
                                      abs(rows - manifest.row_count),
                                      "" if rows == manifest.row_count else f"{rows} rows, manifest says {manifest.row_count}"))
    dupes = _duplicate_count(payload)
    report.checks.append(CheckOutcome("unique", "source_record_id", "error", dupes == 0, rows, dupes,
                                      "" if dupes == 0 else f"{dupes} rows repeat a source_record_id"))

    # 3. GX suite, chunk by chunk
    gx, context = _gx()
    specs = _expectations(profile, manifest, settings, now)
    name = f"{manifest.partner}.{manifest.extract_type}.{uuid.uuid4().hex[:8]}"
    suite = gx.ExpectationSuite(name=name)
    for exp, *_ in specs:
        suite.add_expectation(exp)
    suite = context.suites.add(suite)
    batch_def = (context.data_sources.add_pandas(name=name).add_dataframe_asset(name="payload")
                 .add_batch_definition_whole_dataframe("chunk"))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    totals: dict[int, list[int]] = {i: [0, 0, 0] for i in range(len(specs))}  # element, unexpected, unevaluated
    ids = [str(e.id) for e in suite.expectations]
    arrow_totals: dict[tuple[str, str], list[int]] = {}
    reuse = encoding_stats is not None and all(c in encoding_stats for c in expected.names if c in ENCODING_COLUMNS)
    columns = [c for c in pf.schema_arrow.names if c not in ENCODING_COLUMNS] if reuse else None
    if reuse:
        arrow_totals = _totals_from_stats(encoding_stats)
    try:
        for batch in pf.iter_batches(batch_size=settings.chunk_rows, columns=columns):
            if not reuse:
                _encoding_checks(batch, settings, arrow_totals)
            res = vd.run(batch_parameters={"dataframe": _to_pandas(batch)}, result_format=_RESULT_FORMAT)
            for i, r in enumerate(_match_results(res.results, ids)):
                rr = r.result or {}
                if "element_count" not in rr and "observed_value" not in rr:
                    totals[i][2] += 1
                    continue
                if "element_count" in rr:
                    totals[i][0] += rr["element_count"]
                    totals[i][1] += rr.get("unexpected_count") or 0
                elif not r.success:
                    totals[i][0] += 1
                    totals[i][1] += 1
    finally:
        context.validation_definitions.delete(name)
        context.suites.delete(name)
        context.data_sources.delete(name)
    results = [(check, col, max_share, *totals[i]) for i, (_, check, col, max_share) in enumerate(specs)]
    results += [(check, col, DEFAULT_MAX_NULL[col] if check == "null_rate" else 0.0, e, u, 0)
                for (check, col), (e, u) in arrow_totals.items()]
    for check, col, max_share, element, unexpected, unevaluated in results:
        if unevaluated:
            report.checks.append(CheckOutcome(check, col, "error", False, element, unexpected,
                                              "Great Expectations could not evaluate this check"))
            continue
        share = unexpected / element if element else 0.0
        passed = share <= max_share if max_share else unexpected == 0
        detail = "" if passed else (f"{share:.1%} null, ceiling {max_share:.0%}" if check == "null_rate"
                                    else f"{unexpected:,} of {element:,} values unexpected")
        if check == "null_rate" and not passed and element < settings.min_rows_for_rates:
            passed, detail = True, f"{share:.1%} null in {element} rows: too few rows to judge the ceiling"
        report.checks.append(CheckOutcome(check, col, "error", passed, element, unexpected, detail))
    return report


def _match_results(results: list[Any], ids: list[str]) -> list[Any]:
    """GX returns results ordered by column, not by suite order: match them back by expectation id."""
    by_id = {str(r.expectation_config.id): r for r in results}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RuntimeError(f"Great Expectations returned no result for {len(missing)} expectations")
    return [by_id[i] for i in ids]


def _schema_diff(expected: pa.Schema, actual: pa.Schema) -> list[str]:
    diff = []
    exp_cols, act_cols = dict(zip(expected.names, expected.types, strict=True)), dict(zip(actual.names, actual.types, strict=True))
    missing = [c for c in exp_cols if c not in act_cols]
    extra = [c for c in act_cols if c not in exp_cols]
    if missing:
        diff.append(f"missing columns {missing}")
    if extra:
        diff.append(f"unexpected columns {extra}")
    for c, t in exp_cols.items():
        if c in act_cols and not act_cols[c].equals(t):
            diff.append(f"column {c} is {act_cols[c]}, expected {t}")
    return diff


def _duplicate_count(payload: Path) -> int:
    import duckdb

    path = str(payload).replace("'", "''")
    with duckdb.connect() as con:
        return con.execute(f"select count(*) - count(distinct source_record_id) from read_parquet('{path}')").fetchone()[0]
