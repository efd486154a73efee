"""The one policy function every gate calls: what a request may use, at a given time. Fails closed.

``decide`` never raises: any missing approval, expiry, revocation or error yields an inactive scope with
reasons a person can act on. ``authorize`` is the gate: it refuses (``PolicyRefused``) unless the request
is active, the actor holds the permission the action declares (``roles.ACTIONS``), and the asked-for
output level and columns lie inside its approved scope.

Both decide only from audited state (ADR 0007): every row they read (the request, its reviews, the
catalogue columns, the agreements, the actor) must be exactly as the latest audit entry that bound it
recorded, on a keyed chain that verifies against the stewards' checkpoints; every review the chain bound
to the study must still be there; and a revocation, withdrawal or destruction the chain records counts
whatever the table says. Any doubt is a refusal naming the row by kind and id, never its content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.registry import audit
from governance.registry.models import (
    OUTPUT_RANK,
    Agreement,
    DatasetColumn,
    Decision,
    OutputLevel,
    Request,
    Review,
)
from governance.registry.permissions import permission_problem

__all__ = ["Scope", "PolicyRefused", "decide", "authorize", "required_reviews"]


class PolicyRefused(Exception):
    """A gate refused. The message says which rule and what would make it pass."""

    #: the exit status of a command the gate refused (2 is a usage or input error)
    exit_code = 3


@dataclass(frozen=True)
class Scope:
    study_id: str
    active: bool
    reasons: tuple[str, ...] = ()
    sources: frozenset[str] = frozenset()
    columns: frozenset[tuple[str, str]] = frozenset()
    output_level: OutputLevel | None = None
    expires_on: date | None = None
    pending: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        return {"study_id": self.study_id, "active": self.active, "reasons": list(self.reasons),
                "sources": sorted(self.sources), "columns": [f"{d}.{c}" for d, c in sorted(self.columns)],
                "output_level": self.output_level.value if self.output_level else None,
                "expires_on": self.expires_on.isoformat() if self.expires_on else None, "pending": list(self.pending)}


_CATALOGUE = "vpdc_catalogue"


def _column_info(session: Session, cols: list[dict[str, str]]) -> dict[tuple[str, str], DatasetColumn | None]:
    """The catalogue rows of ``cols`` (None for a column not in it). The catalogue is read once per session and
    audit head (every change to it is audited, so a new head means it may have changed): a queue of many
    requests asks for the same few columns again and again."""
    from governance.registry.models import AuditHead

    head = session.get(AuditHead, 1)
    mark = (head.seq, head.hash) if head is not None else None
    cached = session.info.get(_CATALOGUE)
    if cached is None or cached[0] != mark:
        cached = (mark, {(c.dataset_id, c.name): c for c in session.scalars(select(DatasetColumn))})
        session.info[_CATALOGUE] = cached
    return {(c["dataset"], c["column"]): cached[1].get((c["dataset"], c["column"])) for c in cols}


def required_reviews(session: Session, req: Request) -> tuple[set[str], bool]:
    """(partners whose steward must approve, whether a community reviewer must approve)."""
    info = _column_info(session, req.columns)
    partners = {p for col in info.values() if col for p in col.sources}
    community = req.output_level != OutputLevel.AGGREGATE or any(col and col.race_ethnicity for col in info.values())
    return partners, community


def decide(session: Session, study_id: str, *, at: datetime) -> Scope:
    """The request's allowed sources × columns × output level at ``at``; inactive with reasons otherwise."""
    try:
        return _decide(session, study_id, at)
    except audit.AuditError as exc:
        return Scope(study_id, False, (f"policy could not be evaluated: {exc}",))
    except Exception as exc:  # fail closed: an error is a refusal, never an approval
        return Scope(study_id, False, (f"policy could not be evaluated: {type(exc).__name__}",))


#: Why a reason about rows ends the way it does: the gate trusts no row the audit does not cover.
UNAUDITED = "refused: the gate decides only from audited state"


