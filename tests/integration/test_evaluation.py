"""Program evaluation: the estimates recover the simulator's true effects, the naive before/after does not,
and the evaluation is gated, disclosure-checked and reported like every output."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from evaluation import EvaluationSpec, area_columns, run_evaluation
from governance.outputs import DEFAULT_COLUMNS
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.policy import PolicyRefused
from governance.registry.seed import PARTNERS, seed_demo
from governance.registry.workflow import review_request, submit_request
from synthetic import ProgramEffects, SynthConfig
from tests.evaluation_helpers import truth_linked_warehouse

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
AREA, AREA_START = "Beatties Ford Rd/LaSalle St", date(2023, 7, 1)
#: 100,000 persons: at 20,000 HVIP's figures often all fell under the minimum cell and were withheld, so its coverage
#: was shown on one seed only; here every design is published on every seed (about 20 s a seed, the simulator and the
#: evaluation together)
PERSONS = 100_000
SEEDS = (11, 12, 13)


def _registry(root: Path, approve: bool = True) -> Registry:
    reg = Registry.at(root / "registry.db")
    cols = [{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS] + area_columns()
    with reg.transaction() as s:
        seed_demo(s)
        submit_request(s, requester="evaluator_atv", now=NOW, study_id="eval-study", title="ATV and HVIP evaluation",
                       organisation="Eval", purpose="p", research_questions="q", columns=cols, output_level="aggregate",
                       irb_protocol="IRB-1", irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 9, 30),
                       equity_communities="c", equity_return_of_findings="r", equity_mitigation="m")
    for w in ([f"steward_{p}" for p in PARTNERS] + ["community_board"]) if approve else ():
        with reg.transaction() as s:
            review_request(s, reviewer=w, study_id="eval-study", decision="approve", now=NOW)
    return reg


def _evaluate(root: Path, effects: ProgramEffects, seed: int) -> dict[str, dict]:
    root.mkdir(parents=True, exist_ok=True)
    wh = truth_linked_warehouse(root / "warehouse.duckdb", SynthConfig(persons=PERSONS, seed=seed, effects=effects))
    reg = _registry(root)
    out = {}
    for program in ("ATV", "HVIP"):
        res = run_evaluation(EvaluationSpec("eval-study", "evaluator_atv", program, area=AREA if program == "ATV"
                                            else None, area_start=AREA_START if program == "ATV" else None),
                             registry=reg, warehouse_db=wh, reports_dir=root / "reports", now=NOW)
        out[program] = {e["key"]: e for e in res.estimates} | {"_result": res}
    return out


@pytest.fixture(scope="module")
def with_effect(tmp_path_factory) -> dict[int, dict]:
    return {s: _evaluate(tmp_path_factory.mktemp(f"fx{s}"), ProgramEffects(), s) for s in SEEDS}


@pytest.fixture(scope="module")
def without_effect(tmp_path_factory) -> dict:
    return _evaluate(tmp_path_factory.mktemp("fx0"), ProgramEffects.none(), SEEDS[0])


def _truth(fx: ProgramEffects) -> dict[str, float]:
    return {"ATV": 1 - fx.atv_violence, "HVIP": 1 - fx.hvip_reinjury, "area": 1 - fx.area_violence}


def _scored(est: dict[str, dict]) -> list[dict]:
    return [e for k, e in est.items() if not k.startswith("_") and not k.endswith(":naive")]


def test_every_interval_covers_the_true_effect_on_three_seeds(with_effect):
    truth = _truth(ProgramEffects())
    misses = []
    for seed, by_program in with_effect.items():
        for program, est in by_program.items():
            for e in _scored(est):
                target = truth["area"] if e["key"] == "area" else truth[program]
                if not e["low"] <= target <= e["high"]:
                    misses.append((seed, e["key"], target, round(e["low"], 3), round(e["high"], 3)))
    assert not misses, misses
    # every design is published on every seed, so no coverage above is vacuous: ATV's three outcomes and the area,
    # HVIP's visit rate and hazard ratio
    published = {(seed, p): {e["key"] for e in _scored(by_program[p])} for seed, by_program in with_effect.items()
                 for p in ("ATV", "HVIP")}
    for seed in with_effect:
        assert {"ATV:violent_police_contacts", "area"} <= published[(seed, "ATV")], published
        assert {"HVIP:violent_injury_visits", "HVIP:hazard"} <= published[(seed, "HVIP")], published


def test_with_effect_zero_every_interval_covers_no_effect(without_effect):
    misses = [(e["key"], round(e["low"], 3), round(e["high"], 3)) for est in without_effect.values()
              for e in _scored(est) if not e["low"] <= 1.0 <= e["high"]]
    assert not misses, misses


def test_the_naive_before_after_is_biased_on_the_same_data(without_effect):
    """No effect at all, yet participants' events fall after enrollment: they enrolled after a recent event."""
    naive = without_effect["ATV"]["ATV:violent_police_contacts:naive"]
    assert naive["high"] < 1.0
    did = without_effect["ATV"]["ATV:violent_police_contacts"]
    assert did["low"] <= 1.0 <= did["high"]


def test_report_opens_offline_and_says_what_was_suppressed(with_effect):
    res = with_effect[SEEDS[0]]["ATV"]["_result"]
    page = Path(res.html).read_text()
    assert '<html lang="en">' in page and "<svg" in page and "<caption>" in page and 'scope="col"' in page
    # no request leaves the page: no script, no external source, link or stylesheet (namespace names are not requests)
    assert "<script" not in page and not any(f'{a}="http' in page for a in ("src", "href", "xlink:href"))
    assert "url(http" not in page and "@import" not in page
    body = json.loads(Path(res.json).read_text())
    assert {"question", "design", "population", "balance", "estimates", "limitations", "suppressed"} <= set(body)
    assert "pk_" not in page and "pk_" not in Path(res.json).read_text()  # no person key leaves


def test_an_unapproved_evaluation_is_refused_and_audited(tmp_path):
    wh = truth_linked_warehouse(tmp_path / "warehouse.duckdb", SynthConfig(persons=500, seed=3))
    reg = _registry(tmp_path, approve=False)
    with pytest.raises(PolicyRefused):
        run_evaluation(EvaluationSpec("eval-study", "evaluator_atv", "ATV"), registry=reg, warehouse_db=wh,
                       reports_dir=tmp_path / "reports", now=NOW)
    with reg.read() as s:
        assert any(e.action.startswith("refused") for e in s.query(audit.AuditEntry))
    assert not (tmp_path / "reports" / "evaluations").exists()
