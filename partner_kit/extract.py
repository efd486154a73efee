"""The partner kit: turn a native extract into an encoded payload, at the partner's own site.

``encode_extract`` streams a CSV through its partner profile (``profiles/<partner>.json``):

* identifier columns are normalised and encoded (:mod:`partner_kit.encode`) and never copied;
* record ids (MRN, student id, …) become keyed pseudonymous ids, stable across extracts;
* content columns are copied only if the profile allow-lists them, typed as the profile says;
* the date of birth leaves only as birth year (content) and as encodings; one that is no date (wrong
  shape, 30 February, in the future) is kept as missing and counted, never a reason to drop the record;
* a file with a column the profile does not know is refused whole (a partner adding a column of names
  must not leak it), and rows that cannot be encoded go to a rejects file (row number, field, rule;
  never the value).

Output is written to temporary files and renamed at the end, so a crash leaves no partial output.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from envelope.keys import PartnerKeyRing
from partner_kit.encode import ENCODING_COLUMNS, ENCODING_SCHEME, Encoder, EncodingParams
from partner_kit.geocode import AddressPoints
from partner_kit.normalise import (
    NormaliseError,
    name_words,
    normalise_address_array,
    normalise_given,
    normalise_sex,
    normalise_ssn_array,
    normalise_suffix,
    normalise_surname,
    normalise_zip_array,
    parse_date_array,
    split_formatted_name_array,
)
from partner_kit.profiles import ExtractProfile, load_profile
from workspace.files import atomic_path, atomic_writer

__all__ = ["KIT_VERSION", "EncodeSummary", "SchemaError", "encode_extract", "seal_encoded"]

#: Recorded in every manifest (``extra.kit``).
KIT_VERSION = "vpdc-partner-kit 0.11.0"  # 0.11: encoding scheme 10 (ADR 0022); 0.10: scheme 9 (ADR 0020); 0.9: scheme 8 (ADR 0019); 0.8: scheme 7 (ADR 0018); 0.7: scheme 6 (ADR 0017); 0.6: scheme 5 (ADR 0016); 0.5: scheme 4 (ADR 0015); 0.4: scheme 3 (ADR 0014); keep in step with kit/pyproject.toml

class SchemaError(Exception):
    """The input file does not have the columns its profile expects. Names the file and the columns."""


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
    #: rows kept with a value set to missing, by reason (e.g. a date of birth that is no date): counts only
    notes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rejected": dict(self.rejected), "rows_rejected": sum(self.rejected.values()),
                "notes": dict(self.notes)}


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
    address_points: AddressPoints | None = None,
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
        address_points: the site's address-points file, loaded (``partner_kit.geocode``); required when the
            profile asks for a geocoded residence tract.

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
    if profile.geocode and address_points is None:
        raise SchemaError(f"{input_path}: profile {profile.schema_version} computes {profile.geocode['column']} from "
                          f"the address: the site's reference/{profile.geocode['reference']} (address points) is "
                          "needed")
    header = _header(input_path, profile)
    try:
        # every column as bytes: text is decoded per column in the profile's encoding, so an undecodable
        # byte rejects its row (naming the column) instead of the whole file
        reader = pacsv.open_csv(
            input_path,
            read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False, column_names=header,
                                           skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.binary() for c in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{input_path}: cannot be read as {profile.delimiter!r}-delimited CSV: {_first_line(exc)}") \
            from None
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

    schema = profile.output_schema(previous_ids=encoder.previous is not None)
    rejects = _Rejects()
    row_base = 2  # line 1 is the header
    norm = _Normalisers(profile, today)
    norm.address_points = address_points
    with atomic_path(out_path) as tmp_out:
        # zstd level 1 is as small as the default level here (tokens are random) at 60% of the time, and
        # min/max statistics of tokens serve no one: kept for content columns only (a third of the write)
        stats = [f.name for f in schema if not f.name.startswith("enc_") and not f.name.endswith("record_id")]
        # and no dictionary for the near-unique columns: Parquet would build one per batch only to give
        # up on it (30 % of the write, and the file came out larger)
        dictionary = [f.name for f in schema if f.name not in _NEAR_UNIQUE]
        # encodings are pseudorandom bytes: compressing them costs time and saves nothing
        compression = {f.name: ("none" if f.name.startswith("enc_") and f.name != "enc_scheme" else "zstd")
                       for f in schema}
        with _gc_paused(), pq.ParquetWriter(tmp_out, schema, compression=compression,
                                            compression_level={c: 1 for c, v in compression.items() if v == "zstd"},
                                            write_statistics=stats, use_dictionary=dictionary) as writer:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise SchemaError(f"{input_path}: malformed CSV after line {row_base - 1}: {_first_line(exc)}") \
                        from None
                table = _encode_batch(batch, profile, encoder, norm, rejects, row_base, schema, summary.notes)
                writer.write_table(table)
                summary.rows_read += batch.num_rows
                summary.rows_encoded += table.num_rows
                row_base += batch.num_rows
                if progress:
                    progress(batch.num_rows)
        _write_rejects(rejects_path, rejects.rows)
    summary.rejected = Counter(r[2] for r in rejects.rows)
    summary.seconds = time.perf_counter() - t0
    summary.output, summary.rejects = str(out_path), str(rejects_path)
    return summary


#: encoding columns with few distinct values, worth a Parquet dictionary; every other one is near-unique (salted or
#: keyed per record: a dictionary costs time and saves nothing), as are the record ids
_FEW_VALUES = {"enc_scheme", "enc_ln_part1", "enc_ln_part2", "enc_mn_init", "enc_sfx", "enc_ssn_last4"}
_NEAR_UNIQUE = {"source_record_id", "source_record_id_prev"} | (set(ENCODING_COLUMNS) - _FEW_VALUES)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while encoding.

    Encoding allocates millions of short-lived objects (digests, strings, lists of them) and no cycles;
    each collection walks every live container for nothing (3 % of the kit's time in a sampling profile).
    The collector is restored, as it was, on the way out.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _codec(encoding: str) -> str:
    """The codec that reads a file declared in ``encoding``: UTF-8 skips a byte-order mark."""
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _header(path: Path, profile: ExtractProfile) -> list[str]:
    """The header row, decoded in the profile's encoding (a UTF-8 byte-order mark is dropped)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)  # the header row is in the first 64 KiB; a bad byte further on is a row's problem
    text = head.decode(_codec(profile.encoding), errors="replace")
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=profile.delimiter), [])
    except csv.Error as exc:
        raise SchemaError(f"{path}: the header row cannot be read: {exc}") from None
    if any("\ufffd" in h for h in header):
        raise SchemaError(f"{path}: the header row is not {profile.encoding} text; declare the file's "
                          "\"encoding\" in the profile")
    if not header or len(set(header)) != len(header):
        raise SchemaError(f"{path}: the header row is empty or names a column twice")
    return header


