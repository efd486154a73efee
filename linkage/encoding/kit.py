"""The partner kit: turn a native extract into an encoded payload, at the partner's own site.

``encode_extract`` streams a CSV through its partner profile (``profiles/<partner>.json``):

* identifier columns are normalised and encoded (:mod:`linkage.encoding.encode`) and never copied;
* record ids (MRN, student id, …) become keyed pseudonymous ids, stable across extracts;
* content columns are copied only if the profile allow-lists them, typed as the profile says;
* the date of birth leaves only as birth year (content) and as encodings;
* a file with a column the profile does not know is refused whole (a partner adding a column of names
  must not leak it), and rows that cannot be encoded go to a rejects file (row number, field, rule;
  never the value).

Output is written to temporary files and renamed at the end, so a crash leaves no partial output.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.encoding.encode import Encoder
from linkage.encoding.normalise import (
    NormaliseError,
    normalise_address,
    normalise_given,
    normalise_sex,
    normalise_ssn,
    normalise_suffix,
    normalise_surname,
    normalise_zip,
    parse_date,
    split_formatted_name,
)

__all__ = ["EncodeSummary", "ExtractProfile", "ProfileError", "SchemaError", "encode_extract", "load_profile", "partners"]

IDENTIFIER_ROLES = ("first_name", "middle_name", "last_name", "suffix", "formatted_name", "dob", "sex", "ssn",
                    "address", "zip")
CONTENT_TYPES = {"string": pa.string(), "int": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("s")}


class ProfileError(Exception):
    """A profile is missing or malformed."""


class SchemaError(Exception):
    """The input file does not have the columns its profile expects. Names the file and the columns."""


@dataclass(frozen=True)
class ExtractProfile:
    partner: str
    extract_type: str
    kind: str  # "persons" or "events"
    file: str
    delimiter: str
    schema_version: str
    record_id: dict[str, Any]
    content: dict[str, dict[str, Any]]
    identifiers: dict[str, Any] = field(default_factory=dict)
    person_ref: dict[str, Any] | None = None
    group_ref: dict[str, Any] | None = None

    def expected_columns(self) -> set[str]:
        cols = set(self.record_id["columns"]) | set(self.content)
        for ref in (self.person_ref, self.group_ref):
            if ref:
                cols |= set(ref["columns"])
        cols |= {v for k, v in self.identifiers.items() if k in IDENTIFIER_ROLES and v}
        return cols

    def output_schema(self) -> pa.Schema:
        """The payload's columns, in order. The warehouse validates envelopes against this."""
        from linkage.encoding.encode import BLOOM_COLUMNS, ENCODING_COLUMNS

        fields = [pa.field("source_record_id", pa.string(), nullable=False)]
        if self.person_ref:
            fields.append(pa.field("person_record_id", pa.string(), nullable=False))
        if self.group_ref:
            fields.append(pa.field(self.group_ref["name"], pa.string()))
        fields.append(pa.field("linkage_key_version", pa.string(), nullable=False))
        if self.kind == "persons":
            for col in ENCODING_COLUMNS:
                fields.append(pa.field(col, pa.binary() if col in BLOOM_COLUMNS else pa.string()))
            fields.append(pa.field("birth_year", pa.int16()))
        for col, spec in self.content.items():
            fields.append(pa.field(col, CONTENT_TYPES[spec["type"]]))
        return pa.schema(fields)


def partners() -> list[str]:
    """Partners with a shipped profile."""
    return sorted(p.name.removesuffix(".json") for p in resources.files("linkage.encoding.profiles").iterdir()
                  if p.name.endswith(".json"))


