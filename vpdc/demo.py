"""The demo: the main job end to end on synthetic data, stage by stage, one readable table per stage.

Each stage calls the same library functions as the commands of the CLI. The demo keys are made the way each
party makes its own (custodian, warehouse, every partner at its site) and only public halves cross.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from workspace import Home

#: The demo's evaluation request: an ATV cohort with pre/post windows, reviewed by everyone it concerns.
ATV_REQUEST: dict[str, Any] = {
    "study_id": "atv-eval-2026",
    "title": "Alternatives to Violence: outcomes before and after enrolment",
    "organisation": "Evaluation partner",
    "purpose": "Evaluate whether ATV enrolment is followed by fewer police contacts, violent injuries and "
               "school suspensions.",
    "research_questions": "1. Do police contacts as victim or suspect fall in the year after enrolment? "
                          "2. Do violent-injury visits fall? 3. Do school absences and suspensions change?",
    "output_level": "cohort",
    "irb_protocol": "IRB-2026-0417",
    "equity_communities": "Young Black and Hispanic residents of the four priority areas, who are most exposed "
                          "to violence and to police contact.",
    "equity_return_of_findings": "Findings go first to the community council and ATV staff, in plain language, "
                                 "before any publication.",
    "equity_mitigation": "Results stratified by race/ethnicity only where linkage error is even across groups; "
                         "police contact is described as contact, never as offending.",
}


# --------------------------------------------------------------------------------------------- keys
def init_demo_home_keys(home: Home, *, actor: str, now: datetime, overwrite: bool = False) -> dict[str, Any]:
    """Every party's demo keys in its own folder, then each partner's public key registered (audited)."""
    from envelope.keys import init_demo_keys
    from governance.partners import register_partner_key
    from governance.registry.audit import init_audit_key
    from governance.registry.db import registry_for
    from governance.registry.seed import seed_demo
    from partner_kit.profiles import partners

    made = init_demo_keys(home, partners(), overwrite=overwrite)
    reg = registry_for(home.root)
    init_audit_key(reg, now=now)  # the audit chain's key, beside the warehouse's (never in the registry)
    with reg.transaction() as s:
        seed_demo(s, now=now)
    registered = {p: register_partner_key(reg, keys_dir=home.keys, partner=p, public_key=pub, actor=actor, now=now)
                  for p, pub in made.pop("public_keys").items()}
    return made | {"registered": registered}


DEMO_USERS_FILE = "demo-users.json"


def demo_accounts(home: Home, *, now: datetime) -> dict[str, Any]:
    """Sign-in details for every demo user (a random password and an authenticator secret each, set by the demo
    administrator, audited), kept in ``VPDC_HOME/demo-users.json`` (0600; never committed: VPDC_HOME is
    gitignored). Made once; ``vpdc demo-users`` shows them with each user's current code."""
    import json
    import secrets

    from governance.identity.signin import set_credentials
    from governance.registry.db import registry_for
    from governance.registry.models import Account
    from governance.registry.seed import DEMO_USERS
    from workspace.files import atomic_write

    path, reg = home.root / DEMO_USERS_FILE, registry_for(home.root)
    if path.is_file():  # kept while the registry still holds them (a re-made registry gets new ones)
        kept = json.loads(path.read_text())
        with reg.read() as s:
            if all((a := s.get(Account, uid)) is not None and a.password_hash for uid in kept):
                return kept
    users: dict[str, Any] = {}
    for uid, *_ in DEMO_USERS:
        password, email = secrets.token_urlsafe(12), ".".join(uid.split("_")) + "@demo.invalid"
        made = set_credentials(reg, actor="admin_ids", user_id=uid, password=password, totp=True, email=email, now=now)
        users[uid] = {"password": password, "totp_secret": made["totp_secret"], "email": email}
    atomic_write(path, json.dumps(users, indent=1).encode(), mode=0o600)
    return users


