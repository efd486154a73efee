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


# ------------------------------------------------------------------------------------- portal views
def may_view(session: Session, viewer: str, study_id: str) -> str:
    """Why ``viewer`` may not see the request ("" when they may): its requester, the stewards of the partners
    whose data it uses and, when it needs community review, community reviewers. No one else (a steward never
    sees another agency's request)."""
    user = session.get(User, viewer)
    req = session.query(Request).filter_by(study_id=study_id).one_or_none()
    if user is None or req is None:
        return f"no request with study id {study_id[:64]!r} that {str(viewer)[:64]} may see"
    if req.requester_id == viewer:
        return ""
    partners, community = required_reviews(session, req)
    if user.role == Role.STEWARD and user.partner_id in partners:
        return ""
    if user.role == Role.COMMUNITY_REVIEWER and community:
        return ""
    return f"no request with study id {study_id[:64]!r} that {viewer} may see"


def request_view(session: Session, study_id: str, *, now: datetime) -> dict[str, Any]:
    """What the request page shows: the details, each column with its partners and equity metadata, the status,
    every required reviewer's state and the request's audit trail (actions, actors and how they signed in)."""
    from governance.catalog import catalogue
    from governance.registry.models import AuditEntry

    details = request_details(session, study_id)
    status = request_status(session, study_id, now=now)
    cat = catalogue()
    columns = []
    for c in details["columns"]:
        meta = cat.get(c["dataset"], {}).get(c["column"])
        columns.append({"dataset": c["dataset"], "column": c["column"], "sources": list(meta.sources) if meta else [],
                        "race_ethnicity": bool(meta and meta.race_ethnicity),
                        "quasi_identifier": bool(meta and meta.quasi_identifier),
                        "description": meta.description if meta else "", "equity": dict(meta.equity) if meta else {}})
    req = session.query(Request).filter_by(study_id=study_id).one()
    partners, community = required_reviews(session, req)
    latest = {}
    for r in req.reviews:
        latest[r.capacity] = r
    reviewers = [{"capacity": f"partner:{p}", "label": p, "review": latest.get(f"partner:{p}")} for p in sorted(partners)]
    if community:
        reviewers.append({"capacity": "community", "label": "community", "review": latest.get("community")})
    reviewers = [{"capacity": x["capacity"], "label": x["label"],
                  "decision": x["review"].decision.value if x["review"] else None,
                  "reviewer": x["review"].reviewer_id if x["review"] else None,
                  "comment": x["review"].comment if x["review"] else "",
                  "conditions": x["review"].conditions if x["review"] else {},
                  "at": x["review"].decided_at.isoformat(timespec="minutes") if x["review"] else None}
                 for x in reviewers]
    trail = [{"seq": e.seq, "at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "action": e.action,
              "method": (e.detail or {}).get("auth", {}).get("method", "")}
             for e in session.query(AuditEntry).filter(AuditEntry.subject == study_id).order_by(AuditEntry.seq)]
    return {"details": details, "columns": columns, "status": status, "reviewers": reviewers, "trail": trail,
            "requester": req.requester_id, "revoked": bool(req.revoked_at), "withdrawn": bool(req.withdrawn_at)}


def my_requests(session: Session, *, actor: str, now: datetime) -> list[dict[str, Any]]:
    """The requests ``actor`` submitted, newest first, with whether each is active and what it waits for."""
    rows = []
    for req in session.query(Request).filter_by(requester_id=actor).order_by(Request.id.desc()):
        scope = decide(session, req.study_id, at=now)
        rows.append({"study_id": req.study_id, "title": req.title, "output_level": req.output_level.value,
                     "active": scope.active, "reasons": list(scope.reasons)})
    return rows
