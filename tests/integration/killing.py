"""Shared by the kill -9 suites (test_landing_kills*.py): start a `vpdc` command, kill it at a step or after a
while, and check a home is consistent afterwards. The suites are split into files so that `make test`'s workers
(whole files each) share them."""


import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from envelope.format import read_manifest
from landing.archive import entry_manifest, is_entry
from orchestration.runner import dagster_environment
from tests.integration.conftest import envelopes
from workspace import Home

ROOT = Path(__file__).resolve().parents[2]


def start(home: Home, command: list[str], pause_at: str | None = None) -> tuple[subprocess.Popen, Path]:
    announce = home.root / "announce.txt"
    announce.unlink(missing_ok=True)
    env = {**os.environ, "VPDC_HOME": str(home.root), "PYTHONPATH": str(ROOT)}
    if pause_at:
        env |= {"VPDC_TEST_PAUSE_AT": pause_at, "VPDC_TEST_ANNOUNCE": str(announce)}
    proc = subprocess.Popen([sys.executable, "-m", "vpdc.cli", *command, "--home", str(home.root)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, announce


def kill_at(home: Home, step: str, command: list[str] | None = None, timeout: float = 240) -> bool:
    """Run ``vpdc <command>`` until it reaches ``step``; kill -9 it there. False if it ended first."""
    proc, announce = start(home, command or ["ingest"], step)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if announce.exists() and step in announce.read_text():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"never reached {step}")


def kill_after(home: Home, seconds: float, command: list[str]) -> bool:
    proc, _ = start(home, command)
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def wh(home: Home, sql: str):
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_consistent(home: Home, loaded: set[str], refused: set[str] = frozenset()) -> None:
    """Every envelope loaded once and archived, every refusal quarantined with its reason, each with one event
    and one audit entry; no partial or duplicate rows; no plaintext left in private/; the audit chain verifies."""
    from governance.registry.audit import verify
    from governance.registry.db import Registry, sqlite_url
    from governance.registry.models import AuditEntry

    assert not list(home.landing().glob("*/*.vpdc"))
    has_loads = wh(home, "select count(*) from information_schema.tables where table_schema = 'raw' "
                         "and table_name = 'loads'")[0][0]
    assert ({r[0] for r in wh(home, "select load_id from raw.loads")} if has_loads else set()) == loaded
    # every load archived once, as its two zones' parts (ADR 0010); no half-written entry left beside them
    entries = [p for p in home.archive.glob("*/*") if is_entry(p)]
    assert sorted(entry_manifest(p).envelope_id for p in entries) == sorted(loaded)
    assert not [p for p in home.archive.glob("*/.*")]
    events = wh(home, "select envelope_id, status, moved, audited from raw.ingest_events where event_id is not null")
    assert sorted(e[0] for e in events if e[1] == "loaded") == sorted(loaded)  # one event per load
    assert all(e[2] and e[3] for e in events)
    for eid in loaded:  # nothing lost: every row of every load, in both zones
        [(manifest_rows,)] = wh(home, f"select row_count from raw.loads where load_id = '{eid}'")
        assert wh(home, f"select count(*) from raw.{_table(home, eid)} where load_id = '{eid}'") == [(manifest_rows,)]
    for t in {_table(home, e) for e in loaded}:
        [(n, d)] = wh(home, f"select count(*), count(distinct (load_id, source_record_id)) from raw.{t}")
        assert n == d  # nothing counted twice
    if home.linkage_db.exists():  # events extracts have no encodings: no linkage zone until a persons load
        with duckdb.connect(str(home.linkage_db), read_only=True) as con:
            assert con.execute("select count(*) from loads where state <> 'complete'").fetchone()[0] == 0
            n, d = con.execute("select count(*), count(distinct (load_id, source_record_id)) from encodings").fetchone()
            assert n == d
    assert [p.name for p in (home.root / "private").iterdir() if p.name != ".ingest.lock"] == []
    quarantined = {read_manifest(p).envelope_id for p in home.quarantine.glob("*.vpdc")}
    assert quarantined >= set(refused)
    for p in home.quarantine.glob("*.vpdc"):
        assert (home.quarantine / (p.name + ".reason.json")).exists()
    with Registry(sqlite_url(home.registry_db)).read() as s:
        assert verify(s).ok
        entries = [(e.action, e.detail.get("envelope_id")) for e in s.query(AuditEntry)]
    assert sorted(e for a, e in entries if a == "ingest.loaded") == sorted(loaded)
    assert {e for a, e in entries if a == "refused.ingest"} >= set(refused)


def _table(home: Home, eid: str) -> str:
    [(source, extract)] = wh(home, f"select source, extract_type from raw.loads where load_id = '{eid}'")
    return f"{source}__{extract}"


def pool_is_free(home: Home) -> bool:
    import dagster as dg

    with dagster_environment(home), dg.DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        return not info.claimed_slots


def _two(home: Home) -> tuple[list[Path], set[str]]:
    keep = [envelopes(home, "police", "persons")[0], envelopes(home, "schools", "enrollments")[0]]
    held = home.root / "held"
    for f in home.landing().glob("*/*.vpdc"):
        if f not in keep:
            (held / f.parent.name).mkdir(parents=True, exist_ok=True)
            os.replace(f, held / f.parent.name / f.name)
    return keep, {read_manifest(f).envelope_id for f in keep}

