"""Partners' public signing keys at the warehouse: registered by an IDS engineer, audited, one per partner.

A partner makes its signing key at its own site and hands over only the public half (64 hex digits). The
warehouse records it here; the landing zone verifies every envelope with the registered key and no other
(an envelope naming a partner without one is refused as ``unknown_partner``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from envelope.keys import KeyError_, WarehouseKeyRing, key_id, public_key_from_text
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import Partner
from governance.registry.permissions import require
from governance.registry.workflow import GovernanceError, record_refusal

__all__ = ["register_partner_key"]


def register_partner_key(registry: Registry, *, keys_dir: Path, partner: str, public_key: str, actor: str,
                         now: datetime) -> str:
    """Register ``partner``'s public signing key (replacing an earlier one); returns its key id.

    Raises:
        GovernanceError: the actor may not register keys, the partner is unknown, or the key is malformed
            (each audited as a refusal).
    """
    try:
        with registry.transaction() as s:
            require(s, actor, "partner.register", subject=partner[:64], now=now)
            if s.get(Partner, partner) is None:
                raise GovernanceError(f"partner {partner[:40]!r} is not in the registry")
            try:
                raw = public_key_from_text(public_key, what=f"{partner}'s public signing key")
            except KeyError_ as exc:
                raise GovernanceError(str(exc)) from None
            ring = WarehouseKeyRing(keys_dir)
            old = ring.trusted_partner_key(partner)
            audit.append(s, actor=actor, action="partner.key_registered", subject=partner, at=now,
                         detail={"key_id": key_id(raw),
                                 "replaced": key_id(old.public_bytes_raw()) if old is not None else None})
            return ring.register_partner_key(partner, raw.hex())
    except GovernanceError as exc:
        if getattr(exc, "audited", False):  # a permission refusal: the registry audited it already
            raise
        record_refusal(registry, actor=actor, action="partner.register", subject=partner[:64], reason=str(exc), now=now)
        raise
