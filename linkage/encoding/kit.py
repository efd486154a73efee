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
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.encoding.encode import Encoder
from linkage.encoding.normalise import (
    NormaliseError,
    normalise_address_array,
    normalise_given,
    normalise_sex,
    normalise_ssn,
    normalise_suffix,
    normalise_surname,
    normalise_zip,
    parse_date,
    split_formatted_name,
)

__all__ = ["EncodeSummary", "ExtractProfile", "ProfileError", "SchemaError", "encode_extract", "load_profile",
           "partners", "seal_encoded"]

IDENTIFIER_ROLES = ("first_name", "middle_name", "last_name", "suffix", "formatted_name", "dob", "sex", "ssn",
                    "address", "zip")
CONTENT_TYPES = {"string": pa.string(), "int": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("ms")}  # Parquet has no seconds unit


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


def _per_unique(arr: pa.Array, fn: Callable[[Any], Any]) -> tuple[list[Any], pa.Array]:
    """Apply ``fn`` once per distinct value of ``arr``: returns (outputs per distinct value, row indices).

    The column-wise fast path: a million rows of names hold a few thousand distinct values.
    """
    d = pc.dictionary_encode(arr)
    return [fn(v) for v in d.dictionary.to_pylist()], d.indices


def _take(values: list[Any], idx: pa.Array, typ: pa.DataType) -> pa.Array:
    return pc.take(pa.array(values, type=typ), idx)


def _reject_where(errors: list[Any], idx: pa.Array, fieldname: str, reject: Callable[..., None]) -> None:
    """Record a reject for each row whose distinct value produced a NormaliseError."""
    if not any(isinstance(e, NormaliseError) for e in errors):
        return
    bad = pc.take(pa.array([isinstance(e, NormaliseError) for e in errors]), idx)
    for i in pc.indices_nonzero(bad).to_pylist():
        e = errors[idx[i].as_py()]
        reject(i, fieldname, e.rule, str(e))


def _encode_batch(batch: pa.RecordBatch, profile: ExtractProfile, enc: Encoder, norm: _Normalisers,
                  rejects: _Rejects, row_base: int, schema: pa.Schema) -> pa.Table:
    n = batch.num_rows
    keep = [True] * n
    out: dict[str, pa.Array] = {}

    def reject(i: int, fieldname: str, rule: str, message: str) -> None:
        keep[i] = False
        rejects.add(row_base + i, fieldname, rule, message)

    def ids(spec: dict[str, Any], label: str) -> pa.Array:
        cols = [pc.utf8_trim_whitespace(batch.column(c)) for c in spec["columns"]]
        blank = pc.equal(cols[0], "")
        for c in cols[1:]:
            blank = pc.or_(blank, pc.equal(c, ""))
        for i in pc.indices_nonzero(blank).to_pylist():
            reject(i, "+".join(spec["columns"]), "record_id_missing", f"{label} is blank")
        joined = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "|")
        ns = spec["namespace"]
        return pa.array([enc.record_id(ns, v) if v else None for v in joined.to_pylist()], pa.string())

    out["source_record_id"] = ids(profile.record_id, "record id")
    if profile.person_ref:
        out["person_record_id"] = ids(profile.person_ref, "person reference")
    if profile.group_ref:
        out[profile.group_ref["name"]] = ids(profile.group_ref, "group reference")
    out["linkage_key_version"] = pa.array([enc.key_version] * n, pa.string())

    if profile.kind == "persons":
        _encode_identifiers(batch, profile, enc, norm, reject, out, n)

    for c, parser in norm.content.items():
        typ = schema.field(c).type
        vals, idx = _per_unique(batch.column(c), parser)
        _reject_where(vals, idx, c, reject)
        out[c] = _take([None if isinstance(v, NormaliseError) else v for v in vals], idx, typ)

    table = pa.table({f.name: out[f.name] for f in schema}, schema=schema)
    if all(keep):
        return table
    return table.filter(pa.array(keep))


