"""The landing sensor: one run per new envelope, keyed by envelope id (a file dropped twice loads once)."""


import hashlib
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from envelope.format import EnvelopeRefused, read_manifest
from landing.arrivals import Arrival, scan_landing
from landing.events import unfinished_event_ids
from landing.quarantine import retry_attempt
from orchestration.defs.ingest.assets import asset_keys, ingest_job, op_name, recover_job, triage_job
from orchestration.defs.ingest.partitions import extract_periods
from orchestration.resources import VpdcHome
from partner_kit import extract_types, partners
from workspace import Home

#: Runs of one envelope that may crash (fail without quarantining it) before the sensor stops retrying it.
MAX_ATTEMPTS = 3


def _triage(a: Arrival, rel: str, why: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"triage:{a.fingerprint()}", job_name=triage_job.name,
                         run_config={"ops": {"quarantine_unroutable": {"config": {"envelope": rel}}}},
                         tags={"vpdc/file": a.name[:200], "vpdc/triage": why, "vpdc/arrived_in": a.partner})


def landing_run_requests(landing: Path, home_root: Path, known_periods: set[str],
                         crashed_runs: Callable[[str, str], int] = lambda _e, _f: 0,
                         loaded: Callable[[str], bool] = lambda _: False,
                         max_attempts: int = MAX_ATTEMPTS) -> tuple[list[dg.RunRequest], list[str], list[str]]:
    """Plain function behind the sensor: run requests for every file in a partner's landing folder.

    Only ``landing/<partner>/`` folders are looked at (:func:`landing.arrivals.scan_landing`: real directories
    named after a partner; nothing is followed). The run key is the envelope id and the file's fingerprint
    (folder, name, size, time, inode): a file dropped twice loads once, and a refused copy under another
    name (a truncated one, say) never takes the key of the genuine file. A refused envelope leaves landing
    (quarantine) and a loaded one too (archive); an envelope still here after a failed run was interrupted
    (a crash, a killed process), so ``crashed_runs(envelope_id, file name)`` counts those and the key gets an
    attempt number: the re-run happens instead of being skipped as a duplicate, up to ``max_attempts`` runs;
    after that the envelope waits for an engineer (it is named in the third list returned).
    Triage (which refuses with the precise check, quarantines and audits) takes: a file that is not a regular
    file, whose manifest cannot be read or names no known partner and extract, names another partner than
    its folder, or is a second copy of an envelope that ``loaded(envelope_id)`` already or that this
    evaluation already routes: nothing stays in landing unexplained.

    Returns:
        (run requests, new extract periods, envelopes given up on after repeated crashes)
    """
    requests: list[dg.RunRequest] = []
    new_periods: set[str] = set()
    given_up: list[str] = []
    in_this_pass: set[str] = set()
    routable = {(p, e) for p in partners() for e in extract_types(p)}
    for a in scan_landing(Home(home_root)).arrivals:
        rel = str(a.path.relative_to(home_root))
        if a.special:
            requests.append(_triage(a, rel, "special_file"))
            continue
        attempt = retry_attempt(a.name)
        try:
            m = read_manifest(a.path)
        except (EnvelopeRefused, OSError):
            m = None
        if m is None or (m.partner, m.extract_type) not in routable or m.partner != a.partner:
            requests.append(_triage(a, rel, "unroutable"))
            continue
        if m.envelope_id in in_this_pass or (not attempt and loaded(m.envelope_id)):
            requests.append(_triage(a, rel, "duplicate"))
            continue
        in_this_pass.add(m.envelope_id)
        if m.period not in known_periods:
            new_periods.add(m.period)
        crashes = crashed_runs(m.envelope_id, a.name)
        if crashes >= max_attempts:
            given_up.append(rel)
            continue
        requests.append(dg.RunRequest(
            run_key=f"{m.envelope_id}@{a.fingerprint()}" + (f"#retry{attempt}" if attempt else "")
            + (f"#attempt{crashes + 1}" if crashes else ""),
            job_name=ingest_job.name,
            partition_key=m.period,
            asset_selection=asset_keys(m.partner, m.extract_type),
            run_config={"ops": {op_name(m.partner, m.extract_type): {"config": {"envelope": rel}}}},
            tags={"vpdc/envelope_id": m.envelope_id, "vpdc/partner": m.partner, "vpdc/extract": m.extract_type,
                  "vpdc/file": a.name[:200], "vpdc/arrived_in": a.partner},
        ))
    return requests, sorted(new_periods), given_up


def recovery_request(unfinished: list[str] | None, failed_runs: Callable[[str], int]) -> dg.RunRequest | None:
    """A run of ``recover_job`` when recorded outcomes are unfinished (``unfinished``: their event ids) and no
    ingestion run is requested (every ingestion run recovers first). Keyed by those events and by how many
    recovery runs of them failed (``failed_runs(digest)``), so a failed recovery is retried on the next tick."""
    if not unfinished:
        return None
    digest = hashlib.sha256("\n".join(sorted(unfinished)).encode()).hexdigest()[:16]
    failed = failed_runs(digest)
    return dg.RunRequest(run_key=f"recover:{digest}" + (f"#attempt{failed + 1}" if failed else ""),
                         job_name=recover_job.name, tags={"vpdc/recover": digest})


@dg.sensor(jobs=[ingest_job, triage_job, recover_job], minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts ingestion for each new envelope in landing/ (run key = envelope id).")
def landing_sensor(context: dg.SensorEvaluationContext, vpdc_home: VpdcHome) -> dg.SensorResult:
    home = vpdc_home.home
    known = set(context.instance.get_dynamic_partitions(extract_periods.name))

    def runs(status: dg.DagsterRunStatus, **tags: str) -> int:
        return len(context.instance.get_run_records(dg.RunsFilter(tags=tags, statuses=[status])))

    requests, new_periods, given_up = landing_run_requests(
        home.landing(), home.root, known,
        crashed_runs=lambda e, f: runs(dg.DagsterRunStatus.FAILURE, **{"vpdc/envelope_id": e, "vpdc/file": f}),
        loaded=lambda e: runs(dg.DagsterRunStatus.SUCCESS, **{"vpdc/envelope_id": e}) > 0)
    if not requests:
        recovery = recovery_request(unfinished_event_ids(home.warehouse_db),
                                    lambda d: runs(dg.DagsterRunStatus.FAILURE, **{"vpdc/recover": d}))
        if recovery:
            requests.append(recovery)
    for ignored in scan_landing(home).ignored:
        context.log.warning(f"landing/{ignored.entry[:80]!r}: ignored ({ignored.reason})")
    for rel in given_up:
        context.log.warning(f"{rel}: {MAX_ATTEMPTS} ingestion runs crashed; not retried until an engineer fixes "
                            "the cause and moves it to quarantine/ for `vpdc quarantine retry`")
    return dg.SensorResult(run_requests=requests,
                           dynamic_partitions_requests=[extract_periods.build_add_request(new_periods)] if new_periods else [])
