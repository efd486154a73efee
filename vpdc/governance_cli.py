"""Governance commands for every role: analysts and evaluators (requests, exports), stewards and the
community reviewer (queue, review, revoke), engineers (audit verify, retention sweep).

Identity is ``--as USER`` (or ``VPDC_USER``): the demo has no single sign-on. User-supplied text is printed
literally (no console markup), so a request title cannot restyle a steward's terminal.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from workspace import Home, default_home

registry_app = typer.Typer(help="The governance registry database (SQLite by default; VPDC_REGISTRY_URL for PostgreSQL).",
                           no_args_is_help=True)
request_app = typer.Typer(help="Analysts and evaluators: submit, follow and withdraw data requests.", no_args_is_help=True)
review_app = typer.Typer(help="Data stewards and community reviewers: queue, show, approve, deny, conditions, revoke.",
                         no_args_is_help=True)
cohort_app = typer.Typer(help="Evaluators: export an approved de-identified program cohort.", no_args_is_help=True)
study_app = typer.Typer(help="Analysts: run an approved linked-data study (a study-scoped extract).", no_args_is_help=True)
audit_app = typer.Typer(help="Verify the tamper-evident audit chain.", no_args_is_help=True)
retention_app = typer.Typer(help="Engineers: destroy outputs and study keys at retention end.", no_args_is_help=True)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="VPDC_HOME", help="Working directory (VPDC_HOME).",
                                       default_factory=default_home, show_default="./var")]
RepinOpt = Annotated[bool, typer.Option(help="Accept person-key merges/splits since the study's pinned linkage run "
                                             "(audited as study.repinned).")]
AsOpt = Annotated[str, typer.Option("--as", envvar="VPDC_USER", help="Who is acting (user id in the registry).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _now() -> datetime:
    return datetime.now(UTC)


def registry_for(home: Home):
    from governance.registry.db import Registry, registry_url

    home.root.mkdir(parents=True, exist_ok=True)
    return Registry(registry_url(home.root))


def _out(result: Any, as_json: bool, table: Table | None = None) -> None:
    from vpdc.cli import emit

    emit(result, as_json, table)


def _fail(msg: str, code: int = 2) -> None:
    from vpdc.cli import console

    console.print("[bold red]error:[/] ", end="")
    console.print(msg, markup=False, highlight=False)
    raise typer.Exit(code)


def _guard(registry, actor: str, action: str, subject: str, fn):
    """Run an action; on refusal, audit it and exit with a clear message."""
    from governance.registry.workflow import GovernanceError, record_refusal

    try:
        with registry.transaction() as s:
            return fn(s)
    except GovernanceError as exc:
        record_refusal(registry, actor=actor, action=action, subject=subject, reason=str(exc), now=_now())
        _fail(str(exc))


# ---------------------------------------------------------------------------------------- registry
@registry_app.command("init")
def registry_init(home: HomeOpt, demo: Annotated[bool, typer.Option(help="Load the demo partners, users, "
                                                                      "agreements and catalogue.")] = True) -> None:
    """Create or migrate the registry (Alembic) and, for the demo, seed it."""
    from governance.registry.seed import seed_demo

    reg = registry_for(Home(home))
    if demo:
        with reg.transaction() as s:
            seed_demo(s)
    typer.echo(f"registry ready: {reg.url}")


# ----------------------------------------------------------------------------------------- request
@request_app.command("submit")
def request_submit(home: HomeOpt, actor: AsOpt, file: Annotated[Path, typer.Option(
        help="JSON with study_id, title, organisation, purpose, research_questions, columns "
             "([{dataset, column}]), output_level, irb_protocol, irb_expires_on, retention_end, equity_communities, "
             "equity_return_of_findings, equity_mitigation.")], as_json: JsonOpt = False) -> None:
    """Submit a data request (with its equity impact statement)."""
    from governance.registry.workflow import REQUEST_FIELDS, record_refusal, submit_request

    reg = registry_for(Home(home))
    problem = ""
    try:
        body = json.loads(file.read_text())
    except OSError as exc:
        _fail(f"{file}: cannot be read: {exc.strerror or exc}")
    except ValueError as exc:
        problem = f"{file.name}: not JSON ({exc})"
    else:
        if not isinstance(body, dict):
            problem = f"{file.name}: must hold one JSON object with the fields {', '.join(REQUEST_FIELDS)}"
        else:
            unknown = sorted(str(k)[:40] for k in body if k not in REQUEST_FIELDS)
            missing = [k for k in REQUEST_FIELDS if k not in body]
            if unknown or missing:
                problem = f"{file.name}: " + "; ".join(
                    ([f"unknown fields {unknown}"] if unknown else []) + ([f"missing fields {missing}"] if missing else []))
            else:
                for k in ("irb_expires_on", "retention_end"):
                    try:
                        body[k] = date.fromisoformat(body[k])
                    except (TypeError, ValueError):
                        problem = f"{file.name}: {k} must be a date YYYY-MM-DD"
    if problem:  # a refusal like any other: audited, with the file's name, never its content
        record_refusal(reg, actor=actor, action="request.submit", subject=file.name, reason=problem, now=_now())
        _fail(problem)
    req = _guard(reg, actor, "request.submit", str(body.get("study_id", "?")),
                 lambda s: submit_request(s, requester=actor, now=_now(), **body))
    _status(reg, req.study_id, as_json)


def _status(reg, study_id: str, as_json: bool) -> None:
    from governance.registry.models import Request
    from governance.registry.policy import decide

    with reg.read() as s:
        scope = decide(s, study_id, at=_now())
        req = s.query(Request).filter_by(study_id=study_id).one_or_none()
        reviews = [{"reviewer": r.reviewer_id, "capacity": r.capacity, "decision": r.decision.value,
                    "conditions": r.conditions, "at": r.decided_at.isoformat()} for r in (req.reviews if req else [])]
        pin = req.linkage_run_id if req else None
    result = scope.as_dict() | {"reviews": reviews, "linkage_run_pinned": pin}
    if as_json:
        _out(result, True)
        return
    from vpdc.cli import out

    out.print(f"{study_id}: {'ACTIVE' if scope.active else 'not active'}", markup=False)
    for r in scope.reasons:
        out.print(f"  - {r}", markup=False, highlight=False)
    if scope.active:
        out.print(f"  output level {scope.output_level.value}; {len(scope.columns)} columns; expires {scope.expires_on}",
                  markup=False)
    if pin:
        out.print(f"  outputs pinned to linkage run {pin}", markup=False)


@request_app.command("status")
def request_status(study_id: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Whether a request is active, what it may use, and what it still waits for."""
    _status(registry_for(Home(home)), study_id, as_json)