def _encode_identifiers(batch: pa.RecordBatch, profile: ExtractProfile, enc: Encoder, norm: _Normalisers,
                        reject: Callable[[int, str, str, str], None], out: dict[str, pa.Array], n: int) -> None:
    ids = profile.identifiers
    blank = pa.array([""] * n, pa.string())

    def column(role: str) -> pa.Array:
        return batch.column(ids[role]) if ids.get(role) else blank

    s, b = pa.string(), pa.binary()

    def first_feats(raw: str) -> tuple[Any, ...]:
        f = norm.given(raw)
        return (f, enc.token("name", f), enc.phonetic(f), enc.token("name_init", f[0]) if f else None,
                enc.bloom("name", f))

    def last_feats(raw: str) -> tuple[Any, ...]:
        sn = norm.surname(raw)
        if sn is None:
            return (None,) * 7
        two = len(sn.parts) > 1
        return (sn, enc.token("name", sn.compact), enc.phonetic(sn.compact),
                enc.token("name", sn.parts[0]) if two else None, enc.token("name", sn.parts[-1]) if two else None,
                enc.bloom("name", sn.compact), sn.suffix)

    def middle_feat(raw: str) -> str | None:
        m = norm.given(raw)
        return enc.token("name_init", m[0]) if m else None

    if ids.get("formatted_name"):
        # one distinct formatted name → every name feature at once
        def formatted(raw: str) -> tuple[Any, ...]:
            last, first, middle = norm.formatted(raw)
            return first_feats(first or ""), last_feats(last or ""), middle_feat(middle or "")

        vals, idx = _per_unique(column("formatted_name"), formatted)
        fvals, lvals, mvals = [v[0] for v in vals], [v[1] for v in vals], [v[2] for v in vals]
        fidx = lidx = midx = idx
    else:
        fvals, fidx = _per_unique(column("first_name"), first_feats)
        lvals, lidx = _per_unique(column("last_name"), last_feats)
        mvals, midx = _per_unique(column("middle_name"), middle_feat)

    no_first = _take([v[0] is None for v in fvals], fidx, pa.bool_())
    no_last = _take([v[0] is None for v in lvals], lidx, pa.bool_())
    name_field = ids.get("formatted_name") or f"{ids.get('first_name')}+{ids.get('last_name')}"
    for i in pc.indices_nonzero(pc.and_(no_first, no_last)).to_pylist():
        reject(i, name_field, "name_missing", "neither first nor last name present: record cannot be linked")

    for k, (col, typ) in enumerate([("enc_fn_full", s), ("enc_fn_phon", s), ("enc_fn_init", s), ("enc_fn_bf", b)], 1):
        out[col] = _take([v[k] for v in fvals], fidx, typ)
    for k, (col, typ) in enumerate([("enc_ln_full", s), ("enc_ln_phon", s), ("enc_ln_part1", s),
                                    ("enc_ln_part2", s), ("enc_ln_bf", b)], 1):
        out[col] = _take([v[k] for v in lvals], lidx, typ)
    out["enc_mn_init"] = _take(mvals, midx, s)

    # suffix: its own column when the profile has one, else the one found inside the last name
    sfx_own, sidx = _per_unique(column("suffix"), norm.suffix)
    own = _take(sfx_own, sidx, s)
    inside = _take([v[6] for v in lvals], lidx, s)
    suffix = pc.coalesce(own, inside)
    svals, sidx = _per_unique(suffix, lambda v: enc.token("suffix", v))
    out["enc_sfx"] = _take(svals, sidx, s)

    dob_col = ids.get("dob")

    def dob_feats(raw: str) -> Any:
        d = norm.dob(raw)
        if isinstance(d, NormaliseError):
            return NormaliseError(f"dob_{d.rule}", str(d))
        return (*enc.dob_features(d), d.year if d else None)

    dvals, didx = _per_unique(column("dob"), dob_feats)
    _reject_where(dvals, didx, dob_col or "dob", reject)
    dvals = [(None,) * 5 if isinstance(v, NormaliseError) else v for v in dvals]
    for k, col in enumerate(["enc_dob_full", "enc_dob_swap", "enc_dob_ym", "enc_dob_y"]):
        out[col] = _take([v[k] for v in dvals], didx, s)
    out["birth_year"] = _take([v[4] for v in dvals], didx, pa.int16())

    def simple(role: str, domain: str, fn: Callable[[Any], Any]) -> pa.Array:
        vals, idx = _per_unique(column(role), lambda v: enc.token(domain, fn(v)))
        return _take(vals, idx, s)

    out["enc_sex"] = simple("sex", "sex", norm.sex)
    ssn_vals, ssn_idx = _per_unique(column("ssn"), norm.ssn)
    out["enc_ssn_full"] = _take([enc.token("ssn", v) for v in ssn_vals], ssn_idx, s)
    out["enc_ssn_last4"] = _take([enc.token("ssn4", v[-4:]) if v else None for v in ssn_vals], ssn_idx, s)
    addresses = normalise_address_array(column("address"))
    avals, aidx = _per_unique(addresses, lambda v: enc.token("addr", v))
    out["enc_addr"] = _take(avals, aidx, s)
    out["enc_zip"] = simple("zip", "zip", norm.zip)


def seal_encoded(payload: Path, *, partner: str, extract_type: str, period: str, keyring: Any, out_dir: Path,
                 params: Any = None) -> Path:
    """Sign and encrypt an encoded payload into an envelope; the manifest records the encoding parameters.

    Row count and linkage key version are read from the payload itself, so the manifest cannot disagree with it.

    Raises:
        SchemaError: the payload mixes linkage key versions (re-encode under one).
    """
    from governance.transfer import seal_envelope
    from linkage.encoding.encode import EncodingParams

    params = params or EncodingParams()
    meta = pq.ParquetFile(payload).metadata
    versions = set(pq.read_table(payload, columns=["linkage_key_version"]).column(0).unique().to_pylist())
    if len(versions) > 1:
        raise SchemaError(f"{payload}: rows encoded under several linkage key versions {sorted(versions)}; re-encode")
    return seal_envelope(
        payload, partner=partner, extract_type=extract_type, period=period,
        schema_version=load_profile(partner, extract_type).schema_version, row_count=meta.num_rows,
        linkage_key_version=versions.pop() if versions else keyring.current_linkage_version(), keyring=keyring,
        out_dir=out_dir, extra={"bloom_bits": params.bloom_bits, "bloom_k": params.bloom_k, "kit": "vpdc-ids 0.1.0"})
