"""Downloads of released outputs (the portal's): a file leaves only if the gate would release it now.

A release was checked when it was made; a download is checked again, at the moment of download, by the same
policy function (:func:`governance.registry.policy.authorize`): the request still active (not revoked,
withdrawn, expired or destroyed), the downloader its requester with the permission the release's kind declares,
and every released column still inside the approval (a reviewer's later condition counts). And before its first
download, as before every one, the release must have been approved by its output checkers
(:mod:`governance.outputs.checking`). Audited either way.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from governance.outputs.checking import check_status
from governance.outputs.kinds import KINDS
from governance.registry import audit
from governance.registry.errors import GovernanceError
from governance.registry.models import Release
from governance.registry.policy import PolicyRefused, authorize
from governance.registry.workflow import record_refusal

__all__ = ["KINDS", "open_release", "released_outputs"]



def released_outputs(session: Session, *, actor: str) -> list[dict[str, Any]]:
    """The outputs released to ``actor``, newest first (ids, kinds, versions, file names, where their output checking
    stands; never content)."""
    rows = session.query(Release).filter(Release.actor == actor, Release.state == "released").order_by(Release.id.desc())
    return [{"id": r.id, "study_id": r.study_id, "kind": r.kind, "version": r.version, "file": r.file,
             "created_at": r.created_at.isoformat(timespec="minutes"), "check": check_status(session, r)} for r in rows]


def _columns(path: Path, dataset: str | None) -> list[tuple[str, str]]:
    from governance.catalog import catalogue

    if dataset is None:
        return []
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    known = catalogue().get(dataset, {})
    return [(dataset, c) for c in header if c in known]


def open_release(registry: Any, *, release_id: int, actor: str, outputs_dir: Path, now: datetime) -> Path:
    """The released file, if the gate allows ``actor`` to take it now; audited as ``output.downloaded``.

    Raises:
        GovernanceError: no such release for this person, or its output checkers have not approved it (audited).
        PolicyRefused: the gate refuses now (audited).
    """
    subject = f"release:{release_id}"
    try:
        with registry.transaction() as s:
            rel = s.get(Release, release_id) if isinstance(release_id, int) else None
            if rel is None or rel.state != "released" or rel.kind not in KINDS:
                raise GovernanceError(f"no released output {str(release_id)[:20]}")
            subject = rel.study_id
            checked = check_status(s, rel)
            if checked["state"] != "approved":
                raise GovernanceError(f"release {rel.id} cannot leave yet: output checking is {checked['state']} "
                                      f"({checked['approvals']} of {checked['required']} checkers approved)")
            level, action, dataset = KINDS[rel.kind]
            root = Path(outputs_dir).resolve()
            path = (root / rel.study_id / rel.file).resolve()
            if root not in path.parents or not path.is_file():
                raise GovernanceError(f"release {rel.id}: its file is no longer there (destroyed at retention end?)")
            if rel.kind == "study":
                dataset = (rel.spec or {}).get("dataset", dataset)
            authorize(s, rel.study_id, at=now, actor=actor, output_level=level, columns=_columns(path, dataset),
                      action=action)
            audit.append(s, actor=actor, action="output.downloaded", subject=rel.study_id, at=now,
                         detail={"release": rel.id, "kind": rel.kind, "version": rel.version, "file": rel.file})
            return path
    except (GovernanceError, PolicyRefused) as exc:
        if not getattr(exc, "audited", False):
            record_refusal(registry, actor=actor, action="output.download", subject=subject, reason=str(exc), now=now)
        raise
