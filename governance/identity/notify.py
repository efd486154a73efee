"""Who is told what by e-mail: reviewers when a request awaits them, everyone taking part when a decision
changes a request. The message holds the request's title and a link, nothing else (:mod:`.mail`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from governance.identity.mail import MailError, Mailer
from governance.registry import audit
from governance.registry.models import Account, Request, Role, User
from governance.registry.policy import required_reviews

__all__ = ["notify"]


def _recipients(s: Any, req: Request, event: str) -> dict[str, str]:
    partners, community = required_reviews(s, req)
    reviewers = {u.id for u in s.scalars(select(User)) if (u.role == Role.STEWARD and u.partner_id in partners)
                 or (u.role == Role.COMMUNITY_REVIEWER and community)} - {req.requester_id}
    decided = {r.reviewer_id for r in req.reviews}
    wanted = reviewers - decided if event == "awaiting" else reviewers | decided | {req.requester_id}
    out = {}
    for uid in sorted(wanted):
        a = s.get(Account, uid)
        if a is not None and a.email and a.removed_at is None:
            out[uid] = a.email
    return out


def notify(registry: Any, *, study_id: str, event: str, mailer: Mailer | None, base_url: str, now: datetime) -> int:
    """Mail the people ``event`` concerns (``awaiting`` after a submission, ``changed`` after a decision or a
    revocation); returns how many were told. Each message and any failure is audited (user ids, never addresses).
    Without a mailer nothing is sent (and nothing recorded)."""
    if mailer is None:
        return 0
    with registry.read() as s:
        req = s.scalar(select(Request).where(Request.study_id == study_id))
        if req is None:
            return 0
        to, title = _recipients(s, req, event), req.title
    url = f"{base_url.rstrip('/')}/requests/{study_id}"
    sent, failed = [], []
    for uid, address in to.items():
        try:
            mailer.notify(address, title=title, url=url, what=event)
            sent.append(uid)
        except MailError:
            failed.append(uid)
    if sent or failed:
        with registry.transaction() as s:
            audit.append(s, actor="portal", action="notify.sent" if not failed else "notify.failed", subject=study_id,
                         at=now, detail={"event": event, "to": sent, "failed": failed})
    return len(sent)
