"""``vpdc``: one command line for every role. Every command has ``--help``; results take ``--json``.

Heavy libraries (Dagster, dbt, Splink, GX) are imported inside the commands that need them, so the
partner kit commands start fast and run where only the kit's light dependencies are installed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from partner_kit.profiles import partners
from workspace import Home, default_home

app = typer.Typer(help="vpdc-ids: the Violence Prevention Data Collaborative's integrated data system.",
                  no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Create and rotate keys (demo keys live under VPDC_HOME/keys, mode 0600).",
                       no_args_is_help=True)
partner_app = typer.Typer(help="The partner kit: encode an extract and send it as a signed, encrypted envelope.",
                          no_args_is_help=True)
envelope_app = typer.Typer(help="Inspect and verify envelopes (warehouse side).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(partner_app, name="partner")
quarantine_app = typer.Typer(help="Envelopes refused at the landing zone: list, show why, retry.", no_args_is_help=True)
app.add_typer(envelope_app, name="envelope")
app.add_typer(quarantine_app, name="quarantine")
from vpdc.governance_cli import (  # noqa: E402 - light module: heavy imports happen inside its commands
    audit_app,
    cohort_app,
    registry_app,
    request_app,
    retention_app,
    review_app,
    study_app,
)

app.add_typer(registry_app, name="registry")
app.add_typer(request_app, name="request")
app.add_typer(review_app, name="review")
app.add_typer(cohort_app, name="cohort")
app.add_typer(study_app, name="study")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")

console = Console(stderr=True)
out = Console()

HomeOpt = Annotated[Path, typer.Option("--home", envvar="VPDC_HOME", help="Working directory (VPDC_HOME).",
                                       default_factory=default_home, show_default="./var")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def emit(result: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        out.print_json(json.dumps(result, default=str))
    elif table is not None:
        out.print(table)
    else:
        out.print(result)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def _periods(partner_dir: Path) -> list[str]:
    return sorted(p.name for p in partner_dir.iterdir() if p.is_dir() and p.name[:2].isdigit()) if partner_dir.exists() else []


# --------------------------------------------------------------------------------------------- keys
@keys_app.command("init")
def keys_init(home: HomeOpt, overwrite: Annotated[bool, typer.Option(
        help="Replace existing keys. Every earlier encoding and envelope becomes unusable.")] = False,
        as_json: JsonOpt = False) -> None:
    """Create every demo key that does not exist yet (linkage secret, partner signing keys, warehouse keys)."""
    from envelope.keys import init_keys

    result = init_keys(Home(home).keys, tuple(partners()), overwrite=overwrite)
    if not as_json:
        console.print(f"keys under {Home(home).keys}: {len(result['created'])} created, {len(result['kept'])} kept")
    emit(result, as_json) if as_json else None


@keys_app.command("rotate-linkage")
def keys_rotate(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Add a new linkage secret version and make it current (all partners must re-encode)."""
    from envelope.keys import rotate_linkage_secret

    version = rotate_linkage_secret(Home(home).keys)
    emit({"current_linkage_version": version}, as_json) if as_json else console.print(f"linkage secret now {version}")


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
    for p in period_list:
        try:
            datetime.strptime(p, "%Y-%m")
        except ValueError:
            fail(f"--periods: {p!r} is not YYYY-MM")
    config = SynthConfig(persons=persons, seed=seed, periods=period_list)
    with _progress() as prog:
        task = prog.add_task("simulating", total=persons)
        summary = generate(config, Home(home).root, progress=lambda n, d="": prog.update(task, advance=n, description=d or "simulating"))
    if as_json:
        emit(summary, True)
    else:
        console.print(f"synthetic data for {persons:,} persons under {Home(home).root / 'partners'}; truth in {Home(home).truth}")


# ------------------------------------------------------------------------------------------ partner
@partner_app.command("profiles")
def partner_profiles(as_json: JsonOpt = False) -> None:
    """List the partner profiles shipped with the kit and their extract types."""
    from partner_kit import extract_types, load_profile, partners

    rows = []
    for p in partners():
        for e in extract_types(p):
            prof = load_profile(p, e)
            rows.append({"partner": p, "extract": e, "kind": prof.kind, "file": prof.file,
                         "schema_version": prof.schema_version})
    table = Table("partner", "extract", "kind", "file", "schema version")
    for r in rows:
        table.add_row(r["partner"], r["extract"], r["kind"], r["file"], r["schema_version"])
    emit(rows, as_json, table)


