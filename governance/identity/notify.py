"""Who is told what by e-mail: reviewers when a request awaits them, everyone taking part when a decision
changes a request; output checkers when a release awaits their check, its requester when the checking ends.
The message holds the request's title and a link, nothing else (:mod:`.mail`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from governance.identity.mail import Mailer, MailError
from governance.registry import audit
from governance.registry.models import Account, Release, Request, Role, User
from governance.registry.policy import required_reviews
from governance.registry.roles import Permission, allowed

__all__ = ["notify", "notify_release"]


def _addresses(s: Any, users: set[str]) -> dict[str, str]:
    out = {}
    for uid in sorted(users):
        a = s.get(Account, uid)
        if a is not None and a.email and a.removed_at is None:
            out[uid] = a.email
    return out


def _recipients(s: Any, req: Request, event: str) -> dict[str, str]:
    partners, community = required_reviews(s, req)
    reviewers = {u.id for u in s.scalars(select(User)) if (u.role == Role.STEWARD and u.partner_id in partners)
                 or (u.role == Role.COMMUNITY_REVIEWER and community)} - {req.requester_id}
    decided = {r.reviewer_id for r in req.reviews}
    wanted = reviewers - decided if event == "awaiting" else reviewers | decided | {req.requester_id}
    return _addresses(s, wanted)


def _send(registry: Any, *, to: dict[str, str], title: str, url: str, event: str, subject: str, mailer: Mailer,
          now: datetime) -> int:
    sent, failed = [], []
    for uid, address in to.items():
        try:
            mailer.notify(address, title=title, url=url, what=event)
            sent.append(uid)
        except MailError:
            failed.append(uid)
    if sent or failed:
        with registry.transaction() as s:
            audit.append(s, actor="portal", action="notify.sent" if not failed else "notify.failed", subject=subject,
                         at=now, detail={"event": event, "to": sent, "failed": failed})
    return len(sent)


def notify(registry: Any, *, study_id: str, event: str, mailer: Mailer | None, base_url: str, now: datetime) -> int:
    """Mail the people ``event`` concerns (``awaiting`` after a submission, ``changed`` after a decision or a
    revocation); returns how many were told. Each message and any failure is audited (user ids, never addresses).
    Without a mailer nothing is sent (and nothing recorded). A mail server that fails never undoes the action."""
    if mailer is None:
        return 0
    with registry.read() as s:
        req = s.scalar(select(Request).where(Request.study_id == study_id))
        if req is None:
            return 0
        to, title = _recipients(s, req, event), req.title
    return _send(registry, to=to, title=title, url=f"{base_url.rstrip('/')}/requests/{study_id}", event=event,
                 subject=study_id, mailer=mailer, now=now)


def notify_release(registry: Any, *, release_id: int, event: str, mailer: Mailer | None, base_url: str,
                   now: datetime) -> int:
    """``check``: a release awaits output checking: mail everyone who may check it (the output-checking permission,
    not its requester) and has not yet. ``checked``: its checking ended (approved, changes asked, rejected): mail
    its requester. Returns how many were told; audited as :func:`notify` is."""
    from governance.outputs.checking import check_status

    if mailer is None:
        return 0
    with registry.read() as s:
        rel = s.get(Release, release_id)
        req = s.scalar(select(Request).where(Request.study_id == rel.study_id)) if rel is not None else None
        if rel is None or req is None:
            return 0
        if event == "check":
            done = {d["checker"] for d in check_status(s, rel)["decisions"]}
            wanted = {u.id for u in s.scalars(select(User)) if allowed(u.role, Permission.OUTPUT_CHECK)} \
                - {rel.actor, req.requester_id} - done
            url = f"{base_url.rstrip('/')}/checks/{rel.id}"
        else:
            wanted, url = {rel.actor}, f"{base_url.rstrip('/')}/outputs"
        to, title = _addresses(s, wanted), req.title
    return _send(registry, to=to, title=title, url=url, event=event, subject=rel.study_id, mailer=mailer, now=now)
