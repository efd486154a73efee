"""Tamper-evident audit log: a keyed hash chain in the registry, anchored by signed checkpoints kept outside it.

Threat: someone who can write the registry database (a database administrator, a restored backup, an
injection) but holds no key. Three things stop them (ADR 0007):

1. **A keyed chain.** Each entry's hash is ``HMAC-SHA-256(audit key, prev_hash ‖ canonical entry)``. The audit
   key lives in the warehouse keys folder (``VPDC_HOME/keys/audit.key``, 0600), never in the database, so an
   entry cannot be edited, inserted, reordered or the whole chain rewritten with recomputed hashes: the
   first entry touched no longer verifies, and :func:`verify` names it.
2. **Checkpoints outside the registry.** A chain can still be cut short (delete the last entries, move the
   head back): every remaining entry verifies. Stewards sign checkpoints (``vpdc audit checkpoint``:
   ``{seq, head_hash, at, signer}``, Ed25519, :mod:`governance.registry.checkpoints`) and keep them outside
   the registry; :func:`verify` compares the chain with every checkpoint, so a chain shorter than the latest
   one, or one that differs at a checkpointed entry, is reported with the first entry missing.
3. **Rows bound to their entries.** Every row the gate reads (requests, reviews, agreements, partners,
   users, catalogue columns) carries ``audit_seq`` and ``audit_digest``: the entry that last wrote it and a
   keyed digest of its content as audited, which that entry's detail (``bound``) records too.
   :func:`row_problems` recomputes the digest and checks it against the *latest* entry that bound the row,
   so a forged row (no entry), a row edited in place (digest differs) and a row rolled back to an earlier
   audited state (not the latest entry) are all refused at the gate.

Appends happen inside the caller's transaction, so an action and its audit entry commit together. Details
hold identifiers, counts and digests, never record values or request text.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from governance.registry.checkpoints import load_checkpoints
from governance.registry.models import AuditEntry, AuditHead, Base

__all__ = ["GENESIS", "AuditContext", "AuditError", "AuditState", "AuditVerification", "append", "audited_ids", "entry_count",
           "init_audit_key", "row_digest", "row_problems", "state", "verify"]

GENESIS = "0" * 64
#: session.info key under which :class:`governance.registry.db.Registry` puts the :class:`AuditContext`
CONTEXT = "vpdc_audit"
#: session.info key of the signed-in person (:class:`governance.identity.Identity`), set by ``Registry.signed_in``
IDENTITY = "vpdc_identity"
#: the detail key that records who authenticated and how: {"subject", "method", "signed_in_at", "session", "via"};
#: {"method": "none"} when no one signed in (a service such as the landing zone, or a demo registry's library call)
AUTH = "auth"
#: the detail key that lists the rows an entry binds: [{"row": table, "id": primary key, "digest": hex}]
BOUND = "bound"
#: actions whose entries change what the gate must see, whatever the registry's rows say
STATE_EVENTS = ("request.revoked", "request.withdrawn", "study.destroyed")


class AuditError(Exception):
    """The chain cannot be written or checked: no audit key, or the key file is unsafe. Says what to do."""


@dataclass
class AuditContext:
    """Where a registry's audit key and checkpoints are: ``keys_dir`` (the warehouse keys folder, holding
    ``audit.key``) and ``checkpoints`` (the stewards' checkpoint folder). Set by the Registry on each session."""

    keys_dir: Path | None
    checkpoints: Path | None = None
    _key: bytes | None = field(default=None, repr=False)

    def key(self, session: Session, *, create: bool = False) -> bytes:
        if self._key is not None:
            return self._key
        from envelope.keys import KeyError_, WarehouseKeyRing

        if self.keys_dir is None:
            raise AuditError("this registry has no keys folder, so no audit key: open it with its VPDC_HOME "
                             "(registry_for) or pass keys_dir")
        try:
            ring = WarehouseKeyRing(self.keys_dir)
            if not ring.has_audit_key():
                if not create or session.scalar(select(func.count()).select_from(AuditEntry)):
                    raise AuditError(f"{Path(self.keys_dir) / ring.AUDIT_KEY}: the audit key is missing; the "
                                     "audit chain cannot be written or verified without it (`vpdc registry init` "
                                     "keys a new or pre-0003 chain; a chain keyed elsewhere needs that key)")
                ring.create_audit_key()  # an empty chain is born with its key
            self._key = ring.audit_key()
        except KeyError_ as exc:
            raise AuditError(str(exc)) from None
        return self._key


def _context(session: Session) -> AuditContext:
    ctx = session.info.get(CONTEXT)
    if ctx is None:
        raise AuditError("this session has no audit context: open sessions through Registry.transaction/read")
    return ctx


def _ts(at: datetime) -> str:
    """UTC, without offset: SQLite hands back naive datetimes, PostgreSQL aware ones; both hash alike."""
    return (at.astimezone(UTC) if at.tzinfo else at).replace(tzinfo=None).isoformat()


def _canonical(seq: int, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]) -> bytes:
    return json.dumps({"seq": seq, "at": _ts(at), "actor": actor, "action": action, "subject": subject,
                       "detail": detail}, sort_keys=True, separators=(",", ":"), default=str).encode()


