"""Governance commands for every role: analysts and evaluators (requests, exports), stewards and the
community reviewer (queue, review, revoke, audit checkpoint), engineers (retention sweep); audit verify for
stewards, the community reviewer and engineers.

Identity is ``--as USER`` (or ``VPDC_USER``): the demo has no single sign-on. Every rule is the library's
(:mod:`governance.registry`, :mod:`governance.outputs`, :mod:`governance.retention`); text from requests is
printed escaped, so a title cannot restyle a steward's terminal or break a table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from governance.defaults import OUTCOME_WINDOW_DAYS
from partner_kit.cli import UsageError, emit, out
from vpdc.options import HomeOpt
from workspace import Home

registry_app = typer.Typer(help="The governance registry database (SQLite by default; VPDC_REGISTRY_URL for "
                                "PostgreSQL).", no_args_is_help=True)
request_app = typer.Typer(help="Analysts and evaluators: submit, follow and withdraw data requests.",
                          no_args_is_help=True)
review_app = typer.Typer(help="Data stewards and community reviewers: queue, show, approve, deny, conditions, revoke.",
                         no_args_is_help=True)
cohort_app = typer.Typer(help="Evaluators: export an approved de-identified program cohort.", no_args_is_help=True)
study_app = typer.Typer(help="Analysts: run an approved linked-data study (a study-scoped extract).",
                        no_args_is_help=True)
audit_app = typer.Typer(help="Verify the keyed audit chain (stewards, the community reviewer, engineers) and sign "
                             "checkpoints of it that stewards keep outside the registry.", no_args_is_help=True)
retention_app = typer.Typer(help="Engineers: destroy outputs and study keys at retention end.", no_args_is_help=True)
outputs_app = typer.Typer(help="Output checkers (stewards, engineers): released outputs awaiting checking, their "
                               "disclosure reports, approve / ask for changes / reject.", no_args_is_help=True)

RepinOpt = Annotated[bool, typer.Option(help="Accept person-key merges/splits since the study's pinned linkage run "
                                             "(audited as study.repinned).")]
AsOpt = Annotated[str | None, typer.Option(
    "--as", envvar="VPDC_USER", help="Demo registries only: act as this user without signing in (the audit records "
                                     "it as a claim). Everywhere else, `vpdc login` first.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (and nothing else).")]
CommentOpt = Annotated[str, typer.Option(help="Your reasons (kept in the registry and the audit log).")]
FromOpt = Annotated[str, typer.Option("--from", help="From (YYYY-MM-DD).")]
ToOpt = Annotated[str, typer.Option("--to", help="To (YYYY-MM-DD).")]
ProgramOpt = Annotated[str, typer.Option(help="ATV or HVIP.")]
WindowOpt = Annotated[int, typer.Option(help="Outcome window before/after enrollment, in days.")]


def register(app: typer.Typer) -> None:
    """Add the governance command groups to the main ``vpdc`` app."""
    for sub, name in ((registry_app, "registry"), (request_app, "request"), (review_app, "review"),
                      (cohort_app, "cohort"), (study_app, "study"), (audit_app, "audit"),
                      (retention_app, "retention"), (outputs_app, "outputs")):
        app.add_typer(sub, name=name)
    app.command("evaluate")(evaluate)
    app.command("browse")(browse)


def _now() -> datetime:
    return datetime.now(UTC)


def acting(home: Path, claimed: str | None, command: str):
    """(the acting user id, the registry bound to them): see :func:`vpdc.identity_cli.acting`."""
    from vpdc.identity_cli import acting as _acting

    return _acting(home, claimed, command)


def _registry(home: Path):
    from governance.registry.db import registry_for

    return registry_for(Home(home).root)


def _date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value[:20]!r}: expected a date YYYY-MM-DD") from None


def _print_fields(body: dict[str, Any]) -> None:
    for k, v in body.items():
        out.print(f"{k}: {escape(str(v))}")


# ---------------------------------------------------------------------------------------- registry
@registry_app.command("init")
def registry_init(home: HomeOpt, demo: Annotated[bool, typer.Option(help="A demo registry: the demo partners, users, "
                                                                      "agreements and catalogue, and --as accepted "
                                                                      "(said at every use). --no-demo: a production "
                                                                      "registry, where everyone signs in.")] = True,
                  admin: Annotated[str | None, typer.Option(help="Production: the first administrator's user id "
                                                                 "(password asked for; authenticator secret shown "
                                                                 "once).")] = None,
                  admin_email: Annotated[str | None, typer.Option(help="The first administrator's e-mail.")] = None
                  ) -> None:
    """Create or migrate the registry (Alembic), give its audit chain a key (keys/audit.key, made once; a chain
    from before the key is checked and sealed) and seed it: the demo (audited), or for production the partners
    and the catalogue, and the first administrator, who adds everyone else."""
    from governance.identity import set_registry_mode
    from governance.registry.audit import init_audit_key
    from governance.registry.seed import seed_demo

    reg = _registry(home)
    keyed = init_audit_key(reg, now=_now())
    with reg.transaction() as s:
        if not demo:
            set_registry_mode(s, "production", actor="registry", now=_now())
        seed_demo(s, now=_now(), people=demo)
    out.print(f"registry ready: {escape(reg.safe_url)}" + ("; audit key created" if keyed["created"] else "")
              + (f", {keyed['sealed']} earlier entries sealed under it" if keyed["sealed"] else "")
              + ("" if demo else "; production mode: everyone signs in"))
    if admin and not demo:
        from governance.identity.signin import bootstrap_administrator

        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
        made = bootstrap_administrator(reg, user_id=admin, display_name=admin, organisation="Violence Prevention "
                                       "Data Collaborative", password=password, email=admin_email, now=_now())
        out.print(f"administrator {escape(admin)}: authenticator secret (shown once) {made['totp_secret']}")
        out.print("authenticator URI: " + escape(made["totp_uri"]))


# ----------------------------------------------------------------------------------------- request
@request_app.command("submit")
def request_submit(home: HomeOpt, file: Annotated[Path, typer.Option(
        help="JSON with study_id, title, organisation, purpose, research_questions, columns "
             "([{dataset, column}]), output_level, irb_protocol, irb_expires_on, retention_end, equity_communities, "
             "equity_return_of_findings, equity_mitigation.")], as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Submit a data request (with its equity impact statement)."""
    from governance.registry.requests import RequestFileError, read_request_file
    from governance.registry.workflow import guarded, record_refusal, submit_request

    actor, reg = acting(home, actor, "request submit")
    try:
        body = read_request_file(file)
    except RequestFileError as exc:  # a refusal like any other: audited, with the file's name, never its content
        record_refusal(reg, actor=actor, action="request.submit", subject=file.name, reason=str(exc), now=_now())
        raise
    req = guarded(reg, actor=actor, action="request.submit", subject=str(body["study_id"])[:64], now=_now(),
                  fn=lambda s: submit_request(s, requester=actor, now=_now(), **body))
    _status(reg, req.study_id, as_json)


