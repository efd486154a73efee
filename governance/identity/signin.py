"""Sign-in and accounts: local accounts (argon2id + TOTP, lockout), OpenID Connect subjects, e-mailed single-use
links, sessions of the portal and the CLI, and the administrators' actions on users and agreements.

Every function takes the registry and the clock (``now``) and audits what it does: a sign-in
(``auth.signed_in``, with the method), a refusal (``refused.sign_in``, with why — never a password, code or
token), a lockout (``auth.locked``), a sign-out, each administrator's change (bound to the rows it wrote, so
a password hash swapped in the table is refused at the next sign-in). Tokens (sessions, links, CLI codes)
are random, shown once, and stored only as a keyed digest (HMAC with a key derived from the audit key), so a
row inserted by someone who can write the database but holds no key opens nothing.

A refusal says the same thing whatever was wrong (user name, password or code), so it tells nobody which
accounts exist; the audit entry says exactly what.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from governance.identity.context import Identity, _aware
from governance.identity.policy import (
    CLI_CODE_TTL,
    CLI_TOKEN,
    LINK_TTL,
    LOCKOUT,
    MAX_FAILURES,
    MAX_OPEN_LINKS,
    PASSWORD_MAX,
    PASSWORD_MIN,
    WEB_ABSOLUTE,
    WEB_IDLE,
)
from governance.registry import audit
from governance.registry.errors import GovernanceError
from governance.registry.models import (
    Account,
    Agreement,
    AuthSession,
    Partner,
    Role,
    SignInFailures,
    SignInLink,
    User,
)
from governance.registry.permissions import require

__all__ = ["PASSWORD_TOTP", "SignInRefused", "add_agreement", "add_user", "cli_code", "end_session",
           "exchange_cli_code", "link_sign_in", "oidc_sign_in", "password_sign_in", "remove_user",
           "request_sign_in_link", "session_identity", "set_credentials", "totp_uri", "users"]

PASSWORD_TOTP, OIDC, EMAIL_LINK = "password+totp", "oidc", "email-link"
#: what a person is told whenever a password sign-in fails, whatever the cause (the audit says which)
WRONG = "sign-in refused: the user name, password or code is wrong, or the account is locked; try again later"
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class SignInRefused(GovernanceError):
    """A sign-in was refused (already audited). The message is for the person; it never says which part was wrong."""

    audited = True


# --------------------------------------------------------------------------------------------- keys
def _subkey(session: Session, label: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    master = audit._context(session).key(session, create=True)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vpdc identity v1 " + label.encode()).derive(master)


def token_digest(session: Session, purpose: str, token: str) -> str:
    """Keyed digest of a token (what the registry stores)."""
    return hmac.new(_subkey(session, purpose), token.encode(), hashlib.sha256).hexdigest()


def _seal(session: Session, secret: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return "v1:" + base64.b64encode(nonce + AESGCM(_subkey(session, "totp")).encrypt(nonce, secret.encode(),
                                                                                   b"totp")).decode()


def _unseal(session: Session, sealed: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(sealed.removeprefix("v1:"))
    return AESGCM(_subkey(session, "totp")).decrypt(raw[:12], raw[12:], b"totp").decode()


def _hasher():
    from argon2 import PasswordHasher, Type

    return PasswordHasher(type=Type.ID)  # argon2id, RFC 9106 parameters (t=3, m=64 MiB, p=4)


# ---------------------------------------------------------------------------------------- checks
def check_password(password: Any, *, field: str = "password") -> str:
    """ASVS 2.1: at least PASSWORD_MIN characters, at most PASSWORD_MAX, any characters (spaces, Unicode)."""
    if not isinstance(password, str):
        raise GovernanceError(f"{field}: must be text")
    if len(password) < PASSWORD_MIN or len(password) > PASSWORD_MAX:
        raise GovernanceError(f"{field}: {PASSWORD_MIN} to {PASSWORD_MAX} characters (got {len(password)})")
    if "\x00" in password:
        raise GovernanceError(f"{field}: contains a NUL character")
    return password


def _check_email(email: Any) -> str:
    if not isinstance(email, str) or not _EMAIL.fullmatch(email):
        raise GovernanceError("email: expected one address such as name@example.org")
    return email.lower()


def _check_oidc(issuer: Any, subject: Any) -> tuple[str, str]:
    if not isinstance(issuer, str) or not re.fullmatch(r"https?://[^\s]{1,290}", issuer):
        raise GovernanceError("oidc_issuer: expected the identity provider's issuer URL (https://...)")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255 or "\x00" in subject:
        raise GovernanceError("oidc_subject: the user's subject (sub) at the identity provider, 1-255 characters")
    return issuer.rstrip("/"), subject


def totp_uri(secret: str, user_id: str) -> str:
    """The otpauth:// URI an authenticator app reads (shown once, when the second factor is set)."""
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name="VPDC IDS")


