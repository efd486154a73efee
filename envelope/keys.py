"""Key generation and the key ring (DESIGN.md, "Keys").

Which key lives where:

* linkage secret (versioned, 32 random bytes): partners and the key custodian; never the warehouse.
  Sub-keys for tokens, Bloom filters and record ids are derived from it with HKDF so one leak of a
  derived key does not expose the others.
* partner signing key (Ed25519): each partner signs its envelope manifests.
* warehouse transport key pair (X25519): partners encrypt envelopes to its public half.
* study master secret: the warehouse derives per-study pseudonym keys from it.

Demo keys are all generated under one ``VPDC_HOME/keys`` for convenience; in production each
folder sits at a different site. Private files are written 0600 and refused if anyone else can read them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KeyError_",
    "KeyRing",
    "LinkageSecret",
    "init_keys",
    "key_id",
    "rotate_linkage_secret",
]


class KeyError_(Exception):  # noqa: N801 - avoid shadowing the builtin KeyError
    """A key is missing, unreadable or unsafely stored. The message says which file and what to do."""


@dataclass(frozen=True, repr=False)
class LinkageSecret:
    """A version of the linkage secret with its derived sub-keys. ``repr`` never shows key bytes."""

    version: str
    token_key: bytes
    bloom_key: bytes
    record_id_key: bytes

    @classmethod
    def from_master(cls, version: str, master: bytes) -> "LinkageSecret":
        def derive(label: str) -> bytes:
            return HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=f"vpdc/linkage/{version}/{label}".encode()
            ).derive(master)

        return cls(version, derive("token"), derive("bloom"), derive("record-id"))

    def __repr__(self) -> str:
        return f"LinkageSecret(version={self.version!r}, keys=<redacted>)"


def key_id(public_bytes: bytes) -> str:
    """Short stable identifier of a public key: first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> bool:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        return False
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


def _write_public(path: Path, data: bytes, *, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_private(path: Path) -> bytes:
    if not path.exists():
        raise KeyError_(f"{path}: key file not found; run `vpdc keys init` (or ask the key custodian)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyError_(
            f"{path}: private key is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
        )
    return path.read_bytes()


def _pem_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def init_keys(keys_dir: Path, partners: tuple[str, ...], *, overwrite: bool = False) -> dict[str, list[str]]:
    """Create every demo key that does not exist yet. Returns which files were created or kept.

    Idempotent: existing keys are kept unless ``overwrite`` (which would orphan every envelope and
    encoding made with the old keys, so the CLI asks for it explicitly).
    """
    created: list[str] = []
    kept: list[str] = []

    def note(path: Path, made: bool) -> None:
        (created if made else kept).append(str(path.relative_to(keys_dir)))

    linkage_dir = keys_dir / "linkage"
    current = linkage_dir / "CURRENT"
    if not current.exists() or overwrite:
        note(linkage_dir / "v1.key", _write_private(linkage_dir / "v1.key", os.urandom(32), overwrite=overwrite))
        _write_public(current, b"v1\n", overwrite=True)
    else:
        kept.append("linkage/CURRENT")

    for partner in partners:
        sk_path = keys_dir / "partners" / partner / "signing.key"
        if sk_path.exists() and not overwrite:
            note(sk_path, False)
            continue
        sk = Ed25519PrivateKey.generate()
        note(sk_path, _write_private(sk_path, _pem_private(sk), overwrite=overwrite))
        # The warehouse's trusted copy of each partner's public key (the registry's, from issue 6 on).
        _write_public(keys_dir / "trusted" / f"{partner}.pub", _raw_public(sk.public_key()).hex().encode(), overwrite=True)

    wh = keys_dir / "warehouse"
    if not (wh / "transport.key").exists() or overwrite:
        tk = X25519PrivateKey.generate()
        note(wh / "transport.key", _write_private(wh / "transport.key", _pem_private(tk), overwrite=overwrite))
        _write_public(wh / "transport.pub", _raw_public(tk.public_key()).hex().encode(), overwrite=True)
    else:
        kept.append("warehouse/transport.key")
    note(wh / "study-master.key", _write_private(wh / "study-master.key", os.urandom(32), overwrite=overwrite))
    return {"created": created, "kept": kept}


def rotate_linkage_secret(keys_dir: Path) -> str:
    """Add a new linkage secret version and make it current. Old versions stay for re-encoding."""
    linkage_dir = keys_dir / "linkage"
    versions = sorted(int(p.stem[1:]) for p in linkage_dir.glob("v*.key"))
    new = f"v{(versions[-1] if versions else 0) + 1}"
    _write_private(linkage_dir / f"{new}.key", os.urandom(32), overwrite=False)
    _write_public(linkage_dir / "CURRENT", f"{new}\n".encode(), overwrite=True)
    return new


class KeyRing:
    """Loads keys from a keys directory on demand; never caches them in module state."""

    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)

    # -- linkage (partner side) --------------------------------------------------------------
    def current_linkage_version(self) -> str:
        path = self.keys_dir / "linkage" / "CURRENT"
        if not path.exists():
            raise KeyError_(f"{path}: no linkage secret; run `vpdc keys init`")
        return path.read_text().strip()

    def linkage_secret(self, version: str | None = None) -> LinkageSecret:
        version = version or self.current_linkage_version()
        master = _read_private(self.keys_dir / "linkage" / f"{version}.key")
        return LinkageSecret.from_master(version, master)

    # -- partner signing -----------------------------------------------------------------------
    def partner_signing_key(self, partner: str) -> Ed25519PrivateKey:
        path = self.keys_dir / "partners" / partner / "signing.key"
        key = serialization.load_pem_private_key(_read_private(path), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyError_(f"{path}: not an Ed25519 private key")
        return key

    def trusted_partner_key(self, partner: str) -> Ed25519PublicKey | None:
        """The warehouse's registered public key for a partner, or None if the partner is unknown."""
        path = self.keys_dir / "trusted" / f"{partner}.pub"
        if not path.exists():
            return None
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(path.read_text().strip()))

    # -- warehouse transport ---------------------------------------------------------------------
    def transport_public_key(self) -> X25519PublicKey:
        path = self.keys_dir / "warehouse" / "transport.pub"
        if not path.exists():
            raise KeyError_(f"{path}: warehouse transport public key not found; run `vpdc keys init`")
        return X25519PublicKey.from_public_bytes(bytes.fromhex(path.read_text().strip()))

    def transport_private_key(self) -> X25519PrivateKey:
        path = self.keys_dir / "warehouse" / "transport.key"
        key = serialization.load_pem_private_key(_read_private(path), password=None)
        if not isinstance(key, X25519PrivateKey):
            raise KeyError_(f"{path}: not an X25519 private key")
        return key

    def study_master_secret(self) -> bytes:
        return _read_private(self.keys_dir / "warehouse" / "study-master.key")