def _decode_columns(batch: pa.RecordBatch, encoding: str, reject: Callable[[int, str, str, str], None]) -> pa.RecordBatch:
    """Every column of ``batch`` (bytes) as text in ``encoding``; a value that does not decode rejects its row.

    UTF-8 is validated by Arrow in one pass per column; only a column with an invalid value (or a file in
    another encoding) is decoded per distinct value in Python.
    """
    codec = _codec(encoding)
    cols = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if codec == "utf-8-sig":
            try:
                cols.append(pc.cast(col, pa.string()))
                continue
            except pa.ArrowInvalid:
                codec_here = "utf-8"
        else:
            codec_here = codec
        d = pc.dictionary_encode(col)
        texts, bad = [], []
        for i, raw in enumerate(d.dictionary.to_pylist()):
            try:
                texts.append(raw.decode(codec_here))
            except UnicodeDecodeError:
                texts.append("")
                bad.append(i)
        if bad:
            for row in pc.indices_nonzero(pc.is_in(d.indices, pa.array(bad, d.indices.type))).to_pylist():
                reject(row, name, "undecodable_text", f"a value is not valid {encoding} text")
        cols.append(pc.take(pa.array(texts, pa.string()), d.indices))
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _write_rejects(path: Path, rows: list[tuple[int, str, str, str]]) -> None:
    with atomic_writer(path, text=True, newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "field", "rule", "message"])
        w.writerows(sorted(rows))


