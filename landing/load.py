"""Split a verified payload into the two zones, transactionally and idempotently.

* ``linkage.duckdb``: ``encodings`` (identifier encodings of person records) and ``loads`` — nothing else.
* ``warehouse.duckdb``: ``raw.<source>__<extract>`` content tables and ``raw.loads`` — never an encoding.

Both are keyed by (source, source_record_id, load_id); ``load_id`` is the envelope id, so loading the
same envelope again replaces its own rows with identical ones and changes nothing. In the linkage zone
``source``, ``extract_type`` and ``source_record_id`` are the zone boundary's keyed labels
(:mod:`landing.boundary`, ADR 0010), never the partner's name or the warehouse's record id.

DuckDB cannot write two database files in one transaction, so a load is three short transactions:

1. linkage: the encodings and a ``loads`` row in state ``staged`` (never current: linkage ignores it);
2. warehouse: the content rows and the ``raw.loads`` row; this commit is the load's point of no return;
3. linkage: the ``loads`` row becomes ``complete`` and may become current.

A crash before 2 leaves only staged rows, which the re-run replaces; a crash between 2 and 3 is
finished by :func:`complete_staged_loads`, which every ingestion runs first. Neither zone ever holds a
current load that the other does not.

A re-sent period supersedes the earlier load: both are kept, the one with the newest manifest
``created_at`` is marked current (an old envelope arriving late never becomes current).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from envelope.format import Manifest
from landing.boundary import ZoneBoundary
from partner_kit import ENCODING_COLUMNS, ExtractProfile
from workspace.testhooks import step

__all__ = [
    "LoadResult",
    "SplitPayload",
    "complete_staged_loads",
    "ensure_schemas",
    "load_payload",
    "loaded_envelope_ids",
    "raw_table",
    "split_payload",
]

_LOADS_DDL = """
create table if not exists {t} (
    load_id varchar primary key,
    envelope_id varchar not null,
    source varchar not null,
    extract_type varchar not null,
    period varchar not null,
    schema_version varchar not null,
    linkage_key_version varchar not null,
    row_count bigint not null,
    created_at timestamptz not null,
    loaded_at timestamptz not null,
    is_current boolean not null,
    superseded_by varchar,
    state varchar not null default 'complete'  -- staged (linkage only, before the warehouse commit) | complete
)"""


#: During a linkage-secret rotation a record's pseudonymous id under the previous version, beside its new one:
#: linkage carries person keys over with it, and the person map lists both ids (ADR 0005).
_ALIASES_DDL = """
create table if not exists record_aliases (
    source varchar not null,
    source_record_id varchar not null,
    previous_id varchar not null,
    linkage_key_version varchar not null,
    previous_key_version varchar not null,
    load_id varchar not null
)"""


#: Loading streams from Parquet; a modest limit keeps ingestion's peak memory low at the same speed.
_DUCKDB_CONFIG = {"memory_limit": "512MB"}


def raw_table(source: str, extract_type: str) -> str:
    return f"raw.{source}__{extract_type}"


def ensure_schemas(linkage: duckdb.DuckDBPyConnection | None, warehouse: duckdb.DuckDBPyConnection | None) -> None:
    if linkage is not None:
        linkage.execute(_LOADS_DDL.format(t="loads"))
        linkage.execute("alter table loads add column if not exists state varchar default 'complete'")
    if warehouse is not None:
        warehouse.execute("create schema if not exists raw")
        warehouse.execute(_LOADS_DDL.format(t="raw.loads"))
        warehouse.execute("alter table raw.loads add column if not exists state varchar default 'complete'")


def loaded_envelope_ids(warehouse_db: Path) -> set[str]:
    """Envelope ids whose load completed (the replay ledger)."""
    if not Path(warehouse_db).exists():
        return set()
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema='raw' "
                             "and table_name='loads'").fetchone()[0]
        return {r[0] for r in con.execute("select envelope_id from raw.loads").fetchall()} if exists else set()


@dataclass(frozen=True)
class LoadResult:
    load_id: str
    rows: int
    linkage_rows: int
    warehouse_rows: int
    is_current: bool
    superseded: list[str]


def _quote(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _stage_load(con: duckdb.DuckDBPyConnection, table: str, m: Manifest, now: datetime, state: str,
                source: str | None = None, extract_type: str | None = None) -> None:
    """Write a load's ledger row; ``source``/``extract_type`` replace the manifest's (the linkage zone's labels,
    which also stand in for the partner and extract in the schema version: ``county.clients/1`` names both)."""
    schema = m.schema_version if extract_type is None else f"{extract_type}/{m.schema_version.rsplit('/', 1)[-1]}"
    con.execute(f"delete from {table} where load_id = ?", [m.envelope_id])
    con.execute(
        f"insert into {table} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false, null, ?)",
        [m.envelope_id, m.envelope_id, source or m.partner, extract_type or m.extract_type, m.period,
         schema, m.linkage_key_version, m.row_count, m.created_at, now, state],
    )


def _elect_current(con: duckdb.DuckDBPyConnection, table: str, source: str, extract_type: str,
                   period: str) -> tuple[str, list[str]]:
    """Mark the newest complete load of a period current (newest manifest wins; ties by arrival)."""
    current = con.execute(
        f"select load_id from {table} where source = ? and extract_type = ? and period = ? and state = 'complete' "
        "order by created_at desc, loaded_at desc, load_id limit 1",
        [source, extract_type, period],
    ).fetchone()[0]
    superseded = [r[0] for r in con.execute(
        f"select load_id from {table} where source = ? and extract_type = ? and period = ? and load_id <> ? "
        "and state = 'complete' and (is_current or superseded_by is distinct from ?)",
        [source, extract_type, period, current, current]).fetchall()]
    con.execute(
        f"update {table} set is_current = (load_id = ?), "
        "superseded_by = case when load_id = ? then null else ? end "
        "where source = ? and extract_type = ? and period = ? and state = 'complete'",
        [current, current, current, source, extract_type, period],
    )
    return current, superseded


def _record_load(con: duckdb.DuckDBPyConnection, table: str, m: Manifest, now: datetime) -> tuple[bool, list[str]]:
    _stage_load(con, table, m, now, "complete")
    current, superseded = _elect_current(con, table, m.partner, m.extract_type, m.period)
    return current == m.envelope_id, superseded


def complete_staged_loads(linkage_db: Path, warehouse_db: Path) -> list[str]:
    """Finish loads whose warehouse commit happened but whose linkage rows are still staged.

    That is the state a crash between step 2 and step 3 of :func:`load_payload` leaves. Loads staged
    in linkage but unknown to the warehouse are left alone: their envelope was not loaded, is still in
    ``landing/`` (or quarantine), and its re-run replaces them. Returns the load ids completed.
    """
    if not Path(linkage_db).exists():
        return []
    done = loaded_envelope_ids(warehouse_db)
    with duckdb.connect(str(linkage_db), config=_DUCKDB_CONFIG) as con:
        has_loads = con.execute("select count(*) from information_schema.tables where table_name = 'loads'"
                                ).fetchone()[0]
        if not has_loads:
            return []
        staged = con.execute("select load_id from loads where state = 'staged'").fetchall()
        return _complete(con, [r[0] for r in staged if r[0] in done])


def _complete(con: duckdb.DuckDBPyConnection, load_ids: list[str]) -> list[str]:
    """Mark staged linkage loads complete and elect each period's current load, in one transaction."""
    if not load_ids:
        return []
    con.execute("begin")
    for load_id in load_ids:
        source, extract_type, period = con.execute(
            "update loads set state = 'complete' where load_id = ? returning source, extract_type, period",
            [load_id]).fetchall()[0]
        _elect_current(con, "loads", source, extract_type, period)
    con.execute("commit")
    return load_ids


