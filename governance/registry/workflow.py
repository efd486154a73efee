"""State-changing actions of the registry. Each is keyword-only, checks its declared permission first
(:func:`governance.registry.permissions.require`: a refusal is audited by the registry itself), and writes its
audit entry in the same transaction as the change, binding the rows it wrote to that entry (ADR 0007). Any
other refusal raises ``GovernanceError`` and the caller records it with :func:`record_refusal` or runs the
action through :func:`guarded` (in its own transaction, since the refused one rolls back)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.identity.context import require_recent_sign_in
from governance.registry import audit
from governance.registry.errors import GovernanceError
from governance.registry.models import (
    AuditEntry,
    DatasetColumn,
    Decision,
    OutputLevel,
    Request,
    Review,
)
from governance.registry.permissions import require
from governance.registry.policy import required_reviews
from governance.registry.roles import Permission, allowed

#: The fields of a request file (``vpdc request submit --file``).
REQUEST_FIELDS = ("study_id", "title", "organisation", "purpose", "research_questions", "columns", "output_level",
                  "irb_protocol", "irb_expires_on", "retention_end", "equity_communities",
                  "equity_return_of_findings", "equity_mitigation")

__all__ = ["FIELD_LIMITS", "REQUEST_FIELDS", "GovernanceError", "column_refs", "guarded", "mark_destroyed",
           "record_ingest", "record_refusal", "review_request", "revoke_request", "submit_request", "withdraw_request"]

#: Longest accepted text per request field (characters). Longer input is refused, never truncated.
FIELD_LIMITS = {"title": 300, "organisation": 300, "purpose": 20_000, "research_questions": 20_000,
                "irb_protocol": 128, "equity_communities": 20_000, "equity_return_of_findings": 20_000,
                "equity_mitigation": 20_000, "comment": 20_000}
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")


def _request(session: Session, study_id: str) -> Request:
    req = session.scalar(select(Request).where(Request.study_id == study_id))
    if req is None:
        raise GovernanceError(f"no request with study id {study_id!r}")
    return req


def _text(name: str, value: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise GovernanceError(f"{name}: must be text")
    if "\x00" in value:
        raise GovernanceError(f"{name}: contains a NUL character")
    if required and not value.strip():
        raise GovernanceError(f"{name}: is required")
    if len(value) > FIELD_LIMITS[name]:
        raise GovernanceError(f"{name}: {len(value):,} characters, limit {FIELD_LIMITS[name]:,}")
    return value


def submit_request(session: Session, *, requester: str, now: datetime, study_id: str, title: str, organisation: str,
                   purpose: str, research_questions: str, columns: list[dict[str, str]], output_level: OutputLevel | str,
                   irb_protocol: str, irb_expires_on: date, retention_end: date, equity_communities: str,
                   equity_return_of_findings: str, equity_mitigation: str) -> Request:
    """Submit a data request. Text is stored verbatim (parameterised SQL; escaped wherever shown)."""
    require(session, requester, "request.submit", subject=str(study_id)[:64], now=now)
    if not isinstance(study_id, str) or not _STUDY_ID.fullmatch(study_id):
        raise GovernanceError("study_id: 3-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if session.scalar(select(Request).where(Request.study_id == study_id)) is not None:
        raise GovernanceError(f"study_id: {study_id} already exists")
    texts = {k: _text(k, v) for k, v in dict(title=title, organisation=organisation, purpose=purpose,
                                             research_questions=research_questions, irb_protocol=irb_protocol,
                                             equity_communities=equity_communities,
                                             equity_return_of_findings=equity_return_of_findings,
                                             equity_mitigation=equity_mitigation).items()}
    try:
        level = OutputLevel(output_level)
    except (ValueError, TypeError):
        raise GovernanceError(f"output_level: {str(output_level)[:40]!r} is not one of "
                              f"{', '.join(o.value for o in OutputLevel)}") from None
    if not isinstance(columns, list) or not columns:
        raise GovernanceError("columns: a non-empty list of {\"dataset\": ..., \"column\": ...} is required")
    for name, d in (("irb_expires_on", irb_expires_on), ("retention_end", retention_end)):
        if not isinstance(d, date):
            raise GovernanceError(f"{name}: must be a date (YYYY-MM-DD)")
    clean = []
    for i, c in enumerate(columns, 1):
        if not isinstance(c, dict) or not isinstance(c.get("dataset"), str) or not isinstance(c.get("column"), str):
            raise GovernanceError(f"columns: item {i} must be {{\"dataset\": text, \"column\": text}}")
        d, col = c["dataset"], c["column"]
        if "\x00" in d + col or len(d) > 64 or len(col) > 128:  # PostgreSQL takes no NUL: refuse before asking
            raise GovernanceError(f"columns: item {i} is not a catalogue name (NUL character or too long)")
        if session.scalar(select(DatasetColumn).where(DatasetColumn.dataset_id == d, DatasetColumn.name == col)) is None:
            raise GovernanceError(f"columns: {d[:64]}.{col[:64]} is not in the catalogue")
        clean.append({"dataset": d, "column": col})
    if retention_end < now.date() or irb_expires_on < now.date():
        raise GovernanceError("irb_expires_on and retention_end must not be in the past")
    req = Request(study_id=study_id, requester_id=requester, output_level=level, columns=clean,
                  irb_expires_on=irb_expires_on, retention_end=retention_end, submitted_at=now, **texts)
    session.add(req)
    session.flush()
    partners, community = required_reviews(session, req)
    audit.append(session, actor=requester, action="request.submitted", subject=study_id, at=now,
                 detail={"output_level": level.value, "columns": len(clean), "partners": sorted(partners),
                         "community_review": community}, rows=[req])
    return req


def review_request(session: Session, *, reviewer: str, study_id: str, decision: Decision | str, now: datetime,
                   conditions: dict[str, Any] | None = None, comment: str = "") -> Review:
    """Record a steward's or community reviewer's decision (approve, approve with conditions, deny).

    A reviewer holding the steward's permission reviews for their agency (``partner:<id>``), one holding the
    community's for the community; the permission decides, not the role's name.
    """
    user = require(session, reviewer, "review", subject=str(study_id)[:64], now=now)
    require_recent_sign_in(session, now=now, what="a decision")
    req = _request(session, study_id)
    if reviewer == req.requester_id:
        raise GovernanceError(f"{reviewer} cannot review their own request {study_id}")
    if req.withdrawn_at or req.revoked_at:
        raise GovernanceError(f"{study_id} is {'withdrawn' if req.withdrawn_at else 'revoked'}: no further reviews")
    try:
        decision = Decision(decision)
    except ValueError:
        raise GovernanceError(f"decision: {decision!r} is not approve, approve_with_conditions or deny") from None
    partners, _ = required_reviews(session, req)
    if allowed(user.role, Permission.REVIEW_AS_STEWARD):
        if user.partner_id not in partners:
            raise GovernanceError(f"{reviewer} stewards {user.partner_id}, whose data {study_id} does not use")
        capacity = f"partner:{user.partner_id}"
    else:  # require() let them in: they hold REVIEW_AS_COMMUNITY
        capacity = "community"
    conditions = dict(conditions or {})
    unknown = set(conditions) - {"remove_columns", "aggregate_only"}
    if unknown:
        raise GovernanceError(f"conditions: unknown keys {sorted(unknown)}")
    requested = {(c["dataset"], c["column"]) for c in req.columns}
    for c in conditions.get("remove_columns", []):
        if (c.get("dataset"), c.get("column")) not in requested:
            raise GovernanceError(f"conditions: {c.get('dataset')}.{c.get('column')} is not a requested column")
    if decision == Decision.APPROVE_WITH_CONDITIONS and not conditions:
        raise GovernanceError("approve_with_conditions needs conditions (remove_columns and/or aggregate_only)")
    review = Review(request_id=req.id, reviewer_id=reviewer, capacity=capacity, decision=decision,
                    conditions=conditions, comment=_text("comment", comment, required=False), decided_at=now)
    session.add(review)
    session.flush()
    audit.append(session, actor=reviewer, action=f"review.{decision.value}", subject=study_id, at=now,
                 detail={"capacity": capacity, "conditions": conditions}, rows=[review])
    return review


def withdraw_request(session: Session, *, actor: str, study_id: str, now: datetime) -> None:
    """Withdraw one's own request; every gate refuses it from ``now`` on."""
    require(session, actor, "request.withdraw", subject=str(study_id)[:64], now=now)
    req = _request(session, study_id)
    if actor != req.requester_id:
        raise GovernanceError(f"only the requester ({req.requester_id}) can withdraw {study_id}")
    req.withdrawn_at = now
    audit.append(session, actor=actor, action="request.withdrawn", subject=study_id, at=now, rows=[req])