class _Normalisers:
    """Per-run caches of every normaliser, keyed by the raw value."""

    def __init__(self, profile: ExtractProfile, today: date):
        ids = profile.identifiers
        sex_map = ids.get("sex_map", {})
        dob_fmt = ids.get("dob_format", "%Y-%m-%d")
        self.given = _cached(normalise_given)
        self.surname = _cached(normalise_surname)
        self.suffix = _cached(normalise_suffix)
        self.words = _cached(name_words)
        self.dob_format, self.today = dob_fmt, today
        self.sex = _cached(lambda v: normalise_sex(v, sex_map))
        self.address_points: AddressPoints | None = None
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
                  rejects: _Rejects, row_base: int, schema: pa.Schema, notes: Counter[str] | None = None) -> pa.Table:
    n = batch.num_rows
    keep = [True] * n
    out: dict[str, pa.Array] = {}

    def reject(i: int, fieldname: str, rule: str, message: str) -> None:
        keep[i] = False
        rejects.add(row_base + i, fieldname, rule, message)

    batch = _decode_columns(batch, profile.encoding, reject)

    def ids(spec: dict[str, Any], label: str) -> pa.Array:
        cols = [pc.utf8_trim_whitespace(batch.column(c)) for c in spec["columns"]]
        blank = pc.equal(cols[0], "")
        for c in cols[1:]:
            blank = pc.or_(blank, pc.equal(c, ""))
        for i in pc.indices_nonzero(blank).to_pylist():
            reject(i, "+".join(spec["columns"]), "record_id_missing", f"{label} is blank")
        joined = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "|")
        if spec is profile.record_id and "source_record_id_prev" in schema.names:
            out["source_record_id_prev"] = enc.previous_record_ids(spec["namespace"], joined)
        return enc.record_ids(spec["namespace"], joined)

    out["source_record_id"] = ids(profile.record_id, "record id")
    if profile.person_ref:
        out["person_record_id"] = ids(profile.person_ref, "person reference")
    if profile.group_ref:
        out[profile.group_ref["name"]] = ids(profile.group_ref, "group reference")
    out["linkage_key_version"] = pa.array([enc.key_version] * n, pa.string())

    if profile.kind == "persons":
        _encode_identifiers(batch, profile, enc, norm, reject, out, n, notes)

    for c, parser in norm.content.items():
        typ = schema.field(c).type
        if typ == pa.string():  # column-wise: utf8_trim_whitespace strips exactly what str.strip() does
            v = pc.utf8_trim_whitespace(batch.column(c))
            blank = pc.equal(v, "")
            if profile.content[c].get("required"):
                for i in pc.indices_nonzero(blank).to_pylist():
                    reject(i, c, "required", "required value is blank")
            out[c] = pc.if_else(blank, pa.scalar(None, pa.string()), v)
            continue
        vals, idx = _per_unique(batch.column(c), parser)
        _reject_where(vals, idx, c, reject)
        out[c] = _take([None if isinstance(v, NormaliseError) else v for v in vals], idx, typ)

    table = pa.table({f.name: out[f.name] for f in schema}, schema=schema)
    if all(keep):
        return table
    return table.filter(pa.array(keep))


def _per_unique_array(arr: pa.Array, fn: Callable[[Any], Any], typ: pa.DataType) -> pa.Array:
    """``fn`` of every value, computed once per distinct value, as an array of ``typ``."""
    vals, idx = _per_unique(arr, fn)
    return _take(vals, idx, typ)


