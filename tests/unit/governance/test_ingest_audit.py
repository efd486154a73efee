"""The landing zone's audit entries are idempotent per event: recovery after a crash never audits twice."""

from datetime import UTC, datetime

from governance.registry.audit import verify
from governance.registry.db import Registry, sqlite_url
from governance.registry.models import AuditEntry
from governance.registry.workflow import record_ingest


def test_an_outcome_is_audited_once_however_often_it_is_recorded(tmp_path):
    reg = Registry(sqlite_url(tmp_path / "registry.db"))
    now = datetime(2026, 11, 21, tzinfo=UTC)
    loaded = {"status": "loaded", "file": "a.vpdc", "envelope_id": "e1", "event_id": "ev1", "arrived_in": "police"}
    refused = {"status": "quarantined", "file": "b.vpdc", "check": "format", "detail": "x", "event_id": "ev2"}
    for outcome in (loaded, loaded, refused, refused, {**loaded, "event_id": "ev3"}):
        record_ingest(reg, outcome, now)
    with reg.read() as s:
        entries = [(e.action, e.detail["event_id"]) for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert verify(s).ok
    assert entries == [("ingest.loaded", "ev1"), ("refused.ingest", "ev2"), ("ingest.loaded", "ev3")]
