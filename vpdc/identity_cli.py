"""Signing in from the command line, and the administrators' commands (users, agreements).

``vpdc login`` signs in with a local account (password and authenticator code, prompted) or exchanges a
one-time code from the portal's "Command line" page (for people who sign in by single sign-on or e-mailed
link); it stores a short-lived token in ``~/.config/vpdc/credentials.json`` (``VPDC_CREDENTIALS`` to move
it), 0600 in a 0700 folder, per registry. Every governance command then acts as that person.
``--as USER`` is accepted only by a registry created in demo mode, and each use says so.
Every rule is the library's (:mod:`governance.identity`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from partner_kit.cli import UsageError, emit, err, out
from vpdc.options import HomeOpt
from workspace import Home

users_app = typer.Typer(help="Administrators: add and remove users and stewards, set how they sign in.",
                        no_args_is_help=True)
agreements_app = typer.Typer(help="Administrators: record data-sharing agreements with partners.",
                             no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (and nothing else).")]
AsOpt = Annotated[str | None, typer.Option(
    "--as", envvar="VPDC_USER", help="Demo registries only: act as this user without signing in.")]


def _now() -> datetime:
    return datetime.now(UTC)


def _date(option: str, value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value[:20]!r}: expected a date YYYY-MM-DD") from None


def _registry(home: Path):
    from governance.registry.db import registry_for

    return registry_for(Home(home).root)


# ------------------------------------------------------------------------------------ credentials
def credentials_path() -> Path:
    """``VPDC_CREDENTIALS``, else ``$XDG_CONFIG_HOME/vpdc/credentials.json`` (``~/.config``)."""
    if os.environ.get("VPDC_CREDENTIALS"):
        return Path(os.environ["VPDC_CREDENTIALS"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "vpdc" / "credentials.json"


def _read_credentials() -> dict[str, Any]:
    path = credentials_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_credentials(creds: dict[str, Any]) -> Path:
    from workspace.files import atomic_write, private_dir

    path = credentials_path()
    private_dir(path.parent)
    atomic_write(path, json.dumps(creds, indent=1).encode(), mode=0o600)
    return path


def acting(home: Path, claimed: str | None, command: str):
    """(user id, registry bound to them) for a governance command.

    The signed-in person (``vpdc login``) when there is one; ``--as`` only on a demo registry (said on stderr,
    recorded as a claim); otherwise a refusal, audited as ``refused.cli``.
    """
    from governance.identity import Identity, registry_mode
    from governance.identity.signin import session_identity
    from governance.registry.workflow import record_refusal

    reg = _registry(home)
    now = _now()
    if claimed:
        with reg.read() as s:  # verifying must work on a broken chain (roles.DIAGNOSTIC)
            mode = registry_mode(s, diagnostic=command == "audit verify")
            doubted = mode != "demo" and registry_mode(s, diagnostic=True) == "demo"
        if mode != "demo":
            record_refusal(reg, actor=str(claimed)[:64], action="cli", subject=command,
                           reason="--as on a registry not created in demo mode", now=now)
            if doubted:  # a demo registry whose chain broke: its mode cannot be trusted, so it is not demo
                raise UsageError("--as is refused: the audit chain does not verify, so this registry's demo mode "
                                 "cannot be trusted (`vpdc audit verify` names the break)")
            raise UsageError("--as works only on a registry created in demo mode; this registry is production: "
                             "sign in with `vpdc login`")
        err.print(f"[yellow]demo registry:[/] acting as {escape(claimed)} without signing in (--as); the audit "
                  "records it as a claim", soft_wrap=True)
        return claimed, reg.signed_in(Identity.demo(claimed, now))
    saved = _read_credentials().get(reg.safe_url)
    if saved:
        ident, why = session_identity(reg, token=saved.get("token", ""), now=now, kind="cli")
        if ident is not None:
            return ident.user_id, reg.signed_in(ident)
        record_refusal(reg, actor=str(saved.get("user", "anonymous"))[:64], action="cli", subject=command,
                       reason=f"CLI sign-in not usable: {why}", now=now)
        raise UsageError(f"your sign-in cannot be used ({why}): run `vpdc login` again")
    record_refusal(reg, actor="anonymous", action="cli", subject=command, reason="nobody signed in", now=now)
    raise UsageError("nobody is signed in: run `vpdc login` first (or, on a registry created in demo mode only, "
                     "pass --as USER)")


# ------------------------------------------------------------------------------------------ login
def login(home: HomeOpt,
          user: Annotated[str | None, typer.Option(help="Your user id (local account: password and authenticator "
                                                        "code are asked for).")] = None,
          code: Annotated[str | None, typer.Option(help="A one-time code from the portal's 'Command line' page "
                                                        "(single sign-on and e-mailed-link users).")] = None,
          as_json: JsonOpt = False) -> None:
    """Sign in; the CLI then acts as you. Stores a short-lived token (0600) for this registry."""
    from governance.identity.signin import exchange_cli_code, password_sign_in

    reg = _registry(home)
    now = _now()
    if code:
        ident, token, ends = exchange_cli_code(reg, code=code, now=now)
    elif user:
        password = typer.prompt("password", hide_input=True)
        totp = typer.prompt("authenticator code")
        ident, token = password_sign_in(reg, user_id=user, password=password, code=totp, now=now, kind="cli")
        from governance.identity.policy import CLI_TOKEN

        ends = now + CLI_TOKEN
    else:
        raise UsageError("pass --user (local account) or --code (from the portal's 'Command line' page)")
    creds = _read_credentials()
    creds[reg.safe_url] = {"user": ident.user_id, "token": token, "expires_at": ends.isoformat()}
    path = _write_credentials(creds)
    result = {"user": ident.user_id, "method": ident.method, "expires_at": ends.isoformat(), "stored": str(path)}
    emit(result, as_json) if as_json else out.print(
        f"signed in as {escape(ident.user_id)} ({ident.method}) until {ends:%Y-%m-%d %H:%M} UTC; token in "
        f"{escape(str(path))} (0600)")


def logout(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Sign out: the token ends at the registry and is removed from this machine."""
    from governance.identity.signin import end_session

    reg = _registry(home)
    creds = _read_credentials()
    saved = creds.pop(reg.safe_url, None)
    ended = bool(saved) and end_session(reg, token=saved.get("token", ""), now=_now())
    _write_credentials(creds)
    emit({"signed_out": ended}, as_json) if as_json else out.print("signed out" if saved else "nobody was signed in")