def _distinct(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(distinct values, row → distinct index). Everything per value is computed on the first, then
    spread to rows with one ``take`` per output column. Null counts as blank, so every row has an index."""
    d = pc.dictionary_encode(pc.fill_null(arr, ""))
    return d.dictionary, d.indices


def _encode_identifiers(batch: pa.RecordBatch, profile: ExtractProfile, enc: Encoder, norm: _Normalisers,
                        reject: Callable[[int, str, str, str], None], out: dict[str, pa.Array], n: int,
                        notes: Counter[str] | None = None) -> None:
    """Every ``enc_`` column of one batch, column-wise: normalised features first, then ``enc.encode_features``.

    Each identifier column is reduced to its distinct raw values first. Names are normalised in Python
    once per distinct raw value (cached across batches); SSN, ZIP, address and dates of birth by Arrow
    kernels. A date of birth that is no date (wrong shape, not on the calendar, in the future) is kept as
    missing, never a reason to drop the record: the rest of it still links (counted in ``notes``).
    """
    ids = profile.identifiers
    blank = pa.array([""] * n, pa.string())
    s = pa.string()

    def column(role: str) -> pa.Array:
        return batch.column(ids[role]) if ids.get(role) else blank

    if ids.get("formatted_name"):
        last_raw, first_raw, middle_raw = split_formatted_name_array(column("formatted_name"))
    else:
        first_raw, last_raw, middle_raw = column("first_name"), column("last_name"), column("middle_name")

    raw, idx = _distinct(first_raw)
    first = pc.take(pa.array([norm.given(v) for v in raw.to_pylist()], s), idx)

    # last name: compact form, compound parts, and a suffix found inside it
    raw, idx = _distinct(last_raw)
    surnames = [norm.surname(v) for v in raw.to_pylist()]
    two = [sn is not None and len(sn.parts) > 1 for sn in surnames]
    last = pc.take(pa.array([sn.compact if sn else None for sn in surnames], s), idx)
    part1 = pc.take(pa.array([sn.parts[0] if t else None for sn, t in zip(surnames, two, strict=True)], s), idx)
    part2 = pc.take(pa.array([sn.parts[-1] if t else None for sn, t in zip(surnames, two, strict=True)], s), idx)
    suffix_inside = pc.take(pa.array([sn.suffix if sn else None for sn in surnames], s), idx)

    name_field = ids.get("formatted_name") or f"{ids.get('first_name')}+{ids.get('last_name')}"
    for i in pc.indices_nonzero(pc.and_(pc.is_null(first), pc.is_null(last))).to_pylist():
        reject(i, name_field, "name_missing", "neither first nor last name present: record cannot be linked")

    raw, idx = _distinct(middle_raw)
    middle = pc.take(pa.array([norm.given(v) for v in raw.to_pylist()], s), idx)

    # every word of every name field, in no order (the whole-name filter): per distinct value of each field,
    # then joined; the bigrams of the joined words are those of ``name_words`` over all three fields
    word_cols = []
    for field_raw in (first_raw, middle_raw, last_raw):
        raw, idx = _distinct(field_raw)
        word_cols.append(pc.take(pa.array([norm.words(v) or "" for v in raw.to_pylist()], s), idx))
    joined = pc.utf8_trim(pc.replace_substring_regex(pc.binary_join_element_wise(*word_cols, " "), " +", " "), " ")
    all_words = pc.if_else(pc.equal(joined, ""), pa.scalar(None, s), joined)

    # suffix: its own column when the profile has one, else the one found inside the last name
    own = _per_unique_array(column("suffix"), norm.suffix, s)

    # date of birth: parsed once per distinct raw value; one that is no date is kept as missing
    raw, idx = _distinct(column("dob"))
    dates, errors = parse_date_array(raw, norm.dob_format, latest=norm.today)
    if errors and notes is not None:
        counts = np.bincount(idx.to_numpy(zero_copy_only=False), minlength=len(raw))
        for j, e in errors.items():
            notes[f"dob_{e.rule}_kept_as_missing"] += int(counts[j])
    dob = pc.take(dates, idx)
    out["birth_year"] = pc.cast(pc.year(dob), pa.int16())

    # SSNs and addresses are near-unique: normalised row by row (deduplicating them cost more than it saved)
    ssn, addr = normalise_ssn_array(column("ssn")), normalise_address_array(column("address"))
    raw, idx = _distinct(column("zip"))
    zip_ = pc.take(normalise_zip_array(raw), idx)
    if profile.geocode and norm.address_points is not None:
        # the residence tract, looked up at the site; the address itself leaves only as encodings
        tract = norm.address_points.tracts(addr, zip_)
        out[profile.geocode["column"]] = tract
        if notes is not None:
            unplaced = int(pc.sum(pc.and_(pc.is_null(tract), pc.is_valid(addr))).as_py() or 0)
            if unplaced:
                notes["residence_tract_not_found"] += unplaced
    features = {
        "first": first, "last": last, "last_part1": part1, "last_part2": part2,
        "middle_init": pc.utf8_slice_codeunits(middle, 0, 1), "suffix": pc.coalesce(own, suffix_inside),
        "dob": dob, "sex": _per_unique_array(column("sex"), norm.sex, s), "ssn": ssn, "addr": addr, "zip": zip_,
        "name_words": all_words,
    }
    out.update(enc.encode_features(features, out["source_record_id"]))


def seal_encoded(payload: Path, *, partner: str, extract_type: str, period: str, keyring: PartnerKeyRing,
                 out_dir: Path, params: EncodingParams | None = None, profiles_dir: Path | None = None) -> Path:
    """Sign and encrypt an encoded payload into an envelope; the manifest records the encoding parameters.

    Row count and linkage key version are read from the payload itself, so the manifest cannot disagree with it.
    A payload that carries previous-version record ids (a rotation in transition) says which version they are.

    Raises:
        SchemaError: the payload mixes linkage key versions (re-encode under one).
    """
    from envelope.format import seal_envelope

    params = params or EncodingParams()
    pf = pq.ParquetFile(payload)
    versions = set(pq.read_table(payload, columns=["linkage_key_version"]).column(0).unique().to_pylist())
    if len(versions) > 1:
        raise SchemaError(f"{payload}: rows encoded under several linkage key versions {sorted(versions)}; re-encode")
    extra: dict[str, Any] = {"bloom_bits": params.bloom_bits, "bloom_k": params.bloom_k, "kit": KIT_VERSION,
                             "encoding_scheme": ENCODING_SCHEME}
    if "source_record_id_prev" in pf.schema_arrow.names:
        previous = keyring.previous_linkage_version()
        if previous is None:
            raise SchemaError(f"{payload}: carries previous-version record ids but the kit is not in a key "
                              "transition; re-encode")
        extra["previous_key_version"] = previous
    return seal_envelope(
        payload, partner=partner, extract_type=extract_type, period=period,
        schema_version=load_profile(partner, extract_type, profiles_dir).schema_version,
        row_count=pf.metadata.num_rows,
        linkage_key_version=versions.pop() if versions else keyring.current_linkage_version(), keyring=keyring,
        out_dir=out_dir, extra=extra)