@dataclass(frozen=True)
class SplitPayload:
    """A verified payload split into the two zones' parts (Parquet files in the private temp area).

    ``linkage``: the linkage zone's rows exactly as ``encodings`` stores them (the boundary's record labels, the key
    version, every encoding column; the previous-version label during a rotation), or None for an extract
    without encodings. ``content``: the analytics zone's rows (record id and content columns). Ingestion loads
    both zones from these files and archives them, each sealed to its own zone's key (:mod:`landing.archive`),
    so no file after the split holds encodings and content together.
    """

    linkage: Path | None
    content: Path
    rows: int


def split_payload(payload: Path, manifest: Manifest, profile: ExtractProfile, *, boundary: ZoneBoundary,
                  workdir: Path) -> SplitPayload:
    """Split one verified payload into the linkage zone's part and the analytics zone's part (the one rule of
    which column goes where). Record ids in the linkage part are the zone boundary's labels (ADR 0010)."""
    m = manifest
    previous = m.extra.get("previous_key_version")
    cols = profile.output_schema(previous_ids=bool(previous)).names
    enc_cols = [c for c in cols if c in ENCODING_COLUMNS]
    # the previous-version id of a record serves linkage only (to carry its person across a key rotation)
    content_cols = [c for c in cols if c not in ENCODING_COLUMNS and c not in ("linkage_key_version",
                                                                              "source_record_id_prev")]
    src = f"read_parquet('{_literal(payload)}')"
    linkage_part, content_part = Path(workdir) / "linkage.parquet", Path(workdir) / "content.parquet"
    with duckdb.connect(config=_DUCKDB_CONFIG) as con:
        if enc_cols:
            rid, params = boundary.record_label_sql("$partner", _quote("source_record_id"))
            select = [f"{rid} as source_record_id", _quote("linkage_key_version"), *(_quote(c) for c in enc_cols)]
            if previous:
                prev, _ = boundary.record_label_sql("$partner", _quote("source_record_id_prev"))
                select.append(f"{prev} as source_record_id_prev")
            con.execute(f"copy (select {', '.join(select)} from {src}) to '{_literal(linkage_part)}' "
                        "(format parquet)", params | {"partner": m.partner})
        con.execute(f"copy (select {', '.join(_quote(c) for c in content_cols)} from {src}) "
                    f"to '{_literal(content_part)}' (format parquet)")
    return SplitPayload(linkage_part if enc_cols else None, content_part, m.row_count)