def _decide(session: Session, study_id: str, at: datetime) -> Scope:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    req = session.scalar(select(Request).where(Request.study_id == study_id))
    if req is None:
        return Scope(study_id, False, (f"no request with study id {study_id!r}",))
    reasons: list[str] = []
    info = _column_info(session, req.columns)
    agreements = list(session.scalars(select(Agreement).where(
        Agreement.partner_id.in_(sorted({p for col in info.values() if col for p in col.sources})))))
    untrusted = audit.row_problems(session, [req, *req.reviews, *(c for c in info.values() if c), *agreements])
    missing = sorted(audit.audited_ids(session, Review.__tablename__, study_id) - {r.id for r in req.reviews}) \
        if not untrusted or not untrusted[0].startswith("the audit chain") else []
    untrusted += [f"review {i} is audited but missing from the registry" for i in missing]
    if untrusted:
        return Scope(study_id, False, tuple(f"{u}: {UNAUDITED}" for u in untrusted[:5]))
    events = audit.state(session).events.get(study_id, {})
    if req.withdrawn_at is not None or "request.withdrawn" in events:
        reasons.append("withdrawn by the requester")
    if req.revoked_at is not None or "request.revoked" in events:
        reasons.append(f"revoked by {req.revoked_by or events.get('request.revoked')}")
    unknown = [f"{d}.{c}" for (d, c), col in info.items() if col is None]
    if unknown:
        reasons.append(f"columns not in the catalogue: {', '.join(unknown)}")
    partners, community_needed = required_reviews(session, req)

    latest: dict[str, Review] = {}
    for r in req.reviews:  # ordered by id: a reviewer's later decision replaces their earlier one
        decided = r.decided_at if r.decided_at.tzinfo else r.decided_at.replace(tzinfo=UTC)
        if decided <= at:
            latest[r.reviewer_id] = r
    denials = [r for r in latest.values() if r.decision == Decision.DENY]
    if denials:
        reasons.append("denied by " + ", ".join(sorted(r.reviewer_id for r in denials)))
    approvals = [r for r in latest.values() if r.decision != Decision.DENY]
    approved_partners = {r.capacity.split(":", 1)[1] for r in approvals if r.capacity.startswith("partner:")}
    pending = [f"steward of {p}" for p in sorted(partners - approved_partners)]
    if community_needed and not any(r.capacity == "community" for r in approvals):
        pending.append("community reviewer")
    if pending:
        reasons.append("awaiting approval of " + ", ".join(pending))

    # narrowest scope wins: every condition applies
    removed = {(c["dataset"], c["column"]) for r in approvals for c in (r.conditions or {}).get("remove_columns", [])}
    level = req.output_level
    if any((r.conditions or {}).get("aggregate_only") for r in approvals):
        level = OutputLevel.AGGREGATE
    columns = frozenset(k for k in info if k not in removed)

    # approvals end at the earliest of the agreements, the IRB approval and the retention date
    ends = {"IRB approval": req.irb_expires_on, "retention period": req.retention_end}
    today = at.date()
    for p in sorted(partners):
        current = session.scalars(select(Agreement).where(Agreement.partner_id == p, Agreement.starts_on <= today)
                                  .order_by(Agreement.expires_on.desc())).first()
        if current is None:
            reasons.append(f"no data-sharing agreement with {p} in force")
        else:
            ends[f"data-sharing agreement with {p}"] = current.expires_on
    expires_on = min(ends.values())
    for what, end in sorted(ends.items(), key=lambda kv: kv[1]):
        if today > end:
            reasons.append(f"expired: {what} ended {end.isoformat()}")
    if req.destroyed_at is not None or "study.destroyed" in events:
        reasons.append("retention ended: outputs and study key destroyed")
    return Scope(study_id, not reasons, tuple(reasons), frozenset(partners), columns, level, expires_on, tuple(pending))


def authorize(session: Session, study_id: str, *, at: datetime, actor: str, output_level: OutputLevel,
              columns: Iterable[tuple[str, str]], action: str) -> Scope:
    """The gate: refuse unless the request is active, ``actor`` is its requester and holds the permission
    ``action`` declares (``roles.ACTIONS``: ``export.cohort``, ``export.summary``, ``study.run``), and the ask
    lies inside its approved scope.

    Raises:
        PolicyRefused: naming every rule the ask breaks.
    """
    scope = decide(session, study_id, at=at)
    problems = list(scope.reasons)
    user, problem = permission_problem(session, actor, action)
    req = session.scalar(select(Request).where(Request.study_id == study_id))
    if problem:
        problems.append(problem)
    if user is not None and req is not None and actor != req.requester_id:
        problems.append(f"{actor} is not the requester of {study_id}")
    if scope.output_level is not None and OUTPUT_RANK[output_level] > OUTPUT_RANK[scope.output_level]:
        problems.append(f"output level {output_level.value} exceeds the approved {scope.output_level.value}")
    outside = sorted(set(columns) - scope.columns)
    if outside:
        problems.append("columns outside the approval: " + ", ".join(f"{d}.{c}" for d, c in outside))
    if problems:
        raise PolicyRefused(f"{study_id}: refused: " + "; ".join(problems))
    return scope
