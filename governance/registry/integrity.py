"""The audit chain's own actions: verify it (``AUDIT_VERIFY``) and checkpoint it (``AUDIT_CHECKPOINT``).

Both check their permission through ``roles.ACTIONS`` like every other action, and both are audited, allowed
or refused: ``audit.verified`` records a verification that held (entries, latest checkpoint compared; a broken
chain is left as found), ``audit.checkpointed`` the checkpoint a steward signed. See ADR 0007 for why checkpoints exist at all.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from governance.registry import audit
from governance.registry.checkpoints import Checkpoint, CheckpointError, sign_checkpoint, signing_key
from governance.registry.errors import GovernanceError
from governance.registry.models import AuditHead
from governance.registry.permissions import require
from governance.registry.workflow import record_refusal

__all__ = ["verify_chain", "write_checkpoint"]


def verify_chain(registry: Any, *, actor: str, now: datetime, checkpoints: Path | None = None
                 ) -> audit.AuditVerification:
    """Verify the chain (keyed hashes, head, every checkpoint) as ``actor``; a chain that holds gets an
    ``audit.verified`` entry, a broken one is left untouched (the verifier reports it; nothing blurs it).

    ``checkpoints`` overrides the registry's checkpoint folder (a copy a steward brought along, say).

    Raises:
        PermissionRefused: the actor may not verify (audited).
        AuditError: the audit key is missing.
    """
    with registry.transaction() as s:
        require(s, actor, "audit.verify", subject="audit", now=now)
        v = audit.verify(s, checkpoints=checkpoints)
        if v.ok:  # a broken chain is left exactly as found: an entry appended now would blur where it breaks
            audit.append(s, actor=actor, action="audit.verified", subject="audit", at=now,
                         detail={"ok": v.ok, "entries": v.entries, "checkpoint": v.checkpoint})
    return v


def write_checkpoint(registry: Any, *, actor: str, folder: Path, key_dir: Path, now: datetime) -> Checkpoint:
    """Sign the chain's head as ``actor`` with their checkpoint key (``<key_dir>/checkpoint.key``, made at
    first use) into ``folder``, which stewards keep outside the registry.

    The chain is verified first, against ``folder`` too: a steward never vouches for a chain that is already
    broken. The checkpoint covers every entry up to the head; the ``audit.checkpointed`` entry that records it
    comes after.

    Raises:
        PermissionRefused: the actor may not checkpoint (audited).
        GovernanceError: the chain does not verify, is empty, or the steward's key is unusable (audited).
    """
    try:
        with registry.transaction() as s:
            require(s, actor, "audit.checkpoint", subject="audit", now=now)
            v = audit.verify(s, checkpoints=folder)
            if not v.ok:
                raise GovernanceError(f"the audit chain does not verify ({v.problem}); a checkpoint would vouch "
                                      "for it: investigate first")
            head = s.get(AuditHead, 1)
            if head is None or head.seq == 0:
                raise GovernanceError("the audit chain is empty: nothing to checkpoint")
            try:
                cp = sign_checkpoint(Path(folder), seq=head.seq, head_hash=head.hash, at=audit._ts(now),
                                     signer=actor, key=signing_key(Path(key_dir)))
            except CheckpointError as exc:
                raise GovernanceError(str(exc)) from None
            audit.append(s, actor=actor, action="audit.checkpointed", subject="audit", at=now,
                         detail={"seq": cp.seq, "file": cp.file, "key_id": cp.key_id})
        return cp
    except GovernanceError as exc:
        if not getattr(exc, "audited", False):
            record_refusal(registry, actor=actor, action="audit.checkpoint", subject="audit", reason=str(exc),
                           now=now)
        raise