def revoke_request(session: Session, *, actor: str, study_id: str, now: datetime, reason: str) -> None:
    """Revoke at once: every gate refuses from ``now`` on (it reads the revocation from the audit chain, so
    clearing it in the table revokes nothing back)."""
    user = require(session, actor, "request.revoke", subject=str(study_id)[:64], now=now)
    require_recent_sign_in(session, now=now, what="a revocation")
    req = _request(session, study_id)
    partners, _ = required_reviews(session, req)
    if allowed(user.role, Permission.REVIEW_AS_STEWARD) and user.partner_id not in partners:
        raise GovernanceError(f"{actor} cannot revoke {study_id}: only its stewards and community reviewers can")
    if req.revoked_at is not None:  # one revocation, one outcome: the first stands (who and when)
        raise GovernanceError(f"{study_id} is already revoked (by {req.revoked_by})")
    req.revoked_at, req.revoked_by = now, actor
    audit.append(session, actor=actor, action="request.revoked", subject=study_id, at=now,
                 detail={"reason": _text("comment", reason)[:2000]}, rows=[req])


def mark_destroyed(session: Session, *, actor: str, study_id: str, now: datetime, detail: dict[str, Any]) -> None:
    req = _request(session, study_id)
    req.destroyed_at = now
    audit.append(session, actor=actor, action="study.destroyed", subject=study_id, at=now, detail=detail, rows=[req])


