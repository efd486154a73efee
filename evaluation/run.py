"""``run_evaluation``: a gated program evaluation, from the warehouse to a disclosure-checked report.

The gate is every output's (:func:`governance.outputs.gate.authorize_output`): an active request, its requester,
the permission of aggregate summaries, the approved columns, an output level of aggregate or above; a refusal
is audited. The analysis runs inside the warehouse on person keys; only the protected report leaves, written
under ``VPDC_HOME/reports/evaluations/`` (HTML and JSON) and audited as ``evaluation.released``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from evaluation import stats
from evaluation.data import area_panel, observation_window, person_frame
from evaluation.designs import DESIGNS, MATCH_ON, PROGRAMS
from evaluation.protect import (
    Suppressed,
    protect_balance,
    protect_km,
    protect_series,
    safe_count,
    sums_dominated,
)
from evaluation.report import (
    linkage_error_by_group,
    render_html,
    svg_event_study,
    svg_km,
    svg_series,
)
from governance.outputs.gate import authorize_output, gate_release, refuse_request
from governance.registry.db import Registry
from governance.registry.models import OutputLevel

__all__ = ["EvaluationResult", "EvaluationSpec", "area_columns", "run_evaluation"]

#: The cohort-mart columns an individual-level evaluation reads (the request must approve them).
PERSON_COLUMNS = ("program", "enrollment_date", "age_band_at_enrollment", "sex")
OUTCOME_COLUMNS = {"ATV": ("police_victim_contacts_pre", "police_victim_contacts_post",
                           "police_suspect_contacts_pre", "police_suspect_contacts_post"),
                   "HVIP": ("violent_injury_visits_pre", "violent_injury_visits_post")}
#: The events-mart columns the area-level design reads.
AREA_COLUMNS = ("event_date", "census_tract", "priority_area", "is_violent_offense_victim",
                "is_violent_offense_suspect")


def area_columns() -> list[dict[str, str]]:
    return [{"dataset": "events", "column": c} for c in AREA_COLUMNS]


@dataclass(frozen=True)
class EvaluationSpec:
    """What to evaluate. ``area``/``area_start``: also the place-based design for that priority area from that
    date (None: individual level only)."""

    study_id: str
    actor: str
    program: str
    period_start: date = date(2021, 1, 1)
    period_end: date = date(2026, 12, 31)
    area: str | None = None
    area_start: date | None = None
    repin: bool = False


@dataclass
class EvaluationResult:
    study_id: str
    program: str
    html: str
    json: str
    estimates: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def _check(spec: EvaluationSpec, registry: Registry, now: datetime) -> None:
    from governance.outputs.ledger import STUDY_ID

    problems = []
    if not isinstance(spec.study_id, str) or not STUDY_ID.fullmatch(spec.study_id):
        problems.append(f"study id {str(spec.study_id)[:40]!r}: 3-64 letters, digits, '.', '_' or '-'")
    if spec.program not in PROGRAMS:
        problems.append(f"--program {str(spec.program)[:20]!r}: one of {', '.join(PROGRAMS)}")
    if spec.period_start > spec.period_end:
        problems.append("--from is after --to")
    if (spec.area is None) != (spec.area_start is None):
        problems.append("--area and --area-start: give both or neither")
    if problems:
        refuse_request(registry, spec.study_id, spec.actor, now, "evaluation", "; ".join(problems))


def _columns(spec: EvaluationSpec) -> list[tuple[str, str]]:
    cols = [("program_cohorts", c) for c in (*PERSON_COLUMNS, *OUTCOME_COLUMNS[spec.program])]
    if spec.area is not None:
        cols += [("events", c) for c in AREA_COLUMNS]
    return cols


def _est(name: str, measure: str, e: dict[str, Any], truth_key: str) -> dict[str, Any]:
    keep = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in e.items()
            if k in ("estimate", "low", "high", "p_value", "persons", "events")}
    return {"name": name, "measure": measure, "key": truth_key, **keep}


def run_evaluation(spec: EvaluationSpec, *, registry: Registry, warehouse_db: Path, reports_dir: Path,
                   now: datetime, mart_schema: str = "analytics") -> EvaluationResult:
    """Evaluate ``spec.program`` for an approved request and write the protected report.

    Raises:
        ReleaseRequestError: an option breaks its rule (named; refusal audited).
        PolicyRefused: the policy refuses (audited), or the report fails its last check.
    """
    from governance.registry import audit

    _check(spec, registry, now)
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now,
                                      level=OutputLevel.AGGREGATE, columns=_columns(spec), action="evaluation",
                                      refused_as="export.summary", warehouse_db=warehouse_db, repin=spec.repin,
                                      detail={"program": spec.program, "area": bool(spec.area)})
    design = DESIGNS[spec.program]
    suppressed = Suppressed()
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        lo, hi = observation_window(con, mart_schema)
        frame = person_frame(con, design, period_start=spec.period_start, period_end=spec.period_end,
                             schema=mart_schema)
        panel = area_panel(con, area=spec.area, start=spec.area_start, schema=mart_schema) if spec.area else None
    frame = stats.cem_weights(frame)
    n_t, n_c = int(frame["treated"].sum()), int((frame["treated"] == 0).sum())
    m_t = int((frame["matched"] & (frame["treated"] == 1)).sum())
    m_c = int((frame["matched"] & (frame["treated"] == 0)).sum())
    if m_t < rules.min_cell or m_c < rules.min_cell:
        refuse_request(registry, spec.study_id, spec.actor, now, "evaluation",
                       f"too few matched persons to report ({spec.program}): each group needs at least the minimum "
                       f"cell {rules.min_cell}")
    population = {"participants with an index event": n_t, "eligible non-participants": n_c,
                  "participants matched": m_t, "comparison persons matched": m_c}
    for k, v in list(population.items()):
        if not safe_count(v, rules):
            population[k] = None
            suppressed.add(f"population: {k}")

    estimates, charts, captions, placebos = [], {}, {}, []
    primary = next(iter(design.outcomes))
    matched = frame[frame["matched"]]
    for name, (label, _) in design.outcomes.items():
        # the events behind each estimate: at least the minimum cell per group and window, no dominance
        ok = True
        for g in (0, 1):
            part = matched[matched["treated"] == g]
            for wnd in ("pre", "post"):
                total = int(part[f"{name}_{wnd}"].sum())
                dom = sums_dominated(part.assign(_g=0), f"{name}_{wnd}", "_g", rules)
                if not safe_count(total, rules) or any(dom.values()):
                    ok = False
        if not ok:
            suppressed.add(f"estimate: {label} (too few events, or dominated by two persons, in a group or window)")
            continue
        estimates.append(_est(f"difference-in-differences: {label}", "rate ratio, year after enrollment",
                              stats.did(frame, name), f"{spec.program}:{name}"))
        estimates.append(_est(f"naive before/after (participants only): {label}",
                              "rate ratio, year after / year up to enrollment (biased: for comparison)",
                              stats.naive_pre_post(frame, name), f"{spec.program}:{name}:naive"))
        if name == primary:
            es = stats.event_study(frame, name, design.window_days, lo, hi)
            charts["event_study"] = svg_event_study(es, f"Event study: {label}")
            captions["event_study"] = (f"Event study of {label}: rate ratio participants / comparison by quarter, "
                                       "relative to the quarter up to the index event, with 95 % intervals.")
    if design.survival is not None:
        events = int(matched["event"].sum())
        if safe_count(events, rules) and safe_count(int(matched.loc[matched["treated"] == 1, "event"].sum()), rules) \
                and safe_count(int(matched.loc[matched["treated"] == 0, "event"].sum()), rules):
            estimates.append(_est(f"Cox model: {design.survival[0]}", "hazard ratio (robust 95 % CI)",
                                  stats.cox_hazard_ratio(frame), f"{spec.program}:hazard"))
            km = protect_km(stats.kaplan_meier(frame), rules, suppressed)
            charts["km"] = svg_km(km, f"Kaplan-Meier: time to {design.survival[0]}")
            captions["km"] = ("Kaplan-Meier curves (matching-weighted) of the share of each group without a violent "
                              "re-injury; points with too few events are merged.")
        else:
            suppressed.add("hazard ratio and Kaplan-Meier curves (too few re-injuries in a group)")
    if panel is not None:
        a = stats.area_did(panel)
        est = a["estimate"]
        totals = a["series"].groupby("group")["n"].sum()
        if all(safe_count(int(v), rules) for v in totals):
            estimates.append(_est(f"area: violent incidents in {spec.area}", "rate ratio after / before the start, "
                                  "relative to comparable tracts (t, tracts - 1 df)", est, "area"))
            placebos = [{"label": p["label"], "kind": p["kind"], "estimate": p["estimate"], "low": p["low"],
                         "high": p["high"]} for p in a["placebos"]]
            series = protect_series(a["series"], "area time series", rules, suppressed)
            rows = series.astype(object).where(series.notna(), None).to_dict("records")
            charts["area"] = svg_series(rows, ["priority area", "comparison tracts"], spec.area_start.isoformat(),
                                        f"Violent incidents: {spec.area} and comparable tracts")
            captions["area"] = (f"Violent incidents per quarter in {spec.area} ({a['treated_tracts']} tracts) and in "
                                f"{a['comparison_tracts']} tracts with similar levels before {spec.area_start}; the "
                                "dashed line marks the start; gaps are suppressed quarters.")
        else:
            suppressed.add("area-level estimate (too few incidents)")

    covariates = {c: "categorical" for c in MATCH_ON if c != "prior_events"} | {"prior_events": "numeric",
                                                                               f"{primary}_pre": "numeric"}
    bal = protect_balance(stats.balance(frame, covariates), rules, suppressed)
    link = linkage_error_by_group(reports_dir)
    limitations = [
        "Participants are compared with eligible non-participants who had the same kind of index event and the "
        "same prior contacts, age band, sex, area and year; anything else that drove enrollment and later violence "
        "(motivation, family, unrecorded referrals) is not adjusted for.",
        "Community referrals without an index event in the data are not in the matched design.",
        "Deaths are seen only through the events recorded; a comparison person who died is counted as having no "
        "events afterwards.",
        "Outcomes are recorded contacts and visits: events that were not reported, or treated outside the "
        "partner hospitals, are missed alike in both groups only if reporting does not change with participation.",
        "Linkage error: a missed link splits a person's events over two person keys (their prior events and "
        "outcomes are undercounted, and a participant may lose their index event); a false link merges two people "
        "(outcomes overcounted). Where linkage error differs by group, and participants and comparison persons "
        "differ in those groups, the estimate is biased: toward fewer outcomes for the group with more missed links.",
    ]
    if link.get("available"):
        flagged = [f"{x['dimension']}={x['group']}" for x in link["rows"] if x["flagged"] and not x["small_group"]]
        limitations.append("Groups with linkage error above the flag ratio in the latest linkage report: "
                           + (", ".join(flagged) if flagged else "none") + ".")
    else:
        limitations.append("Linkage error by group: " + link.get("note", "not available") + ".")
    report = {
        "title": f"{spec.program} evaluation", "study_id": spec.study_id, "program": spec.program,
        "made_at": now.isoformat(timespec="minutes"), "data_start": lo.isoformat(), "data_end": hi.isoformat(),
        "question": design.question,
        "design": [
            f"Index event: {design.index_label}. Participants: enrolled {design.lag_days[0]}-{design.lag_days[1]} "
            "days after it. Comparison: eligible persons never enrolled in the program (nor in another one by then), "
            "with a pseudo-enrollment date at the participants' median lag.",
            f"Matching: coarsened exact matching on {', '.join(MATCH_ON)} (prior events: police contacts and assault "
            "injuries in the year before the index event, 0/1/2/3+), weights so the comparison group has the "
            "participants' mix. Done inside the warehouse; no record leaves it.",
            f"Difference-in-differences: Poisson regression of counts in the {design.window_days} days up to the index "
            f"event and the {design.window_days} days after enrollment (exposure offset), group x window interaction, "
            "standard errors clustered by person.",
            "Event study: the same by quarter, relative to the quarter up to the index event.",
            *(["Time to violent re-injury: Kaplan-Meier curves and a Cox hazard ratio (robust errors), censored at the "
               "end of the data."] if design.survival else []),
            *([f"Area level: comparative interrupted time series of monthly violent incidents, {spec.area}'s tracts "
               f"against the tracts most like them before {spec.area_start} (tract and month fixed effects, errors "
               "clustered by tract); placebo tests with earlier start dates and with the other priority areas."]
              if spec.area else []),
            "The naive before/after (participants only, the cohort mart's windows) is shown for comparison: it is "
            "biased because people enroll after a recent event.",
        ],
        "population": population, "balance": bal, "estimates": estimates, "placebos": placebos,
        "chart_captions": captions, "suppressed": list(suppressed), "limitations": limitations,
        "linkage_error": link, "linkage": linkage,
        "rules": {"min_cell": rules.min_cell, "dominance_n": rules.dominance_n, "dominance_k": rules.dominance_k},
    }
    failures = [f"a chart holds a value that is not a number: {k}" for k, v in charts.items() if "<script" in v]
    check = type("Check", (), {"passed": not failures, "failures": failures})()
    gate_release(registry, check, study_id=spec.study_id, actor=spec.actor, action="evaluation", now=now)

    from workspace.files import atomic_write

    out_dir = reports_dir / "evaluations"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.study_id}_{spec.program.lower()}"
    jpath, hpath = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    atomic_write(jpath, json.dumps(report, indent=1, default=str))
    atomic_write(hpath, render_html(report, charts))
    with registry.transaction() as s:
        audit.append(s, actor=spec.actor, action="evaluation.released", subject=spec.study_id, at=now,
                     detail={"program": spec.program, "estimates": len(estimates), "suppressed": len(suppressed),
                             "files": [jpath.name, hpath.name]})
    return EvaluationResult(spec.study_id, spec.program, str(hpath), str(jpath), estimates, list(suppressed))
