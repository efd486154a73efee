"""The signed-in person of a registry session, the registry's mode, and the checks every action makes.

A shell (portal, CLI) signs a person in (:mod:`governance.identity.signin`) and opens the registry bound to
that :class:`Identity` (``registry.signed_in(identity)``). Every session of that registry carries it in
``session.info[IDENTITY]``: :func:`governance.registry.permissions.permission_problem` refuses an action whose
actor is anyone else, and :func:`governance.registry.audit.append` records in every entry who authenticated
and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from governance.identity.policy import RECENT_SIGN_IN
from governance.registry import audit
from governance.registry.errors import GovernanceError
from governance.registry.models import Account, RegistrySetting

__all__ = ["DEMO_AS", "IDENTITY", "MODES", "Identity", "acting_problem", "registry_mode", "require_recent_sign_in",
           "set_registry_mode"]

IDENTITY = audit.IDENTITY
#: the method of an identity claimed with ``--as`` on a demo registry: nobody authenticated it
DEMO_AS = "demo-as"
MODES = ("demo", "production")


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Identity:
    """A signed-in person: their user id, how they signed in (``password+totp``, ``oidc``, ``email-link``,
    or ``demo-as``), the subject the authenticator vouched for, when, and the session (a short id)."""

    user_id: str
    method: str
    subject: str
    authenticated_at: datetime
    session: str = ""
    kind: str = "web"

    def audit_detail(self) -> dict[str, Any]:
        return {"subject": self.subject[:300], "method": self.method, "signed_in_at": audit._ts(self.authenticated_at),
                "session": self.session, "via": self.kind}

    @classmethod
    def demo(cls, user_id: str, now: datetime) -> "Identity":
        """``--as`` on a demo registry: a claim, recorded as such (``demo-as``), never an authentication."""
        return cls(user_id, DEMO_AS, f"claimed:{user_id}", now, "", "cli")


def registry_mode(session: Session, *, diagnostic: bool = False) -> str:
    """``demo`` or ``production``. A registry without a mode, or whose mode row is not as audited, is production
    (fail closed: only a registry created in demo mode accepts ``--as``).

    ``diagnostic``: for an action that must work on a broken chain (``roles.DIAGNOSTIC``: verifying it), a mode
    row that is doubted only because the chain no longer verifies is taken as it stands, so the break can be
    reported; every other action on that chain is refused anyway.
    """
    row = session.get(RegistrySetting, "mode")
    if row is None or row.value not in MODES:
        return "production"
    bad = audit.row_problems(session, [row])
    if bad and not (diagnostic and bad[0].startswith("the audit chain does not verify")):
        return "production"
    return row.value


def set_registry_mode(session: Session, mode: str, *, actor: str, now: datetime) -> str:
    """Set the mode when the registry is created; afterwards only demo → production (a tightening) is allowed.

    Returns the mode in force. Raises GovernanceError for an unknown mode or a loosening.
    """
    if mode not in MODES:
        raise GovernanceError(f"mode: {str(mode)[:20]!r} is not demo or production")
    row = session.get(RegistrySetting, "mode")
    if row is not None and row.value == mode:
        return mode
    if row is not None and mode == "demo":
        raise GovernanceError("mode: a production registry never becomes a demo registry (--as would then work)")
    if row is None:
        row = RegistrySetting(key="mode", value=mode)
        session.add(row)
    else:
        row.value = mode
    session.flush()
    audit.append(session, actor=actor, action="registry.mode", subject="registry", at=now, detail={"mode": mode},
                 rows=[row])
    return mode


def acting_problem(session: Session, actor: str, *, diagnostic: bool = False) -> str:
    """Why ``actor`` may not act in this session ("" when they may): nobody signed in outside demo mode, a
    different person signed in, a ``--as`` claim on a production registry, or a removed account."""
    ident: Identity | None = session.info.get(IDENTITY)
    if ident is None:
        if registry_mode(session, diagnostic=diagnostic) == "demo":
            return ""
        return (f"nobody is signed in, so nobody can act as {str(actor)[:64]!r}: sign in (`vpdc login`, or the "
                "portal); --as works only on a registry created in demo mode")
    if ident.method == DEMO_AS and registry_mode(session, diagnostic=diagnostic) != "demo":
        return "--as works only on a registry created in demo mode: sign in with `vpdc login`"
    if ident.user_id != actor:
        return f"signed in as {ident.user_id}: cannot act as {str(actor)[:64]!r}"
    account = session.get(Account, actor)
    if account is not None and account.removed_at is not None:
        return f"{actor}'s account was removed"
    return ""


def require_recent_sign_in(session: Session, *, now: datetime, what: str) -> None:
    """Decisions need a fresh sign-in (``policy.RECENT_SIGN_IN``).

    Raises:
        GovernanceError: the signed-in person authenticated too long ago (sign in again).
    """
    ident: Identity | None = session.info.get(IDENTITY)
    if ident is None:  # only a demo registry gets here without an identity (permission_problem refused otherwise)
        return
    age = _aware(now) - _aware(ident.authenticated_at)
    if age > RECENT_SIGN_IN:
        minutes = int(RECENT_SIGN_IN.total_seconds() // 60)
        raise GovernanceError(f"{what} needs a sign-in within the last {minutes} minutes; {ident.user_id} signed in "
                              f"{int(age.total_seconds() // 60)} minutes ago: sign in again")