@request_app.command("withdraw")
def request_withdraw(study_id: str, home: HomeOpt, actor: AsOpt, as_json: JsonOpt = False) -> None:
    """Withdraw your own request (takes effect at once)."""
    from governance.registry.workflow import withdraw_request

    reg = registry_for(Home(home))
    _guard(reg, actor, "request.withdraw", study_id, lambda s: withdraw_request(s, actor=actor, study_id=study_id, now=_now()))
    _status(reg, study_id, as_json)


# ------------------------------------------------------------------------------------------ review
@review_app.command("queue")
def review_queue(home: HomeOpt, actor: AsOpt, as_json: JsonOpt = False) -> None:
    """Requests waiting for your decision."""
    from governance.registry.models import Request, Role, User
    from governance.registry.policy import decide, required_reviews

    reg = registry_for(Home(home))
    rows = []
    with reg.read() as s:
        user = s.get(User, actor)
        if user is None:
            _fail(f"unknown user {actor!r}")
        for req in s.query(Request).order_by(Request.submitted_at):
            if req.withdrawn_at or req.revoked_at or req.requester_id == actor:
                continue
            partners, community = required_reviews(s, req)
            mine = (user.role == Role.STEWARD and user.partner_id in partners) or (
                user.role == Role.COMMUNITY_REVIEWER and community)
            decided = any(r.reviewer_id == actor for r in req.reviews)
            if mine and not decided:
                scope = decide(s, req.study_id, at=_now())
                rows.append({"study_id": req.study_id, "title": req.title, "requester": req.requester_id,
                             "output_level": req.output_level.value, "pending": list(scope.pending)})
    table = Table("study", "title", "requester", "level", "waiting for", title=f"queue of {actor}")
    for r in rows:
        table.add_row(r["study_id"], r["title"][:60], r["requester"], r["output_level"], ", ".join(r["pending"]))
    _out(rows, as_json, table)