def _refuse(registry: Any, *, who: str, reason: str, now: datetime, subject: str = "sign-in") -> None:
    with registry.transaction() as s:
        audit.append(s, actor=str(who)[:64], action="refused.sign_in", subject=subject[:128], at=now,
                     detail={"reason": reason[:500]})


# --------------------------------------------------------------------------------------- sessions
def _open_session(s: Session, *, user_id: str, method: str, subject: str, kind: str, now: datetime,
                  authenticated_at: datetime | None = None, expires_at: datetime | None = None
                  ) -> tuple[Identity, str]:
    token = secrets.token_urlsafe(32)
    digest = token_digest(s, "session", token)
    auth_at = authenticated_at or now
    end = expires_at or now + (WEB_ABSOLUTE if kind == "web" else CLI_TOKEN)
    s.add(AuthSession(digest=digest, user_id=user_id, kind=kind, method=method, subject=subject[:600],
                      created_at=now, authenticated_at=auth_at, last_seen_at=now, expires_at=end))
    ident = Identity(user_id, method, subject, auth_at, digest[:12], kind)
    s.info[audit.IDENTITY] = ident
    audit.append(s, actor=user_id, action="auth.signed_in", subject=user_id, at=now,
                 detail={"method": method, "kind": kind, "expires_at": audit._ts(end)})
    return ident, token


def _usable(s: Session, user_id: str) -> tuple[User | None, Account | None, str]:
    """The user and account, and why they cannot sign in ("" when they can)."""
    user, account = s.get(User, user_id), s.get(Account, user_id)
    if user is None or account is None:
        return user, account, "no such account"
    if account.removed_at is not None:
        return user, account, "account removed"
    bad = audit.row_problems(s, [user, account])
    if bad and not bad[0].startswith("the audit chain does not verify"):
        # a broken chain still lets people sign in, to verify and report it: every other action refuses on it
        return user, account, f"account not as audited: {bad[0]}"
    return user, account, ""