def _literal(path: Path) -> str:
    return str(path).replace(chr(39), chr(39) * 2)


def load_payload(
    parts: SplitPayload,
    manifest: Manifest,
    *,
    linkage_db: Path,
    warehouse_db: Path,
    now: datetime,
    boundary: ZoneBoundary,
    in_warehouse_commit: Callable[[duckdb.DuckDBPyConnection, bool, list[str]], None] | None = None,
    _after_linkage_commit: object = None,
    _after_warehouse_commit: object = None,
) -> LoadResult:
    """Load one verified, validated, split payload into both zones. Idempotent per envelope.

    Args:
        parts: the payload's two parts (:func:`split_payload`, in the private temp area).
        manifest: the verified manifest.
        now: the clock, passed in.
        boundary: the zone boundary (ADR 0010): the linkage zone's ledger names the partner and the extract by
            their labels, never by name.
        in_warehouse_commit: called with the warehouse connection, whether the load is current and the loads it
            superseded, inside the load's transaction just before it commits (the ingest event is recorded there: a load never exists without its event).
    """
    m = manifest
    previous = m.extra.get("previous_key_version")
    linkage_rows = 0

    if parts.linkage is not None:
        src = f"read_parquet('{_literal(parts.linkage)}')"
        label, extract_label = boundary.source_label(m.partner), boundary.extract_label(m.partner, m.extract_type)
        params = {"src": label, "ext": extract_label, "load": m.envelope_id}
        with duckdb.connect(str(linkage_db), config=_DUCKDB_CONFIG) as con:
            ensure_schemas(con, None)
            select = f"* exclude ({_quote('source_record_id_prev')})" if previous else "*"
            con.execute("begin")
            con.execute(
                f"create table if not exists encodings as select $src::varchar as source, $ext::varchar as extract_type, "
                f"$load::varchar as load_id, {select} from {src} limit 0", params)
            # a newer kit's encodings add columns (scheme 3 added enc_nw_bf): older loads keep them blank, and
            # linkage refuses to mix schemes until every partner has re-sent (linkage.model.EncodingSchemeError)
            have = {r[0] for r in con.execute("select column_name from information_schema.columns where "
                                              "table_name = 'encodings' and table_schema = 'main'").fetchall()}
            for name, typ in con.execute(f"select column_name, column_type from (describe select {select} from {src})"
                                         ).fetchall():
                if name not in have:
                    con.execute(f"alter table encodings add column {_quote(name)} {typ}")
            con.execute("delete from encodings where load_id = ?", [m.envelope_id])
            con.execute(f"insert into encodings by name select $src::varchar as source, $ext::varchar as extract_type, "
                        f"$load::varchar as load_id, {select} from {src}", params)
            linkage_rows = con.execute("select count(*) from encodings where load_id = ?", [m.envelope_id]).fetchone()[0]
            con.execute(_ALIASES_DDL)
            con.execute("delete from record_aliases where load_id = ?", [m.envelope_id])
            if previous:
                con.execute(f"insert into record_aliases select $src, source_record_id, source_record_id_prev, $version, "
                            f"$previous, $load from {src}", {"src": label, "load": m.envelope_id,
                                                            "version": m.linkage_key_version, "previous": previous})
            # not current until the warehouse has committed
            _stage_load(con, "loads", m, now, "staged", source=label, extract_type=extract_label)
            con.execute("commit")
    step("ingest.staged")
    if callable(_after_linkage_commit):  # test hook: a crash between the two zones
        _after_linkage_commit()

    table = raw_table(m.partner, m.extract_type)
    with duckdb.connect(str(warehouse_db), config=_DUCKDB_CONFIG) as con:
        ensure_schemas(None, con)
        src = f"read_parquet('{_literal(parts.content)}')"
        con.execute("begin")
        con.execute(f"create table if not exists {table} as select ?::varchar as source, ?::varchar as load_id, "
                    f"* from {src} limit 0", [m.partner, m.envelope_id])
        con.execute(f"delete from {table} where load_id = ?", [m.envelope_id])
        con.execute(f"insert into {table} select ?, ?, * from {src}", [m.partner, m.envelope_id])
        warehouse_rows = con.execute(f"select count(*) from {table} where load_id = ?", [m.envelope_id]).fetchone()[0]
        is_current, superseded = _record_load(con, "raw.loads", m, now)
        if in_warehouse_commit is not None:
            in_warehouse_commit(con, is_current, superseded)
        con.execute("commit")
    step("ingest.committed")
    if callable(_after_warehouse_commit):  # test hook: a crash after the point of no return
        _after_warehouse_commit()
    if parts.linkage is not None:  # step 3: the warehouse has it, so the linkage load may now become current
        with duckdb.connect(str(linkage_db), config=_DUCKDB_CONFIG) as con:
            _complete(con, [m.envelope_id])
    step("ingest.completed")
    return LoadResult(m.envelope_id, m.row_count, linkage_rows, warehouse_rows, is_current, superseded)
