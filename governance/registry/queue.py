"""What awaits a reviewer: the requests a steward's agency or the community must still decide."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from governance.registry.models import Request, Role, User
from governance.registry.policy import decide, required_reviews
from governance.registry.workflow import GovernanceError

__all__ = ["request_details", "request_status", "review_queue", "study_ids"]


def review_queue(session: Session, *, actor: str, now: datetime) -> list[dict[str, Any]]:
    """Requests waiting for ``actor``'s decision, oldest first.

    A steward sees the requests that use their agency's data; a community reviewer those that need
    community review. Withdrawn and revoked requests, the actor's own requests and those the actor
    already decided are left out.

    Raises:
        GovernanceError: unknown user.
    """
    user = session.get(User, actor)
    if user is None:
        raise GovernanceError(f"unknown user {actor!r}")
    rows = []
    for req in session.query(Request).order_by(Request.submitted_at, Request.id):
        if req.withdrawn_at or req.revoked_at or req.requester_id == actor:
            continue
        partners, community = required_reviews(session, req)
        mine = (user.role == Role.STEWARD and user.partner_id in partners) or (
            user.role == Role.COMMUNITY_REVIEWER and community)
        if mine and not any(r.reviewer_id == actor for r in req.reviews):
            scope = decide(session, req.study_id, at=now)
            rows.append({"study_id": req.study_id, "title": req.title, "requester": req.requester_id,
                         "output_level": req.output_level.value, "pending": list(scope.pending)})
    return rows


def request_status(session: Session, study_id: str, *, now: datetime) -> dict[str, Any]:
    """Whether a request is active, what it may use, what it waits for, its reviews and its linkage pin."""
    scope = decide(session, study_id, at=now)
    req = session.query(Request).filter_by(study_id=study_id).one_or_none()
    reviews = [{"reviewer": r.reviewer_id, "capacity": r.capacity, "decision": r.decision.value,
                "conditions": r.conditions, "at": r.decided_at.isoformat()} for r in (req.reviews if req else [])]
    return scope.as_dict() | {"reviews": reviews, "linkage_run_pinned": req.linkage_run_id if req else None}


#: What a reviewer reads about a request, in this order.
DETAIL_FIELDS = ("study_id", "title", "requester_id", "organisation", "purpose", "research_questions", "columns",
                 "output_level", "irb_protocol", "irb_expires_on", "retention_end", "equity_communities",
                 "equity_return_of_findings", "equity_mitigation")


def request_details(session: Session, study_id: str) -> dict[str, Any]:
    """Everything a reviewer needs: purpose, questions, columns, output level, IRB, retention, equity statement.

    Raises:
        GovernanceError: no such request.
    """
    req = session.query(Request).filter_by(study_id=study_id).one_or_none()
    if req is None:
        raise GovernanceError(f"no request with study id {study_id[:64]!r}")
    body = {k: getattr(req, k) for k in DETAIL_FIELDS}
    body["output_level"] = req.output_level.value
    return body


def study_ids(session: Session) -> list[str]:
    """Every request's study id, in the order submitted."""
    return [r[0] for r in session.query(Request.study_id).order_by(Request.id).all()]
