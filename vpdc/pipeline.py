"""The demo: the main job end to end on synthetic data, stage by stage.

Each stage is a plain function over a :class:`~workspace.Home`; the demo prints what each did and
where its outputs are. Later stages (ingestion, linkage, marts, governance) extend this list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from partner_kit.profiles import partners
from workspace import Home


def encode_and_send_all(home: Home, *, today: date, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every partner encodes every extract of every period and seals it into ``landing/<partner>/``."""
    from envelope.keys import KeyRing
    from partner_kit import Encoder, encode_extract, extract_types, load_profile, seal_encoded

    keyring = KeyRing(home.keys)
    encoder = Encoder(keyring.linkage_secret())
    results = []
    for partner in tuple(partners()):
        raw = home.partner_raw(partner)
        periods = sorted(p.name for p in raw.iterdir() if p.is_dir() and p.name[:2].isdigit()) if raw.exists() else []
        for period in periods:
            for extract in extract_types(partner):
                profile = load_profile(partner, extract)
                src = raw / period / profile.file
                if not src.exists():
                    continue
                dest = home.partner_out(partner) / period / f"{extract}.parquet"
                task = progress.add_task(f"{partner}/{extract} {period}", total=None) if progress else None
                summary = encode_extract(profile, src, dest, encoder, today=today,
                                         progress=(lambda n, t=task: progress.update(t, advance=n)) if progress else None)
                if progress and task is not None:
                    progress.remove_task(task)
                env = seal_encoded(dest, partner=partner, extract_type=extract, period=period, keyring=keyring,
                                   out_dir=home.landing(partner), params=encoder.params)
                results.append(summary.as_dict() | {"period": period, "envelope": env.name})
    return results


def run_demo(home: Home, *, persons: int, seed: int, console: Console, out: Console,
             progress: Callable[[], Progress]) -> int:
    """Run every stage; return a process exit code."""
    from envelope.keys import init_keys
    from synthetic import SynthConfig, generate

    home.ensure()
    t0 = time.perf_counter()
    console.rule("[bold]1. keys")
    made = init_keys(home.keys, tuple(partners()))
    console.print(f"{len(made['created'])} keys created, {len(made['kept'])} kept under {home.keys} (mode 0600)")

    console.rule("[bold]2. synthetic partner extracts")
    config = SynthConfig(persons=persons, seed=seed)
    with progress() as prog:
        task = prog.add_task("simulating", total=persons)
        summary = generate(config, home.root, progress=lambda n, d="": prog.update(task, advance=n))
    console.print(f"{persons:,} synthetic persons → native extracts under {home.root / 'partners'} "
                  f"(ground truth, for evaluation only: {home.truth})")
    _ = summary

    console.rule("[bold]3. partner kit: encode, encrypt, sign, send")
    with progress() as prog:
        results = encode_and_send_all(home, today=date.today(), progress=prog)
    table = Table("partner", "extract", "period", "rows", "rejected", "envelope", title="envelopes in landing/")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows_encoded']:,}",
                      f"{r['rows_rejected']:,}", r["envelope"])
    out.print(table)
    console.rule("[bold]4. landing zone: verify, validate, split into linkage and analytics zones")
    from vpdc.cli import _ingest, _print_ingest

    rows = _ingest(home)
    _print_ingest(rows, as_json=False)
    if any(r["status"] != "loaded" for r in rows):
        console.print(f"[yellow]see `vpdc quarantine list`; reasons in {home.quarantine}")
    console.print(f"linkage zone: {home.linkage_db}; analytics zone: {home.warehouse_db}; "
                  f"validation reports: {home.reports / 'validation'}")

    console.rule("[bold]5. linkage on encodings: Splink model, stable person keys, quality report")
    from vpdc.cli import _link, _print_link

    linked = _link(home, evaluate=True)
    _print_link(linked)

    console.rule("[bold]6. analytic marts (dbt): persons, events, program cohorts, community indicators")
    from orchestration.runner import run_job

    marts = run_job(home, "marts_job")
    if marts.success:
        _print_headlines(home, out)
        console.print(f"data dictionary (equity metadata per column): {home.reports / 'data_dictionary.html'}")
    else:
        console.print(f"[red]marts failed: {marts.error}")

    console.rule("[bold]7. governance: an approved ATV evaluation cohort, and a refused request")
    governed = _governance(home, console, out) if marts.success else {"audit_ok": False}

    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s; working directory {home.root}")
    ok = all(r["status"] == "loaded" for r in rows) and linked["success"] and marts.success and governed["audit_ok"]
    return 0 if ok else 1


