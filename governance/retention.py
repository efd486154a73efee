"""Retention: at the end of a request's retention period its released outputs and its study key are destroyed.

The sweep is planned before anything is touched (:func:`plan_sweep`, what ``vpdc retention sweep`` shows
without ``--confirm``), and each destruction is audited first and acted on after: the intent
(``study.destruction_started``, with the files and whether a key exists) is committed to the audit chain,
then files and key are destroyed, then ``study.destroyed`` is committed with the request marked destroyed.
A crash in between leaves an intent without its completion, visible in the audit and in the next plan
(``interrupted``), and the next sweep finishes it. Only holders of ``RETENTION_SWEEP`` (IDS engineers) sweep;
a refusal is audited.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from governance.pseudonyms import StudyKeyStore
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import AuditEntry, Request
from governance.registry.permissions import require
from governance.registry.workflow import mark_destroyed
from workspace.testhooks import step

__all__ = ["Destruction", "plan_sweep", "sweep"]


@dataclass(frozen=True)
class Destruction:
    """One study whose retention ended: what a sweep destroys (file names and counts only)."""

    study_id: str
    retention_end: str
    files: tuple[str, ...]
    study_key: bool
    interrupted: bool  # an earlier sweep recorded its intent but not its completion

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"files": len(self.files)}


def plan_sweep(registry: Registry, *, outputs_dir: Path, keys_dir: Path, today: date) -> list[Destruction]:
    """The studies past their retention end (``retention_end < today``) not yet destroyed, and what each holds."""
    store = StudyKeyStore(keys_dir / "studies")
    plan = []
    with registry.read() as s:
        started = {e.subject for e in s.query(AuditEntry).filter(AuditEntry.action == "study.destruction_started")}
        for req in s.query(Request).filter(Request.destroyed_at.is_(None), Request.retention_end < today) \
                .order_by(Request.retention_end, Request.study_id):
            out_dir = outputs_dir / req.study_id
            files = tuple(sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())) \
                if out_dir.is_dir() else ()
            plan.append(Destruction(req.study_id, req.retention_end.isoformat(), files, store.exists(req.study_id),
                                    req.study_id in started))
    return plan


def sweep(registry: Registry, *, actor: str, outputs_dir: Path, keys_dir: Path, today: date, now: datetime,
          confirm: bool) -> list[dict[str, Any]]:
    """Destroy the outputs and study keys of every study past retention; only with ``confirm``.

    Without ``confirm`` nothing is touched and the plan is returned (a dry run: :meth:`Destruction.as_dict`
    per study). With it, each study's row also says what was destroyed (``files_destroyed``, and
    ``study_key``: the key's destruction record, or that none was ever created). ``today`` other than
    ``now``'s date is recorded in every audit entry (a mistyped date is visible afterwards).

    Every sweep ends with a ``retention.swept`` entry (whether confirmed, how many studies).

    Raises:
        PermissionRefused: the actor may not sweep (audited as ``refused.retention.sweep``).
    """
    with registry.transaction() as s:
        require(s, actor, "retention.sweep", subject="retention", now=now)
    plan = plan_sweep(registry, outputs_dir=outputs_dir, keys_dir=keys_dir, today=today)
    override = {"today": today.isoformat()} if today != now.date() else {}
    if not confirm:
        with registry.transaction() as s:
            audit.append(s, actor=actor, action="retention.swept", subject="retention", at=now,
                         detail={"confirmed": False, "studies": len(plan), **override})
        return [d.as_dict() for d in plan]
    store = StudyKeyStore(keys_dir / "studies")
    done = []
    for d in plan:
        with registry.transaction() as s:  # 1. the intent, committed before anything is destroyed
            audit.append(s, actor=actor, action="study.destruction_started", subject=d.study_id, at=now,
                         detail={"files": len(d.files), "study_key": d.study_key, "resumed": d.interrupted,
                                 **override})
        step("retention.after_intent")
        shutil.rmtree(outputs_dir / d.study_id, ignore_errors=True)
        step("retention.after_files")
        key = store.destroy(d.study_id, now=now).to_dict() if store.exists(d.study_id) else None
        step("retention.after_key")
        missing = ("not found: destroyed by the interrupted sweep or never created" if d.interrupted
                   else "none was ever created")
        detail = {"files_destroyed": len(d.files), "study_key": key or missing}
        with registry.transaction() as s:  # 3. the completion
            mark_destroyed(s, actor=actor, study_id=d.study_id, now=now, detail=detail | override)
        done.append(d.as_dict() | detail)
    with registry.transaction() as s:
        audit.append(s, actor=actor, action="retention.swept", subject="retention", at=now,
                     detail={"confirmed": True, "studies": len(done), **override})
    return done
