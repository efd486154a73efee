"""The one permission check of every registry action: declared in ``roles.ACTIONS``, checked here, refusals audited.

``require(session, actor, action)`` refuses (``PermissionRefused``) when the action declares no permission,
the actor is unknown, the actor's user row is not as audited (a role rewritten in the table grants
nothing), or the actor's role holds none of the action's permissions. Inside ``Registry.transaction`` the
refusal is audited as ``refused.<action>`` even though the action's own transaction rolls back. The actor must
be the person signed in (``Registry.signed_in``; :func:`governance.identity.acting_problem`), or anyone named
with ``--as`` on a registry created in demo mode.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from governance.registry import audit
from governance.registry.errors import PermissionRefused
from governance.registry.models import User
from governance.registry.roles import DIAGNOSTIC, allowed, permissions_for

__all__ = ["REFUSALS", "permission_problem", "record_pending", "require"]

#: session.info key of the refusals a transaction audits after it ends (``Registry.transaction``)
REFUSALS = "vpdc_refusals"


def permission_problem(session: Session, actor: str, action: str) -> tuple[User | None, str]:
    """(the actor's user row, why they may not run ``action``, or "" when they may)."""
    perms = permissions_for(action)
    if not perms:
        return None, (f"the action {action[:64]!r} declares no permission (governance.registry.roles.ACTIONS): "
                      "it cannot run")
    from governance.identity.context import acting_problem  # identity builds on this module

    who = acting_problem(session, actor, diagnostic=action in DIAGNOSTIC)
    if who:
        return session.get(User, actor) if isinstance(actor, str) else None, who
    user = session.get(User, actor)
    if user is None:
        return None, f"unknown user {str(actor)[:64]!r}"
    bad = audit.row_problems(session, [user])
    if bad and not (action in DIAGNOSTIC and bad[0].startswith("the audit chain does not verify")):
        return user, f"{actor}'s user record cannot be trusted: {bad[0]}"
    if not any(allowed(user.role, p) for p in perms):
        role = user.role.value
        return user, (f"{actor} is {'an' if role[0] in 'aeiou' else 'a'} {role}: {action} needs the permission to "
                      + " or to ".join(p.value for p in perms))
    return user, ""


def require(session: Session, actor: str, action: str, *, subject: str = "", now: datetime | None = None) -> User:
    """The actor's user row, if ``action`` is declared and the actor holds one of its permissions.

    Raises:
        PermissionRefused: naming the permission; audited as ``refused.<action>`` (with ``subject``).
    """
    user, problem = permission_problem(session, actor, action)
    if problem:
        exc = PermissionRefused(problem)
        pending = session.info.get(REFUSALS)
        if pending is not None:
            pending.append({"actor": str(actor)[:64], "action": f"refused.{action}"[:64],
                            "subject": str(subject or action)[:128], "reason": problem[:2000],
                            "at": now or datetime.now(UTC)})
            exc.audited = True
        raise exc
    return user


def record_pending(session: Session, pending: list[dict]) -> None:
    """Append the refusals collected in ``pending`` (then forget them)."""
    for r in pending:
        audit.append(session, actor=r["actor"], action=r["action"], subject=r["subject"], at=r["at"],
                     detail={"reason": r["reason"]})
    pending.clear()
