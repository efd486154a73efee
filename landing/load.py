"""Split a verified payload into the two zones, transactionally and idempotently.

* ``linkage.duckdb``: ``encodings`` (identifier encodings of person records) and ``loads`` — nothing else.
* ``warehouse.duckdb``: ``raw.<source>__<extract>`` content tables and ``raw.loads`` — never an encoding.

Both are keyed by (source, source_record_id, load_id); ``load_id`` is the envelope id, so loading the
same envelope again replaces its own rows with identical ones and changes nothing. Each file is
written in one transaction (linkage first, then the warehouse, whose ``raw.loads`` row marks the
load complete): a crash leaves no partial rows, and a re-run completes the load.

A re-sent period supersedes the earlier load: both are kept, the one with the newest manifest
``created_at`` is marked current (an old envelope arriving late never becomes current).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from governance.transfer import Manifest
from linkage.encoding import ENCODING_COLUMNS, ExtractProfile

__all__ = ["LoadResult", "load_payload", "loaded_envelope_ids", "raw_table", "ensure_schemas"]

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
    superseded_by varchar
)"""


#: Loading streams from Parquet; a modest limit keeps ingestion's peak memory low at the same speed.
_DUCKDB_CONFIG = {"memory_limit": "512MB"}


def raw_table(source: str, extract_type: str) -> str:
    return f"raw.{source}__{extract_type}"


def ensure_schemas(linkage: duckdb.DuckDBPyConnection | None, warehouse: duckdb.DuckDBPyConnection | None) -> None:
    if linkage is not None:
        linkage.execute(_LOADS_DDL.format(t="loads"))
    if warehouse is not None:
        warehouse.execute("create schema if not exists raw")
        warehouse.execute(_LOADS_DDL.format(t="raw.loads"))


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


def _record_load(con: duckdb.DuckDBPyConnection, table: str, m: Manifest, now: datetime) -> tuple[bool, list[str]]:
    con.execute(f"delete from {table} where load_id = ?", [m.envelope_id])
    con.execute(
        f"insert into {table} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false, null)",
        [m.envelope_id, m.envelope_id, m.partner, m.extract_type, m.period, m.schema_version,
         m.linkage_key_version, m.row_count, m.created_at, now],
    )
    # newest manifest wins; ties broken by arrival
    current = con.execute(
        f"select load_id from {table} where source = ? and extract_type = ? and period = ? "
        "order by created_at desc, loaded_at desc, load_id limit 1",
        [m.partner, m.extract_type, m.period],
    ).fetchone()[0]
    superseded = [r[0] for r in con.execute(
        f"select load_id from {table} where source = ? and extract_type = ? and period = ? and load_id <> ? "
        "and (is_current or superseded_by is distinct from ?)",
        [m.partner, m.extract_type, m.period, current, current]).fetchall()]
    con.execute(
        f"update {table} set is_current = (load_id = ?), "
        "superseded_by = case when load_id = ? then null else ? end "
        "where source = ? and extract_type = ? and period = ?",
        [current, current, current, m.partner, m.extract_type, m.period],
    )
    return current == m.envelope_id, superseded


def load_payload(
    payload: Path,
    manifest: Manifest,
    profile: ExtractProfile,
    *,
    linkage_db: Path,
    warehouse_db: Path,
    now: datetime,
    _after_linkage_commit: object = None,
) -> LoadResult:
    """Load one verified, validated payload into both zones. Idempotent per envelope.

    Args:
        payload: the decrypted Parquet payload (in the private temp area).
        manifest: the verified manifest.
        profile: the partner's extract profile (which columns are encodings, which content).
        now: the clock, passed in.
    """
    m = manifest
    cols = profile.output_schema().names
    enc_cols = [c for c in cols if c in ENCODING_COLUMNS]
    content_cols = [c for c in cols if c not in ENCODING_COLUMNS and c != "linkage_key_version"]
    src = f"read_parquet('{str(payload).replace(chr(39), chr(39) * 2)}')"
    linkage_rows = 0

    if enc_cols:
        with duckdb.connect(str(linkage_db), config=_DUCKDB_CONFIG) as con:
            ensure_schemas(con, None)
            select = ", ".join(_quote(c) for c in ["source_record_id", "linkage_key_version", *enc_cols])
            con.execute("begin")
            con.execute(
                f"create table if not exists encodings as select ?::varchar as source, ?::varchar as extract_type, "
                f"?::varchar as load_id, {select} from {src} limit 0", [m.partner, m.extract_type, m.envelope_id])
            con.execute("delete from encodings where load_id = ?", [m.envelope_id])
            con.execute(f"insert into encodings select ?, ?, ?, {select} from {src}",
                        [m.partner, m.extract_type, m.envelope_id])
            linkage_rows = con.execute("select count(*) from encodings where load_id = ?", [m.envelope_id]).fetchone()[0]
            _record_load(con, "loads", m, now)
            con.execute("commit")
    if callable(_after_linkage_commit):  # test hook: a crash between the two zones
        _after_linkage_commit()

    table = raw_table(m.partner, m.extract_type)
    with duckdb.connect(str(warehouse_db), config=_DUCKDB_CONFIG) as con:
        ensure_schemas(None, con)
        select = ", ".join(_quote(c) for c in content_cols)
        con.execute("begin")
        con.execute(f"create table if not exists {table} as select ?::varchar as source, ?::varchar as load_id, "
                    f"{select} from {src} limit 0", [m.partner, m.envelope_id])
        con.execute(f"delete from {table} where load_id = ?", [m.envelope_id])
        con.execute(f"insert into {table} select ?, ?, {select} from {src}", [m.partner, m.envelope_id])
        warehouse_rows = con.execute(f"select count(*) from {table} where load_id = ?", [m.envelope_id]).fetchone()[0]
        is_current, superseded = _record_load(con, "raw.loads", m, now)
        con.execute("commit")
    return LoadResult(m.envelope_id, m.row_count, linkage_rows, warehouse_rows, is_current, superseded)
