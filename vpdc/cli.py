"""``vpdc``: one command line for every role. Every command has ``--help``; results take ``--json``.

Each command is a few lines over a library function (the kit, the landing zone, linkage, governance): the
rules live there, where Dagster and the portal call them too. Heavy libraries (Dagster, dbt, Splink, GX) are
imported inside the commands that need them, so ``vpdc partner ...`` starts fast. No traceback reaches a
user (:func:`partner_kit.cli.run_app`); ``VPDC_DEBUG=1`` shows one.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from partner_kit.cli import SafeGroup, UsageError, emit, fail
from partner_kit.cli import app as kit_app
from vpdc.options import HomeOpt
from workspace import Home, default_home, is_period


class VpdcGroup(SafeGroup):
    """Every command of ``vpdc``: library refusals become one clear line, never a traceback."""

    @staticmethod
    def known_errors() -> tuple[type[Exception], ...]:
        return known_errors()


app = typer.Typer(help="vpdc-ids: the Violence Prevention Data Collaborative's integrated data system.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=VpdcGroup)
keys_app = typer.Typer(help="Demo keys of every party, linkage-secret rotation, accepted key versions.",
                       no_args_is_help=True)
partners_app = typer.Typer(help="Engineers: register partners' public signing keys.", no_args_is_help=True)
envelope_app = typer.Typer(help="Inspect and verify envelopes (warehouse side).", no_args_is_help=True)
home_app = typer.Typer(help="The working directory (VPDC_HOME): keep it private to this account.", no_args_is_help=True)
dashboard_app = typer.Typer(help="The public Community Violence Data Dashboard (static site, English and Spanish).",
                            no_args_is_help=True)
quarantine_app = typer.Typer(help="Envelopes refused at the landing zone: list, show why, retry.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(partners_app, name="partners")
app.add_typer(kit_app, name="partner", help="The partner kit (also installable alone as `vpdc-kit`): keys, "
                                            "profiles, encode, send.")
app.add_typer(envelope_app, name="envelope")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(home_app, name="home")
app.add_typer(dashboard_app, name="dashboard")
from vpdc.governance_cli import register as _register_governance  # noqa: E402 - light module

_register_governance(app)
from vpdc.identity_cli import register as _register_identity  # noqa: E402 - light module

_register_identity(app)
from vpdc.stages import _progress, print_ingest, print_link, run_ingest, run_link, run_marts  # noqa: E402

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (and nothing else).")]
AsOpt = Annotated[str | None, typer.Option(
    "--as", envvar="VPDC_USER", help="Demo registries only: act as this user without signing in.")]


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------- keys
@keys_app.command("init")
def keys_init(home: HomeOpt, actor: Annotated[str, typer.Option(
                  "--as", envvar="VPDC_USER", help="The demo engineer who registers the partners' keys.")]
              = "engineer_ids",
              overwrite: Annotated[bool, typer.Option(
                  help="Replace existing keys. Every earlier encoding and envelope becomes unusable.")] = False,
              as_json: JsonOpt = False) -> None:
    """Demo keys, each party's in its own folder: the custodian's linkage secret, the warehouse's transport key
    and study master secret, each partner's own signing key (its public half registered with the warehouse)."""
    from vpdc.demo import init_demo_home_keys

    result = init_demo_home_keys(Home(home), actor=actor, overwrite=overwrite, now=_now())
    emit(result, as_json) if as_json else console.print(
        f"keys under {escape(str(home))}: {len(result['created'])} created, {len(result['kept'])} kept; "
        f"{len(result['registered'])} partner public keys registered with the warehouse")


