"""A snapshot of the Dagster code location: asset keys, checks, jobs, sensors and schedules.

An unintended change to the graph (an asset renamed, a check lost, a sensor gone) fails here and shows in
review. After an intended change: ``UPDATE_SNAPSHOTS=1 make test`` rewrites tests/snapshots/asset_graph.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_graph.json"


def graph_summary(defs) -> dict:
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    return {
        "assets": keys,
        "asset_checks": checks,
        "blocking_checks": sorted(f"{s.asset_key.to_user_string()}:{s.name}" for a in defs.assets or []
                                  for s in getattr(a, "check_specs", []) if s.blocking),
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "resources": sorted(defs.resources or {}),
    }


def test_the_code_location_matches_its_snapshot(tmp_path, monkeypatch):
    from orchestration.definitions import defs

    monkeypatch.setenv("VPDC_HOME", str(tmp_path))
    summary = graph_summary(defs())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(summary, indent=2) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for part in expected:
        assert summary[part] == expected[part], (
            f"{part} changed: added {sorted(set(summary[part]) - set(expected[part]))}, removed "
            f"{sorted(set(expected[part]) - set(summary[part]))}; if intended, UPDATE_SNAPSHOTS=1")
    assert summary["assets"] and summary["asset_checks"] and summary["sensors"]


def test_loading_the_code_location_changes_no_environment_variable(tmp_path, monkeypatch):
    from orchestration.definitions import defs

    monkeypatch.setenv("VPDC_HOME", str(tmp_path))
    before = dict(os.environ)
    defs()
    assert dict(os.environ) == before
    assert (tmp_path / "dbt" / "target" / "manifest.json").exists()  # dbt's artifacts under VPDC_HOME
    assert not (Path(__file__).resolve().parents[2] / "dbt_project" / "target").exists()
