"""Ingest one envelope: verify → detect plaintext → validate → split into zones → archive; or quarantine.

This is the whole landing-zone procedure as one plain function; the Dagster asset calls it. Nothing
is ever deleted: a loaded envelope is archived still encrypted, a refused one is moved to
``quarantine/`` with a machine-readable ``<file>.reason.json``, and every outcome is appended to
``raw.ingest_events`` in the warehouse (metadata only).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from envelope.format import EnvelopeRefused, open_envelope, read_manifest
from envelope.keys import WarehouseKeyRing
from landing.detector import scan_batches
from landing.events import IngestOutcome, archived_envelope_ids, record_event
from landing.load import complete_staged_loads, load_payload, loaded_envelope_ids
from landing.quarantine import quarantine_reason
from landing.validation import ValidationSettings, keyed_spec, validate_payload
from partner_kit import ProfileError, load_profile
from workspace import Home
from workspace.files import atomic_write

__all__ = ["IngestOutcome", "ingest_envelope", "quarantine_reason", "record_event"]  # the last two re-exported


class _Refusal(Exception):
    def __init__(self, check: str, detail: str):
        self.check, self.detail = check, detail
        super().__init__(f"{check}: {detail}")


def _move(src: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    n = 1
    while dest.exists():  # never overwrite: a second copy of a file is kept beside the first
        dest = dest_dir / f"{src.stem}.{n}{src.suffix}"
        n += 1
    shutil.move(str(src), dest)
    return dest


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
    audit: Callable[[IngestOutcome, datetime], None] | None = None,
    _load_hook: object = None,
    _commit_hook: object = None,
) -> IngestOutcome:
    """Ingest one envelope file from ``landing/``. Returns the outcome; never leaves a half-load.

    Args:
        path: the envelope in ``landing/<partner>/``.
        home: VPDC_HOME layout (zones, archive, quarantine, reports).
        keyring: warehouse keys (transport private key, trusted partner keys).
        now: the clock (defaults to the current UTC time).
        settings: warehouse-side validation settings (accepted key versions, Bloom length, chunking).
        expected_partner: the partner whose landing folder the file arrived in.
        linkage_db, warehouse_db: the two zones (default: ``home``'s files).
        audit: called with every outcome (loaded or quarantined), to append it to the governance audit
            chain; it receives counts, check names and file names only.

    A crash after the warehouse committed but before the envelope was archived leaves the envelope in
    ``landing/`` with its load complete; the re-run recognises that (the load is in ``raw.loads`` but no
    ingest event says it finished), re-applies the idempotent load and archives it. Any other envelope
    whose id was already loaded is a replay and is refused.
    """
    now = now or datetime.now(UTC)
    path = Path(path)
    linkage_db, warehouse_db = Path(linkage_db or home.linkage_db), Path(warehouse_db or home.warehouse_db)
    out = IngestOutcome("quarantined", path.name)
    timings: dict[str, float] = {}
    report_path = None
    complete_staged_loads(linkage_db, warehouse_db)  # finish a load a crash interrupted after its commit
    try:
        seen = loaded_envelope_ids(warehouse_db)
        try:
            m = read_manifest(path)
            out.envelope_id, out.partner, out.extract_type, out.period = m.envelope_id, m.partner, m.extract_type, m.period
            if m.envelope_id in seen and m.envelope_id not in archived_envelope_ids(warehouse_db):
                seen = seen - {m.envelope_id}  # interrupted after its commit: finish it, not a replay
        except EnvelopeRefused:
            pass  # open_envelope below refuses it with the precise check
        t = time.perf_counter()
        private = home.root / "private"
        private.mkdir(mode=0o700, exist_ok=True)
        with open_envelope(path, keyring, seen_envelope_ids=seen, expected_partner=expected_partner,
                           workdir=private) as opened:
            m = opened.manifest
            out.rows = m.row_count
            timings["open"] = time.perf_counter() - t
            try:
                profile = load_profile(m.partner, m.extract_type)
            except ProfileError as exc:
                raise _Refusal("schema", str(exc)) from None

            t = time.perf_counter()
            known = {c: set(s["values"]) for c, s in profile.content.items() if "values" in s}
            findings = scan_batches(pq.ParquetFile(opened.payload).iter_batches(batch_size=200_000),
                                    known_values=known, keyed_columns=keyed_spec(profile, settings))
            timings["detect"] = time.perf_counter() - t
            if findings:
                raise _Refusal("plaintext_identifier", "; ".join(str(f) for f in findings))

            t = time.perf_counter()
            report = validate_payload(opened.payload, profile, m, now=now, settings=settings, file_name=path.name)
            report_path, _ = report.write(home.reports / "validation")
            out.report = str(report_path)
            timings["validate"] = time.perf_counter() - t
            if not report.passed:
                raise _Refusal("validation", report.summary())

            t = time.perf_counter()
            result = load_payload(opened.payload, m, profile, linkage_db=linkage_db, warehouse_db=warehouse_db,
                                  now=now, _after_linkage_commit=_load_hook, _after_warehouse_commit=_commit_hook)
            timings["load"] = time.perf_counter() - t
        out.status, out.is_current, out.superseded = "loaded", result.is_current, result.superseded
        _move(path, home.archive / m.partner)
    except EnvelopeRefused as exc:
        out.check, out.detail = exc.check, exc.detail
    except _Refusal as exc:
        out.check, out.detail = exc.check, exc.detail
    out.seconds = timings
    if out.status == "quarantined":
        dest = _move(path, home.quarantine)
        reason = {**out.as_dict(), "file": dest.name, "original_path": str(path), "quarantined_at": now.isoformat()}
        atomic_write(dest.with_name(dest.name + ".reason.json"), json.dumps(reason, indent=2, default=str))
        out.file = dest.name
    record_event(warehouse_db, out, now)
    if audit is not None:
        audit(out, now)
    return out