def load_profile(partner: str, extract_type: str) -> ExtractProfile:
    try:
        raw = json.loads(resources.files("linkage.encoding.profiles").joinpath(f"{partner}.json").read_text())
    except FileNotFoundError:
        raise ProfileError(f"no profile for partner {partner!r}; known partners: {', '.join(partners())}") from None
    ex = raw["extracts"].get(extract_type)
    if ex is None:
        raise ProfileError(f"partner {partner!r} has no extract {extract_type!r}; known: {', '.join(raw['extracts'])}")
    for col, spec in ex.get("content", {}).items():
        if spec.get("type") not in CONTENT_TYPES:
            raise ProfileError(f"{partner}.{extract_type}: content column {col} has unknown type {spec.get('type')!r}")
    return ExtractProfile(
        partner=partner, extract_type=extract_type, kind=ex["kind"], file=ex["file"],
        delimiter=ex.get("delimiter", ","), schema_version=ex["schema_version"], record_id=ex["record_id"],
        content=ex.get("content", {}), identifiers=ex.get("identifiers", {}), person_ref=ex.get("person_ref"),
        group_ref=ex.get("group_ref"),
    )


def extract_types(partner: str) -> list[str]:
    raw = json.loads(resources.files("linkage.encoding.profiles").joinpath(f"{partner}.json").read_text())
    return list(raw["extracts"])


@dataclass
class EncodeSummary:
    """What an encoding run did. Counts only: safe to print, log and put in a manifest."""

    partner: str
    extract_type: str
    schema_version: str
    key_version: str
    rows_read: int = 0
    rows_encoded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rejected": dict(self.rejected), "rows_rejected": sum(self.rejected.values())}


class _Rejects:
    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str, str]] = []

    def add(self, row: int, fieldname: str, rule: str, message: str) -> None:
        self.rows.append((row, fieldname, rule, message))


def _cached(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[Any, Any] = {}

    def wrapper(v: Any) -> Any:
        try:
            return cache[v]
        except KeyError:
            try:
                out = fn(v)
            except NormaliseError as exc:
                out = exc
            cache[v] = out
            return out

    return wrapper


def encode_extract(
    profile: ExtractProfile,
    input_path: Path,
    out_path: Path,
    encoder: Encoder,
    *,
    today: date,
    rejects_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    block_size: int = 8 << 20,
) -> EncodeSummary:
    """Encode one native extract file into a Parquet payload plus a rejects CSV.

    Args:
        profile: the partner's profile for this extract type.
        input_path: the native CSV.
        out_path: the Parquet payload to write (atomically).
        encoder: holds the linkage secret version.
        today: the clock, passed in: dates of birth after it are rejected.
        rejects_path: defaults to ``<out_path>.rejects.csv``.
        progress: called with the number of rows after each block.

    Raises:
        SchemaError: missing or unexpected columns (nothing is written).
    """
    t0 = time.perf_counter()
    input_path, out_path = Path(input_path), Path(out_path)
    rejects_path = Path(rejects_path) if rejects_path else out_path.with_name(out_path.stem + ".rejects.csv")
    summary = EncodeSummary(profile.partner, profile.extract_type, profile.schema_version, encoder.key_version)
    if not input_path.is_file():
        raise SchemaError(f"{input_path}: no such file")
    if input_path.stat().st_size == 0:
        raise SchemaError(f"{input_path}: file is empty (0 bytes); expected a header row")
    try:
        reader = pacsv.open_csv(
            input_path,
            read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in _header(input_path, profile.delimiter)},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{input_path}: cannot be read as {profile.delimiter!r}-delimited CSV: {exc}") from None
    columns = set(reader.schema.names)
    expected = profile.expected_columns()
    missing, unexpected = sorted(expected - columns), sorted(columns - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected} (not in profile {profile.schema_version}; "
                         "the kit only sends allow-listed columns)")
        raise SchemaError(f"{input_path}: " + "; ".join(parts))

    schema = profile.output_schema()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_name(f".{out_path.name}.tmp")
    rejects = _Rejects()
    row_base = 2  # line 1 is the header
    norm = _Normalisers(profile, today)
    try:
        with pq.ParquetWriter(tmp_out, schema, compression="zstd") as writer:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise SchemaError(f"{input_path}: malformed CSV after line {row_base - 1}: {exc}") from None
                table = _encode_batch(batch, profile, encoder, norm, rejects, row_base, schema)
                writer.write_table(table)
                summary.rows_read += batch.num_rows
                summary.rows_encoded += table.num_rows
                row_base += batch.num_rows
                if progress:
                    progress(batch.num_rows)
        _write_rejects(rejects_path, rejects.rows)
        os.replace(tmp_out, out_path)
    finally:
        tmp_out.unlink(missing_ok=True)
    summary.rejected = Counter(r[2] for r in rejects.rows)
    summary.seconds = time.perf_counter() - t0
    summary.output, summary.rejects = str(out_path), str(rejects_path)
    return summary


def _header(path: Path, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f, delimiter=delimiter), [])