def rotate_demo_linkage_secret(home: Home) -> dict[str, Any]:
    """The demo's rotation: the custodian adds a version, each demo partner installs it in transition, the
    warehouse accepts both versions (retire the old one after every partner has re-sent and linkage ran)."""
    from envelope.keys import Custodian, install_linkage_secret
    from partner_kit.profiles import partners
    from workspace.settings import load_settings, save_settings

    custodian = Custodian(home.custodian)
    previous = custodian.current_version()
    new = custodian.rotate()
    for p in partners():
        install_linkage_secret(home.partner_keys(p), new, custodian.secret_bytes(new))
    settings = load_settings(home).accept(new)
    save_settings(home, settings)
    return {"previous": previous, "current": new, "accepted": list(settings.accepted_linkage_versions)}


def encode_and_send_all(home: Home, *, today: date, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every partner encodes every extract of every period at its site and sends it to ``landing/<partner>/``."""
    from envelope.keys import PartnerKeyRing
    from partner_kit.batch import encode_period, send_period
    from partner_kit.profiles import partners

    def task(label: str):
        if progress is None:
            return None
        t = progress.add_task(label, total=None)
        return lambda n: progress.update(t, advance=n)

    results = []
    for partner in partners():
        site, ring = home.partner_site(partner), PartnerKeyRing(home.partner_keys(partner))
        for period in site.periods():
            encoded = {r["extract_type"]: r for r in encode_period(site, partner, period, keyring=ring, today=today,
                                                                    progress=task)}
            for sent in send_period(site, partner, period, keyring=ring, out_dir=home.landing(partner),
                                    extracts=list(encoded)):
                results.append(encoded[sent["extract_type"]] | {"envelope": sent["envelope"].rsplit("/", 1)[-1]})
    return results


# --------------------------------------------------------------------------------------------- demo
def run_demo(home: Home, *, persons: int, seed: int, console: Console, out: Console,
             progress: Callable[[], Progress], verbose: bool = False) -> int:
    """Run every stage; return a process exit code."""
    from synthetic import SynthConfig, generate
    from vpdc.stages import print_ingest, print_link, run_ingest, run_link, run_marts

    home.ensure()
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    console.rule("[bold]1. keys: each party makes its own")
    made = init_demo_home_keys(home, actor="engineer_ids", now=now)
    table = Table("party", "folder", "keys", title="demo keys (0600 files in 0700 folders)")
    table.add_row("key custodian", "custodian/", "linkage secret (versioned)")
    table.add_row("warehouse", "keys/", "transport key pair, study master secret, registered partner public keys")
    table.add_row("each partner", "partners/<p>/keys/", "own signing key; linkage secret; warehouse public key")
    out.print(table)
    console.print(f"{len(made['created'])} keys created, {len(made['kept'])} kept; "
                  f"{len(made['registered'])} partner public keys registered with the warehouse (audited)")

    console.rule("[bold]2. synthetic partner extracts")
    with progress() as prog:
        task = prog.add_task("simulating", total=persons)
        generate(SynthConfig(persons=persons, seed=seed), home.root, progress=lambda n, d="": prog.update(task, advance=n))
    console.print(f"{persons:,} synthetic persons → native extracts under {escape(str(home.root / 'partners'))} "
                  f"(ground truth, for evaluation only: {escape(str(home.truth))})")

    console.rule("[bold]3. partner kit: encode, encrypt, sign, send")
    with progress() as prog:
        results = encode_and_send_all(home, today=date.today(), progress=prog)
    table = Table("partner", "extract", "period", "rows", "rejected", title="envelopes sent to landing/<partner>/")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows_encoded']:,}",
                      f"{r['rows_rejected']:,}")
    out.print(table)

    console.rule("[bold]4. landing zone: verify, validate, split into linkage and analytics zones")
    rows = run_ingest(home)
    print_ingest(rows, as_json=False)
    if any(r["status"] != "loaded" for r in rows):
        console.print(f"[yellow]see `vpdc quarantine list`; reasons in {escape(str(home.quarantine))}")

    console.rule("[bold]5. linkage on encodings: Splink model, stable person keys, quality report")
    linked = run_link(home, evaluate=True)
    print_link(linked)

    console.rule("[bold]6. analytic marts (dbt): persons, events, program cohorts, community indicators")
    marts = run_marts(home, verbose=verbose)
    if marts["success"]:
        print_headlines(home, out)
        console.print(f"data dictionary (equity metadata per column): {escape(marts['data_dictionary'])}")
        console.print(f"public dashboard (English; Spanish under es/), opens offline: {escape(marts['dashboard'])}")
        console.print(f"analysts' k-anonymous views (vpdc browse, the portal's Browse page): {escape(marts['browse'])}")
    else:
        console.print(f"[red]marts failed:[/] {escape(str(marts['error']))}")

    console.rule("[bold]7. governance: an approved ATV evaluation cohort, and a refused request")
    governed = print_governance(home, out) if marts["success"] else {"audit_ok": False}

    if marts["success"]:
        console.rule("[bold]7b. program evaluation: ATV and HVIP against matched comparison groups")
        print_evaluations(home, out)

    demo_accounts(home, now=datetime.now(UTC))
    console.rule("[bold]8. the portal")
    console.print("open it with [bold]make portal[/] (http://127.0.0.1:8400, this machine only). Every demo user signs in "
                  f"with the password and authenticator secret kept in {escape(str(home.root / DEMO_USERS_FILE))} "
                  "(0600); [bold]vpdc demo-users[/] prints them with each user's current six-digit code.")
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s; working directory {escape(str(home.root))}")
    ok = all(r["status"] == "loaded" for r in rows) and linked["success"] and marts["success"] and governed["audit_ok"]
    return 0 if ok else 1


def print_headlines(home: Home, out: Console) -> None:
    """A few county-wide figures and the published indicators (suppressed cells shown as such)."""
    from governance.outputs.published import headline_figures, indicator_summary

    h = headline_figures(home.warehouse_db)
    table = Table("figure", "value", title="the analytics zone")
    table.add_row("persons", f"{h['persons']:,}")
    table.add_row("seen by more than one agency", f"{h['persons_in_several_sources']:,}")
    table.add_row("violent-offense victimisations", f"{h['violent_offense_victimisations']:,}")
    table.add_row("firearm-injury visits", f"{h['firearm_injury_visits']:,}")
    table.add_row("assault ED visits", f"{h['assault_ed_visits']:,}")
    for p, n in h["program_cohorts"].items():
        table.add_row(f"{p} cohort ({h['window_days']}-day windows)", f"{n:,}")
    out.print(table)
    s = indicator_summary(home.warehouse_db)
    short = {"firearm_injuries": "firearm", "homicides": "homicide", "intimate_partner_violence": "IPV",
             "violence_related_ed_visits": "viol. ED", "violent_crimes": "violent", "youth_violence": "youth"}
    indicators = sorted({r["indicator"] for r in s["rows"]})
    geos = sorted({r["geography"] for r in s["rows"]}, key=lambda g: (g != "Mecklenburg County", g))
    table = Table(title=f"community violence indicators, {s['year']}: events in the year (rate per 100,000); "
                        "'suppr.' where the year figure is withheld")
    table.add_column("area", min_width=14)
    for i in indicators:
        table.add_column(short.get(i, i), justify="right")
    by = {(r["indicator"], r["geography"]): r for r in s["rows"]}
    for g in geos:
        cells = []
        for ind in indicators:
            r = by.get((ind, g), {"year_total": None, "rate_per_100k": None})
            if r["year_total"] is None:
                cells.append("suppr.")
            else:
                rate = f" ({r['rate_per_100k']:,.0f})" if r["rate_per_100k"] is not None else ""
                cells.append(f"{r['year_total']:,}{rate}")
        table.add_row(g, *cells)
    out.print(table)
    out.print(f"{s['cells']['published']:,} published cells (period x geography x group), "
              f"{s['cells']['suppressed']:,} suppressed")


def run_governance_demo(home: Home, *, now: datetime | None = None) -> dict[str, Any]:
    """Walk one request through approval and export; show another refused at the gate."""
    from governance.outputs import DEFAULT_COLUMNS, CohortSpec, export_cohort
    from governance.registry import audit
    from governance.registry.db import registry_for
    from governance.registry.policy import PolicyRefused, decide
    from governance.registry.seed import seed_demo
    from governance.registry.workflow import review_request, submit_request
    from partner_kit.profiles import partners

    now = now or datetime.now(UTC)
    reg = registry_for(home.root)
    with reg.transaction() as s:
        seed_demo(s, now=now)
    columns = [{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS]
    study = ATV_REQUEST["study_id"]
    dates = {"irb_expires_on": (now + timedelta(days=365)).date(), "retention_end": (now + timedelta(days=540)).date()}
    with reg.read() as s:
        exists = decide(s, study, at=now).reasons != (f"no request with study id {study!r}",)
    if not exists:
        with reg.transaction() as s:
            submit_request(s, requester="evaluator_atv", now=now, **ATV_REQUEST, columns=columns, **dates)
        for who in [f"steward_{p}" for p in partners()] + ["community_board"]:
            with reg.transaction() as s:
                review_request(s, reviewer=who, study_id=study, decision="approve", now=now,
                               comment="Approved for the ATV evaluation as described.")
    with reg.read() as s:
        repins_before = audit.entry_count(s, action="study.repinned", subject=study)
    # a demo run again re-links everyone: its evaluator accepts the new linkage for its own study (the gate refuses a
    # release after person-key merges or splits otherwise; the repin is audited as study.repinned)
    export = export_cohort(CohortSpec(study, "evaluator_atv", "ATV", date(2021, 1, 1), now.date(), comparison_ratio=1,
                                      repin=exists),
                           registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                           now=now)
    # output checking: two independent checkers (the demo's count, governance.defaults.OUTPUT_CHECKERS) approve it
    from governance.outputs.checking import check_output, release_of_file

    with reg.read() as s:
        rid = release_of_file(s, study_id=study, file=Path(export.files[0]).name)
    for checker in ("engineer_ids", "steward_county") if rid is not None else ():
        check_output(reg, checker=checker, release_id=rid, decision="approve", now=now,
                     comment="Disclosure report read: k-anonymity holds, no forbidden column.")
    # a second request: record-level with race/ethnicity, not yet reviewed by anyone → refused at the gate
    second = "linked-extract-2026"
    with reg.read() as s:
        has_second = decide(s, second, at=now).reasons != (f"no request with study id {second!r}",)
    if not has_second:
        with reg.transaction() as s:
            submit_request(s, requester="analyst_isc", now=now, **(ATV_REQUEST | {
                "study_id": second, "title": "Linked extract including race/ethnicity"}),
                columns=columns + [{"dataset": "program_cohorts", "column": "race_ethnicity"}], **dates)
    refused = ""
    try:
        export_cohort(CohortSpec(second, "analyst_isc", "ATV", date(2021, 1, 1), now.date()),
                      registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                      now=now)
    except PolicyRefused as exc:
        refused = str(exc)
    with reg.read() as s:
        chain = audit.verify(s)
        repinned = audit.entry_count(s, action="study.repinned", subject=study) > repins_before
    return {"study": study, "export": export, "refused": refused, "audit_ok": chain.ok, "audit_entries": chain.entries,
            "repinned": repinned}


def print_governance(home: Home, out: Console) -> dict[str, Any]:
    result = run_governance_demo(home)
    export = result["export"]
    table = Table("step", "outcome", title="governance")
    table.add_row(f"request {result['study']}", "approved by every steward and the community reviewer")
    if result.get("repinned"):
        table.add_row("linkage pin", "this run changed person keys since the study's last release: its evaluator "
                                     "accepted the new linkage (audited as study.repinned)")
    table.add_row("cohort export", f"{export.rows:,} rows released ({export.suppressed_rows:,} suppressed for "
                                   f"k-anonymity) to {escape(export.files[0])}")
    table.add_row("output checking", "approved by two independent checkers (engineer_ids, steward_county)")
    table.add_row("second request", escape(result["refused"]))
    table.add_row("audit chain", f"{'verified' if result['audit_ok'] else 'BROKEN'} ({result['audit_entries']} entries)")
    out.print(table)
    return result


#: The demo's evaluation request: aggregate output only, reviewed by everyone it concerns.
EVAL_REQUEST: dict[str, Any] = ATV_REQUEST | {
    "study_id": "program-eval-2026",
    "title": "ATV and HVIP: effects against matched comparison groups",
    "purpose": "Estimate the effect of ATV on violent police contacts, of HVIP on violent re-injury, and of the "
               "place-based work in Beatties Ford Rd/LaSalle St on violent incidents.",
    "output_level": "aggregate",
}
EVAL_AREA, EVAL_AREA_START = "Beatties Ford Rd/LaSalle St", date(2023, 7, 1)


def run_evaluation_demo(home: Home, *, now: datetime | None = None) -> list[Any]:
    """Submit and approve the evaluation request (once), then evaluate ATV (with its area) and HVIP."""
    from evaluation import EvaluationSpec, area_columns, run_evaluation
    from governance.outputs import DEFAULT_COLUMNS
    from governance.registry.db import registry_for
    from governance.registry.policy import decide
    from governance.registry.workflow import review_request, submit_request
    from partner_kit.profiles import partners

    now = now or datetime.now(UTC)
    reg = registry_for(home.root)
    study = EVAL_REQUEST["study_id"]
    with reg.read() as s:
        exists = decide(s, study, at=now).reasons != (f"no request with study id {study!r}",)
    if not exists:
        columns = [{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS] + area_columns()
        with reg.transaction() as s:
            submit_request(s, requester="evaluator_atv", now=now, **EVAL_REQUEST, columns=columns,
                           irb_expires_on=(now + timedelta(days=365)).date(),
                           retention_end=(now + timedelta(days=540)).date())
        for who in [f"steward_{p}" for p in partners()] + ["community_board"]:
            with reg.transaction() as s:
                review_request(s, reviewer=who, study_id=study, decision="approve", now=now,
                               comment="Approved for the program evaluation as described (aggregate only).")
    results = []
    for program in ("ATV", "HVIP"):
        area = (EVAL_AREA, EVAL_AREA_START) if program == "ATV" else (None, None)
        results.append(run_evaluation(EvaluationSpec(study, "evaluator_atv", program, area=area[0],
                                                     area_start=area[1], repin=exists),
                                      registry=reg, warehouse_db=home.warehouse_db, reports_dir=home.reports, now=now))
    return results


def print_evaluations(home: Home, out: Console) -> None:
    from governance.registry.errors import GovernanceError
    from governance.registry.policy import PolicyRefused

    try:
        results = run_evaluation_demo(home)
    except (PolicyRefused, GovernanceError, ValueError) as exc:
        out.print(f"[yellow]evaluation not reported:[/] {escape(str(exc))}")
        return
    table = Table("program", "estimate", "ratio (95 % CI)", title="program evaluations (disclosure-checked)")
    for r in results:
        for e in r.estimates:
            ci = f"{e['estimate']:.2f} ({e['low']:.2f} to {e['high']:.2f})" if e.get("low") is not None else "—"
            table.add_row(r.program, escape(e["name"]), ci)
    out.print(table)
    for r in results:
        out.print(f"{r.program}: {len(r.suppressed)} items suppressed; report {escape(r.html)}")
