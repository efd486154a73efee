"""The portal's pages: each handler reads the form, calls one library function, renders a page.

Every POST checks its CSRF token first (:func:`_form`); every page but the sign-in pages needs a live session
(:func:`_signed_in`: an ended or idle session is sent to sign in); every refusal is a page that says why, with
an audit entry (the library audits its own refusals; the portal audits the ones it makes itself, such as a
page a person may not see). Request text is escaped by Jinja2's autoescaping; no page shows a record.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from governance.identity import signin as si
from governance.identity.context import Identity
from governance.registry.errors import GovernanceError
from governance.registry.models import OutputLevel, Role, User
from governance.registry.policy import PolicyRefused
from vpdc.portal.config import PortalConfig
from vpdc.portal.i18n import CHECK_WORDS, LANGUAGES, pick_language, translations
from vpdc.portal.security import RateLimiter, SecurityHeaders, csrf_for, csrf_ok

__all__ = ["create_app"]

HERE = Path(__file__).resolve().parent
SESSION, PRE, LANG = "vpdc_session", "vpdc_pre", "lang"
#: what each role finds in the navigation (path, label); labels are translated in the template
NAV: dict[Role, list[tuple[str, str]]] = {
    Role.STEWARD: [("/queue", "Review queue"), ("/checks", "Output checks"), ("/audit", "Audit chain")],
    Role.COMMUNITY_REVIEWER: [("/queue", "Review queue"), ("/audit", "Audit chain")],
    Role.ANALYST: [("/requests", "My requests"), ("/requests/new", "New request"), ("/outputs", "My outputs"),
                   ("/browse", "Browse the data")],
    Role.EVALUATOR: [("/requests", "My requests"), ("/requests/new", "New request"), ("/outputs", "My outputs"),
                     ("/browse", "Browse the data")],
    Role.ENGINEER: [("/engineering", "Quarantine and runs"), ("/checks", "Output checks"), ("/audit", "Audit chain")],
    Role.ADMINISTRATOR: [("/admin/users", "Users"), ("/admin/agreements", "Agreements"), ("/audit", "Audit chain")],
}
REQUEST_TEXT = ("title", "organisation", "purpose", "research_questions", "irb_protocol", "equity_communities",
                "equity_return_of_findings", "equity_mitigation")
_FIELD = re.compile(r"^([a-z_]+)\b")


class Refused(Exception):
    """A page refuses: rendered as the refusal page with ``status``."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def create_app(config: PortalConfig) -> Starlette:
    """The portal for the registry and outputs of ``config.home``."""
    from governance.registry.db import registry_for
    from workspace import Home

    home = Home(Path(config.home))
    registry = registry_for(home.root, config.registry_url)
    with registry.transaction() as s:  # the portal's own key, derived from the audit key (never stored)
        form_key = si._subkey(s, "portal-forms")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    limiter = RateLimiter(config.sign_in_rate)
    oidc_started: dict[str, dict[str, str]] = {}  # pre-session id -> state, nonce, verifier (server side)

    # ---------------------------------------------------------------------------------- helpers
    def now() -> datetime:
        return config.clock()

    def lang_of(request: Request) -> str:
        return pick_language(request.cookies.get(LANG), request.headers.get("accept-language"))

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = lang_of(request)
        tr = translations(lang)
        ident: Identity | None = getattr(request.state, "identity", None)
        user: User | None = getattr(request.state, "user", None)
        anchor = request.cookies.get(SESSION) if ident else getattr(request.state, "pre", None)
        body = env.get_template(name).render(
            _=tr.gettext, ngettext=tr.ngettext, lang=lang, languages=LANGUAGES, path=request.url.path,
            here=quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&"),
            identity=ident, user=user, nav=NAV.get(user.role, []) if user else [],
            csrf=csrf_for(form_key, anchor) if anchor else "", oidc=config.oidc is not None,
            oidc_label=config.oidc_label, mail=config.mailer is not None, check_words=CHECK_WORDS, **ctx)
        resp = HTMLResponse(body, status_code=status)
        pre = getattr(request.state, "new_pre", None)
        if pre:
            resp.set_cookie(PRE, pre, httponly=True, samesite="lax", secure=config.secure, path="/")
        return resp

    def pre_session(request: Request) -> str:
        """The pre-sign-in anchor of the sign-in forms' CSRF tokens (a random cookie)."""
        pre = request.cookies.get(PRE)
        if not pre or len(pre) > 100:
            pre = secrets.token_urlsafe(24)
            request.state.new_pre = pre
        request.state.pre = pre
        return pre

    def refusal(request: Request, message: str, status: int = 403) -> HTMLResponse:
        return render(request, "refused.html", status=status, message=message)

    def to_sign_in(request: Request, why: str = "") -> RedirectResponse:
        nxt = quote(request.url.path, safe="/")
        resp = RedirectResponse(f"/sign-in?next={nxt}" + (f"&why={quote(why)}" if why else ""), status_code=303)
        if request.cookies.get(SESSION):
            resp.delete_cookie(SESSION, path="/")
        return resp

    def signed_in_response(ident_token: tuple[Identity, str], nxt: str = "/") -> RedirectResponse:
        _, token = ident_token
        resp = RedirectResponse(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/", status_code=303)
        resp.set_cookie(SESSION, token, httponly=True, samesite="lax", secure=config.secure, path="/")
        resp.delete_cookie(PRE, path="/")
        return resp

    def session_of(request: Request) -> tuple[Identity | None, str]:
        token = request.cookies.get(SESSION)
        if not token:
            return None, "not signed in"
        return si.session_identity(registry, token=token, now=now())

    def attach(request: Request, ident: Identity) -> Any:
        request.state.identity = ident
        with registry.read() as s:
            request.state.user = s.get(User, ident.user_id)
        return registry.signed_in(ident)

    async def _form(request: Request, *, pre: bool = False) -> dict[str, Any]:
        """The form, if its CSRF token is this session's (``pre``: the sign-in forms' pre-session's); else a
        refusal (audited)."""
        form = await request.form()
        anchor = request.cookies.get(PRE if pre else SESSION)
        if not csrf_ok(form_key, anchor, form.get("csrf")):
            await run_in_threadpool(_audit_refusal, request, "portal.form",
                                    f"missing or wrong CSRF token on POST {request.url.path[:100]}")
            raise Refused("This form could not be accepted: it did not carry this session's security token "
                          "(CSRF). Reload the page and try again.", 403)
        return {k: form.getlist(k) if k in ("remove_column", "column") else form.get(k) for k in form.keys()}

    def _audit_refusal(request: Request, action: str, reason: str) -> None:
        from governance.registry.workflow import record_refusal

        ident = getattr(request.state, "identity", None)
        reg = registry.signed_in(ident) if ident else registry
        record_refusal(reg, actor=ident.user_id if ident else "anonymous", action=action,
                       subject=request.url.path[:128], reason=reason, now=now())

    def page(fn, *, roles: tuple[Role, ...] | None = None, post: bool = False):
        """A signed-in page: the session checked, the role checked, refusals rendered (never a traceback)."""
        async def endpoint(request: Request) -> Response:
            try:
                ident, why = await run_in_threadpool(session_of, request)
                if ident is None:
                    return to_sign_in(request, "" if why == "not signed in" else why)
                reg = await run_in_threadpool(attach, request, ident)
                if any("\x00" in v for v in request.path_params.values()):  # no database takes it; nothing has it
                    raise Refused("There is no such page.", 404)
                form = await _form(request) if post else None
                if roles is not None and request.state.user.role not in roles:
                    await run_in_threadpool(_audit_refusal, request, "portal.page",
                                            f"{request.state.user.role.value} may not open {request.url.path[:80]}")
                    raise Refused(f"{ident.user_id} is {request.state.user.role.value}: this page is for "
                                  + ", ".join(r.value for r in roles), 403)
                return await run_in_threadpool(fn, request, reg, ident, form)
            except Refused as exc:
                return refusal(request, str(exc), exc.status)
            except PolicyRefused as exc:
                return refusal(request, str(exc), 403)
            except GovernanceError as exc:
                return refusal(request, str(exc), 403)
        return endpoint

    # ---------------------------------------------------------------------------------- sign-in
    async def sign_in_page(request: Request) -> Response:
        ident, _ = await run_in_threadpool(session_of, request)
        if ident is not None:
            return RedirectResponse("/", status_code=303)
        pre_session(request)
        why = request.query_params.get("why", "")[:100]
        return render(request, "sign_in.html", next=request.query_params.get("next", "/")[:200], why=why)

    def _client(request: Request) -> str:
        return request.client.host if request.client else "?"

    async def sign_in_post(request: Request) -> Response:
        pre_session(request)
        try:
            form = await _form(request, pre=True)
        except Refused as exc:
            return refusal(request, str(exc), exc.status)
        if not limiter.allow(_client(request)):
            return render(request, "sign_in.html", status=429, next="/", error="too_many")
        try:
            result = await run_in_threadpool(lambda: si.password_sign_in(
                registry, user_id=str(form.get("user_id") or "")[:64], password=str(form.get("password") or ""),
                code=str(form.get("code") or "")[:12], now=now()))
        except si.SignInRefused:
            return render(request, "sign_in.html", status=401, next=str(form.get("next") or "/")[:200], error="wrong",
                          user_id=str(form.get("user_id") or "")[:64])
        return signed_in_response(result, str(form.get("next") or "/"))

    async def link_request(request: Request) -> Response:
        pre_session(request)
        try:
            form = await _form(request, pre=True)
        except Refused as exc:
            return refusal(request, str(exc), exc.status)
        if not limiter.allow(_client(request)):
            return render(request, "sign_in.html", status=429, next="/", error="too_many")
        if config.mailer is None:
            return refusal(request, "E-mailed sign-in links are not set up on this portal (no SMTP server).", 400)

        def send(user_id: str, address: str, token: str) -> None:
            config.mailer.sign_in_link(address, f"{config.base_url.rstrip('/')}/auth/link/{token}")

        await run_in_threadpool(lambda: si.request_sign_in_link(registry, email=str(form.get("email") or "")[:320],
                                                                now=now(), send=send))
        return render(request, "link_sent.html")

    async def link_confirm(request: Request) -> Response:
        """The link's page: a button, so that a mail scanner fetching the link does not use it up."""
        pre_session(request)
        return render(request, "link_confirm.html", token=request.path_params["token"][:200])

    async def link_post(request: Request) -> Response:
        pre_session(request)
        try:
            form = await _form(request, pre=True)
            if not limiter.allow(_client(request)):
                raise Refused("Too many sign-in attempts from here; wait a minute.", 429)
            result = await run_in_threadpool(lambda: si.link_sign_in(registry, token=str(form.get("token") or ""),
                                                                     now=now()))
        except Refused as exc:
            return refusal(request, str(exc), exc.status)
        except si.SignInRefused as exc:
            return refusal(request, str(exc), 401)
        return signed_in_response(result)

    async def oidc_start(request: Request) -> Response:
        if config.oidc is None:
            return refusal(request, "Single sign-on is not set up on this portal.", 404)
        pre = pre_session(request)
        from governance.identity import oidc

        try:
            started = await run_in_threadpool(oidc.begin, config.oidc)
        except oidc.OIDCError as exc:
            return refusal(request, str(exc), 502)
        oidc_started[pre] = started
        resp = RedirectResponse(started["url"], status_code=303)
        if getattr(request.state, "new_pre", None):
            resp.set_cookie(PRE, pre, httponly=True, samesite="lax", secure=config.secure, path="/")
        return resp

    async def oidc_callback(request: Request) -> Response:
        from governance.identity import oidc

        pre_session(request)
        started = oidc_started.pop(request.cookies.get(PRE, ""), None)
        try:
            if not limiter.allow(_client(request)):
                raise Refused("Too many sign-in attempts from here; wait a minute.", 429)
            if config.oidc is None:
                raise Refused("Single sign-on is not set up on this portal.", 404)
            claims = await run_in_threadpool(lambda: oidc.finish(
                config.oidc, code=request.query_params.get("code", ""), state=request.query_params.get("state", ""),
                started=started or {}))
            result = await run_in_threadpool(lambda: si.oidc_sign_in(registry, issuer=claims["iss"],
                                                                     subject=claims["sub"], now=now()))
        except Refused as exc:
            return refusal(request, str(exc), exc.status)
        except oidc.OIDCError as exc:
            await run_in_threadpool(_audit_refusal, request, "sign_in", f"oidc: {exc}")
            return refusal(request, f"Single sign-on failed: {exc}", 401)
        except si.SignInRefused as exc:
            return refusal(request, str(exc), 401)
        return signed_in_response(result)

    async def sign_out(request: Request) -> Response:
        try:
            await _form(request)
        except Refused as exc:
            return refusal(request, str(exc), exc.status)
        token = request.cookies.get(SESSION)
        if token:
            await run_in_threadpool(lambda: si.end_session(registry, token=token, now=now()))
        resp = RedirectResponse("/sign-in", status_code=303)
        resp.delete_cookie(SESSION, path="/")
        return resp

    async def language(request: Request) -> Response:
        lang = request.path_params["lang"]
        nxt = request.query_params.get("next", "/")
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/"
        resp = RedirectResponse(nxt, status_code=303)
        if lang in LANGUAGES:
            resp.set_cookie(LANG, lang, samesite="lax", secure=config.secure, path="/", max_age=365 * 86400)
        return resp

    # ---------------------------------------------------------------------------------- pages
    def home_page(request, reg, ident, form):
        return render(request, "home.html")

    def queue_page(request, reg, ident, form):
        from governance.registry.queue import review_queue

        with reg.read() as s:
            rows = review_queue(s, actor=ident.user_id, now=now())
        return render(request, "queue.html", rows=rows)

    def _may_view(reg, ident, study_id: str) -> None:
        from governance.registry.queue import may_view

        with reg.read() as s:
            why = may_view(s, ident.user_id, study_id)
        if why:
            from governance.registry.workflow import record_refusal

            record_refusal(reg, actor=ident.user_id, action="request.view", subject=study_id[:64], reason=why,
                           now=now())
            raise Refused(why, 404 if why.startswith("no request") else 403)

    def request_page(request, reg, ident, form, *, printable: bool = False, status: int = 200, error: str = ""):
        from governance.registry.queue import request_view

        study_id = request.path_params["study_id"][:64]
        _may_view(reg, ident, study_id)
        with reg.read() as s:
            view = request_view(s, study_id, now=now())
        user = request.state.user
        mine = user.role == Role.STEWARD and f"partner:{user.partner_id}" in [r["capacity"] for r in view["reviewers"]] \
            or user.role == Role.COMMUNITY_REVIEWER and "community" in [r["capacity"] for r in view["reviewers"]]
        return render(request, "request_print.html" if printable else "request.html", status=status, v=view,
                      study_id=study_id, may_decide=mine and view["requester"] != ident.user_id
                      and not view["revoked"] and not view["withdrawn"], may_revoke=mine and not view["revoked"],
                      may_export=view["requester"] == ident.user_id and view["status"]["active"]
                      and user.role == Role.EVALUATOR and view["status"]["output_level"] == "cohort", error=error)

    def decide(request, reg, ident, form):
        from governance.identity.notify import notify
        from governance.registry.workflow import column_refs, guarded, review_request

        study_id = request.path_params["study_id"][:64]
        _may_view(reg, ident, study_id)
        decision = str(form.get("decision") or "")
        removed = [c for c in form.get("remove_column") or [] if c]
        conditions = {k: v for k, v in {"remove_columns": column_refs(removed),
                                        "aggregate_only": form.get("aggregate_only") == "1"}.items() if v}
        if decision == "approve" and conditions:
            decision = "approve_with_conditions"
        if decision not in ("approve", "approve_with_conditions", "deny"):
            raise Refused("decision: choose approve or deny", 400)
        guarded(reg, actor=ident.user_id, action=f"review.{decision}", subject=study_id, now=now(),
                fn=lambda s: review_request(s, reviewer=ident.user_id, study_id=study_id, decision=decision,
                                            now=now(), conditions=conditions,
                                            comment=str(form.get("comment") or "")))
        notify(registry, study_id=study_id, event="changed", mailer=config.mailer, base_url=config.base_url, now=now())
        return RedirectResponse(f"/requests/{quote(study_id)}?done=decided", status_code=303)

    def revoke(request, reg, ident, form):
        from governance.identity.notify import notify
        from governance.registry.workflow import guarded, revoke_request

        study_id = request.path_params["study_id"][:64]
        _may_view(reg, ident, study_id)
        guarded(reg, actor=ident.user_id, action="request.revoke", subject=study_id, now=now(),
                fn=lambda s: revoke_request(s, actor=ident.user_id, study_id=study_id, now=now(),
                                            reason=str(form.get("reason") or "")))
        notify(registry, study_id=study_id, event="changed", mailer=config.mailer, base_url=config.base_url, now=now())
        return RedirectResponse(f"/requests/{quote(study_id)}?done=revoked", status_code=303)

    def export(request, reg, ident, form):
        from governance.identity.notify import notify_release
        from governance.outputs import CohortSpec, export_cohort
        from governance.outputs.checking import release_of_file

        study_id = request.path_params["study_id"][:64]
        _may_view(reg, ident, study_id)
        program = str(form.get("program") or "ATV").upper()[:8]
        result = export_cohort(CohortSpec(study_id, ident.user_id, program, date(2021, 1, 1), now().date()),
                               registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs,
                               keys_dir=home.keys, now=now())
        with registry.read() as s:
            rid = release_of_file(s, study_id=study_id, file=Path(result.files[0]).name)
        if rid is not None:
            notify_release(registry, release_id=rid, event="check", mailer=config.mailer, base_url=config.base_url,
                           now=now())
        return RedirectResponse(f"/outputs?released={quote(Path(result.files[0]).name)}", status_code=303)

    def my_requests_page(request, reg, ident, form):
        from governance.registry.queue import my_requests

        with reg.read() as s:
            rows = my_requests(s, actor=ident.user_id, now=now())
        return render(request, "my_requests.html", rows=rows)

    def _catalogue() -> dict[str, Any]:
        from governance.catalog import catalogue

        return {d: list(cols.values()) for d, cols in catalogue().items()}

    def new_request_page(request, reg, ident, form, *, errors=None, values=None, status=200):
        return render(request, "request_new.html", status=status, catalogue=_catalogue(), errors=errors or {},
                      values=values or {}, levels=[o.value for o in OutputLevel])

    def new_request_post(request, reg, ident, form):
        from governance.identity.notify import notify
        from governance.registry.requests import RequestFileError, parse_request
        from governance.registry.workflow import guarded, submit_request

        body = {k: str(form.get(k) or "") for k in (*REQUEST_TEXT, "study_id", "output_level", "irb_expires_on",
                                                      "retention_end")}
        cols = [c for c in form.get("column") or [] if isinstance(c, str)]
        body["columns"] = [{"dataset": d, "column": c} for d, _, c in (x.partition(".") for x in cols)]
        values = body | {"columns": set(cols)}
        errors: dict[str, str] = {}
        if not cols:
            errors["columns"] = "columns: pick at least one column"
        try:
            parsed = parse_request(body, source="form")
        except RequestFileError as exc:
            msg = str(exc).removeprefix("form: ")
            m = _FIELD.match(msg)
            errors[m.group(1) if m else "form"] = msg
            return new_request_page(request, reg, ident, None, errors=errors, values=values, status=400)
        if errors:
            return new_request_page(request, reg, ident, None, errors=errors, values=values, status=400)
        try:
            guarded(reg, actor=ident.user_id, action="request.submit", subject=body["study_id"][:64], now=now(),
                    fn=lambda s: submit_request(s, requester=ident.user_id, now=now(), **parsed))
        except GovernanceError as exc:
            m = _FIELD.match(str(exc))
            if m is None or getattr(exc, "audited", False) and "permission" in str(exc):
                raise
            errors[m.group(1)] = str(exc)
            return new_request_page(request, reg, ident, None, errors=errors, values=values, status=400)
        notify(registry, study_id=parsed["study_id"], event="awaiting", mailer=config.mailer,
               base_url=config.base_url, now=now())
        return RedirectResponse(f"/requests/{quote(parsed['study_id'])}?done=submitted", status_code=303)

    def outputs_page(request, reg, ident, form):
        from governance.outputs.download import released_outputs

        with reg.read() as s:
            rows = released_outputs(s, actor=ident.user_id)
        return render(request, "outputs.html", rows=rows)

    def browse_page(request, reg, ident, form):
        """The analysts' k-anonymous views of the marts (governance.outputs.browse): the library checks the
        permission, the view, the column and audits the read; the page only shows what it returns."""
        from governance.defaults import K_ANONYMITY
        from governance.outputs.browse import BROWSE_VIEWS, BrowseViewError, browse_rows

        q = request.query_params
        view = q.get("view", "events")[:64]
        column, value = q.get("column", "")[:64], q.get("value", "")[:200]
        ctx = {"views": list(BROWSE_VIEWS), "view": view, "column": column, "value": value, "k": K_ANONYMITY,
               "columns": list(BROWSE_VIEWS[view].columns) if view in BROWSE_VIEWS else [], "body": None, "error": ""}
        try:
            ctx["body"] = browse_rows(reg, home.analyst_browse_db, actor=ident.user_id, view=view, now=now(), limit=50,
                                      where=[(column, value)] if column else [])
        except BrowseViewError as exc:
            return render(request, "browse.html", status=400, **(ctx | {"error": str(exc)}))
        return render(request, "browse.html", **ctx)

    def download(request, reg, ident, form):
        from governance.outputs.download import open_release

        rid = _release_id(request)
        path = open_release(reg, release_id=rid, actor=ident.user_id, outputs_dir=home.outputs, now=now())
        return FileResponse(path, filename=path.name, media_type="text/csv")

    def checks_page(request, reg, ident, form):
        from governance.outputs.checking import checks_awaiting

        with reg.read() as s:
            rows = checks_awaiting(s, actor=ident.user_id)
        return render(request, "checks.html", rows=rows)

    def _release_id(request) -> int:
        try:
            return int(request.path_params["release_id"])
        except ValueError:
            raise Refused("release: not a release number", 400) from None

    def check_page(request, reg, ident, form):
        from governance.outputs.checking import disclosure_report

        rid = _release_id(request)
        with reg.read() as s:
            report = disclosure_report(s, release_id=rid, outputs_dir=home.outputs)
        may = report["checking"]["state"] == "awaiting" and report["requester"] != ident.user_id \
            and ident.user_id not in {d["checker"] for d in report["checking"]["decisions"]}
        return render(request, "check.html", r=report, may_check=may, done=request.query_params.get("done") == "1")

    def check_post(request, reg, ident, form):
        from governance.identity.notify import notify_release
        from governance.outputs.checking import check_output

        rid = _release_id(request)
        status = check_output(reg, checker=ident.user_id, release_id=rid, decision=str(form.get("decision") or ""),
                              comment=str(form.get("comment") or ""), now=now())
        if status["state"] != "awaiting":  # the checking ended: its requester is told
            notify_release(registry, release_id=rid, event="checked", mailer=config.mailer,
                           base_url=config.base_url, now=now())
        return RedirectResponse(f"/checks/{rid}?done=1", status_code=303)

    def engineering_page(request, reg, ident, form):
        from governance.registry.views import LANDING_ACTIONS, audit_entries
        from landing.quarantine import list_quarantine

        with reg.read() as s:
            runs = audit_entries(s, limit=30, actions=LANDING_ACTIONS)
        return render(request, "engineering.html", quarantine=list_quarantine(home), runs=runs,
                      dagster_url=config.dagster_url.rstrip("/"))

    def audit_page(request, reg, ident, form, *, verification=None):
        from governance.registry.checkpoints import load_checkpoints
        from governance.registry.views import audit_entries

        with reg.read() as s:
            entries = audit_entries(s, limit=50)
        checkpoints, problems = load_checkpoints(home.checkpoints)
        return render(request, "audit.html", entries=entries, checkpoints=checkpoints[-10:], cp_problems=problems,
                      verification=verification)

    def audit_verify(request, reg, ident, form):
        from governance.registry.integrity import verify_chain

        return audit_page(request, reg, ident, None, verification=verify_chain(reg, actor=ident.user_id, now=now()))

    def users_page(request, reg, ident, form, *, shown=None, errors=None, values=None, status=200):
        from governance.identity.signin import users
        from governance.registry.views import partner_ids

        with reg.read() as s:
            rows = users(s)
            partners = partner_ids(s)
        return render(request, "users.html", status=status, rows=rows, partners=partners, roles=[r.value for r in Role],
                      shown=shown, errors=errors or {}, values=values or {})

    def users_add(request, reg, ident, form):
        fields = ("user_id", "display_name", "organisation", "role", "partner_id", "email", "password", "oidc_subject")
        v = {k: str(form.get(k) or "").strip() or None for k in fields}
        try:
            shown = si.add_user(reg, actor=ident.user_id, user_id=v["user_id"] or "", display_name=v["display_name"] or "",
                                organisation=v["organisation"] or "", role=v["role"] or "", now=now(),
                                partner_id=v["partner_id"], email=v["email"], password=v["password"],
                                totp=bool(v["password"]), oidc_issuer=config.oidc.issuer if config.oidc and
                                v["oidc_subject"] else None, oidc_subject=v["oidc_subject"])
        except GovernanceError as exc:
            if "needs the permission" in str(exc):
                raise
            m = _FIELD.match(str(exc))
            key = {"partner": "partner_id"}.get(m.group(1), m.group(1)) if m else "form"
            return users_page(request, reg, ident, None, errors={key: str(exc)},
                              values={k: x for k, x in v.items() if k != "password"}, status=400)
        return users_page(request, reg, ident, None, shown=shown)

    def users_remove(request, reg, ident, form):
        si.remove_user(reg, actor=ident.user_id, user_id=request.path_params["user_id"][:64], now=now())
        return RedirectResponse("/admin/users", status_code=303)

    def agreements_page(request, reg, ident, form, *, error="", status=200):
        from governance.registry.views import agreements, partner_ids

        with reg.read() as s:
            rows, partners = agreements(s), partner_ids(s)
        return render(request, "agreements.html", status=status, rows=rows, partners=partners, error=error)

    def agreements_add(request, reg, ident, form):
        try:
            starts = date.fromisoformat(str(form.get("starts_on") or ""))
            ends = date.fromisoformat(str(form.get("expires_on") or ""))
        except ValueError:
            return agreements_page(request, reg, ident, None, error="starts_on, expires_on: dates YYYY-MM-DD",
                                   status=400)
        try:
            si.add_agreement(reg, actor=ident.user_id, partner_id=str(form.get("partner_id") or ""),
                             title=str(form.get("title") or ""), starts_on=starts, expires_on=ends, now=now())
        except GovernanceError as exc:
            if "needs the permission" in str(exc):
                raise
            return agreements_page(request, reg, ident, None, error=str(exc), status=400)
        return RedirectResponse("/admin/agreements", status_code=303)

    def cli_page(request, reg, ident, form, *, code=None):
        return render(request, "cli.html", code=code, expires=(now() + timedelta(minutes=5)).strftime("%H:%M UTC"))

    def cli_post(request, reg, ident, form):
        return cli_page(request, reg, ident, None,
                        code=si.cli_code(registry, token=request.cookies.get(SESSION, ""), now=now()))

    reviewers = (Role.STEWARD, Role.COMMUNITY_REVIEWER)
    requesters = (Role.ANALYST, Role.EVALUATOR)
    from governance.registry.roles import Permission, allowed

    checkers = tuple(r for r in Role if allowed(r, Permission.OUTPUT_CHECK))  # the library checks it again

    def get(path, fn, roles=None):
        return Route(path, page(fn, roles=roles), methods=["GET"])

    def post(path, fn, roles=None):
        return Route(path, page(fn, roles=roles, post=True), methods=["POST"])

    routes = [
        Route("/sign-in", sign_in_page, methods=["GET"]),
        Route("/sign-in", sign_in_post, methods=["POST"]),
        Route("/sign-in/link", link_request, methods=["POST"]),
        Route("/auth/link/{token}", link_confirm, methods=["GET"]),
        Route("/auth/link", link_post, methods=["POST"]),
        Route("/auth/oidc/start", oidc_start, methods=["GET"]),
        Route("/auth/oidc/callback", oidc_callback, methods=["GET"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/language/{lang}", language, methods=["GET"]),
        get("/", home_page),
        get("/queue", queue_page, reviewers),
        get("/requests", my_requests_page, requesters),
        get("/requests/new", new_request_page, requesters),
        post("/requests/new", new_request_post, requesters),
        get("/requests/{study_id}", request_page),
        get("/requests/{study_id}/summary", lambda r, g, i, f: request_page(r, g, i, f, printable=True)),
        post("/requests/{study_id}/decide", decide, reviewers),
        post("/requests/{study_id}/revoke", revoke, reviewers),
        post("/requests/{study_id}/export", export, (Role.EVALUATOR,)),
        get("/outputs", outputs_page, requesters),
        get("/outputs/{release_id}/download", download, requesters),
        get("/browse", browse_page, requesters),
        get("/checks", checks_page, checkers),
        get("/checks/{release_id}", check_page, checkers),
        post("/checks/{release_id}", check_post, checkers),
        get("/engineering", engineering_page, (Role.ENGINEER,)),
        get("/audit", audit_page, (*reviewers, Role.ENGINEER, Role.ADMINISTRATOR)),
        post("/audit/verify", audit_verify, (*reviewers, Role.ENGINEER, Role.ADMINISTRATOR)),
        get("/admin/users", users_page, (Role.ADMINISTRATOR,)),
        post("/admin/users", users_add, (Role.ADMINISTRATOR,)),
        post("/admin/users/{user_id}/remove", users_remove, (Role.ADMINISTRATOR,)),
        get("/admin/agreements", agreements_page, (Role.ADMINISTRATOR,)),
        post("/admin/agreements", agreements_add, (Role.ADMINISTRATOR,)),
        get("/cli", cli_page),
        post("/cli", cli_post),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            return refusal(request, "This address does not take that kind of request.", 405)
        return refusal(request, "There is no such page.", 404 if exc.status_code == 404 else exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<!doctype html><html lang=\"en\"><head><title>Error</title></head><body><main><h1>"
                            "Something went wrong</h1><p>The error was recorded; nothing was half-done. Try again, "
                            "or tell the IDS engineers the time it happened.</p></main></body></html>", status_code=500)

    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, 500: server_error})
    app.add_middleware(SecurityHeaders, secure=config.secure)
    app.state.registry = registry
    app.state.config = config
    return app
