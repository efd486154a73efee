"""Ingest one envelope: verify → detect plaintext → validate → split into zones → archive; or quarantine.

This is the whole landing-zone procedure as one plain function; the Dagster asset calls it. A loaded
envelope is archived as the two zones' parts, each sealed to its own zone's key, with the partner's signed
manifest (:mod:`landing.archive`, ADR 0010), and only then removed from ``landing/``; a refused one is moved to
``quarantine/`` with a machine-readable ``<file>.reason.json``; every outcome is appended to
``raw.ingest_events`` in the warehouse (metadata only) and to the governance audit chain.

Crash safety (issue 12): one ingestion runs at a time under a ``flock`` that dies with its process; it first
removes decrypted payloads a killed run left in ``private/``, then finishes what a crash interrupted
(:func:`recover`): staged linkage loads whose warehouse commit happened, moves and reason files of recorded
outcomes, missing audit entries. A load's event commits with its rows, a refusal's event before its file
moves, so no load or refusal is ever without its event, reason and audit entry once the next run is through.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from envelope.format import EnvelopeRefused, open_envelope, read_manifest
from envelope.keys import WarehouseKeyRing
from landing.archive import archive_destination, is_entry, write_entry
from landing.arrivals import arrival_partner
from landing.boundary import ZoneBoundary
from landing.detector import scan_batches
from landing.events import IngestOutcome, insert_event, mark_event, pending_events, record_event
from landing.load import complete_staged_loads, load_payload, loaded_envelope_ids, split_payload
from landing.quarantine import quarantine_reason
from landing.validation import ValidationSettings, keyed_spec, validate_payload
from partner_kit import ProfileError, load_profile
from workspace import Home
from workspace.files import atomic_write, private_dir, process_lock
from workspace.testhooks import step

__all__ = ["IngestError", "IngestOutcome", "finish_interrupted", "ingest_envelope", "quarantine_reason", "record_event",
           "recover"]

Audit = Callable[[IngestOutcome, datetime], None]
_LOCK = ".ingest.lock"


class IngestError(Exception):
    """Nothing was ingested or moved: the path is not a file waiting in a partner's landing folder."""


class _Refusal(Exception):
    def __init__(self, check: str, detail: str):
        self.check, self.detail = check, detail
        super().__init__(f"{check}: {detail}")


def _destination(dest_dir: Path, name: str) -> Path:
    """A free name in ``dest_dir``: never overwrite; a second copy of a file is kept beside the first."""
    dest = dest_dir / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while os.path.lexists(dest) or os.path.lexists(dest.with_name(dest.name + ".reason.json")):
        dest = dest_dir / f"{stem}.{n}{suffix}"
        n += 1
    return dest