@keys_app.command("rotate-linkage")
def keys_rotate(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Demo rotation: the custodian adds a linkage-secret version, every demo partner installs it (in
    transition: ids under both versions), and the warehouse accepts both until the old one is retired."""
    from vpdc.demo import rotate_demo_linkage_secret

    result = rotate_demo_linkage_secret(Home(home))
    emit(result, as_json) if as_json else console.print(
        f"linkage secret now {result['current']}; accepted: {', '.join(result['accepted'])}; partners re-send under "
        f"{result['current']}, then `vpdc link`, then `vpdc keys retire-linkage {result['previous']}`")


@keys_app.command("accept-linkage")
def keys_accept(version: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Accept envelopes encoded under a linkage-secret version (the start of a rotation's transition)."""
    from workspace.settings import load_settings, save_settings

    h = Home(home)
    settings = load_settings(h).accept(version)
    save_settings(h, settings)
    emit({"accepted": list(settings.accepted_linkage_versions)}, as_json)


@keys_app.command("retire-linkage")
def keys_retire(version: str, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Stop accepting a linkage-secret version (the end of a rotation's transition)."""
    from workspace.settings import load_settings, save_settings

    h = Home(home)
    settings = load_settings(h).retire(version)
    save_settings(h, settings)
    emit({"accepted": list(settings.accepted_linkage_versions)}, as_json)


# ----------------------------------------------------------------------------------------- partners
@partners_app.command("register")
def partners_register(partner: Annotated[str, typer.Option(help="Partner id (as in its profile).")],
                      public_key: Annotated[str, typer.Option(help="Its public signing key: 64 hex digits, or a file "
                                                                   "holding them (signing.pub).")],
                      home: HomeOpt, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """Register a partner's public signing key (from `vpdc-kit keys generate` at its site); audited."""
    from governance.partners import register_partner_key
    from vpdc.governance_cli import acting

    text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
    h = Home(home)
    actor, reg = acting(home, actor, "partners register")
    kid = register_partner_key(reg, keys_dir=h.keys, partner=partner, public_key=text, actor=actor,
                               now=_now())
    emit({"partner": partner, "key_id": kid}, as_json) if as_json else console.print(
        f"{escape(partner)}: signing key {kid} registered")


# -------------------------------------------------------------------------------------------- synth
@app.command()
def synth(
    home: HomeOpt,
    persons: Annotated[int, typer.Option(min=10, help="Population size.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 20261121,
    periods: Annotated[str, typer.Option(help="Comma-separated extract periods YYYY-MM; the first is the baseline.")]
    = "2025-11,2025-12",
    as_json: JsonOpt = False,
) -> None:
    """Simulate the county population and each partner's native extracts (with PII, synthetic), plus ground truth."""
    from synthetic import SynthConfig, generate

    period_list = tuple(p.strip() for p in periods.split(",") if p.strip())
    bad = [p for p in period_list if not is_period(p)]
    if bad or not period_list:
        raise UsageError(f"--periods: {bad[0][:20]!r} is not YYYY-MM" if bad else "--periods: none given")
    config = SynthConfig(persons=persons, seed=seed, periods=period_list)
    with _progress() as prog:
        task = prog.add_task("simulating", total=persons)
        summary = generate(config, Home(home).root,
                           progress=lambda n, d="": prog.update(task, advance=n, description=d or "simulating"))
    emit(summary, True) if as_json else console.print(
        f"synthetic data for {persons:,} persons under {escape(str(Home(home).root / 'partners'))}; "
        f"truth in {escape(str(Home(home).truth))}")


# ----------------------------------------------------------------------------------------- envelope
@envelope_app.command("inspect")
def envelope_inspect(path: Path, as_json: JsonOpt = False) -> None:
    """Show an envelope's manifest, unverified (routing information only)."""
    from envelope.format import read_manifest

    m = read_manifest(path)
    emit(m.__dict__ | {"wrapped_key": "<redacted>"}, as_json)


@envelope_app.command("verify")
def envelope_verify(path: Path, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Verify signature, checksums and row count with the warehouse's keys and registered partner keys only."""
    from envelope.format import EnvelopeRefused, open_envelope
    from envelope.keys import WarehouseKeyRing

    try:
        with open_envelope(path, WarehouseKeyRing(Home(home).keys)) as opened:
            result = {"file": path.name, "verified": True, "envelope_id": opened.manifest.envelope_id,
                      "partner": opened.manifest.partner, "rows": opened.manifest.row_count}
    except EnvelopeRefused as exc:
        if as_json:
            emit({"verified": False, **exc.reason()}, True)
            raise typer.Exit(1) from None
        fail(str(exc), code=1)
    emit(result, as_json) if as_json else console.print(f"{escape(path.name)}: verified ({result['rows']:,} rows)")


# ------------------------------------------------------------------------------------------- ingest
@app.command()
def ingest(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Ingest every new envelope in landing/ (what the Dagster landing sensor does), headless.

    Each envelope is verified, checked for plaintext identifiers, validated (Great Expectations) and
    split into linkage.duckdb and warehouse.duckdb; refused ones go to quarantine/ with a reason.
    """
    rows = run_ingest(Home(home))
    print_ingest(rows, as_json)
    if any(r["status"] == "error" for r in rows):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------ linkage
@app.command()
def link(
    home: HomeOpt,
    mode: Annotated[str, typer.Option(help="auto (incremental when a model exists), full, or incremental.")] = "auto",
    evaluate: Annotated[bool, typer.Option(help="Also score against the synthetic ground truth (synthetic data only).")]
    = False,
    engine: Annotated[str, typer.Option(help="duckdb (default), or spark: train, score and cluster on Apache Spark "
                                             "(full runs; needs the spark extra and Java 17; docs/spark.md).")]
    = "duckdb",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="With --engine spark: local[N] (N cores of this machine; default local[2]) or a "
                               "cluster's master URL (spark://host:7077).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Link persons across partners on encodings alone, report quality, export the person map (Dagster link_job)."""
    if mode not in ("auto", "full", "incremental"):
        raise UsageError("--mode must be auto, full or incremental")
    if engine not in ("duckdb", "spark"):
        raise UsageError("--engine must be duckdb or spark")
    if spark_master and engine != "spark":
        raise UsageError("--spark-master needs --engine spark")
    if engine == "spark" and mode == "incremental":
        raise UsageError("the Spark engine runs full linkages only (keys carry over between runs); "
                         "use --engine duckdb for an incremental run")
    result = run_link(Home(home), mode=mode, evaluate=evaluate, engine=engine, spark_master=spark_master)
    emit(result, as_json) if as_json else print_link(result)
    if not result["success"]:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------------- marts
@app.command()
def marts(home: HomeOpt, verbose: Annotated[bool, typer.Option(help="Show dbt's own progress lines.")] = False,
          as_json: JsonOpt = False) -> None:
    """Build the analytic marts with dbt (Dagster marts_job) and write the data dictionary to reports/."""
    result = run_marts(Home(home), verbose=verbose)
    emit(result, as_json) if as_json else console.print(
        f"marts built; data dictionary: {escape(result['data_dictionary'])}; dashboard: "
        f"{escape(result['dashboard'])}" if result["success"]
        else f"[red]marts failed:[/] {escape(str(result['error']))}")
    if not result["success"]:
        raise typer.Exit(1)


@dashboard_app.command("build")
def dashboard_build(home: HomeOpt,
                    out: Annotated[Path | None, typer.Option(help="Folder of the site (replaced whole); default "
                                                                  "VPDC_HOME/dashboard.")] = None,
                    lang: Annotated[list[str] | None, typer.Option(
                        help="Language(s) to build (repeatable); default every language the site has.")] = None,
                    as_json: JsonOpt = False) -> None:
    """Build the dashboard from the published indicators (after `vpdc marts`; `vpdc marts` builds it too). Refused,
    writing nothing, when the mart fails a suppression check."""
    from dashboard import build_dashboard
    from dashboard.i18n import LANGUAGES

    h = Home(home)
    built = build_dashboard(h.warehouse_db, out or h.dashboard, languages=tuple(lang or LANGUAGES))
    emit(built.to_dict(), as_json) if as_json else console.print(
        f"dashboard built: {escape(str(built.out_dir / 'index.html'))} ({len(built.pages)} pages, {built.figures} "
        f"charts, {built.cells_shown} cells shown, {built.cells_suppressed} suppressed; data through "
        f"{built.data_through})")


# --------------------------------------------------------------------------------------- quarantine
@app.command("validation-suite")
def validation_suite(partner: Annotated[str, typer.Option(help="Partner (see `vpdc partner profile list`).")],
                     extract: Annotated[str, typer.Option(help="Extract type of that partner.")],
                     as_json: JsonOpt = False) -> None:
    """Every check the landing zone runs on one partner schema: the Great Expectations suite (as code,
    from the partner profile), the Arrow checks of the encoding columns and the whole-file checks."""
    from landing.validation import describe_suite
    from partner_kit.profiles import load_profile

    profile = load_profile(partner, extract)
    rows = describe_suite(profile)
    table = Table("engine", "check", "column", "rule", title=f"validation suite {profile.schema_version}")
    for r in rows:
        table.add_row(r["engine"], r["check"], r["column"] or "", escape(r["rule"]))
    emit(rows, as_json, table)


@quarantine_app.command("list")
def quarantine_list(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Every quarantined envelope with the check it failed."""
    from landing.quarantine import list_quarantine

    rows = list_quarantine(Home(home))
    table = Table("file", "partner", "period", "check", "detail", title=f"quarantine ({len(rows)})")
    for r in rows:
        table.add_row(*(escape(str(v or "?")[:70]) for v in (r["file"], r["partner"], r["period"], r["check"],
                                                              r["detail"])))
    emit(rows, as_json, table)


@quarantine_app.command("show")
def quarantine_show(file: Annotated[str, typer.Argument(help="File name in quarantine/.")], home: HomeOpt,
                    as_json: JsonOpt = False) -> None:
    """The full machine-readable reason for one quarantined envelope."""
    from landing.quarantine import QuarantineError, quarantine_reason

    path = Home(home).quarantine / Path(file).name
    if not path.name.endswith(".vpdc") or not os.path.lexists(path):
        raise QuarantineError(f"{Path(file).name}: not in quarantine; see `vpdc quarantine list`")
    emit(quarantine_reason(path), as_json)


@quarantine_app.command("retry")
def quarantine_retry(file: Annotated[str, typer.Argument(help="File name in quarantine/.")], home: HomeOpt,
                     as_json: JsonOpt = False) -> None:
    """Move a quarantined envelope back to the landing folder it arrived in (after the cause is fixed) and
    ingest it again. The reason file is kept beside it in quarantine/ as history; nothing is deleted."""
    from landing.quarantine import return_to_landing

    h = Home(home)
    return_to_landing(h, file)
    print_ingest(run_ingest(h), as_json)


# --------------------------------------------------------------------------------------------- home
@home_app.command("secure")
def home_secure(
    home: Annotated[Path, typer.Option("--home", envvar="VPDC_HOME", help="Working directory (VPDC_HOME).",
                                       default_factory=default_home, show_default="./var")],
    as_json: JsonOpt = False,
) -> None:
    """Take group and other permissions off everything in the home (files 0600, folders 0700), as every
    command requires before it starts. Links are not followed."""
    from workspace.permissions import secure_home

    changed = secure_home(home)
    if as_json:
        emit({"home": str(home), "changed": changed}, True)
    else:
        console.print(f"{changed} path(s) under {escape(str(home))} made private to this account (0600/0700)")


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(
    home: HomeOpt,
    persons: Annotated[int, typer.Option(min=10, help="Population size.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261121,
    verbose: Annotated[bool, typer.Option(help="Show dbt's and Dagster's own progress lines.")] = False,
) -> None:
    """Run the main job end to end on synthetic data: keys, extracts, kit, landing, linkage, marts, governance."""
    from vpdc.demo import run_demo

    sys.exit(run_demo(Home(home), persons=persons, seed=seed, console=console, out=out, progress=_progress,
                      verbose=verbose))


@app.command("demo-users")
def demo_users(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """A demo home's users with their passwords and current authenticator codes (from VPDC_HOME/demo-users.json,
    made by `vpdc demo`). Demo homes only: a production registry has no such file."""
    import json

    import pyotp

    from vpdc.demo import DEMO_USERS_FILE

    path = Home(home).root / DEMO_USERS_FILE
    if not path.is_file():
        raise UsageError(f"{path}: not found; `vpdc demo` makes it (demo homes only)")
    users = json.loads(path.read_text())
    rows = [{"user": u, "password": d["password"], "code": pyotp.TOTP(d["totp_secret"]).now(), "email": d["email"]}
            for u, d in users.items()]
    table = Table("user", "password", "code now", "e-mail", title=f"demo users ({path.name}, 0600)")
    for r in rows:
        table.add_row(r["user"], r["password"], r["code"], r["email"])
    emit(rows, as_json, table)


# ------------------------------------------------------------------------------------------- portal
@app.command()
def portal(home: HomeOpt,
           host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback belongs behind a TLS "
                                                  "proxy (set VPDC_PORTAL_URL=https://...).")] = "127.0.0.1",
           port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8400) -> None:
    """The web portal for stewards, community reviewers, analysts, evaluators, engineers and administrators.

    Single sign-on: VPDC_OIDC_ISSUER, VPDC_OIDC_CLIENT_ID, VPDC_OIDC_CLIENT_SECRET. Mail (sign-in links,
    notifications): VPDC_SMTP_HOST, VPDC_SMTP_PORT, VPDC_SMTP_FROM. See docs/portal.md.
    """
    import uvicorn

    from vpdc.portal import PortalConfig, create_app

    config = PortalConfig.from_env(Home(home).root, host=host, port=port)
    if host not in ("127.0.0.1", "localhost", "::1") and not config.secure:
        console.print("[yellow]warning:[/] listening beyond loopback without https: put the portal behind a TLS proxy "
                      "and set VPDC_PORTAL_URL=https://... (cookies are then Secure)")
    console.print(f"portal on {escape(config.base_url)} (registry of {escape(str(Home(home).root))}); Ctrl-C stops it")
    # no access log: a sign-in link's path carries its token
    uvicorn.run(create_app(config), host=host, port=port, access_log=False, server_header=False, log_level="warning")


def known_errors() -> tuple[type[Exception], ...]:
    """Every refusal the library raises with a message meant for a person."""
    from partner_kit.cli import known_errors as kit_errors

    errors: list[type[Exception]] = list(kit_errors())
    try:
        from dashboard.published import DashboardRefused
        from governance.outputs.browse import BrowseViewError
        from governance.registry.audit import AuditError
        from governance.registry.db import RegistryUnavailable
        from governance.registry.policy import PolicyRefused
        from governance.registry.requests import RequestFileError
        from governance.registry.workflow import GovernanceError
        from landing.ingest import IngestError
        from landing.quarantine import QuarantineError
        from linkage.pipeline import NothingToDo
        from linkage.spark import SparkEngineError
        from workspace.permissions import HomePermissionError
        from workspace.settings import SettingsError

        errors += [PolicyRefused, GovernanceError, RequestFileError, QuarantineError, IngestError, NothingToDo,
                   SettingsError, RegistryUnavailable, AuditError, HomePermissionError, DashboardRefused,
                   BrowseViewError, SparkEngineError]
    except ModuleNotFoundError:  # a kit-only install: the warehouse's errors cannot occur
        pass
    return tuple(errors)


def main() -> None:  # pragma: no cover - console script
    app(prog_name="vpdc")


if __name__ == "__main__":  # pragma: no cover
    main()