def _mac(key: bytes, prev: str, body: bytes) -> str:
    return hmac.new(key, prev.encode() + b"\x1e" + body, hashlib.sha256).hexdigest()


def _unkeyed(prev: str, body: bytes) -> str:
    """The hash of a chain written before migration 0003 (plain SHA-256): only :func:`init_audit_key` reads it."""
    return hashlib.sha256(prev.encode() + b"\x1e" + body).hexdigest()


# ------------------------------------------------------------------------------------------ row digests
def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def row_key(row: Base) -> tuple[str, Any]:
    ident = inspect(row).identity
    if ident is None:
        raise AuditError(f"a {row.__tablename__} row must be flushed before it is bound")
    return row.__tablename__, ident[0]


def row_digest(key: bytes, row: Base) -> str:
    """Keyed digest of every column of ``row`` except its own binding: what its audit entry records."""
    fields = {a.key: _plain(getattr(row, a.key)) for a in inspect(row).mapper.column_attrs
              if a.key not in ("audit_seq", "audit_digest")}
    body = json.dumps({"row": row.__tablename__, "fields": fields}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hmac.new(key, b"row\x1e" + body.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- append
def append(session: Session, *, actor: str, action: str, subject: str, at: datetime,
           detail: dict[str, Any] | None = None, rows: list[Base] | tuple[Base, ...] = ()) -> AuditEntry:
    """Append one entry (inside the caller's transaction: the action and its audit commit together).

    ``rows`` are the registry rows this action wrote, in their final state: each is bound to the entry (its
    ``audit_seq`` and ``audit_digest`` set, the same digest recorded in the entry's detail under ``bound``).
    ``detail`` must hold identifiers of registry objects and counts, never record values or request text.
    Who signed in and how is added to it (``auth``) from the session's identity (``Registry.signed_in``).

    Raises:
        AuditError: the registry's audit key is missing or unsafe.
    """
    # a NUL in a name a person typed (a refused user id, a path) is recorded as U+FFFD: PostgreSQL stores no NUL
    actor, action, subject = (str(v).replace("\x00", "\ufffd") for v in (actor, action, subject))
    detail = dict(detail or {})
    ident = session.info.get(IDENTITY)
    detail[AUTH] = ident.audit_detail() if ident is not None else {"method": "none"}
    key = _context(session).key(session, create=True)
    head = session.get(AuditHead, 1, with_for_update=True)
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    session.flush()
    bound = []
    for row in rows:
        kind, ident = row_key(row)
        bound.append({"row": kind, "id": ident, "digest": row_digest(key, row)})
    if bound:
        detail[BOUND] = bound
    seq = head.seq + 1
    at = (at.astimezone(UTC) if at.tzinfo else at).replace(tzinfo=None)
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail,
                       prev_hash=head.hash, hash=_mac(key, head.hash, _canonical(seq, at, actor, action, subject, detail)))
    session.add(entry)
    head.seq, head.hash = seq, entry.hash
    for row, b in zip(rows, bound, strict=True):
        row.audit_seq, row.audit_digest = seq, b["digest"]
    session.flush()
    session.info.pop(_STATE, None)
    return entry


# ---------------------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class Binding:
    seq: int
    digest: str
    subject: str


@dataclass(frozen=True)
class AuditState:
    """The chain as verified: whether it holds, and what it says the gate must see.

    ``bindings`` maps (table, id) to the latest entry that bound the row; ``events`` maps a subject (study id)
    to the state-changing events audited for it (revocation, withdrawal, destruction) with their actors.
    """

    ok: bool
    entries: int
    problem: str = ""
    first_bad_seq: int | None = None
    checkpoint: str | None = None  # the latest checkpoint compared: "<seq> signed by <signer> at <at>"
    bindings: dict[tuple[str, Any], Binding] = field(default_factory=dict)
    events: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    entries: int
    problem: str = ""
    first_bad_seq: int | None = None
    checkpoint: str | None = None


_STATE = "vpdc_audit_state"


def state(session: Session, *, checkpoints: Path | None = None) -> AuditState:
    """Walk and verify the whole chain once per session and head (cached in ``session.info``), comparing it
    with the registry's checkpoint folder, or with ``checkpoints`` when given (not cached)."""
    head = session.get(AuditHead, 1)
    if checkpoints is not None:
        return _walk(session, head, Path(checkpoints))
    mark = (head.seq, head.hash) if head is not None else (0, GENESIS)
    cached = session.info.get(_STATE)
    if cached is not None and cached[0] == mark:
        return cached[1]
    st = _walk(session, head, _context(session).checkpoints)
    session.info[_STATE] = (mark, st)
    return st


def _walk(session: Session, head: AuditHead | None, folder: Path | None) -> AuditState:
    key = _context(session).key(session)
    checkpoints, cp_problems = load_checkpoints(folder)
    wanted = {c.seq for c in checkpoints}
    hashes: dict[int, str] = {}
    bindings: dict[tuple[str, Any], Binding] = {}
    events: dict[str, dict[str, str]] = {}
    prev, n = GENESIS, 0

    def bad(problem: str, seq: int | None) -> AuditState:
        return AuditState(False, n, problem, seq)

    rows = session.execute(select(AuditEntry.seq, AuditEntry.at, AuditEntry.actor, AuditEntry.action,
                                  AuditEntry.subject, AuditEntry.detail, AuditEntry.prev_hash, AuditEntry.hash)
                           .order_by(AuditEntry.seq))
    for seq, at, actor, action, subject, detail, prev_hash, hash_ in rows:
        n += 1
        if seq != n:
            return bad(f"entry {n} is missing (next is {seq}): deleted", n)
        if prev_hash != prev:
            return bad(f"entry {seq} does not follow entry {seq - 1}: deleted or reordered", seq)
        if not hmac.compare_digest(_mac(key, prev, _canonical(seq, at, actor, action, subject, detail)), hash_):
            return bad(f"entry {seq} was edited (its keyed hash does not match its content)", seq)
        for b in (detail or {}).get(BOUND, ()):
            bindings[(b["row"], b["id"])] = Binding(seq, b["digest"], subject)
        if action in STATE_EVENTS:
            events.setdefault(subject, {})[action] = actor
        if seq in wanted:
            hashes[seq] = hash_
        prev = hash_
    if head is not None and (head.seq != n or head.hash != prev):
        return bad(f"the chain ends at entry {n} but its head says {head.seq}: entries were cut from the end", n + 1)
    if cp_problems:
        return bad(cp_problems[0], None)
    latest, after = None, 0
    for cp in checkpoints:
        label = f"{cp.seq} signed by {cp.signer} at {cp.at}"
        if cp.seq > n:
            return bad(f"entry {n + 1} is missing: the chain ends at entry {n} but checkpoint {label} covers "
                       f"{cp.seq} entries (cut short)", n + 1)
        if hashes.get(cp.seq) != cp.head_hash:
            return bad(f"the chain differs from checkpoint {label}: an entry from {after + 1} to {cp.seq} was "
                       "rewritten, inserted or removed", after + 1)
        latest, after = label, cp.seq
    return AuditState(True, n, checkpoint=latest, bindings=bindings, events=events)


def verify(session: Session, *, checkpoints: Path | None = None) -> AuditVerification:
    """Recompute the keyed chain, compare it with its head and every checkpoint (the registry's checkpoint
    folder, or ``checkpoints``); name the first missing, edited or reordered entry, a cut tail included.

    Raises:
        AuditError: the audit key is missing (nothing can be verified without it).
    """
    st = state(session, checkpoints=checkpoints)
    return AuditVerification(st.ok, st.entries, st.problem, st.first_bad_seq, st.checkpoint)


# --------------------------------------------------------------------------------------- gate checks
def row_problems(session: Session, rows: list[Base] | tuple[Base, ...]) -> list[str]:
    """Why each of ``rows`` cannot be trusted, naming the row by kind and id (never its content); empty when
    every row is exactly as the latest audit entry that bound it recorded, on a chain that verifies."""
    try:
        st = state(session)
        key = _context(session).key(session)
    except AuditError as exc:
        return [f"the audit chain cannot be checked: {exc}"]
    if not st.ok:
        return [f"the audit chain does not verify ({st.problem})"]
    out = []
    for row in rows:
        kind, ident = row_key(row)
        b = st.bindings.get((kind, ident))
        what = f"{kind.rstrip('s')} {ident}"
        if b is None:
            out.append(f"{what} has no audit entry")
        elif row.audit_seq != b.seq:
            out.append(f"{what} is not in the state its latest audit entry {b.seq} recorded")
        elif row.audit_digest != b.digest or not hmac.compare_digest(row_digest(key, row), b.digest):
            out.append(f"{what} differs from its audit entry {b.seq}")
    return out


def entry_count(session: Session, *, action: str, subject: str) -> int:
    """How many audit entries record ``action`` on ``subject`` (e.g. a study's repins)."""
    return session.query(AuditEntry).filter(AuditEntry.action == action, AuditEntry.subject == subject).count()


def audited_ids(session: Session, table: str, subject: str) -> set[Any]:
    """Ids of the ``table`` rows the chain bound under ``subject`` (e.g. a study's reviews)."""
    return {ident for (kind, ident), b in state(session).bindings.items() if kind == table and b.subject == subject}


# ------------------------------------------------------------------------------------------- the key
def init_audit_key(registry: Any, *, now: datetime, actor: str = "registry") -> dict[str, Any]:
    """Give a registry its audit key (``keys/audit.key``) if it has none; idempotent.

    A new or empty chain simply gets a key. A chain written before migration 0003 (unkeyed SHA-256) is
    checked as it was written, then sealed: every entry re-hashed under the key, and an ``audit.keyed`` entry
    binds every existing row the gate reads. This trusts the registry as it stands at that moment, once,
    when the key is made; afterwards no unkeyed entry is ever accepted.

    Raises:
        AuditError: the old chain does not verify even unkeyed (it was tampered with; nothing is sealed).
    """
    from envelope.keys import KeyError_, WarehouseKeyRing
    from governance.registry.models import (
        Account,
        Agreement,
        DatasetColumn,
        Partner,
        RegistrySetting,
        Request,
        Review,
        User,
    )

    with registry.transaction() as s:
        ctx = _context(s)
        if ctx.keys_dir is None:
            raise AuditError("this registry has no keys folder for its audit key")
        try:
            ring = WarehouseKeyRing(ctx.keys_dir)
        except KeyError_ as exc:
            raise AuditError(str(exc)) from None
        if ring.has_audit_key():
            return {"created": False, "sealed": 0}
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        prev = GENESIS
        for i, e in enumerate(entries, 1):
            if e.seq != i or e.prev_hash != prev or \
                    _unkeyed(prev, _canonical(e.seq, e.at, e.actor, e.action, e.subject, e.detail)) != e.hash:
                raise AuditError(f"the unkeyed audit chain is broken at entry {i}; it cannot be sealed")
            prev = e.hash
        ring.create_audit_key()
        key = ctx.key(s)
        prev = GENESIS
        for e in entries:
            e.prev_hash = prev
            e.hash = prev = _mac(key, prev, _canonical(e.seq, e.at, e.actor, e.action, e.subject, e.detail))
        head = s.get(AuditHead, 1)
        if head is not None:
            head.seq, head.hash = len(entries), prev
        s.flush()
        rows = [r for model in (Partner, User, Agreement, DatasetColumn, Request, Review, RegistrySetting,
                                Account)
                for r in s.scalars(select(model)) if r.audit_seq is None]
        if entries or rows:
            append(s, actor=actor, action="audit.keyed", subject="registry", at=now,
                   detail={"sealed_entries": len(entries)}, rows=rows)
        return {"created": True, "sealed": len(entries)}