def session_identity(registry: Any, *, token: str, now: datetime, kind: str = "web") -> tuple[Identity | None, str]:
    """The person a session token belongs to, or (None, why): unknown, ended, idle too long (web), expired,
    or an account since removed. A live web session's idle clock restarts (at most once a minute)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None, "not signed in"
    with registry.transaction() as s:
        row = s.get(AuthSession, token_digest(s, "session", token))
        if row is None or row.kind != kind:
            return None, "not signed in"
        if row.ended_at is not None:
            return None, "signed out"
        if _aware(now) >= _aware(row.expires_at):
            return None, "session expired"
        if kind == "web" and _aware(now) - _aware(row.last_seen_at) > WEB_IDLE:
            row.ended_at = now
            audit.append(s, actor=row.user_id, action="auth.session_expired", subject=row.user_id, at=now,
                         detail={"kind": kind, "idle": True})
            return None, "session expired (idle)"
        _, _, problem = _usable(s, row.user_id)
        if problem:
            return None, problem
        if (_aware(now) - _aware(row.last_seen_at)).total_seconds() > 60:
            row.last_seen_at = now
        return Identity(row.user_id, row.method, row.subject, _aware(row.authenticated_at), row.digest[:12],
                        row.kind), ""


def end_session(registry: Any, *, token: str, now: datetime) -> bool:
    """Sign out: the session ends at once (audited). Returns whether a live session was ended."""
    with registry.transaction() as s:
        row = s.get(AuthSession, token_digest(s, "session", token)) if token else None
        if row is None or row.ended_at is not None:
            return False
        row.ended_at = now
        audit.append(s, actor=row.user_id, action="auth.signed_out", subject=row.user_id, at=now,
                     detail={"kind": row.kind})
        return True


# ---------------------------------------------------------------------------------- password + TOTP
def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    import pyotp

    if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code.strip()):
        return None
    totp, step = pyotp.TOTP(secret), int(_aware(now).timestamp()) // 30
    for off in (0, -1, 1):  # the current step, and one either side for clock drift
        if hmac.compare_digest(totp.at(_aware(now).timestamp() + off * 30), code.strip()):
            return step + off
    return None


def password_sign_in(registry: Any, *, user_id: str, password: str, code: str, now: datetime,
                     kind: str = "web") -> tuple[Identity, str]:
    """Sign in with a password (argon2id) and a TOTP code; returns the identity and a session token.

    MAX_FAILURES wrong attempts in a row lock the account for LOCKOUT (audited as ``auth.locked``); a TOTP
    code is accepted once only.

    Raises:
        SignInRefused: the same message whatever was wrong (audited with the actual reason).
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    claimed = str(user_id or "").replace("\x00", "\ufffd")[:64]  # no NUL reaches the database (PostgreSQL refuses it)
    with registry.read() as s:
        _, account, problem = _usable(s, claimed)
        failures = s.get(SignInFailures, claimed)
        if not problem and failures is not None and failures.locked_until and _aware(now) < _aware(failures.locked_until):
            problem = "account locked"
        if not problem and not (account.password_hash and account.totp_secret):
            problem = "no password and second factor set"
        ok_password = step = None
        if not problem:
            try:
                ok_password = isinstance(password, str) and len(password) <= PASSWORD_MAX and \
                    _hasher().verify(account.password_hash, password)
            except (VerificationError, InvalidHashError):
                ok_password = False
            step = _totp_step(_unseal(s, account.totp_secret), code, now) if ok_password else None
            if not ok_password:
                problem = "wrong password"
            elif step is None:
                problem = "wrong second-factor code"
            elif failures is not None and failures.totp_last_step is not None and step <= failures.totp_last_step:
                problem = "second-factor code already used"
    if problem:
        with registry.transaction() as s:
            locked = False
            if problem in ("wrong password", "wrong second-factor code", "second-factor code already used"):
                f = s.get(SignInFailures, claimed, with_for_update=True)
                if f is None:
                    f = SignInFailures(user_id=claimed, failures=0)
                    s.add(f)
                f.failures += 1
                if f.failures >= MAX_FAILURES:
                    f.locked_until, f.failures, locked = now + LOCKOUT, 0, True
            who = claimed if problem not in ("no such account",) else "anonymous"
            audit.append(s, actor=who, action="refused.sign_in", subject=claimed or "sign-in", at=now,
                         detail={"reason": problem, "method": PASSWORD_TOTP})
            if locked:
                audit.append(s, actor=claimed, action="auth.locked", subject=claimed, at=now,
                             detail={"until": audit._ts(now + LOCKOUT), "after_failures": MAX_FAILURES})
        raise SignInRefused(WRONG)
    with registry.transaction() as s:
        f = s.get(SignInFailures, claimed, with_for_update=True)
        if f is None:
            f = SignInFailures(user_id=claimed, failures=0)
            s.add(f)
        if f.totp_last_step is not None and step <= f.totp_last_step:  # the same code raced in twice
            audit.append(s, actor=claimed, action="refused.sign_in", subject=claimed, at=now,
                         detail={"reason": "second-factor code already used", "method": PASSWORD_TOTP})
            replay = True
        else:
            f.failures, f.locked_until, f.totp_last_step, replay = 0, None, step, False
            result = _open_session(s, user_id=claimed, method=PASSWORD_TOTP, subject=f"local:{claimed}", kind=kind,
                                   now=now)
    if replay:
        raise SignInRefused(WRONG)
    return result


