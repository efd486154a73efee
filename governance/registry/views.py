"""Read-only views of the registry for the portal's pages (engineers, administrators, the audit page): lists
of identifiers, actions and dates, never request text beyond titles, never record values."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from governance.registry.models import Agreement, AuditEntry, Partner

__all__ = ["LANDING_ACTIONS", "agreements", "audit_entries", "partner_ids"]

#: the audit actions that record the landing zone's outcomes (what the engineers' page lists as runs)
LANDING_ACTIONS = ("ingest.loaded", "refused.ingest")


def audit_entries(session: Session, *, limit: int = 50, actions: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The latest entries, newest first: sequence, time, actor, action, subject and how the actor signed in."""
    q = session.query(AuditEntry)
    if actions is not None:
        q = q.filter(AuditEntry.action.in_(actions))
    return [{"seq": e.seq, "at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "action": e.action,
             "subject": e.subject, "method": (e.detail or {}).get("auth", {}).get("method", "")}
            for e in q.order_by(AuditEntry.seq.desc()).limit(max(1, min(int(limit), 500)))]


def agreements(session: Session) -> list[dict[str, Any]]:
    return [{"id": a.id, "partner": a.partner_id, "title": a.title, "starts_on": a.starts_on.isoformat(),
             "expires_on": a.expires_on.isoformat()} for a in session.query(Agreement).order_by(Agreement.id)]


def partner_ids(session: Session) -> list[str]:
    return [p.id for p in session.query(Partner).order_by(Partner.id)]
