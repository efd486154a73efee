"""The landing zone's ledger of outcomes: ``raw.ingest_events`` in the warehouse (metadata only, never values)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["IngestOutcome", "archived_envelope_ids", "ingest_events", "record_event"]


@dataclass
class IngestOutcome:
    """What became of one envelope (metadata only: file, ids, counts, the failed check)."""


    status: str  # loaded | quarantined
    file: str
    envelope_id: str | None = None
    partner: str | None = None
    extract_type: str | None = None
    period: str | None = None
    rows: int = 0
    check: str | None = None
    detail: str = ""
    report: str | None = None
    is_current: bool | None = None
    superseded: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_event(warehouse_db: Path, outcome: IngestOutcome, now: datetime) -> None:
    """Append an ingest event (metadata only: no record values) to ``raw.ingest_events``."""
    with duckdb.connect(str(warehouse_db)) as con:
        con.execute("create schema if not exists raw")
        con.execute("create table if not exists raw.ingest_events (event_at timestamptz, file varchar, "
                    "envelope_id varchar, partner varchar, extract_type varchar, period varchar, status varchar, "
                    "check_name varchar, detail varchar, rows bigint)")
        con.execute("insert into raw.ingest_events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [now, outcome.file, outcome.envelope_id, outcome.partner, outcome.extract_type, outcome.period,
                     outcome.status, outcome.check, outcome.detail[:2000], outcome.rows])


def archived_envelope_ids(warehouse_db: Path) -> set[str]:
    """Envelope ids whose ingestion finished (archived and recorded), from ``raw.ingest_events``."""
    if not Path(warehouse_db).exists():
        return set()
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                             "and table_name = 'ingest_events'").fetchone()[0]
        if not exists:
            return set()
        return {r[0] for r in con.execute("select distinct envelope_id from raw.ingest_events "
                                          "where status = 'loaded' and envelope_id is not null").fetchall()}




def ingest_events(warehouse_db: Path) -> list[dict[str, Any]]:
    """Every recorded outcome, oldest first (file, envelope id, partner, extract, period, status, check, detail,
    rows). Empty when nothing was ingested yet."""
    if not Path(warehouse_db).exists():
        return []
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                             "and table_name = 'ingest_events'").fetchone()[0]
        if not exists:
            return []
        cur = con.execute("select event_at, file, envelope_id, partner, extract_type, period, status, check_name, "
                          "detail, rows from raw.ingest_events order by event_at")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