# ------------------------------------------------------------------------------------------ OIDC
def oidc_sign_in(registry: Any, *, issuer: str, subject: str, now: datetime, kind: str = "web") -> tuple[Identity, str]:
    """Sign in the account an administrator linked to (issuer, subject). The ID token was verified by the shell
    (:mod:`governance.identity.oidc`); no account is ever made from a token alone.

    Raises:
        SignInRefused: no active account is linked to this subject (audited).
    """
    issuer = str(issuer).rstrip("/")
    with registry.read() as s:
        account = s.scalar(select(Account).where(Account.oidc_issuer == issuer, Account.oidc_subject == subject))
        user_id = account.user_id if account is not None else None
        problem = _usable(s, user_id)[2] if user_id else "no account linked to this identity-provider subject"
    if problem:
        _refuse(registry, who=user_id or "anonymous", reason=f"{problem} (oidc)", now=now,
                subject=user_id or f"oidc:{str(subject)[:100]}")
        raise SignInRefused("sign-in refused: your identity provider vouched for you, but no active account here is "
                            "linked to you; ask an administrator")
    with registry.transaction() as s:
        return _open_session(s, user_id=user_id, method=OIDC, subject=f"{issuer} {subject}", kind=kind, now=now)


# ------------------------------------------------------------------------------------ e-mail links
def request_sign_in_link(registry: Any, *, email: str, now: datetime,
                         send: Callable[[str, str, str], None]) -> bool:
    """Make a single-use link for the account with this e-mail address and hand it to ``send(user_id, address,
    token)``. Returns whether one was sent; a shell says the same either way (nobody learns who has an account).
    At most MAX_OPEN_LINKS unused links per person are open at once.
    """
    try:
        address = _check_email(email)
    except GovernanceError:
        return False
    with registry.transaction() as s:
        account = s.scalar(select(Account).where(Account.email == address))
        problem = _usable(s, account.user_id)[2] if account is not None else "no account with this address"
        if not problem:
            open_links = s.scalars(select(SignInLink).where(
                SignInLink.user_id == account.user_id, SignInLink.purpose == "email",
                SignInLink.used_at.is_(None))).all()
            if sum(_aware(x.expires_at) > _aware(now) for x in open_links) >= MAX_OPEN_LINKS:
                problem = "too many unused links"
        if problem:
            audit.append(s, actor=account.user_id if account is not None else "anonymous",
                         action="refused.sign_in_link", subject=account.user_id if account is not None else "sign-in",
                         at=now, detail={"reason": problem})
            return False
        token = secrets.token_urlsafe(32)
        s.add(SignInLink(digest=token_digest(s, "link", token), user_id=account.user_id, purpose="email",
                         created_at=now, expires_at=now + LINK_TTL))
        audit.append(s, actor=account.user_id, action="auth.link_sent", subject=account.user_id, at=now,
                     detail={"expires_at": audit._ts(now + LINK_TTL)})
        user_id = account.user_id
    send(user_id, address, token)
    return True