def _status(reg, study_id: str, as_json: bool) -> None:
    from governance.registry.queue import request_status

    with reg.read() as s:
        result = request_status(s, study_id, now=_now())
    if as_json:
        emit(result, True)
        return
    out.print(f"{escape(study_id)}: {'ACTIVE' if result['active'] else 'not active'}")
    for r in result["reasons"]:
        out.print(f"  - {escape(r)}")
    if result["active"]:
        out.print(f"  output level {result['output_level']}; {len(result['columns'])} columns; "
                  f"expires {result['expires_on']}")
    if result["linkage_run_pinned"]:
        out.print(f"  outputs pinned to linkage run {escape(result['linkage_run_pinned'])}")


@request_app.command("status")
def request_status(study_id: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Whether a request is active, what it may use, and what it still waits for."""
    _status(_registry(home), study_id, as_json)


@request_app.command("withdraw")
def request_withdraw(study_id: str, home: HomeOpt, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Withdraw your own request (takes effect at once)."""
    from governance.registry.workflow import guarded, withdraw_request

    actor, reg = acting(home, actor, "request withdraw")
    guarded(reg, actor=actor, action="request.withdraw", subject=study_id[:64], now=_now(),
            fn=lambda s: withdraw_request(s, actor=actor, study_id=study_id, now=_now()))
    _status(reg, study_id, as_json)


# ------------------------------------------------------------------------------------------ review
@review_app.command("queue")
def review_queue(home: HomeOpt, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Requests waiting for your decision."""
    from governance.registry.queue import review_queue as queue

    actor, reg = acting(home, actor, "review queue")
    with reg.read() as s:
        rows = queue(s, actor=actor, now=_now())
    table = Table("study", "title", "requester", "level", "waiting for", title=f"queue of {escape(actor)}")
    for r in rows:
        table.add_row(escape(r["study_id"]), escape(r["title"][:60]), escape(r["requester"]), r["output_level"],
                      escape(", ".join(r["pending"])))
    emit(rows, as_json, table)


@review_app.command("show")
def review_show(study_id: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Everything a reviewer needs: purpose, questions, columns, output level, IRB, retention, equity statement."""
    from governance.registry.queue import request_details

    with _registry(home).read() as s:
        body = request_details(s, study_id)
    emit(body, True) if as_json else _print_fields(body)


def _review(study_id: str, home: Path, actor: str | None, decision: str, conditions: dict | None, comment: str,
            as_json: bool) -> None:
    from governance.registry.workflow import guarded, review_request

    actor, reg = acting(home, actor, f"review {decision}")
    guarded(reg, actor=actor, action=f"review.{decision}", subject=study_id[:64], now=_now(),
            fn=lambda s: review_request(s, reviewer=actor, study_id=study_id, decision=decision, now=_now(),
                                        conditions=conditions, comment=comment))
    _status(reg, study_id, as_json)


@review_app.command("approve")
def review_approve(study_id: str, home: HomeOpt, comment: CommentOpt = "",
                   as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Approve a request for your agency (steward) or for the community (community reviewer)."""
    _review(study_id, home, actor, "approve", None, comment, as_json)


@review_app.command("deny")
def review_deny(study_id: str, home: HomeOpt, comment: CommentOpt = "", as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Deny a request. Any reviewer's denial stops it."""
    _review(study_id, home, actor, "deny", None, comment, as_json)


@review_app.command("conditions")
def review_conditions(study_id: str, home: HomeOpt,                       remove_column: Annotated[list[str] | None, typer.Option(
                          help="dataset.column to remove (repeat).")] = None,
                      aggregate_only: Annotated[bool, typer.Option(help="Allow aggregate outputs only.")] = False,
                      comment: CommentOpt = "", as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Approve with conditions: columns removed and/or aggregate only. The narrowest scope wins."""
    from governance.registry.workflow import column_refs

    conditions = {k: v for k, v in {"remove_columns": column_refs(remove_column or []),
                                    "aggregate_only": aggregate_only}.items() if v}
    _review(study_id, home, actor, "approve_with_conditions", conditions, comment, as_json)


@review_app.command("revoke")
def review_revoke(study_id: str, home: HomeOpt,                   reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
                  as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Revoke an approval; every gate refuses from now on."""
    from governance.registry.workflow import guarded, revoke_request

    actor, reg = acting(home, actor, "review revoke")
    guarded(reg, actor=actor, action="request.revoke", subject=study_id[:64], now=_now(),
            fn=lambda s: revoke_request(s, actor=actor, study_id=study_id, now=_now(), reason=reason))
    _status(reg, study_id, as_json)


# ------------------------------------------------------------------------------------------ cohort
def _released(result: Any, as_json: bool, what: str) -> None:
    emit(result.__dict__, as_json) if as_json else out.print(
        f"{escape(result.study_id)}: {what} ({result.rows} rows) released to {escape(result.files[0])}")


@cohort_app.command("export")
def cohort_export(study_id: str, home: HomeOpt, program: ProgramOpt = "ATV",
                  period_from: FromOpt = "2021-01-01", period_to: ToOpt = "2026-12-31",
                  window_days: WindowOpt = OUTCOME_WINDOW_DAYS,
                  comparison_ratio: Annotated[int, typer.Option(
                      min=0, max=5, help="Matched non-participants per participant (age band, sex, area, prior "
                                         "police contacts); 0 for none.")] = 0,
                  column: Annotated[list[str] | None, typer.Option(
                      help="program_cohorts column to export (repeat); default: every column the approval "
                           "allows now, after any reviewer's conditions.")] = None,
                  repin: RepinOpt = False, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Export a de-identified cohort (study pseudonyms, coarsened dates, k-anonymity) for an approved request."""
    from governance.outputs import CohortSpec, export_cohort

    actor, reg = acting(home, actor, "cohort export")
    h = Home(home)
    spec = CohortSpec(study_id, actor, program.upper(), _date("--from", period_from), _date("--to", period_to),
                      window_days, columns=tuple(column or ()), comparison_ratio=comparison_ratio, repin=repin)
    result = export_cohort(spec, registry=reg, warehouse_db=h.warehouse_db, outputs_dir=h.outputs,
                           keys_dir=h.keys, now=_now())
    _released(result, as_json, "cohort")


@cohort_app.command("summary")
def cohort_summary(study_id: str, home: HomeOpt, program: ProgramOpt = "ATV",
                   period_from: FromOpt = "2021-01-01", period_to: ToOpt = "2026-12-31",
                   window_days: WindowOpt = OUTCOME_WINDOW_DAYS,
                   by: Annotated[list[str] | None, typer.Option(
                       help="Break down by age_band_at_enrollment, sex or race_ethnicity (repeat); "
                            "default age_band_at_enrollment.")] = None,
                   outcome: Annotated[list[str] | None, typer.Option(
                       help="Outcome (repeat), e.g. police_victim_contacts, violent_injury_visits, "
                            "school_suspensions; its _pre and _post columns are summarised.")] = None,
                   repin: RepinOpt = False, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """An aggregate pre/post outcome table of a cohort (what an aggregate-only approval allows): persons with
    events (minimum cell, complementary suppression) and event totals (dominance rule), per group."""
    from governance.outputs import SummarySpec, export_cohort_summary

    actor, reg = acting(home, actor, "cohort summary")
    h = Home(home)
    spec = SummarySpec(study_id, actor, program.upper(), _date("--from", period_from), _date("--to", period_to),
                       window_days, by=tuple(by) if by is not None else ("age_band_at_enrollment",),
                       outcomes=tuple(outcome) if outcome else ("police_victim_contacts", "violent_injury_visits"),
                       repin=repin)
    result = export_cohort_summary(spec, registry=reg, warehouse_db=h.warehouse_db,
                                   outputs_dir=h.outputs, now=_now())
    _released(result, as_json, "summary")


# ---------------------------------------------------------------------------------------- evaluate
def evaluate(study_id: str, home: HomeOpt, program: ProgramOpt = "ATV",
             period_from: FromOpt = "2021-01-01", period_to: ToOpt = "2026-12-31",
             area: Annotated[str | None, typer.Option(
                 help="Also evaluate a place-based program in this priority area (needs --area-start).")] = None,
             area_start: Annotated[str | None, typer.Option(help="Its start date (YYYY-MM-DD).")] = None,
             repin: RepinOpt = False, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Evaluate a program for an approved request (aggregate output): matched comparison, difference-in-differences,
    event study, re-injury survival (HVIP), area-level impact; every count disclosure-checked; the report
    (HTML and JSON) goes to VPDC_HOME/reports/evaluations/."""
    from evaluation import EvaluationSpec, run_evaluation

    actor, reg = acting(home, actor, "evaluate")
    h = Home(home)
    spec = EvaluationSpec(study_id, actor, program.upper(), _date("--from", period_from), _date("--to", period_to),
                          area=area, area_start=_date("--area-start", area_start) if area_start else None, repin=repin)
    result = run_evaluation(spec, registry=reg, warehouse_db=h.warehouse_db, reports_dir=h.reports, now=_now())
    if as_json:
        emit({"study_id": result.study_id, "program": result.program, "html": result.html, "json": result.json,
              "estimates": result.estimates, "suppressed": result.suppressed}, True)
        return
    table = Table("estimate", "ratio (95 % CI)", title=f"{escape(result.program)} evaluation")
    for e in result.estimates:
        table.add_row(escape(e["name"]), f"{e['estimate']:.2f} ({e['low']:.2f} to {e['high']:.2f})"
                      if e.get("low") is not None else f"{e['estimate']:.2f}")
    out.print(table)
    out.print(f"{len(result.suppressed)} items suppressed; report: {escape(result.html)}")


# ------------------------------------------------------------------------------------------- study
@study_app.command("run")
def study_run(study_id: str, home: HomeOpt,               column: Annotated[list[str], typer.Option(help="events column to extract (repeat); must be approved.")],
              period_from: FromOpt = "2021-01-01", period_to: ToOpt = "2026-12-31", repin: RepinOpt = False,
              as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Run an approved linked-data study: study-pseudonymised, date-shifted, k-anonymous events of the period."""
    from governance.outputs import StudySpec, run_study

    actor, reg = acting(home, actor, "study run")
    h = Home(home)
    spec = StudySpec(study_id, actor, tuple(column), _date("--from", period_from), _date("--to", period_to),
                     repin=repin)
    result = run_study(spec, registry=reg, warehouse_db=h.warehouse_db, outputs_dir=h.outputs,
                       keys_dir=h.keys, now=_now())
    _released(result, as_json, "study extract")


# ------------------------------------------------------------------------------------------- audit
CheckpointsOpt = Annotated[Path | None, typer.Option(
    "--checkpoints", help="The stewards' checkpoint folder to compare with (default VPDC_HOME/checkpoints).")]


@audit_app.command("verify")
def audit_verify(home: HomeOpt, checkpoints: CheckpointsOpt = None, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Recompute the keyed chain and compare it with the latest signed checkpoint; exit 1 naming the first
    missing, edited or reordered entry (a chain cut shorter than a checkpoint included). Audited."""
    from governance.registry.integrity import verify_chain

    actor, reg = acting(home, actor, "audit verify")
    v = verify_chain(reg, actor=actor, now=_now(), checkpoints=checkpoints)
    if as_json:
        emit(v.__dict__, True)
    elif v.ok:
        out.print(f"audit chain verified: {v.entries} entries; " + (
            f"matches checkpoint {escape(v.checkpoint)}" if v.checkpoint else
            "no checkpoint yet (a cut tail cannot be seen without one: `vpdc audit checkpoint`)"))
    else:
        out.print(f"audit chain BROKEN: {v.entries} entries; {escape(v.problem)}")
    if not v.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(home: HomeOpt,                      out_dir: Annotated[Path | None, typer.Option(
                         "--out", help="Checkpoint folder, kept by stewards outside the registry "
                                       "(default VPDC_HOME/checkpoints).")] = None,
                     key_dir: Annotated[Path | None, typer.Option(
                         "--key-dir", help="Your own checkpoint key's folder (default "
                                           "VPDC_HOME/stewards/<you>/keys; made at first use).")] = None,
                     as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Sign the audit chain's head ({seq, head_hash, at, signer}) with your checkpoint key (stewards and the
    community reviewer). The chain is verified first; the checkpoint is audited."""
    from governance.registry.integrity import write_checkpoint

    actor, reg = acting(home, actor, "audit checkpoint")
    h = Home(home)
    cp = write_checkpoint(reg, actor=actor, folder=out_dir or h.checkpoints,
                          key_dir=key_dir or h.steward_keys(actor), now=_now())
    emit(cp.__dict__, as_json) if as_json else out.print(
        f"checkpoint {escape(cp.file)}: entries 1-{cp.seq} signed by {escape(cp.signer)} (key {cp.key_id})")


# --------------------------------------------------------------------------------------- retention
@retention_app.command("sweep")
def retention_sweep(home: HomeOpt, as_json: JsonOpt = False,
                    today: Annotated[str | None, typer.Option(help="Treat this date as today (YYYY-MM-DD); "
                                                                   "recorded in the audit.")] = None,
                    confirm: Annotated[bool, typer.Option(help="Destroy; without it the sweep only shows what it "
                                                               "would destroy.")] = False, actor: AsOpt = None) -> None:
    """Show (and with --confirm destroy) the outputs and study keys of requests past their retention end."""
    from governance.retention import sweep

    actor, reg = acting(home, actor, "retention sweep")
    h = Home(home)
    rows = sweep(reg, actor=actor, outputs_dir=h.outputs, keys_dir=h.keys,
                 today=_date("--today", today) if today else _now().date(), now=_now(), confirm=confirm)
    table = Table("study", "retention ended", "files", "study key", "interrupted",
                  title="destroyed" if confirm else "would destroy (pass --confirm)")
    for r in rows:
        table.add_row(escape(r["study_id"]), r["retention_end"], str(r["files"]),
                      "none" if r["study_key"] is False or isinstance(r["study_key"], str) else "yes",
                      "yes" if r["interrupted"] else "")
    emit({"confirmed": confirm, "studies": rows}, as_json, table)


# ------------------------------------------------------------------------------------------- output checking
@outputs_app.command("checks")
def outputs_checks(home: HomeOpt, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Released outputs waiting for your check (never your own)."""
    from governance.outputs.checking import checks_awaiting

    actor, reg = acting(home, actor, "outputs checks")
    with reg.read() as s:
        rows = checks_awaiting(s, actor=actor)
    table = Table("release", "study", "kind", "file", "requester", "approvals", title=f"checks for {escape(actor)}")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["study_id"]), r["kind"], escape(r["file"]), escape(r["requester"]),
                      f"{r['approvals']} / {r['required']}")
    emit(rows, as_json, table)


@outputs_app.command("report")
def outputs_report(release: Annotated[int, typer.Argument(help="Release number (from `vpdc outputs checks`).")],
                   home: HomeOpt, as_json: JsonOpt = False) -> None:
    """A release's disclosure report: its shape, the rules in force, the gate's verdict per file, the checking."""
    from governance.outputs.checking import disclosure_report

    with _registry(home).read() as s:
        body = disclosure_report(s, release_id=release, outputs_dir=Home(home).outputs)
    emit(body, True) if as_json else _print_fields(body)


@outputs_app.command("check")
def outputs_check(release: Annotated[int, typer.Argument(help="Release number.")], home: HomeOpt,
                  decision: Annotated[str, typer.Option(help="approve, changes (ask for changes) or reject.")],
                  comment: CommentOpt = "", as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Record your check of a release (a comment is needed to ask for changes or reject)."""
    from governance.outputs.checking import check_output

    actor, reg = acting(home, actor, "outputs check")
    status = check_output(reg, checker=actor, release_id=release, decision=decision, comment=comment, now=_now())
    emit(status, True) if as_json else out.print(
        f"release {release}: {status['state']} ({status['approvals']} of {status['required']} checkers approved)")


# ------------------------------------------------------------------------------------------- browse
def browse(view: Annotated[str, typer.Argument(help="events, persons or program_cohorts.")], home: HomeOpt,
           where: Annotated[list[str] | None, typer.Option(
               "--where", help="COLUMN=VALUE: only rows where the column has this value (repeatable).")] = None,
           column: Annotated[list[str] | None, typer.Option(
               "--column", help="Show only this column (repeatable); default every column.")] = None,
           limit: Annotated[int, typer.Option(help="Rows to show (1-10000).")] = 20,
           as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Analysts and evaluators: rows of a k-anonymous view of the marts (no person identifiers; months, bands;
    rebuilt with the marts). Reads are audited."""
    from governance.outputs.browse import browse_rows

    filters = []
    for w in where or []:
        name, sep, value = w.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--where {w!r}: write COLUMN=VALUE (e.g. --where event_type=ed_visit)")
        filters.append((name.strip(), value))
    actor, reg = acting(home, actor, "browse")
    body = browse_rows(reg, Home(home).analyst_browse_db, actor=actor, view=view, now=_now(), limit=limit,
                       where=filters, columns=column or ())
    if as_json:
        emit(body, True)
        return
    about = body["about"]
    table = Table(*body["columns"], title=f"{view}: {len(body['rows'])} of {body['total']} rows (k = {about['k']}, "
                                          f"built {about['built_at']})")
    for r in body["rows"]:
        table.add_row(*(escape("" if r[c] is None else str(r[c])) for c in body["columns"]))
    out.print(table)