def whoami(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Who the CLI acts as on this registry, how they signed in, and the registry's mode."""
    from governance.identity import registry_mode
    from governance.identity.signin import session_identity

    reg = _registry(home)
    with reg.read() as s:
        mode = registry_mode(s)
    saved = _read_credentials().get(reg.safe_url)
    ident, why = session_identity(reg, token=saved["token"], now=_now(), kind="cli") if saved else (None, "not signed in")
    result = {"registry": reg.safe_url, "mode": mode, "user": ident.user_id if ident else None,
              "method": ident.method if ident else None, "signed_in_at": ident.authenticated_at.isoformat()
              if ident else None, "problem": why or None}
    emit(result, as_json) if as_json else out.print(
        f"{escape(reg.safe_url)} ({mode}): " + (f"signed in as {escape(ident.user_id)} ({ident.method})" if ident
                                                else escape(why)))


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(users_app, name="users")
    app.add_typer(agreements_app, name="agreements")


# ------------------------------------------------------------------------------------------ users
def _shown(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(result, True)
        return
    out.print(f"{escape(result['user_id'])}: signs in with {', '.join(result['methods']) or 'nothing yet'}")
    if result.get("totp_secret"):
        out.print("authenticator secret (shown once; give it to the person): " + result["totp_secret"])
        out.print("authenticator URI: " + escape(result["totp_uri"]))


@users_app.command("add")
def users_add(user_id: str, home: HomeOpt,
              role: Annotated[str, typer.Option(help="analyst, evaluator, steward, community_reviewer, engineer or "
                                                     "administrator.")],
              name: Annotated[str, typer.Option(help="Display name.")],
              organisation: Annotated[str, typer.Option(help="Organisation.")],
              partner: Annotated[str | None, typer.Option(help="The partner a steward stewards.")] = None,
              email: Annotated[str | None, typer.Option(help="E-mail: notifications and sign-in links.")] = None,
              password: Annotated[bool, typer.Option(help="Set a password (asked for) and an authenticator "
                                                          "second factor.")] = False,
              oidc_issuer: Annotated[str | None, typer.Option(help="Identity provider's issuer URL.")] = None,
              oidc_subject: Annotated[str | None, typer.Option(help="The person's subject (sub) there.")] = None,
              as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Add a user (administrators), with how they sign in: password + authenticator, single sign-on, e-mail link."""
    from governance.identity.signin import add_user

    actor, reg = acting(home, actor, "users add")
    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True) if password else None
    _shown(add_user(reg, actor=actor, user_id=user_id, display_name=name, organisation=organisation, role=role,
                    partner_id=partner, email=email, password=secret, totp=password, oidc_issuer=oidc_issuer,
                    oidc_subject=oidc_subject, now=_now()), as_json)


@users_app.command("credentials")
def users_credentials(user_id: str, home: HomeOpt,
                      email: Annotated[str | None, typer.Option(help="New e-mail address.")] = None,
                      password: Annotated[bool, typer.Option(help="Set a new password (asked for) and a new "
                                                                  "authenticator secret.")] = False,
                      oidc_issuer: Annotated[str | None, typer.Option(help="Identity provider's issuer URL.")] = None,
                      oidc_subject: Annotated[str | None, typer.Option(help="The subject (sub) there.")] = None,
                      as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Change how a user signs in (administrators). Their sessions end when the password changes."""
    from governance.identity.signin import set_credentials

    actor, reg = acting(home, actor, "users credentials")
    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True) if password else None
    _shown(set_credentials(reg, actor=actor, user_id=user_id, email=email, password=secret, totp=password,
                           oidc_issuer=oidc_issuer, oidc_subject=oidc_subject, now=_now()), as_json)


@users_app.command("remove")
def users_remove(user_id: str, home: HomeOpt, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Remove a user: no more sign-in or action; their history stays."""
    from governance.identity.signin import remove_user

    actor, reg = acting(home, actor, "users remove")
    remove_user(reg, actor=actor, user_id=user_id, now=_now())
    emit({"removed": user_id}, as_json) if as_json else out.print(f"{escape(user_id)} removed")


@users_app.command("list")
def users_list(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Every user, their role and partner, and how they can sign in (never a secret)."""
    from governance.identity.signin import users

    with _registry(home).read() as s:
        rows = users(s)
    table = Table("user", "role", "partner", "signs in with", "removed", title="users")
    for r in rows:
        table.add_row(escape(r["user_id"]), r["role"], escape(r["partner"] or ""), ", ".join(r["methods"]),
                      "yes" if r["removed"] else "")
    emit(rows, as_json, table)


@agreements_app.command("add")
def agreements_add(home: HomeOpt, partner: Annotated[str, typer.Option(help="Partner id.")],
                   title: Annotated[str, typer.Option(help="Title of the agreement.")],
                   starts: Annotated[str, typer.Option(help="YYYY-MM-DD")],
                   expires: Annotated[str, typer.Option(help="YYYY-MM-DD")],
                   as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Record a data-sharing agreement with a partner (administrators; audited)."""
    from governance.identity.signin import add_agreement

    actor, reg = acting(home, actor, "agreements add")
    aid = add_agreement(reg, actor=actor, partner_id=partner, title=title, starts_on=_date("--starts", starts),
                        expires_on=_date("--expires", expires), now=_now())
    emit({"agreement": aid}, as_json) if as_json else out.print(f"agreement {aid} with {escape(partner)} recorded")

