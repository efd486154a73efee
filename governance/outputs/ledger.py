"""The release ledger: every file a study releases, recorded before it is written and after.

Releases are versioned (``<stem>_v<N>.csv``) and never overwrite one another. Each is audited first and acted
on after: the intent (ledger row ``releasing`` and audit entry ``<kind>.releasing``) is committed before the
file is written, the completion (``released``, ``<kind>.released``) after its manifest. A crash in between is
visible (an intent without its completion) and the next release of the study settles it: whatever the crash
left (file, manifest, or both) is removed and the release recorded as abandoned (``release.abandoned``). A
release that did not complete was never published: its cells are not in the ledger, so a later release could
not be protected against it, and it must not be left for anyone to pick up. A file in the outputs folder is
therefore always a completed, audited release (``vpdc audit verify`` and the ledger agree).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import Release
from workspace.files import atomic_path
from workspace.testhooks import step

__all__ = ["Intent", "STUDY_ID", "begin", "complete", "earlier", "settle", "write"]

#: A study id as the registry accepts it: it names a folder, so nothing else ever gets near a path.
STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")


@dataclass(frozen=True)
class Intent:
    """A release in progress: its ledger row, version and the file it will write."""

    release_id: int
    version: int
    path: Path
    action: str

    @property
    def manifest(self) -> Path:
        return self.path.with_name(self.path.stem + ".manifest.json")


def settle(registry: Registry, *, study_id: str, outputs_dir: Path, actor: str, now: datetime) -> list[dict[str, Any]]:
    """Finish what a crash left of the study's releases: intents without completion. Returns what was done."""
    done = []
    with registry.transaction() as s:
        for r in s.query(Release).filter(Release.study_id == study_id, Release.state == "releasing"):
            path = outputs_dir / study_id / r.file
            manifest = path.with_name(path.stem + ".manifest.json")
            left = [f.name for f in (path, manifest) if f.is_file()]
            for f in (path, manifest):
                f.unlink(missing_ok=True)
            r.state = "abandoned"
            audit.append(s, actor=actor, action="release.abandoned", subject=study_id, at=now,
                         detail={"kind": r.kind, "version": r.version, "file": r.file, "removed": left})
            done.append({"kind": r.kind, "version": r.version, "state": r.state})
    return done


def begin(registry: Registry, *, study_id: str, kind: str, spec: dict[str, Any], stem: str, outputs_dir: Path,
          actor: str, now: datetime, action: str | None = None) -> Intent:
    """Record the intent to release (the next version of ``kind`` for the study), committed before any write.

    ``action`` names the audit entries (``<action>.releasing``, then ``<action>.released``); default ``kind``.
    """
    settle(registry, study_id=study_id, outputs_dir=outputs_dir, actor=actor, now=now)
    with registry.transaction() as s:
        last = s.query(Release.version).filter(Release.study_id == study_id, Release.kind == kind) \
            .order_by(Release.version.desc()).first()
        version = (last[0] if last else 0) + 1
        file = f"{stem}_v{version}.csv"
        row = Release(study_id=study_id, version=version, kind=kind, spec=spec, file=file, cells=[], columns=[],
                      persons=0, state="releasing", actor=actor, created_at=now)
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action=f"{action or kind}.releasing", subject=study_id, at=now,
                     detail={"version": version, "file": file})
        return Intent(row.id, version, outputs_dir / study_id / file, action or kind)


def write(intent: Intent, table: pd.DataFrame, manifest: Callable[[], dict[str, Any]]) -> None:
    """Write the release's file, then its manifest (each atomically, never over an existing file).

    ``manifest`` builds the manifest once the file exists (it carries the file's checksum). The named crash
    points let the tests kill the process at each boundary (:mod:`workspace.testhooks`).
    """
    from governance.disclosure import write_manifest

    step("release.after_intent")
    with atomic_path(intent.path, exclusive=True) as tmp:
        table.to_csv(tmp, index=False)
    step("release.after_file")
    write_manifest(intent.manifest, manifest())
    step("release.after_manifest")


def complete(registry: Registry, intent: Intent, *, study_id: str, kind: str, cells: list[dict[str, Any]],
             columns: list[str], persons: int, actor: str, now: datetime, detail: dict[str, Any]) -> None:
    """Record the release as done (after its file and manifest are written), with what it published."""
    with registry.transaction() as s:
        row = s.get(Release, intent.release_id)
        row.state, row.cells, row.columns, row.persons = "released", cells, columns, int(persons)
        audit.append(s, actor=actor, action=f"{intent.action}.released", subject=study_id, at=now,
                     detail={"version": intent.version, "file": intent.path.name,
                             "manifest": intent.manifest.name, **detail})


def earlier(registry: Registry, *, study_id: str, kinds: tuple[str, ...]) -> list[Release]:
    """The study's completed releases of these kinds, oldest first."""
    with registry.read() as s:
        return list(s.query(Release).filter(Release.study_id == study_id, Release.kind.in_(kinds),
                                            Release.state == "released").order_by(Release.id))