def record_refusal(registry: Any, *, actor: str, action: str, subject: str, reason: str, now: datetime) -> None:
    """Audit a refused action in its own transaction (the refused one was rolled back)."""
    with registry.transaction() as s:
        audit.append(s, actor=str(actor)[:64], action=f"refused.{action}", subject=str(subject)[:128], at=now,
                     detail={"reason": reason[:2000]})


def guarded(registry: Any, *, actor: str, action: str, subject: str, now: datetime, fn: Any) -> Any:
    """Run ``fn(session)`` in a transaction; a refusal (``GovernanceError``) is audited, then re-raised.

    The one way every shell (CLI, Dagster, portal) performs a registry action.
    """
    try:
        with registry.transaction() as s:
            return fn(s)
    except GovernanceError as exc:
        if not getattr(exc, "audited", False):  # a permission refusal was audited by the registry already
            record_refusal(registry, actor=actor, action=action, subject=subject, reason=str(exc), now=now)
        raise


def column_refs(refs: list[str]) -> list[dict[str, str]]:
    """``["dataset.column", ...]`` as ``[{"dataset": ..., "column": ...}]``.

    Raises:
        GovernanceError: an item is not ``dataset.column``.
    """
    out = []
    for ref in refs:
        dataset, dot, column = str(ref).partition(".")
        if not dot or not dataset or not column:
            raise GovernanceError(f"{str(ref)[:80]!r}: expected dataset.column")
        out.append({"dataset": dataset, "column": column})
    return out


def record_ingest(registry: Any, outcome: dict[str, Any], now: datetime) -> None:
    """Audit one landing-zone outcome: ``ingest.loaded``, or ``refused.ingest`` with the failed check.

    ``outcome`` is :meth:`landing.ingest.IngestOutcome.as_dict`: file name, envelope id, partner, extract,
    period, row count, check name and a detail made of counts and column names (never record values).
    """
    loaded = outcome.get("status") == "loaded"
    detail = {k: outcome.get(k) for k in ("envelope_id", "partner", "extract_type", "period", "rows", "arrived_in",
                                          "event_id")}
    if not loaded:
        detail |= {"check": outcome.get("check"), "reason": str(outcome.get("detail") or "")[:2000]}
    action = "ingest.loaded" if loaded else "refused.ingest"
    with registry.transaction() as s:
        # idempotent per landing event: the landing zone audits again an outcome a crash left unaudited, and
        # the crash may have come after this entry was committed
        if outcome.get("event_id") and s.scalar(select(AuditEntry.seq).where(
                AuditEntry.action == action,
                AuditEntry.detail["event_id"].as_string() == str(outcome["event_id"])).limit(1)) is not None:
            return
        audit.append(s, actor="landing", action=action, subject=str(outcome.get("file") or "")[:128], at=now,
                     detail=detail)
