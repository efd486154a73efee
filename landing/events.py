"""The landing zone's ledger of outcomes: ``raw.ingest_events`` in the warehouse (metadata only, never values).

It is also the journal that lets the next run finish what a crash left. Each outcome is recorded *before*
its file is moved and its audit entry written, with where the file goes (``dest_path``) and two flags,
``moved`` and ``audited``: a loaded envelope's event commits in the same transaction as its rows, a refusal's
before its reason file and move. :func:`landing.ingest.recover` completes every event whose flags are not both
set, idempotently (a move that already happened is not redone; an audit entry that already exists is not
appended twice).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["IngestOutcome", "PendingEvent", "ensure_events_table", "ingest_events", "insert_event", "mark_event",
           "pending_events", "record_event", "unfinished_event_ids"]


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
    #: the partner whose landing folder the file arrived in (never read from the envelope)
    arrived_in: str | None = None
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_DDL = ("create table if not exists raw.ingest_events (event_at timestamptz, file varchar, envelope_id varchar, "
        "partner varchar, extract_type varchar, period varchar, status varchar, check_name varchar, detail varchar, "
        "rows bigint)")
_COLUMNS = (("event_id", "varchar"), ("arrived_in", "varchar"), ("source_path", "varchar"), ("dest_path", "varchar"),
            ("outcome_json", "varchar"), ("reason_json", "varchar"), ("moved", "boolean"), ("audited", "boolean"))


def ensure_events_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute(_DDL)
    for name, typ in _COLUMNS:  # events recorded before the journal have none: they count as done
        con.execute(f"alter table raw.ingest_events add column if not exists {name} {typ}")


def insert_event(con: duckdb.DuckDBPyConnection, outcome: IngestOutcome, now: datetime, *, source: str = "",
                 dest: str = "", reason: dict[str, Any] | None = None, moved: bool = False,
                 audited: bool = False) -> None:
    """Append ``outcome`` to ``raw.ingest_events`` inside the caller's transaction (``source`` and ``dest`` are
    paths relative to VPDC_HOME; ``reason`` the quarantine reason to write beside a refused file)."""
    ensure_events_table(con)
    con.execute("insert into raw.ingest_events (event_at, file, envelope_id, partner, extract_type, period, status, "
                "check_name, detail, rows, event_id, arrived_in, source_path, dest_path, outcome_json, reason_json, "
                "moved, audited) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [now, outcome.file, outcome.envelope_id, outcome.partner, outcome.extract_type, outcome.period,
                 outcome.status, outcome.check, outcome.detail[:2000], outcome.rows, outcome.event_id,
                 outcome.arrived_in, source, dest, json.dumps(outcome.as_dict(), default=str),
                 json.dumps(reason, default=str) if reason is not None else None, moved, audited])


def record_event(warehouse_db: Path, outcome: IngestOutcome, now: datetime, **kw: Any) -> None:
    """Append an ingest event in its own transaction (see :func:`insert_event`)."""
    with duckdb.connect(str(warehouse_db)) as con:
        insert_event(con, outcome, now, **kw)


@dataclass(frozen=True)
class PendingEvent:
    event_id: str
    status: str
    source_path: str
    dest_path: str
    outcome: IngestOutcome
    reason: dict[str, Any] | None
    moved: bool
    audited: bool


def _has_events(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                            "and table_name = 'ingest_events'").fetchone()[0])


def pending_events(warehouse_db: Path) -> list[PendingEvent]:
    """Events whose file move or audit entry a crash interrupted, oldest first."""
    if not Path(warehouse_db).exists():
        return []
    with duckdb.connect(str(warehouse_db)) as con:
        if not _has_events(con):
            return []
        ensure_events_table(con)
        rows = con.execute("select event_id, status, source_path, dest_path, outcome_json, reason_json, moved, audited "
                           "from raw.ingest_events where event_id is not null and not (coalesce(moved, true) "
                           "and coalesce(audited, true)) order by event_at").fetchall()
    out = []
    for event_id, status, source, dest, outcome_json, reason_json, moved, audited in rows:
        outcome = IngestOutcome(**json.loads(outcome_json))
        out.append(PendingEvent(event_id, status, source or "", dest or "", outcome,
                                json.loads(reason_json) if reason_json else None, bool(moved), bool(audited)))
    return out


def unfinished_event_ids(warehouse_db: Path) -> list[str] | None:
    """Ids of the events a crash left unfinished (not moved or not audited), read-only: what tells the landing
    sensor that a recovery run is due even when landing/ is empty. ``None`` when the warehouse is busy (a writer
    holds it; that run recovers on its own) or unreadable."""
    if not Path(warehouse_db).exists():
        return []
    try:
        with duckdb.connect(str(warehouse_db), read_only=True) as con:
            if not _has_events(con):
                return []
            rows = con.execute("select event_id from raw.ingest_events where event_id is not null and not "
                               "(coalesce(moved, true) and coalesce(audited, true)) order by event_at").fetchall()
    except duckdb.Error:
        return None
    return [r[0] for r in rows]


def mark_event(warehouse_db: Path, event_id: str, *, moved: bool | None = None, audited: bool | None = None) -> None:
    sets = [f"{k} = true" for k, v in (("moved", moved), ("audited", audited)) if v]
    if not sets:
        return
    with duckdb.connect(str(warehouse_db)) as con:
        con.execute(f"update raw.ingest_events set {', '.join(sets)} where event_id = ?", [event_id])


def ingest_events(warehouse_db: Path) -> list[dict[str, Any]]:
    """Every recorded outcome, oldest first (file, envelope id, partner, extract, period, status, check, detail,
    rows). Empty when nothing was ingested yet."""
    if not Path(warehouse_db).exists():
        return []
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        if not _has_events(con):
            return []
        journal = con.execute("select count(*) from information_schema.columns where table_schema = 'raw' and "
                              "table_name = 'ingest_events' and column_name = 'source_path'").fetchone()[0]
        cur = con.execute("select event_at, file, envelope_id, partner, extract_type, period, status, check_name, "
                          f"detail, rows, {'source_path' if journal else 'null as source_path'} "
                          "from raw.ingest_events order by event_at")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