@review_app.command("show")
def review_show(study_id: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Everything a reviewer needs: purpose, questions, columns, output level, IRB, retention, equity statement."""
    from governance.registry.models import Request

    reg = registry_for(Home(home))
    with reg.read() as s:
        req = s.query(Request).filter_by(study_id=study_id).one_or_none()
        if req is None:
            _fail(f"no request with study id {study_id!r}")
        body = {k: getattr(req, k) for k in ("study_id", "title", "requester_id", "organisation", "purpose",
                                            "research_questions", "columns", "irb_protocol", "irb_expires_on",
                                            "retention_end", "equity_communities", "equity_return_of_findings",
                                            "equity_mitigation")}
        body["output_level"] = req.output_level.value
    if as_json:
        _out(body, True)
    else:
        from vpdc.cli import out

        for k, v in body.items():
            out.print(f"{k}: {v}", markup=False, highlight=False)


def _review(study_id: str, home: Path, actor: str, decision: str, conditions: dict | None, comment: str,
            as_json: bool = False) -> None:
    from governance.registry.workflow import review_request

    reg = registry_for(Home(home))
    _guard(reg, actor, f"review.{decision}", study_id,
           lambda s: review_request(s, reviewer=actor, study_id=study_id, decision=decision, now=_now(),
                                    conditions=conditions, comment=comment))
    _status(reg, study_id, as_json)


CommentOpt = Annotated[str, typer.Option(help="Your reasons (kept in the registry and the audit log).")]


@review_app.command("approve")
def review_approve(study_id: str, home: HomeOpt, actor: AsOpt, comment: CommentOpt = "",
                   as_json: JsonOpt = False) -> None:
    """Approve a request for your agency (steward) or for the community (community reviewer)."""
    _review(study_id, home, actor, "approve", None, comment, as_json)


@review_app.command("deny")
def review_deny(study_id: str, home: HomeOpt, actor: AsOpt, comment: CommentOpt = "", as_json: JsonOpt = False) -> None:
    """Deny a request. Any reviewer's denial stops it."""
    _review(study_id, home, actor, "deny", None, comment, as_json)


@review_app.command("conditions")
def review_conditions(study_id: str, home: HomeOpt, actor: AsOpt,
                      remove_column: Annotated[list[str] | None, typer.Option(help="dataset.column to remove (repeat).")] = None,
                      aggregate_only: Annotated[bool, typer.Option(help="Allow aggregate outputs only.")] = False,
                      comment: CommentOpt = "", as_json: JsonOpt = False) -> None:
    """Approve with conditions: columns removed and/or aggregate only. The narrowest scope wins."""
    cols = []
    for rc in remove_column or []:
        if "." not in rc:
            _fail(f"--remove-column {rc!r}: expected dataset.column")
        d, c = rc.split(".", 1)
        cols.append({"dataset": d, "column": c})
    _review(study_id, home, actor, "approve_with_conditions",
            {k: v for k, v in {"remove_columns": cols, "aggregate_only": aggregate_only}.items() if v}, comment, as_json)


@review_app.command("revoke")
def review_revoke(study_id: str, home: HomeOpt, actor: AsOpt,
                  reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
                  as_json: JsonOpt = False) -> None:
    """Revoke an approval; every gate refuses from now on."""
    from governance.registry.workflow import revoke_request

    reg = registry_for(Home(home))
    _guard(reg, actor, "request.revoke", study_id,
           lambda s: revoke_request(s, actor=actor, study_id=study_id, now=_now(), reason=reason))
    _status(reg, study_id, as_json)


# ------------------------------------------------------------------------------------------ cohort
@cohort_app.command("export")
def cohort_export(study_id: str, home: HomeOpt, actor: AsOpt,
                  program: Annotated[str, typer.Option(help="ATV or HVIP.")] = "ATV",
                  period_from: Annotated[str, typer.Option("--from", help="Enrollments from (YYYY-MM-DD).")] = "2021-01-01",
                  period_to: Annotated[str, typer.Option("--to", help="Enrollments to (YYYY-MM-DD).")] = "2026-12-31",
                  window_days: Annotated[int, typer.Option(help="Outcome window before/after enrollment.")] = 365,
                  comparison_ratio: Annotated[int, typer.Option(
                      min=0, max=5, help="Matched non-participants per participant (age band, sex, area, prior "
                                         "police contacts); 0 for none.")] = 0,
                  column: Annotated[list[str] | None, typer.Option(
                      help="program_cohorts column to export (repeat); default: every column the approval "
                           "allows now, after any reviewer's conditions.")] = None,
                  repin: RepinOpt = False,
                  as_json: JsonOpt = False) -> None:
    """Export a de-identified cohort (study pseudonyms, coarsened dates, k-anonymity) for an approved request."""
    from governance.outputs import CohortSpec, export_cohort
    from governance.registry.policy import PolicyRefused

    h = Home(home)
    try:
        spec = CohortSpec(study_id, actor, program.upper(), date.fromisoformat(period_from),
                          date.fromisoformat(period_to), window_days, columns=tuple(column or ()),
                          comparison_ratio=comparison_ratio, repin=repin)
    except ValueError as exc:
        _fail(f"--from/--to: {exc}")
    try:
        result = export_cohort(spec, registry=registry_for(h), warehouse_db=h.warehouse_db, outputs_dir=h.outputs,
                               keys_dir=h.keys, now=_now())
    except PolicyRefused as exc:
        _fail(str(exc), code=3)
    _out(result.__dict__, as_json) if as_json else typer.echo(
        f"{study_id}: {result.rows} cohort rows released to {result.files[0]} (manifest {Path(result.manifest).name})")


@cohort_app.command("summary")
def cohort_summary(study_id: str, home: HomeOpt, actor: AsOpt,
                   program: Annotated[str, typer.Option(help="ATV or HVIP.")] = "ATV",
                   period_from: Annotated[str, typer.Option("--from", help="Enrollments from (YYYY-MM-DD).")] = "2021-01-01",
                   period_to: Annotated[str, typer.Option("--to", help="Enrollments to (YYYY-MM-DD).")] = "2026-12-31",
                   window_days: Annotated[int, typer.Option(help="Outcome window before/after enrollment.")] = 365,
                   by: Annotated[list[str] | None, typer.Option(
                       help="Break down by age_band_at_enrollment, sex or race_ethnicity (repeat); "
                            "default age_band_at_enrollment.")] = None,
                   outcome: Annotated[list[str] | None, typer.Option(
                       help="Outcome (repeat), e.g. police_victim_contacts, violent_injury_visits, "
                            "school_suspensions; its _pre and _post columns are summarised.")] = None,
                   repin: RepinOpt = False,
                   as_json: JsonOpt = False) -> None:
    """An aggregate pre/post outcome table of a cohort (what an aggregate-only approval allows): persons with
    events (minimum cell 11, complementary suppression) and event totals (dominance rule), per group."""
    from governance.outputs import SummarySpec, export_cohort_summary
    from governance.registry.policy import PolicyRefused

    h = Home(home)
    try:
        spec = SummarySpec(study_id, actor, program.upper(), date.fromisoformat(period_from),
                           date.fromisoformat(period_to), window_days,
                           by=tuple(by) if by is not None else ("age_band_at_enrollment",),
                           outcomes=tuple(outcome) if outcome else ("police_victim_contacts", "violent_injury_visits"),
                           repin=repin)
    except ValueError as exc:
        _fail(f"--from/--to: {exc}")
    try:
        result = export_cohort_summary(spec, registry=registry_for(h), warehouse_db=h.warehouse_db,
                                       outputs_dir=h.outputs, now=_now())
    except PolicyRefused as exc:
        _fail(str(exc), code=3)
    _out(result.__dict__, as_json) if as_json else typer.echo(
        f"{study_id}: summary of {result.rows} rows released to {result.files[0]} "
        f"({result.generalised['cells_suppressed']} cells suppressed, {result.generalised['sums_withheld']} sums "
        "withheld for dominance)")


# ------------------------------------------------------------------------------------------- study
@study_app.command("run")
def study_run(study_id: str, home: HomeOpt, actor: AsOpt,
              column: Annotated[list[str], typer.Option(help="events column to extract (repeat); must be approved.")],
              period_from: Annotated[str, typer.Option("--from", help="Events from (YYYY-MM-DD).")] = "2021-01-01",
              period_to: Annotated[str, typer.Option("--to", help="Events to (YYYY-MM-DD).")] = "2026-12-31",
              repin: RepinOpt = False,
              as_json: JsonOpt = False) -> None:
    """Run an approved linked-data study: study-pseudonymised, date-shifted, k-anonymous events of the period."""
    from governance.outputs import StudySpec, run_study
    from governance.registry.policy import PolicyRefused

    h = Home(home)
    try:
        spec = StudySpec(study_id, actor, tuple(column), date.fromisoformat(period_from), date.fromisoformat(period_to),
                         repin=repin)
    except ValueError as exc:
        _fail(f"--from/--to: {exc}")
    try:
        result = run_study(spec, registry=registry_for(h), warehouse_db=h.warehouse_db, outputs_dir=h.outputs,
                           keys_dir=h.keys, now=_now())
    except PolicyRefused as exc:
        _fail(str(exc), code=3)
    _out(result.__dict__, as_json) if as_json else typer.echo(
        f"{study_id}: {result.rows} rows released to {result.files[0]} (manifest {Path(result.manifest).name})")


# ------------------------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Recompute the hash chain; exit 1 naming the first edited, deleted or reordered entry."""
    from governance.registry.audit import verify

    with registry_for(Home(home)).read() as s:
        v = verify(s)
    _out(v.__dict__, True) if as_json else typer.echo(
        f"audit chain {'verified' if v.ok else 'BROKEN'}: {v.entries} entries" + (f"; {v.problem}" if not v.ok else ""))
    if not v.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------- retention
@retention_app.command("sweep")
def retention_sweep(home: HomeOpt, actor: AsOpt, as_json: JsonOpt = False,
                    today: Annotated[str | None, typer.Option(help="Treat this date as today (YYYY-MM-DD).")] = None) -> None:
    """Destroy outputs and study keys of requests past their retention end; record each destruction."""
    from governance.pseudonyms import StudyKeyStore
    from governance.registry.models import Request, Role, User
    from governance.registry.workflow import mark_destroyed

    h = Home(home)
    reg = registry_for(h)
    day = date.fromisoformat(today) if today else _now().date()
    done = []
    with reg.transaction() as s:
        user = s.get(User, actor)
        if user is None or user.role != Role.ENGINEER:
            _fail(f"{actor}: only IDS engineers run the retention sweep")
        for req in s.query(Request).filter(Request.destroyed_at.is_(None), Request.retention_end < day):
            out_dir = h.outputs / req.study_id
            files = sorted(p.name for p in out_dir.rglob("*") if p.is_file()) if out_dir.exists() else []
            shutil.rmtree(out_dir, ignore_errors=True)
            store = StudyKeyStore(h.keys / "studies")
            # a request that never exported has no study key: nothing to destroy, and that is recorded too
            key_record = store.destroy(req.study_id, now=_now()).to_dict() if store.exists(req.study_id) else None
            detail = {"files_destroyed": len(files), "study_key": key_record or "none was ever created"}
            mark_destroyed(s, actor=actor, study_id=req.study_id, now=_now(), detail=detail)
            done.append({"study_id": req.study_id, **detail})
    _out(done, as_json) if as_json else typer.echo(f"{len(done)} studies past retention destroyed")
