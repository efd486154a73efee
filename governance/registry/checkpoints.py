"""Signed checkpoints of the audit chain: what stewards keep outside the registry (ADR 0007).

A checkpoint says "the chain had ``seq`` entries and its last hash was ``head_hash``", signed by a steward
with their own Ed25519 key. The chain's hashes are keyed (HMAC), so nobody without the audit key can
rewrite it; a checkpoint adds what a key cannot: the chain may not get *shorter* than a checkpoint, and
even someone who holds the audit key cannot rewrite an entry at or before a checkpoint without the
checkpoint showing it.

Layout of a checkpoint folder (``VPDC_HOME/checkpoints`` by default; stewards keep it, or copies of it,
wherever the registry's writers cannot reach)::

    0000000042-steward_police.json   {"seq", "head_hash", "at", "signer", "key_id", "signature"}
    signers/steward_police.pub       the steward's public key (64 hex digits), recorded at their first checkpoint

This module is the file format only: signing, loading and checking signatures. Taking a checkpoint is an
action with a permission (:func:`governance.registry.integrity.write_checkpoint`); comparing the chain with
the checkpoints is part of :func:`governance.registry.audit.verify`.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from envelope.keys import key_id
from workspace.files import atomic_write, private_dir

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoints", "sign_checkpoint", "signing_key"]

#: Signatures cover this prefix and the canonical body: a checkpoint signature is good for nothing else.
DOMAIN = b"vpdc-audit-checkpoint\x1e"
_NAME = re.compile(r"^[0-9]{10}-[A-Za-z0-9._-]{1,64}\.json$")
_SIGNER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CheckpointError(Exception):
    """A checkpoint cannot be written: the signer's key is unsafe, or another key is registered for them."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: str
    signer: str
    key_id: str
    file: str

    def body(self) -> dict:
        return {"seq": self.seq, "head_hash": self.head_hash, "at": self.at, "signer": self.signer,
                "key_id": self.key_id}


def _canonical(body: dict) -> bytes:
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signing_key(key_dir: Path) -> Ed25519PrivateKey:
    """The steward's checkpoint key (``<key_dir>/checkpoint.key``, 0600), made on first use at their own site.

    Raises:
        CheckpointError: the key file is readable by others or is not an Ed25519 key.
    """
    path = Path(key_dir) / "checkpoint.key"
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        private_dir(path.parent)
        atomic_write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), mode=0o600)
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CheckpointError(f"{path}: checkpoint key is readable by group or others (mode {mode:o}); "
                              f"run `chmod 600 {path}`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: not an Ed25519 private key")
    return key


def sign_checkpoint(folder: Path, *, seq: int, head_hash: str, at: str, signer: str,
                    key: Ed25519PrivateKey) -> Checkpoint:
    """Write one signed checkpoint into ``folder``; the signer's public key is recorded in ``signers/`` at
    their first checkpoint and must match at every later one.

    Raises:
        CheckpointError: the signer id is not a plain identifier, or ``signers/`` holds another key for them.
    """
    if not _SIGNER.match(signer or ""):
        raise CheckpointError(f"signer {str(signer)[:40]!r}: not a user id")
    folder = Path(folder)
    public = _raw(key.public_key())
    pub_path = folder / "signers" / f"{signer}.pub"
    if pub_path.is_file():
        if pub_path.read_text().strip() != public.hex():
            raise CheckpointError(f"{pub_path}: another checkpoint key is registered for {signer}; a steward "
                                  "signs with the key they signed with before")
    else:
        pub_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(pub_path, (public.hex() + "\n").encode())
    cp = Checkpoint(seq, head_hash, at, signer, key_id(public), f"{seq:010d}-{signer}.json")
    signature = key.sign(_canonical(cp.body())).hex()
    atomic_write(folder / cp.file, (json.dumps(cp.body() | {"signature": signature}, indent=2) + "\n").encode())
    return cp


def load_checkpoints(folder: Path | None) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint in ``folder`` whose signature verifies with its signer's recorded key, oldest first,
    and a problem for each file that does not (unreadable, unknown signer, bad signature)."""
    if folder is None or not Path(folder).is_dir():
        return [], []
    good, problems = [], []
    for path in sorted(Path(folder).glob("*.json")):
        if not _NAME.match(path.name):
            continue
        try:
            doc = json.loads(path.read_text())
            cp = Checkpoint(int(doc["seq"]), str(doc["head_hash"]), str(doc["at"]), str(doc["signer"]),
                            str(doc["key_id"]), path.name)
            signature = bytes.fromhex(str(doc["signature"]))
        except (OSError, ValueError, KeyError, TypeError):
            problems.append(f"checkpoint {path.name} is unreadable")
            continue
        pub_path = Path(folder) / "signers" / f"{cp.signer}.pub"
        if not _SIGNER.match(cp.signer) or not pub_path.is_file():
            problems.append(f"checkpoint {path.name} is signed by {cp.signer[:64]}, whose key is not in signers/")
            continue
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub_path.read_text().strip())).verify(
                signature, _canonical(cp.body()))
        except (InvalidSignature, ValueError):
            problems.append(f"checkpoint {path.name}: its signature does not verify (edited or forged)")
            continue
        good.append(cp)
    return sorted(good, key=lambda c: (c.seq, c.file)), problems