def _use_link(s: Session, token: str, purpose: str, now: datetime) -> SignInLink | None:
    """Mark the link used, once: the conditional UPDATE is the single-use guarantee, even under concurrency."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    digest = token_digest(s, "link", token)
    used = s.execute(update(SignInLink).where(SignInLink.digest == digest, SignInLink.purpose == purpose,
                                              SignInLink.used_at.is_(None), SignInLink.expires_at > now)
                     .values(used_at=now))
    return s.get(SignInLink, digest) if used.rowcount == 1 else None


def link_sign_in(registry: Any, *, token: str, now: datetime, kind: str = "web") -> tuple[Identity, str]:
    """Sign in with an e-mailed link: valid once, for LINK_TTL.

    Raises:
        SignInRefused: unknown, used or expired link, or account removed (audited).
    """
    with registry.transaction() as s:
        link = _use_link(s, token, "email", now)
        problem = "link unknown, used or expired" if link is None else _usable(s, link.user_id)[2]
        if not problem:
            return _open_session(s, user_id=link.user_id, method=EMAIL_LINK, subject=f"email-link:{link.user_id}",
                                 kind=kind, now=now)
    _refuse(registry, who=link.user_id if link else "anonymous", reason=problem, now=now)
    raise SignInRefused("this sign-in link cannot be used: it was used already, has expired, or is not ours; "
                        "ask for a new one")


# -------------------------------------------------------------------------------------- CLI codes
def cli_code(registry: Any, *, token: str, now: datetime) -> str:
    """A one-time code (CLI_CODE_TTL) that ``vpdc login --code`` exchanges for a CLI token of the same person,
    sign-in method and sign-in time as this portal session.

    Raises:
        SignInRefused: the portal session is not live.
    """
    ident, why = session_identity(registry, token=token, now=now)
    if ident is None:
        raise SignInRefused(f"sign in to the portal first ({why})")
    code = secrets.token_urlsafe(18)
    with registry.transaction() as s:
        s.add(SignInLink(digest=token_digest(s, "link", code), user_id=ident.user_id, purpose="cli",
                         session_digest=token_digest(s, "session", token), created_at=now,
                         expires_at=now + CLI_CODE_TTL))
        s.info[audit.IDENTITY] = ident
        audit.append(s, actor=ident.user_id, action="auth.cli_code", subject=ident.user_id, at=now,
                     detail={"expires_at": audit._ts(now + CLI_CODE_TTL)})
    return code


def exchange_cli_code(registry: Any, *, code: str, now: datetime) -> tuple[Identity, str, datetime]:
    """Exchange a one-time code for a CLI token (CLI_TOKEN at most, never beyond the portal session's end).

    Raises:
        SignInRefused: unknown, used or expired code, or the portal session has ended (audited).
    """
    with registry.transaction() as s:
        link = _use_link(s, str(code or "").strip(), "cli", now)
        web = s.get(AuthSession, link.session_digest) if link is not None and link.session_digest else None
        if link is None:
            problem = "code unknown, used or expired"
        elif web is None or web.ended_at is not None or _aware(web.expires_at) <= _aware(now):
            problem = "the portal session it came from has ended"
        else:
            problem = _usable(s, link.user_id)[2]
        if not problem:
            end = min(_aware(now) + CLI_TOKEN, _aware(web.expires_at))
            ident, token = _open_session(s, user_id=link.user_id, method=web.method, subject=web.subject, kind="cli",
                                         now=now, authenticated_at=_aware(web.authenticated_at), expires_at=end)
            return ident, token, end
    _refuse(registry, who=link.user_id if link else "anonymous", reason=problem, now=now)
    raise SignInRefused("this code cannot be used: it was used already, has expired, or its portal session ended; "
                        "get a new one from the portal's 'Command line' page")


# ---------------------------------------------------------------------------------- administrators
def _account(s: Session, user_id: str) -> Account:
    account = s.get(Account, user_id)
    if account is None:
        account = Account(user_id=user_id)
        s.add(account)
    return account


def _apply_credentials(s: Session, account: Account, *, email: str | None, password: str | None, totp: bool,
                       oidc_issuer: str | None, oidc_subject: str | None) -> dict[str, Any]:
    """Set what is given; returns {"totp_secret": ...} when a new second factor was made (shown once)."""
    import pyotp

    out: dict[str, Any] = {}
    if email is not None:
        address = _check_email(email) if email else None
        if address and s.scalar(select(Account).where(Account.email == address, Account.user_id != account.user_id)):
            raise GovernanceError("email: another account uses this address")
        account.email = address
    if password is not None:
        account.password_hash = _hasher().hash(check_password(password))
    if totp:
        secret = pyotp.random_base32()
        account.totp_secret = _seal(s, secret)
        out["totp_secret"] = secret
        f = s.get(SignInFailures, account.user_id)
        if f is not None:
            f.totp_last_step = None
    if oidc_issuer is not None or oidc_subject is not None:
        issuer, subject = _check_oidc(oidc_issuer, oidc_subject)
        taken = s.scalar(select(Account).where(Account.oidc_issuer == issuer, Account.oidc_subject == subject,
                                               Account.user_id != account.user_id))
        if taken is not None:
            raise GovernanceError("oidc_subject: already linked to another account")
        account.oidc_issuer, account.oidc_subject = issuer, subject
    return out


def _methods(account: Account) -> list[str]:
    return [m for m, ok in ((PASSWORD_TOTP, account.password_hash and account.totp_secret),
                            (OIDC, account.oidc_subject), (EMAIL_LINK, account.email)) if ok]


def add_user(registry: Any, *, actor: str, user_id: str, display_name: str, organisation: str, role: str,
             now: datetime, partner_id: str | None = None, email: str | None = None, password: str | None = None,
             totp: bool = False, oidc_issuer: str | None = None, oidc_subject: str | None = None) -> dict[str, Any]:
    """Add a user and how they sign in (administrators; audited as ``user.added``, binding both rows).

    A steward names the partner they steward. Returns ``{"user_id", "methods"}`` and, when a second factor was
    made, ``totp_secret`` and ``totp_uri`` (shown once: give them to the person, never store them elsewhere).

    Raises:
        GovernanceError: naming the field and the rule (audited through ``guarded``).
    """
    from governance.registry.workflow import guarded

    def act(s: Session) -> dict[str, Any]:
        require(s, actor, "user.add", subject=str(user_id)[:64], now=now)
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            raise GovernanceError("user_id: 3-64 lower-case letters, digits, '.', '_' or '-'")
        if s.get(User, user_id) is not None:
            raise GovernanceError(f"user_id: {user_id} already exists")
        for name, value in (("display_name", display_name), ("organisation", organisation)):
            if not isinstance(value, str) or not value.strip() or len(value) > 300 or "\x00" in value:
                raise GovernanceError(f"{name}: 1-300 characters")
        try:
            r = Role(role)
        except ValueError:
            raise GovernanceError(f"role: one of {', '.join(x.value for x in Role)}") from None
        if (r == Role.STEWARD) != bool(partner_id):
            raise GovernanceError("partner: a steward names the partner they steward; no one else names one")
        if partner_id and s.get(Partner, partner_id) is None:
            raise GovernanceError(f"partner: {str(partner_id)[:40]!r} is not a partner")
        user = User(id=user_id, display_name=display_name, organisation=organisation, role=r,
                    partner_id=partner_id or None)
        s.add(user)
        s.flush()
        account = _account(s, user_id)
        shown = _apply_credentials(s, account, email=email or None, password=password or None, totp=totp,
                                   oidc_issuer=oidc_issuer or None if oidc_issuer or oidc_subject else None,
                                   oidc_subject=oidc_subject or None if oidc_issuer or oidc_subject else None)
        s.flush()
        audit.append(s, actor=actor, action="user.added", subject=user_id, at=now,
                     detail={"role": r.value, "partner": partner_id or None, "methods": _methods(account)},
                     rows=[user, account])
        if "totp_secret" in shown:
            shown["totp_uri"] = totp_uri(shown["totp_secret"], user_id)
        return {"user_id": user_id, "methods": _methods(account)} | shown

    return guarded(registry, actor=actor, action="user.add", subject=str(user_id)[:64], now=now, fn=act)


def set_credentials(registry: Any, *, actor: str, user_id: str, now: datetime, email: str | None = None,
                    password: str | None = None, totp: bool = False, oidc_issuer: str | None = None,
                    oidc_subject: str | None = None) -> dict[str, Any]:
    """Set or replace how a user signs in (administrators; ``account.credentials``, audited without any secret).
    Every live session of the user ends when a password or second factor changes."""
    from governance.registry.workflow import guarded

    def act(s: Session) -> dict[str, Any]:
        require(s, actor, "account.credentials", subject=str(user_id)[:64], now=now)
        if s.get(User, user_id) is None:
            raise GovernanceError(f"user_id: no user {str(user_id)[:64]!r}")
        account = _account(s, user_id)
        if account.removed_at is not None:
            raise GovernanceError(f"user_id: {user_id}'s account was removed")
        shown = _apply_credentials(s, account, email=email, password=password, totp=totp, oidc_issuer=oidc_issuer,
                                   oidc_subject=oidc_subject)
        if password is not None or totp:
            for row in s.scalars(select(AuthSession).where(AuthSession.user_id == user_id,
                                                           AuthSession.ended_at.is_(None))):
                row.ended_at = now
        s.flush()
        changed = [k for k, v in (("email", email), ("password", password), ("totp", totp or None),
                                  ("oidc", oidc_subject)) if v is not None]
        audit.append(s, actor=actor, action="account.credentials", subject=user_id, at=now,
                     detail={"changed": changed, "methods": _methods(account)}, rows=[account])
        if "totp_secret" in shown:
            shown["totp_uri"] = totp_uri(shown["totp_secret"], user_id)
        return {"user_id": user_id, "methods": _methods(account)} | shown

    return guarded(registry, actor=actor, action="account.credentials", subject=str(user_id)[:64], now=now, fn=act)


def remove_user(registry: Any, *, actor: str, user_id: str, now: datetime) -> None:
    """Remove a user: they can no longer sign in or act, and their sessions end. Their history stays (the user
    row is kept: reviews and requests refer to it). Audited as ``user.removed``."""
    from governance.registry.workflow import guarded

    def act(s: Session) -> None:
        require(s, actor, "user.remove", subject=str(user_id)[:64], now=now)
        if s.get(User, user_id) is None:
            raise GovernanceError(f"user_id: no user {str(user_id)[:64]!r}")
        if user_id == actor:
            raise GovernanceError("user_id: administrators cannot remove themselves")
        account = _account(s, user_id)
        if account.removed_at is not None:
            raise GovernanceError(f"user_id: {user_id} was removed already")
        account.removed_at = now
        for row in s.scalars(select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))):
            row.ended_at = now
        s.flush()
        audit.append(s, actor=actor, action="user.removed", subject=user_id, at=now, rows=[account])

    guarded(registry, actor=actor, action="user.remove", subject=str(user_id)[:64], now=now, fn=act)


def add_agreement(registry: Any, *, actor: str, partner_id: str, title: str, starts_on: date, expires_on: date,
                  now: datetime) -> int:
    """Record a data-sharing agreement with a partner (administrators; ``agreement.added``, bound)."""
    from governance.registry.workflow import guarded

    def act(s: Session) -> int:
        require(s, actor, "agreement.add", subject=str(partner_id)[:64], now=now)
        if s.get(Partner, partner_id) is None:
            raise GovernanceError(f"partner: {str(partner_id)[:40]!r} is not a partner")
        if not isinstance(title, str) or not title.strip() or len(title) > 300:
            raise GovernanceError("title: 1-300 characters")
        if not isinstance(starts_on, date) or not isinstance(expires_on, date) or expires_on < starts_on:
            raise GovernanceError("expires_on: a date (YYYY-MM-DD) on or after starts_on")
        row = Agreement(partner_id=partner_id, title=title, starts_on=starts_on, expires_on=expires_on)
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action="agreement.added", subject=partner_id, at=now,
                     detail={"starts_on": starts_on.isoformat(), "expires_on": expires_on.isoformat()}, rows=[row])
        return row.id

    return guarded(registry, actor=actor, action="agreement.add", subject=str(partner_id)[:64], now=now, fn=act)


def bootstrap_administrator(registry: Any, *, user_id: str, display_name: str, organisation: str, password: str,
                            now: datetime, email: str | None = None) -> dict[str, Any]:
    """The first administrator of a production registry (password + authenticator), made by whoever runs
    ``vpdc registry init`` on the warehouse; refused once any administrator exists. Audited as ``user.added``
    by ``registry``."""
    def act(s: Session) -> dict[str, Any]:
        if s.scalar(select(User).where(User.role == Role.ADMINISTRATOR)) is not None:
            raise GovernanceError("an administrator exists already: they add everyone else (vpdc users add)")
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            raise GovernanceError("user_id: 3-64 lower-case letters, digits, '.', '_' or '-'")
        user = User(id=user_id, display_name=display_name, organisation=organisation, role=Role.ADMINISTRATOR)
        s.add(user)
        s.flush()
        account = _account(s, user_id)
        shown = _apply_credentials(s, account, email=email, password=password, totp=True, oidc_issuer=None,
                                   oidc_subject=None)
        s.flush()
        audit.append(s, actor="registry", action="user.added", subject=user_id, at=now,
                     detail={"role": Role.ADMINISTRATOR.value, "bootstrap": True, "methods": _methods(account)},
                     rows=[user, account])
        return {"user_id": user_id, "methods": _methods(account), "totp_secret": shown["totp_secret"],
                "totp_uri": totp_uri(shown["totp_secret"], user_id)}

    from governance.registry.workflow import guarded

    return guarded(registry, actor="registry", action="user.add", subject=str(user_id)[:64], now=now, fn=act)


def users(session: Session) -> list[dict[str, Any]]:
    """Every user with role, partner, how they can sign in and whether removed (no secret, no hash)."""
    out = []
    for u in session.scalars(select(User).order_by(User.id)):
        a = session.get(Account, u.id)
        out.append({"user_id": u.id, "display_name": u.display_name, "organisation": u.organisation,
                    "role": u.role.value, "partner": u.partner_id, "methods": _methods(a) if a else [],
                    "email": a.email if a else None, "removed": bool(a and a.removed_at)})
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)