def _write_rejects(path: Path, rows: list[tuple[int, str, str, str]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "field", "rule", "message"])
        w.writerows(sorted(rows))
    os.replace(tmp, path)


class _Normalisers:
    """Per-run caches of every normaliser, keyed by the raw value."""

    def __init__(self, profile: ExtractProfile, today: date):
        ids = profile.identifiers
        sex_map = ids.get("sex_map", {})
        dob_fmt = ids.get("dob_format", "%Y-%m-%d")
        self.given = _cached(normalise_given)
        self.surname = _cached(normalise_surname)
        self.suffix = _cached(normalise_suffix)
        self.formatted = _cached(split_formatted_name)
        self.dob = _cached(lambda v: parse_date(v, dob_fmt, latest=today))
        self.sex = _cached(lambda v: normalise_sex(v, sex_map))
        self.ssn = _cached(normalise_ssn)
        self.zip = _cached(normalise_zip)
        self.address = _cached(normalise_address)
        self.content: dict[str, Callable[[Any], Any]] = {}
        for col, spec in profile.content.items():
            self.content[col] = _cached(_content_parser(spec))


def _content_parser(spec: dict[str, Any]) -> Callable[[str], Any]:
    typ, fmt, required = spec["type"], spec.get("format"), spec.get("required", False)

    def parse(v: str) -> Any:
        v = v.strip()
        if not v:
            if required:
                raise NormaliseError("required", "required value is blank")
            return None
        if typ == "string":
            return v
        if typ == "int":
            try:
                return int(v)
            except ValueError:
                raise NormaliseError("int_format", "not a whole number") from None
        try:
            parsed = datetime.strptime(v, fmt or ("%Y-%m-%d" if typ == "date" else "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            raise NormaliseError("date_format", f"not a {typ} in format {fmt}") from None
        return parsed.date() if typ == "date" else parsed

    return parse


def _encode_batch(batch: pa.RecordBatch, profile: ExtractProfile, enc: Encoder, norm: _Normalisers,
                  rejects: _Rejects, row_base: int, schema: pa.Schema) -> pa.Table:
    n = batch.num_rows
    col = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
    keep = [True] * n
    out: dict[str, list[Any]] = {}

    def reject(i: int, fieldname: str, rule: str, message: str) -> None:
        if keep[i]:
            keep[i] = False
        rejects.add(row_base + i, fieldname, rule, message)

    def ids(spec: dict[str, Any], label: str) -> list[str | None]:
        cols = [col[c] for c in spec["columns"]]
        res: list[str | None] = []
        for i in range(n):
            parts = [c[i].strip() for c in cols]
            if not all(parts):
                reject(i, "+".join(spec["columns"]), "record_id_missing", f"{label} is blank")
                res.append(None)
            else:
                res.append(enc.record_id(spec["namespace"], "|".join(parts)))
        return res

    out["source_record_id"] = ids(profile.record_id, "record id")
    if profile.person_ref:
        out["person_record_id"] = ids(profile.person_ref, "person reference")
    if profile.group_ref:
        out[profile.group_ref["name"]] = ids(profile.group_ref, "group reference")
    out["linkage_key_version"] = [enc.key_version] * n

    if profile.kind == "persons":
        _encode_identifiers(col, profile, enc, norm, reject, out, n)

    for c, parser in norm.content.items():
        vals = []
        for i, raw in enumerate(col[c]):
            v = parser(raw)
            if isinstance(v, NormaliseError):
                reject(i, c, v.rule, str(v))
                v = None
            vals.append(v)
        out[c] = vals

    table = pa.table({f.name: pa.array(out[f.name], type=f.type) for f in schema}, schema=schema)
    if all(keep):
        return table
    return table.filter(pa.array(keep))


def _encode_identifiers(col: dict[str, list[str]], profile: ExtractProfile, enc: Encoder, norm: _Normalisers,
                        reject: Callable[[int, str, str, str], None], out: dict[str, list[Any]], n: int) -> None:
    ids = profile.identifiers
    blank = [""] * n
    if ids.get("formatted_name"):
        split = [norm.formatted(v) for v in col[ids["formatted_name"]]]
        raw_last = [s[0] or "" for s in split]
        raw_first = [s[1] or "" for s in split]
        raw_middle = [s[2] or "" for s in split]
    else:
        raw_first = col[ids["first_name"]] if ids.get("first_name") else blank
        raw_last = col[ids["last_name"]] if ids.get("last_name") else blank
        raw_middle = col[ids["middle_name"]] if ids.get("middle_name") else blank
    raw_suffix = col[ids["suffix"]] if ids.get("suffix") else blank

    first = [norm.given(v) for v in raw_first]
    middle = [norm.given(v) for v in raw_middle]
    last = [norm.surname(v) for v in raw_last]
    name_field = ids.get("formatted_name") or f"{ids.get('first_name')}+{ids.get('last_name')}"
    for i in range(n):
        if first[i] is None and last[i] is None:
            reject(i, name_field, "name_missing", "neither first nor last name present: record cannot be linked")

    out["enc_fn_full"] = [enc.token("name", f) for f in first]
    out["enc_fn_phon"] = [enc.phonetic(f) for f in first]
    out["enc_fn_init"] = [enc.token("name_init", f[0]) if f else None for f in first]
    out["enc_fn_bf"] = [enc.bloom("name", f) for f in first]
    out["enc_ln_full"] = [enc.token("name", s.compact) if s else None for s in last]
    out["enc_ln_phon"] = [enc.phonetic(s.compact) if s else None for s in last]
    out["enc_ln_part1"] = [enc.token("name", s.parts[0]) if s and len(s.parts) > 1 else None for s in last]
    out["enc_ln_part2"] = [enc.token("name", s.parts[-1]) if s and len(s.parts) > 1 else None for s in last]
    out["enc_ln_bf"] = [enc.bloom("name", s.compact) if s else None for s in last]
    out["enc_mn_init"] = [enc.token("name_init", m[0]) if m else None for m in middle]
    suffixes = [norm.suffix(r) or (s.suffix if s else None) for r, s in zip(raw_suffix, last, strict=True)]
    out["enc_sfx"] = [enc.token("suffix", s) for s in suffixes]

    dobs: list[date | None] = []
    dob_col = ids.get("dob")
    for i, raw in enumerate(col[dob_col] if dob_col else blank):
        d = norm.dob(raw)
        if isinstance(d, NormaliseError):
            reject(i, dob_col or "dob", f"dob_{d.rule}", str(d))
            d = None
        dobs.append(d)
    feats = [enc.dob_features(d) for d in dobs]
    out["enc_dob_full"] = [f[0] for f in feats]
    out["enc_dob_swap"] = [f[1] for f in feats]
    out["enc_dob_ym"] = [f[2] for f in feats]
    out["enc_dob_y"] = [f[3] for f in feats]
    out["birth_year"] = [d.year if d else None for d in dobs]

    out["enc_sex"] = [enc.token("sex", norm.sex(v)) for v in (col[ids["sex"]] if ids.get("sex") else blank)]
    ssns = [norm.ssn(v) for v in (col[ids["ssn"]] if ids.get("ssn") else blank)]
    out["enc_ssn_full"] = [enc.token("ssn", s) for s in ssns]
    out["enc_ssn_last4"] = [enc.token("ssn4", s[-4:]) if s else None for s in ssns]
    out["enc_addr"] = [enc.token("addr", norm.address(v)) for v in (col[ids["address"]] if ids.get("address") else blank)]
    out["enc_zip"] = [enc.token("zip", norm.zip(v)) for v in (col[ids["zip"]] if ids.get("zip") else blank)]
