"""Tamper-evident audit log: a hash chain in the registry, appended in the same transaction as the action.

Each entry's hash covers the previous entry's hash and the entry's own canonical JSON, so editing,
deleting or reordering any entry breaks the chain from that point on; the head row (last seq and hash)
reveals a cut-off tail. :func:`verify` reports the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.registry.models import AuditEntry, AuditHead

__all__ = ["append", "verify", "AuditVerification", "GENESIS"]

GENESIS = "0" * 64


def _ts(at: datetime) -> str:
    """UTC, without offset: SQLite hands back naive datetimes, PostgreSQL aware ones; both hash alike."""
    return (at.astimezone(UTC) if at.tzinfo else at).replace(tzinfo=None).isoformat()


def _canonical(seq: int, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]) -> bytes:
    return json.dumps({"seq": seq, "at": _ts(at), "actor": actor, "action": action, "subject": subject,
                       "detail": detail}, sort_keys=True, separators=(",", ":"), default=str).encode()


def _hash(prev: str, body: bytes) -> str:
    return hashlib.sha256(prev.encode() + b"\x1e" + body).hexdigest()


def append(session: Session, *, actor: str, action: str, subject: str, at: datetime,
           detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry (inside the caller's transaction: the action and its audit commit together).

    ``detail`` must hold identifiers of registry objects and counts, never record values.
    """
    detail = detail or {}
    head = session.get(AuditHead, 1, with_for_update=True)
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    at = (at.astimezone(UTC) if at.tzinfo else at).replace(tzinfo=None)
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail,
                       prev_hash=head.hash, hash=_hash(head.hash, _canonical(seq, at, actor, action, subject, detail)))
    session.add(entry)
    head.seq, head.hash = seq, entry.hash
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    entries: int
    problem: str = ""
    first_bad_seq: int | None = None


def verify(session: Session) -> AuditVerification:
    """Recompute the chain; name the first entry that was edited, deleted, inserted or reordered."""
    prev, expected_seq, n = GENESIS, 1, 0
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        n += 1
        if e.seq != expected_seq:
            return AuditVerification(False, n, f"entry {expected_seq} is missing (next is {e.seq}): deleted", expected_seq)
        if e.prev_hash != prev:
            return AuditVerification(False, n, f"entry {e.seq} does not follow entry {e.seq - 1}: deleted or reordered", e.seq)
        if _hash(prev, _canonical(e.seq, e.at, e.actor, e.action, e.subject, e.detail)) != e.hash:
            return AuditVerification(False, n, f"entry {e.seq} was edited (its hash does not match its content)", e.seq)
        prev, expected_seq = e.hash, expected_seq + 1
    head = session.get(AuditHead, 1)
    last = expected_seq - 1
    if head is not None and (head.seq != last or head.hash != prev):
        return AuditVerification(False, n, f"the chain ends at entry {last} but its head says {head.seq}: "
                                           "entries were cut from the end", last + 1)
    return AuditVerification(True, n)