def _encode_one(home: Home, partner: str, extract: str, period: str, input_path: Path | None,
                today: date, prog: Progress) -> dict[str, Any]:
    from envelope.keys import KeyRing
    from partner_kit import Encoder, encode_extract, load_profile

    profile = load_profile(partner, extract)
    src = input_path or home.partner_raw(partner) / period / profile.file
    dest = home.partner_out(partner) / period / f"{extract}.parquet"
    secret = KeyRing(home.keys).linkage_secret()
    task = prog.add_task(f"{partner}/{extract} {period}", total=None)
    summary = encode_extract(profile, src, dest, Encoder(secret), today=today,
                             progress=lambda n: prog.update(task, advance=n))
    prog.remove_task(task)
    return summary.as_dict() | {"period": period}


@partner_app.command("encode")
def partner_encode(
    home: HomeOpt,
    partner: Annotated[str, typer.Option(help="Partner whose extract this is (see `vpdc partner profiles`).")],
    extract: Annotated[str | None, typer.Option(help="Extract type; default: every extract of the partner.")] = None,
    period: Annotated[str | None, typer.Option(help="Extract period YYYY-MM; default: every period found.")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Native CSV (default: the synthetic one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Normalise and encode a native extract. Writes Parquet (encodings + allow-listed content) and a rejects file.

    Nothing is sent: run `vpdc partner send` next. No plaintext identifier is written.
    """
    from envelope.keys import KeyError_
    from partner_kit import ProfileError, SchemaError, extract_types

    h = Home(home)
    try:
        extracts = [extract] if extract else extract_types(partner)
    except FileNotFoundError:
        fail(f"no profile for partner {partner!r}")
    periods = [period] if period else _periods(h.partner_raw(partner))
    if not periods:
        fail(f"no extract periods under {h.partner_raw(partner)}; pass --period and --input")
    if input_path and (len(extracts) != 1 or len(periods) != 1):
        fail("--input needs exactly one --extract and one --period")
    results = []
    with _progress() as prog:
        for per in periods:
            for ex in extracts:
                try:
                    results.append(_encode_one(h, partner, ex, per, input_path, date.today(), prog))
                except (SchemaError, ProfileError, KeyError_) as exc:
                    fail(str(exc))
    _print_encode(results, as_json)


def _print_encode(results: list[dict[str, Any]], as_json: bool) -> None:
    table = Table("partner", "extract", "period", "rows", "encoded", "rejected", "rec/s")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows_read']:,}", f"{r['rows_encoded']:,}",
                      f"{r['rows_rejected']:,}", f"{r['rows_read'] / max(r['seconds'], 1e-9):,.0f}")
    emit(results, as_json, table)


@partner_app.command("send")
def partner_send(
    home: HomeOpt,
    partner: Annotated[str, typer.Option(help="Partner sending.")],
    extract: Annotated[str | None, typer.Option(help="Extract type; default: every encoded extract.")] = None,
    period: Annotated[str | None, typer.Option(help="Period YYYY-MM; default: every encoded period.")] = None,
    to: Annotated[Path | None, typer.Option(help="Destination folder (default: VPDC_HOME/landing/<partner>).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign and encrypt encoded extracts into envelopes for the warehouse's landing zone."""
    import pyarrow.parquet as pq

    from envelope.keys import KeyError_, KeyRing
    from partner_kit import SchemaError, seal_encoded

    h = Home(home)
    base = h.partner_out(partner)
    periods = [period] if period else _periods(base)
    if not periods:
        fail(f"nothing encoded under {base}; run `vpdc partner encode --partner {partner}` first")
    keyring = KeyRing(h.keys)
    results = []
    for per in periods:
        files = [base / per / f"{extract}.parquet"] if extract else sorted((base / per).glob("*.parquet"))
        for f in files:
            if not f.exists():
                fail(f"{f}: not encoded yet; run `vpdc partner encode --partner {partner} --extract {f.stem} --period {per}`")
            try:
                env = seal_encoded(f, partner=partner, extract_type=f.stem, period=per, keyring=keyring,
                                   out_dir=to or h.landing(partner))
            except (KeyError_, SchemaError) as exc:
                fail(str(exc))
            results.append({"partner": partner, "extract_type": f.stem, "period": per,
                            "rows": pq.ParquetFile(f).metadata.num_rows, "envelope": str(env)})
    table = Table("partner", "extract", "period", "rows", "envelope")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows']:,}", Path(r["envelope"]).name)
    emit(results, as_json, table)


# ----------------------------------------------------------------------------------------- envelope
@envelope_app.command("inspect")
def envelope_inspect(path: Path, as_json: JsonOpt = False) -> None:
    """Show an envelope's manifest, unverified (routing information only)."""
    from envelope.format import EnvelopeRefused, read_manifest

    try:
        m = read_manifest(path)
    except EnvelopeRefused as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")
    emit(m.__dict__ | {"wrapped_key": "<redacted>"}, as_json)


@envelope_app.command("verify")
def envelope_verify(path: Path, home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Verify signature, checksums and row count of an envelope with the warehouse keys (nothing is kept)."""
    from envelope.format import EnvelopeRefused, open_envelope
    from envelope.keys import KeyError_, KeyRing

    try:
        with open_envelope(path, KeyRing(Home(home).keys)) as opened:
            result = {"file": str(path), "verified": True, "envelope_id": opened.manifest.envelope_id,
                      "partner": opened.manifest.partner, "rows": opened.manifest.row_count}
    except EnvelopeRefused as exc:
        if as_json:
            emit({"verified": False, **exc.reason()}, True)
            raise typer.Exit(1) from None
        fail(str(exc), code=1)
    except KeyError_ as exc:
        fail(str(exc))
    emit(result, as_json) if as_json else console.print(f"{path.name}: verified ({result['rows']:,} rows)")


# ------------------------------------------------------------------------------------------- ingest
@app.command()
def ingest(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Ingest every new envelope in landing/ (what the Dagster landing sensor does), headless.

    Each envelope is verified, checked for plaintext identifiers, validated (Great Expectations) and
    split into linkage.duckdb and warehouse.duckdb; refused ones go to quarantine/ with a reason.
    """
    rows = _ingest(Home(home))
    _print_ingest(rows, as_json)
    if any(r["status"] == "error" for r in rows):
        raise typer.Exit(1)


def _ingest(home: Home) -> list[dict[str, Any]]:
    from orchestration.runner import run_landing_sensor_once

    with _progress() as prog:
        task = prog.add_task("ingesting envelopes", total=None)
        runs = run_landing_sensor_once(home, progress=lambda n: prog.update(task, advance=n))
    return _ingest_rows(home, runs)


def _ingest_rows(home: Home, runs: list[Any]) -> list[dict[str, Any]]:
    import duckdb

    events: dict[str, tuple[Any, ...]] = {}
    if home.warehouse_db.exists():
        with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
            for row in con.execute("select envelope_id, partner, extract_type, period, status, check_name, detail, rows, "
                                   "file from raw.ingest_events order by event_at").fetchall():
                if row[0]:
                    events[row[0]] = row
                events[row[8]] = row
    rows = []
    for r in runs:
        if r.skipped:
            continue
        ev = events.get(r.run_key.split("#")[0]) or events.get(r.file)
        if ev:
            rows.append({"file": ev[8], "partner": ev[1], "extract": ev[2], "period": ev[3], "status": ev[4],
                         "check": ev[5], "detail": ev[6], "rows": ev[7]})
        else:
            rows.append({"file": r.run_key, "partner": None, "extract": None, "period": r.partition,
                         "status": "loaded" if r.success else "error", "check": None, "detail": r.error, "rows": 0})
    return rows


def _print_ingest(rows: list[dict[str, Any]], as_json: bool) -> None:
    table = Table("partner", "extract", "period", "rows", "status", "reason", title="ingestion")
    for r in rows:
        reason = f"{r['check']}: {r['detail']}" if r["check"] else (r["detail"] or "")
        table.add_row(r["partner"] or "?", r["extract"] or "?", r["period"] or "?", f"{r['rows'] or 0:,}",
                      r["status"], reason[:90])
    emit(rows, as_json, table)
    if not as_json:
        loaded = sum(r["status"] == "loaded" for r in rows)
        console.print(f"{loaded} envelopes loaded, {sum(r['status'] == 'quarantined' for r in rows)} quarantined, "
                      f"{sum(r['status'] == 'error' for r in rows)} errors")


# ------------------------------------------------------------------------------------------ linkage
@app.command()
def link(
    home: HomeOpt,
    mode: Annotated[str, typer.Option(help="auto (incremental when a model exists), full, or incremental.")] = "auto",
    evaluate: Annotated[bool, typer.Option(help="Also score against the synthetic ground truth (synthetic data only).")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Link persons across partners on encodings alone, report quality, export the person map (Dagster link_job)."""
    if mode not in ("auto", "full", "incremental"):
        fail("--mode must be auto, full or incremental")
    result = _link(Home(home), mode=mode, evaluate=evaluate)
    emit(result, as_json) if as_json else _print_link(result)
    if not result["success"]:
        raise typer.Exit(1)


def _link(home: Home, *, mode: str = "auto", evaluate: bool = False) -> dict[str, Any]:
    from linkage.pipeline import evaluate_latest_run, latest_run
    from orchestration.runner import run_job

    with _progress() as prog:
        prog.add_task("linking persons on encodings", total=None)
        summary = run_job(home, "link_job", run_config={"ops": {"link_persons": {"config": {"mode": mode}}}})
    out: dict[str, Any] = {"success": summary.success, "error": summary.error, "run": latest_run(home.linkage_db)
                           if home.linkage_db.exists() else None}
    report_path = home.reports / "linkage" / f"{out['run']['run_id']}.json" if out["run"] else None
    if report_path and report_path.exists():
        out["report"] = json.loads(report_path.read_text())
    if evaluate and out["run"]:
        report, html_path = evaluate_latest_run(home, now=datetime.now(UTC))
        out["report"], out["report_html"] = report, str(html_path)
    return out


def _print_link(result: dict[str, Any]) -> None:
    run, report = result.get("run"), result.get("report") or {}
    if not result["success"]:
        console.print(f"[red]linkage stopped: {result['error']}")
    if not run:
        return
    console.print(f"linkage run {run['run_id']} ({run['mode']}): {run['total_records']:,} records → "
                  f"{run['persons']:,} persons; {run['new_records']:,} records scored; {run['pairs']:,} pairs")
    est = report.get("estimated", {})
    console.print(f"estimated precision {est.get('precision')}, recall {est.get('recall')}")
    truth = report.get("truth")
    if truth:
        p, c = truth["pairwise"], truth["cluster"]
        console.print(f"true pairwise precision {p['precision']}, recall {p['recall']}, F1 {p['f1']}; "
                      f"cluster F1 {c['f1']}")
        flagged = [f"{dim}={g['group']} ({', '.join(g['flagged'])})" for dim, rows in truth["subgroups"]["groups"].items()
                   for g in rows if g["flagged"] and not g["small_group"]]
        console.print("groups with linkage error above 1.5× overall: " + (", ".join(flagged) or "none"))
    if result.get("report_html"):
        console.print(f"report: {result['report_html']}")


# -------------------------------------------------------------------------------------------- marts
@app.command()
def marts(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Build the analytic marts with dbt (Dagster marts_job) and write the data dictionary to reports/."""
    from orchestration.runner import run_job

    with _progress() as prog:
        prog.add_task("dbt build", total=None)
        res = run_job(Home(home), "marts_job")
    result = {"success": res.success, "error": res.error, "data_dictionary": str(Home(home).reports / "data_dictionary.html")}
    emit(result, as_json) if as_json else console.print(
        "marts built; data dictionary: " + result["data_dictionary"] if res.success else f"marts failed: {res.error}",
        markup=False)
    if not res.success:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------- quarantine
@app.command("validation-suite")
def validation_suite(partner: Annotated[str, typer.Option(help="Partner (see `vpdc partner profiles`).")],
                     extract: Annotated[str, typer.Option(help="Extract type of that partner.")],
                     as_json: JsonOpt = False) -> None:
    """Every check the landing zone runs on one partner schema: the Great Expectations suite (as code,
    from the partner profile), the Arrow checks of the encoding columns and the whole-file checks."""
    from landing.validation import describe_suite
    from partner_kit import ProfileError, load_profile

    try:
        profile = load_profile(partner, extract)
    except ProfileError as exc:
        fail(str(exc))
    rows = describe_suite(profile)
    table = Table("engine", "check", "column", "rule", title=f"validation suite {profile.schema_version}")
    for r in rows:
        table.add_row(r["engine"], r["check"], r["column"] or "", r["rule"])
    emit(rows, as_json, table)


@quarantine_app.command("list")
def quarantine_list(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Every quarantined envelope with the check it failed."""
    from landing.ingest import quarantine_reason

    q = Home(home).quarantine
    rows = []
    for f in sorted(q.glob("*.vpdc")) if q.exists() else []:
        try:
            r = quarantine_reason(f)
        except (OSError, ValueError):
            r = {"check": "?", "detail": "reason file missing or unreadable"}
        rows.append({"file": f.name, "partner": r.get("partner"), "extract": r.get("extract_type"),
                     "period": r.get("period"), "check": r.get("check"), "detail": r.get("detail"),
                     "quarantined_at": r.get("quarantined_at")})
    table = Table("file", "partner", "period", "check", "detail", title=f"quarantine ({len(rows)})")
    for r in rows:
        table.add_row(r["file"], r["partner"] or "?", r["period"] or "?", r["check"] or "?", (r["detail"] or "")[:70])
    emit(rows, as_json, table)


@quarantine_app.command("show")
def quarantine_show(file: Annotated[str, typer.Argument(help="File name in quarantine/.")], home: HomeOpt,
                    as_json: JsonOpt = False) -> None:
    """The full machine-readable reason for one quarantined envelope."""
    from landing.ingest import quarantine_reason

    path = Home(home).quarantine / Path(file).name
    if not path.exists():
        fail(f"{path}: not in quarantine; see `vpdc quarantine list`")
    emit(quarantine_reason(path), as_json)


@quarantine_app.command("retry")
def quarantine_retry(file: Annotated[str, typer.Argument(help="File name in quarantine/.")], home: HomeOpt,
                     as_json: JsonOpt = False) -> None:
    """Move a quarantined envelope back to landing/ (after the cause is fixed) and ingest it again.

    The reason file is kept beside it in quarantine/ as history; nothing is deleted.
    """
    import shutil

    from landing.ingest import quarantine_reason

    h = Home(home)
    path = h.quarantine / Path(file).name
    if not path.exists():
        fail(f"{path}: not in quarantine; see `vpdc quarantine list`")
    reason = quarantine_reason(path)
    partner = reason.get("partner") or Path(reason.get("original_path", "")).parent.name
    if not partner:
        fail(f"{path.name}: the partner is unknown (unreadable manifest); move it to landing/<partner>/ by hand")
    n = 1
    while True:
        dest = h.landing(partner) / f"{path.stem.split('.retry')[0]}.retry{n}.vpdc"
        if not dest.exists() and not (h.quarantine / dest.name).exists():
            break
        n += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), dest)
    shutil.move(str(path.with_name(path.name + ".reason.json")), h.quarantine / f"{dest.name}.previous-reason.json")
    rows = _ingest(h)
    _print_ingest(rows, as_json)


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(
    home: HomeOpt,
    persons: Annotated[int, typer.Option(min=10, help="Population size.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261121,
) -> None:
    """Run the main job end to end on synthetic data: keys → synth → every partner encodes and sends."""
    from vpdc.pipeline import run_demo

    sys.exit(run_demo(Home(home), persons=persons, seed=seed, console=console, out=out, progress=_progress))


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