def _print_headlines(home: Home, out: Console) -> None:
    """A few county-wide indicators from the marts (suppressed cells shown as such)."""
    import duckdb

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        persons, linked_multi = con.execute(
            "select count(*), count(*) filter (where len(sources) > 1) from analytics.persons").fetchall()[0]
        programs = con.execute("select program, count(*) from analytics.program_cohorts where window_days = 365 "
                               "group by 1 order by 1").fetchall()
        cols = {c[0] for c in con.execute("select column_name from information_schema.columns where "
                                          "table_schema = 'analytics' and table_name = 'events'").fetchall()}
        events = con.execute("select count(*) filter (where is_violent_offense_victim), count(*) filter "
                             "(where is_firearm_injury), count(*) filter (where is_assault_ed_visit) "
                             "from analytics.events").fetchall()[0] if {"is_firearm_injury"} <= cols else (0, 0, 0)
    out.print(f"persons: {persons:,} ({linked_multi:,} seen by more than one agency); "
              f"violent-offense victimisations: {events[0]:,}; firearm-injury visits: {events[1]:,}; "
              f"assault ED visits: {events[2]:,}")
    out.print("program cohorts (365-day windows): " + ", ".join(f"{p} {n:,}" for p, n in programs))
    _print_indicators(home, out)


def _print_indicators(home: Home, out: Console) -> None:
    """The published community violence indicators: the latest complete year, county-wide and by priority area,
    read from the suppressed mart (a suppressed cell stays suppressed: it is never summed back)."""
    import duckdb
    from rich.table import Table

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        year = con.execute("select max(year(month)) - 1 from analytics.community_violence_indicators").fetchall()[0][0]
        rows = con.execute(
            "select indicator, geography, count(*) filter (where suppressed), sum(event_count) "
            "from analytics.community_violence_indicators where year(month) = ? and demographic_dimension = 'all' "
            "and geography_level in ('county', 'priority_area') group by 1, 2 order by 1, 2", [year]).fetchall()
        cells = con.execute("select count(*), count(*) filter (where suppressed), "
                            "count(*) filter (where suppression_reason = 'audit') "
                            "from analytics.community_violence_indicators").fetchall()[0]
    short = {"firearm_injuries": "firearm", "homicides": "homicide", "intimate_partner_violence": "IPV",
             "violence_related_ed_visits": "viol. ED", "violent_crimes": "violent", "youth_violence": "youth"}
    indicators = sorted({i for i, *_ in rows})
    geos = sorted({g for _, g, _, _ in rows}, key=lambda g: (g != "Mecklenburg County", g))
    table = Table(title=f"community violence indicators, {year}: events (≥ lower bound where a month is suppressed)")
    table.add_column("area", min_width=14)
    for i in indicators:
        table.add_column(short.get(i, i), justify="right")
    by = {(i, g): (sup, total) for i, g, sup, total in rows}
    for g in geos:
        cells_txt = []
        for ind in indicators:
            sup, total = by.get((ind, g), (0, None))
            total = int(total or 0)
            cells_txt.append("suppr." if sup and not total else ("≥" if sup else "") + f"{total:,}")
        table.add_row(g, *cells_txt)
    out.print(table)
    out.print(f"{cells[0]:,} published cells (month x geography x group), {cells[1]:,} suppressed, "
              f"{cells[2]:,} of them added by the recoverability audit")


def _governance(home: Home, console: Console, out: Console) -> dict[str, Any]:
    from vpdc.demo_governance import run_governance_demo

    result = run_governance_demo(home)
    export = result["export"]
    out.print(f"request {result['study']}: approved by every steward and the community reviewer; "
              f"{export.rows:,} cohort rows released ({export.suppressed_rows:,} suppressed for k-anonymity) to "
              f"{export.files[0]}", markup=False, highlight=False)
    out.print(f"second request refused: {result['refused']}", markup=False, highlight=False)
    out.print(f"audit chain: {'verified' if result['audit_ok'] else 'BROKEN'} ({result['audit_entries']} entries)")
    return result
