"""Output checking, as trusted research environments do it (OpenSAFELY's Airlock): a released file leaves the
warehouse (is downloaded) only after enough independent checkers have approved it.

A release passed the automatic gate when it was made (its disclosure checks are in its manifest). Before its
file can be downloaded, checkers who hold the output-checking permission and are not its requester read its
disclosure report and decide: approve, ask for changes or reject. How many approvals a release needs depends
on its output level (:data:`governance.defaults.OUTPUT_CHECKERS`). One request for changes or one rejection
ends the checking of that release (the requester makes a new release); each checker decides once.

The decisions are audit entries (``output.check.<decision>``, bound to the release by id): the hash-chained
log is their only record, so a decision cannot be edited or removed without the chain failing to verify. A
decision takes the chain's head lock before it reads the earlier ones, so two checkers deciding at once are
serialised and a release never gets two outcomes.

Example::

    check_output(registry, checker="engineer_one", release_id=3, decision="approve", comment="", now=now)
    check_status(session, release)["state"]   # "awaiting" until the second approval, then "approved"
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from governance.defaults import OUTPUT_CHECKERS
from governance.identity.context import require_recent_sign_in
from governance.outputs.kinds import KINDS
from governance.registry import audit
from governance.registry.errors import GovernanceError
from governance.registry.models import AuditEntry, AuditHead, Release, Request
from governance.registry.permissions import require

__all__ = ["CheckDecision", "check_output", "check_status", "checks_awaiting", "disclosure_report",
           "release_of_file", "required_checkers"]

ACTION = "output.check"
#: the longest comment a checker may leave (refused beyond, never truncated)
COMMENT_LIMIT = 4000


class CheckDecision(enum.StrEnum):
    APPROVE = "approve"
    CHANGES = "changes"  # ask the requester for changes: this release never leaves
    REJECT = "reject"


def _level(release: Release) -> str:
    kind = KINDS.get(release.kind)
    return kind[0].value if kind else "linked_extract"  # an unknown kind gets the strictest level's count


def required_checkers(release: Release) -> int:
    """How many approvals ``release`` needs (its output level's entry in ``OUTPUT_CHECKERS``; two if absent)."""
    return max(1, int(OUTPUT_CHECKERS.get(_level(release), 2)))


def _decisions(session: Session, release: Release) -> list[dict[str, Any]]:
    rows = session.query(AuditEntry).filter(AuditEntry.subject == release.study_id,
                                            AuditEntry.action.like(f"{ACTION}.%")).order_by(AuditEntry.seq)
    return [{"checker": e.actor, "decision": e.action.rsplit(".", 1)[1], "comment": (e.detail or {}).get("comment", ""),
             "at": e.at.isoformat(timespec="minutes"), "method": (e.detail or {}).get("auth", {}).get("method", "")}
            for e in rows if (e.detail or {}).get("release") == release.id]


def check_status(session: Session, release: Release) -> dict[str, Any]:
    """Where the checking of ``release`` stands: ``state`` (``awaiting``, ``approved``, ``changes`` asked,
    ``rejected``), ``required`` and ``approvals`` counts, and every decision (checker, decision, comment)."""
    decisions = _decisions(session, release)
    approvals = sum(d["decision"] == CheckDecision.APPROVE for d in decisions)
    required = required_checkers(release)
    ended = [d["decision"] for d in decisions if d["decision"] != CheckDecision.APPROVE]
    state = ended[0] if ended else ("approved" if approvals >= required else "awaiting")
    if state == CheckDecision.REJECT:
        state = "rejected"
    return {"state": state, "required": required, "approvals": approvals, "decisions": decisions}


def release_of_file(session: Session, *, study_id: str, file: str) -> int | None:
    """The id of the completed release that wrote ``file`` for ``study_id`` (what an export just made)."""
    row = session.query(Release.id).filter(Release.study_id == study_id, Release.file == file,
                                           Release.state == "released").one_or_none()
    return row[0] if row else None


def checks_awaiting(session: Session, *, actor: str) -> list[dict[str, Any]]:
    """Released outputs awaiting checking that ``actor`` may check (not their own, not yet decided by them)."""
    out = []
    for r in session.query(Release).filter(Release.state == "released", Release.actor != actor) \
            .order_by(Release.id):
        st = check_status(session, r)
        if st["state"] == "awaiting" and actor not in {d["checker"] for d in st["decisions"]}:
            out.append({"id": r.id, "study_id": r.study_id, "kind": r.kind, "version": r.version, "file": r.file,
                        "requester": r.actor, "created_at": r.created_at.isoformat(timespec="minutes"),
                        "approvals": st["approvals"], "required": st["required"]})
    return out


def disclosure_report(session: Session, *, release_id: int, outputs_dir: Path) -> dict[str, Any]:
    """What a checker reads: the release's shape (kind, spec, columns, persons, cell counts), the disclosure rules
    in force and each file's gate verdict from its manifest, and the checking so far. Never a record or a cell.

    Raises:
        GovernanceError: no such released output.
    """
    rel = session.get(Release, release_id) if isinstance(release_id, int) else None
    if rel is None or rel.state != "released":
        raise GovernanceError(f"no released output {str(release_id)[:20]}")
    root = Path(outputs_dir).resolve()
    manifest_path = (root / rel.study_id / rel.file).with_name(Path(rel.file).stem + ".manifest.json")
    manifest: dict[str, Any] = {}
    if manifest_path.resolve().parent.parent == root and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    cells = rel.cells or []
    return {"id": rel.id, "study_id": rel.study_id, "kind": rel.kind, "level": _level(rel), "version": rel.version,
            "file": rel.file, "requester": rel.actor, "created_at": rel.created_at.isoformat(timespec="minutes"),
            "spec": {k: v for k, v in (rel.spec or {}).items() if isinstance(v, (str, int, float, bool, list))},
            "columns": list(rel.columns or []), "persons": rel.persons, "cells": len(cells),
            "suppressed": sum(c.get("value") is None for c in cells if isinstance(c, dict)),
            "rules": manifest.get("rules", {}),
            "files": [{"name": f.get("name"), "bytes": f.get("bytes"), "sha256": f.get("sha256"),
                       "passed": (f.get("check") or {}).get("passed"),
                       "failures": (f.get("check") or {}).get("failures", [])} for f in manifest.get("files", [])],
            "manifest_found": bool(manifest), "checking": check_status(session, rel)}


def check_output(registry: Any, *, checker: str, release_id: int, decision: CheckDecision | str, now: datetime,
                 comment: str = "") -> dict[str, Any]:
    """Record one checker's decision on a release; returns the checking's new status.

    Refused (audited as ``refused.output.check``): a checker without the permission, the release's own
    requester, a second decision by the same checker, a release no longer awaiting checking, a stale sign-in,
    an unknown decision, or changes/rejection without a comment saying why.
    """
    from governance.registry.workflow import guarded

    subject = f"release:{str(release_id)[:20]}"

    def act(s: Session) -> dict[str, Any]:
        require(s, checker, ACTION, subject=subject, now=now)
        require_recent_sign_in(s, now=now, what="an output check")
        try:
            choice = CheckDecision(decision)
        except ValueError:
            raise GovernanceError(f"decision: {str(decision)[:20]!r} is not approve, changes or reject") from None
        text = str(comment or "").strip()
        if len(text) > COMMENT_LIMIT:
            raise GovernanceError(f"comment: longer than {COMMENT_LIMIT} characters")
        if choice != CheckDecision.APPROVE and not text:
            raise GovernanceError("comment: say what must change, or why the output is rejected")
        s.get(AuditHead, 1, with_for_update=True)  # serialise with every other decision before reading them
        rel = s.get(Release, release_id) if isinstance(release_id, int) else None
        if rel is None or rel.state != "released":
            raise GovernanceError(f"no released output {str(release_id)[:20]}")
        req = s.query(Request).filter(Request.study_id == rel.study_id).one_or_none()
        if checker in (rel.actor, req.requester_id if req else rel.actor):
            raise GovernanceError(f"{checker} requested release {rel.id}: its checkers must be other people")
        status = check_status(s, rel)
        if checker in {d["checker"] for d in status["decisions"]}:
            raise GovernanceError(f"{checker} has already checked release {rel.id}: each checker decides once")
        if status["state"] != "awaiting":
            raise GovernanceError(f"release {rel.id} is no longer awaiting checking ({status['state']})")
        audit.append(s, actor=checker, action=f"{ACTION}.{choice.value}", subject=rel.study_id, at=now,
                     detail={"release": rel.id, "kind": rel.kind, "version": rel.version, "comment": text})
        return check_status(s, rel)

    return guarded(registry, actor=checker, action=ACTION, subject=subject, now=now, fn=act)