def _rename(src: Path, dest: Path) -> None:
    """Move a directory entry without following it: a symlink moves as a link, a FIFO is never opened."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except OSError as exc:
        import errno
        import stat

        if exc.errno != errno.EXDEV or not stat.S_ISREG(os.lstat(src).st_mode):
            raise
        shutil.move(str(src), dest)  # another file system: a regular file may be copied


def _retire(envelope: Path) -> None:
    """Remove a loaded envelope from ``landing/`` once its archive entry holds both parts apart: the envelope
    keeps encodings and content together under one key, which is what the archive must not (ADR 0010)."""
    try:
        os.unlink(envelope)
    except FileNotFoundError:
        pass


def _rel(home: Home, path: Path) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(home.root))


def _clear_private(home: Home) -> Path:
    """``private/`` holds decrypted payloads only while a run uses them: whatever is there when a run starts
    (it holds the ingestion lock) was left by a killed run, and is removed."""
    private = private_dir(home.root / "private")
    for entry in private.iterdir():
        if entry.name == _LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return private


def recover(home: Home, *, linkage_db: Path | None = None, warehouse_db: Path | None = None,
            audit: Audit | None = None, now: datetime | None = None) -> int:
    """Finish what a crash left: staged loads the warehouse has, then every recorded outcome whose reason file,
    move or audit entry is missing. Idempotent. Returns how many outcomes were completed.

    Called under the ingestion lock (by :func:`ingest_envelope`, which every run goes through).
    """
    now = now or datetime.now(UTC)
    linkage_db, warehouse_db = Path(linkage_db or home.linkage_db), Path(warehouse_db or home.warehouse_db)
    complete_staged_loads(linkage_db, warehouse_db)
    done = 0
    for ev in pending_events(warehouse_db):
        if not ev.moved:
            src, dest = home.root / ev.source_path, home.root / ev.dest_path
            if ev.reason is not None:
                reason_file = dest.with_name(dest.name + ".reason.json")
                if not os.path.lexists(reason_file):
                    atomic_write(reason_file, json.dumps(ev.reason, indent=2, default=str))
            if is_entry(dest):  # a load: its parts were archived before its commit; the envelope itself goes
                _retire(src)
            elif not os.path.lexists(dest) and os.path.lexists(src):
                _rename(src, dest)
            mark_event(warehouse_db, ev.event_id, moved=True)
        if not ev.audited and audit is not None:
            audit(ev.outcome, now)
            mark_event(warehouse_db, ev.event_id, audited=True)
        done += 1
    return done


def finish_interrupted(home: Home, *, linkage_db: Path | None = None, warehouse_db: Path | None = None,
                       audit: Audit | None = None, now: datetime | None = None) -> int:
    """:func:`recover` on its own, under the ingestion lock: for a crash after an envelope left ``landing/``
    (archived or quarantined) but before its move or audit entry was marked, where no envelope is left to start
    an ingestion run that would recover it. Returns how many outcomes were completed."""
    with process_lock(private_dir(home.root / "private") / _LOCK):
        _clear_private(home)
        return recover(home, linkage_db=linkage_db, warehouse_db=warehouse_db, audit=audit, now=now)


def _recorded_outcome(warehouse_db: Path, source: str) -> IngestOutcome | None:
    """The latest recorded outcome of the file that was at ``source`` (relative to VPDC_HOME)."""
    import duckdb

    if not warehouse_db.exists():
        return None
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        try:
            row = con.execute("select outcome_json from raw.ingest_events where source_path = ? "
                              "order by event_at desc limit 1", [source]).fetchone()
        except duckdb.Error:
            return None
    return IngestOutcome(**json.loads(row[0])) if row and row[0] else None


def ingest_envelope(
    path: Path,
    home: Home,
    keyring: WarehouseKeyRing,
    *,
    now: datetime | None = None,
    settings: ValidationSettings = ValidationSettings(),
    expected_partner: str | None = None,
    linkage_db: Path | None = None,
    warehouse_db: Path | None = None,
    audit: Audit | None = None,
    _load_hook: object = None,
    _commit_hook: object = None,
) -> IngestOutcome:
    """Ingest one envelope file from ``landing/<partner>/``. Returns the outcome; never leaves a half-load.

    Args:
        path: the envelope in ``landing/<partner>/``. Its partner is that folder (never the manifest's own
            claim): the manifest must name the same partner, or it is refused (``partner_mismatch``).
        home: VPDC_HOME layout (zones, archive, quarantine, reports).
        keyring: warehouse keys (transport private key, registered partner keys).
        now: the clock (defaults to the current UTC time).
        settings: warehouse-side validation settings (accepted key versions, Bloom length, chunking).
        expected_partner: ignored (kept for callers): the folder the file is in decides.
        linkage_db, warehouse_db: the two zones (default: ``home``'s files).
        audit: called with every outcome (loaded or quarantined), to append it to the governance audit
            chain; it receives counts, check names and file names only, and must be idempotent per
            ``outcome.event_id`` (recovery may call it again after a crash).

    Raises:
        IngestError: ``path`` is not in a partner's landing folder (nothing is moved), or is gone and no
            outcome of it was recorded.
    """
    del expected_partner
    now = now or datetime.now(UTC)
    path = Path(path)
    linkage_db, warehouse_db = Path(linkage_db or home.linkage_db), Path(warehouse_db or home.warehouse_db)
    arrived_in = arrival_partner(home, path)
    if arrived_in is None:
        raise IngestError(f"{path.name}: not in a partner's landing folder (landing/<partner>/); nothing was moved")
    # the zone boundary's key and the archive's recipients: a home without them stops here, before anything moves
    boundary = ZoneBoundary.from_keyring(keyring)
    recipients = {"linkage": keyring.linkage_archive_public_key(), "content": keyring.transport_private_key().public_key()}
    with process_lock(private_dir(home.root / "private") / _LOCK):
        private = _clear_private(home)
        recover(home, linkage_db=linkage_db, warehouse_db=warehouse_db, audit=audit, now=now)
        if not os.path.lexists(path):  # a crashed run's outcome, completed by recover() just now
            recorded = _recorded_outcome(warehouse_db, _rel(home, path))
            if recorded is None:
                raise IngestError(f"{path.name}: no longer in landing/{arrived_in}/ and no outcome of it recorded")
            return recorded
        return _ingest(path, home, keyring, arrived_in, private, now=now, settings=settings, linkage_db=linkage_db,
                       warehouse_db=warehouse_db, audit=audit, load_hook=_load_hook, commit_hook=_commit_hook,
                       boundary=boundary, recipients=recipients)


def _since(t: float) -> float:
    """Seconds since ``t`` to the millisecond: enough for a stage's cost, and no long run of digits in a
    quarantine reason or event row that a reader (or a leak scan) could take for a date or an SSN."""
    return round(time.perf_counter() - t, 3)


def _ingest(path: Path, home: Home, keyring: WarehouseKeyRing, arrived_in: str, private: Path, *, now: datetime,
            settings: ValidationSettings, linkage_db: Path, warehouse_db: Path, audit: Audit | None,
            load_hook: object, commit_hook: object, boundary: ZoneBoundary, recipients: dict) -> IngestOutcome:
    out = IngestOutcome("quarantined", path.name, arrived_in=arrived_in)
    source = _rel(home, path)
    timings: dict[str, float] = {}
    try:
        try:
            m = read_manifest(path)
            out.envelope_id, out.partner, out.extract_type, out.period = m.envelope_id, m.partner, m.extract_type, m.period
        except EnvelopeRefused:
            pass  # open_envelope below refuses it with the precise check
        t = time.perf_counter()
        with open_envelope(path, keyring, seen_envelope_ids=loaded_envelope_ids(warehouse_db),
                           expected_partner=arrived_in, workdir=private) as opened:
            m = opened.manifest
            out.rows = m.row_count
            timings["open"] = _since(t)
            step("ingest.opened")
            try:
                profile = load_profile(m.partner, m.extract_type)
            except ProfileError as exc:
                raise _Refusal("schema", str(exc)) from None

            t = time.perf_counter()
            known = {c: s["values"] for c, s in profile.content.items() if "values" in s}
            stats: dict[str, list[int]] = {}
            findings = scan_batches(pq.ParquetFile(opened.payload).iter_batches(batch_size=200_000),
                                    known_values=known, keyed_columns=keyed_spec(profile, settings), keyed_stats=stats)
            timings["detect"] = _since(t)
            step("ingest.detected")
            if findings:
                raise _Refusal("plaintext_identifier", "; ".join(str(f) for f in findings))

            t = time.perf_counter()
            report = validate_payload(opened.payload, profile, m, now=now, settings=settings, file_name=path.name,
                                      encoding_stats=stats)
            report_path, _ = report.write(home.reports / "validation")
            out.report = str(report_path)
            timings["validate"] = _since(t)
            step("ingest.validated")
            if not report.passed:
                raise _Refusal("validation", report.summary())

            # split once: both zones load from these parts, and the archive keeps them, each sealed to its own
            # zone's key, before the load commits (so a committed load always has its entry)
            t = time.perf_counter()
            parts = split_payload(opened.payload, m, profile, boundary=boundary, workdir=opened.payload.parent)
            dest = archive_destination(home.archive / arrived_in, path.name, m.envelope_id)
            write_entry(dest, envelope=path, envelope_id=m.envelope_id, rows=m.row_count, now=now,
                        parts={"linkage": parts.linkage, "content": parts.content}, recipients=recipients)
            timings["split_and_archive"] = _since(t)
            step("ingest.archived")
            out.status, out.seconds = "loaded", timings

            def record(con, is_current: bool, superseded: list[str]) -> None:
                out.is_current, out.superseded = is_current, superseded
                insert_event(con, out, now, source=source, dest=_rel(home, dest))

            t = time.perf_counter()
            load_payload(parts, m, linkage_db=linkage_db, warehouse_db=warehouse_db, now=now, boundary=boundary,
                         in_warehouse_commit=record, _after_linkage_commit=load_hook,
                         _after_warehouse_commit=commit_hook)
            timings["load"] = _since(t)
    except (EnvelopeRefused, _Refusal) as exc:
        out.status, out.check, out.detail, out.seconds = "quarantined", exc.check, exc.detail, timings
        return _quarantine(path, home, out, source, now=now, warehouse_db=warehouse_db, audit=audit)
    _retire(path)
    mark_event(warehouse_db, out.event_id, moved=True)
    step("ingest.moved")
    _audit(out, now, warehouse_db, audit)
    return out


def _audit(out: IngestOutcome, now: datetime, warehouse_db: Path, audit: Audit | None) -> None:
    if audit is not None:
        audit(out, now)
        mark_event(warehouse_db, out.event_id, audited=True)
        step("ingest.audited")


def _quarantine(path: Path, home: Home, out: IngestOutcome, source: str, *, now: datetime, warehouse_db: Path,
                audit: Audit | None) -> IngestOutcome:
    """Record the refusal, write its reason, then move the file (by rename: never followed or opened)."""
    dest = _destination(home.quarantine, path.name)
    out.file = dest.name
    reason = {**out.as_dict(), "file": dest.name, "original_path": source, "arrived_in": out.arrived_in,
              "quarantined_at": now.isoformat()}
    record_event(warehouse_db, out, now, source=source, dest=_rel(home, dest), reason=reason)
    step("ingest.recorded")
    home.quarantine.mkdir(parents=True, exist_ok=True)
    atomic_write(dest.with_name(dest.name + ".reason.json"), json.dumps(reason, indent=2, default=str))
    step("ingest.reason_written")
    _rename(path, dest)
    mark_event(warehouse_db, out.event_id, moved=True)
    step("ingest.moved")
    _audit(out, now, warehouse_db, audit)
    return out
