"""Keys and key rings (DESIGN.md, "Keys"): each party holds only its own.

| key | held by | here |
|---|---|---|
| linkage secret (versioned, 32 random bytes) | the key custodian, and every partner's kit | :class:`Custodian`, :class:`PartnerKeyRing` |
| partner signing key (Ed25519) | the partner; the warehouse registers its public half | :class:`PartnerKeyRing`, :class:`WarehouseKeyRing` |
| warehouse transport key pair (X25519) | the warehouse; partners hold its public half | :class:`WarehouseKeyRing`, :class:`PartnerKeyRing` |
| study master secret | the warehouse (per-study pseudonym keys derive from it) | :class:`WarehouseKeyRing` |
| audit key (32 random bytes; keys the registry's audit chain, ADR 0007) | the warehouse, never the registry database | :class:`WarehouseKeyRing` |
| zone-boundary key (32 random bytes; the linkage zone's source and record labels, the analytics person keys, ADR 0010) | the warehouse's landing and export steps, never the linkage zone | :class:`WarehouseKeyRing` |
| linkage archive key pair (X25519; the archived encodings part of each envelope, ADR 0010) | the linkage zone; the warehouse holds its public half only | :class:`LinkageZoneKeyRing` |

Sub-keys for tokens, Bloom filters and record ids are derived from the linkage secret with HKDF, so a leak
of one derived key does not expose the others. The warehouse's key ring has no way to load a linkage secret
and refuses to open a keys folder that holds one: the warehouse must never be able to compute an encoding.

A partner generates its own signing key at its own site (:func:`generate_signing_key`) and hands over only
the public half; nobody else ever sees the private key. Private files are written 0600 in 0700 folders and
refused if anyone else can read them. In the demo every party's folder sits under one ``VPDC_HOME``
(:func:`init_demo_keys`); in production each sits at its own site.

Linkage-secret rotation: the custodian adds a version (:meth:`Custodian.rotate`); each partner installs it
(:func:`install_linkage_secret`), which makes it current and records the old version as ``PREVIOUS``. While a
previous version is present the kit is *in transition* and sends each record's pseudonymous ids under both
versions, so the warehouse can carry person keys and analytics rows across (ADR 0005).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workspace import Home
from workspace.files import atomic_write, private_dir

__all__ = [
    "Custodian",
    "KeyError_",
    "LinkageSecret",
    "LinkageZoneKeyRing",
    "PartnerKeyRing",
    "WarehouseKeyRing",
    "generate_signing_key",
    "install_linkage_secret",
    "install_transport_key",
    "key_id",
    "init_demo_keys",
    "public_key_from_text",
]

#: A linkage secret version: ``v`` and a number.
VERSION = re.compile(r"^v[1-9][0-9]{0,5}$")


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


# ------------------------------------------------------------------------------------------ files
def _write_private(path: Path, data: bytes, *, overwrite: bool) -> bool:
    private_dir(path.parent)
    if path.exists() and not overwrite:
        return False
    atomic_write(path, data, mode=0o600)
    return True


def _write_public(path: Path, data: bytes, *, overwrite: bool) -> bool:
    if path.exists() and not overwrite:
        return False
    atomic_write(path, data)
    return True


def _read_private(path: Path, what: str = "key") -> bytes:
    if not path.is_file():
        raise KeyError_(f"{path}: {what} not found; run `vpdc keys init` (demo) or install it (see the README)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyError_(f"{path}: private key is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")
    return path.read_bytes()


def _pem_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_text(text: str, *, what: str = "public key") -> bytes:
    """The 32 raw bytes of a public key written as 64 hex digits (how keys are exchanged here).

    Raises:
        KeyError_: not 64 hex digits.
    """
    clean = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", clean):
        raise KeyError_(f"{what}: expected 64 hex digits (a 32-byte key), got {len(clean)} characters")
    return bytes.fromhex(clean)


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION.match(version):
        raise KeyError_(f"linkage key version {str(version)[:20]!r}: expected v1, v2, ...")
    return version


# ------------------------------------------------------------------------------------ custodian
class Custodian:
    """The key custodian's store of linkage-secret versions (``<dir>/linkage/vN.key`` and ``CURRENT``)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._linkage = self.directory / "linkage"

    def versions(self) -> list[str]:
        return sorted((p.stem for p in self._linkage.glob("v*.key") if VERSION.match(p.stem)),
                      key=lambda v: int(v[1:]))

    def current_version(self) -> str:
        path = self._linkage / "CURRENT"
        if not path.is_file():
            raise KeyError_(f"{path}: the custodian has no linkage secret; run `vpdc keys init`")
        return _check_version(path.read_text().strip())

    def create(self, *, overwrite: bool = False) -> tuple[str, bool]:
        """The first version (v1) if there is none yet; returns (version, created)."""
        if self.versions() and not overwrite:
            return self.current_version(), False
        _write_private(self._linkage / "v1.key", os.urandom(32), overwrite=True)
        _write_public(self._linkage / "CURRENT", b"v1\n", overwrite=True)
        return "v1", True

    def rotate(self) -> str:
        """Add a new version and make it current. Older versions stay until every partner has moved."""
        versions = self.versions()
        new = f"v{int(versions[-1][1:]) + 1 if versions else 1}"
        _write_private(self._linkage / f"{new}.key", os.urandom(32), overwrite=False)
        _write_public(self._linkage / "CURRENT", f"{new}\n".encode(), overwrite=True)
        return new

    def secret_bytes(self, version: str | None = None) -> bytes:
        """The raw secret of a version, for handing to a partner over a secure channel."""
        version = _check_version(version or self.current_version())
        return _read_private(self._linkage / f"{version}.key", f"linkage secret {version}")

    def linkage_secret(self, version: str | None = None) -> LinkageSecret:
        version = version or self.current_version()
        return LinkageSecret.from_master(version, self.secret_bytes(version))


# -------------------------------------------------------------------------------------- partner
def generate_signing_key(keys_dir: Path, *, overwrite: bool = False) -> tuple[str, bool]:
    """Create the partner's Ed25519 signing key at its own site (``signing.key``, 0600) and its public
    half (``signing.pub``, 64 hex digits: the only part that is ever handed over).

    Returns:
        (the public key as hex, whether a new key was made).
    """
    keys_dir = private_dir(Path(keys_dir))
    sk_path, pub_path = keys_dir / "signing.key", keys_dir / "signing.pub"
    if sk_path.exists() and not overwrite:
        return PartnerKeyRing(keys_dir).signing_public_hex(), False
    sk = Ed25519PrivateKey.generate()
    public = _raw_public(sk.public_key()).hex()
    _write_private(sk_path, _pem_private(sk), overwrite=True)
    _write_public(pub_path, (public + "\n").encode(), overwrite=True)
    return public, True


def install_linkage_secret(keys_dir: Path, version: str, secret: bytes, *, transition: bool = True) -> None:
    """Install a linkage-secret version received from the custodian and make it current.

    With ``transition`` (the default when a different version was current), the old version becomes
    ``PREVIOUS``: the kit then sends pseudonymous ids under both until :meth:`PartnerKeyRing.end_transition`.
    """
    _check_version(version)
    if len(secret) != 32:
        raise KeyError_(f"linkage secret {version}: expected 32 bytes, got {len(secret)}")
    linkage = private_dir(Path(keys_dir) / "linkage")
    current = linkage / "CURRENT"
    old = current.read_text().strip() if current.is_file() else None
    _write_private(linkage / f"{version}.key", secret, overwrite=True)
    _write_public(current, f"{version}\n".encode(), overwrite=True)
    if transition and old and old != version:
        _write_public(linkage / "PREVIOUS", f"{old}\n".encode(), overwrite=True)


def install_transport_key(keys_dir: Path, public_hex: str) -> str:
    """Install the warehouse's public transport key at a partner site; returns its key id."""
    raw = public_key_from_text(public_hex, what="warehouse transport key")
    _write_public(private_dir(Path(keys_dir)) / "transport.pub", (raw.hex() + "\n").encode(), overwrite=True)
    return key_id(raw)


class PartnerKeyRing:
    """A partner site's keys: its own signing key, the linkage secret versions, the warehouse's public key."""

    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)

    def current_linkage_version(self) -> str:
        path = self.keys_dir / "linkage" / "CURRENT"
        if not path.is_file():
            raise KeyError_(f"{path}: no linkage secret installed; ask the key custodian (demo: `vpdc keys init`)")
        return _check_version(path.read_text().strip())

    def previous_linkage_version(self) -> str | None:
        """The version being rotated away from, while a rotation is in transition; else None."""
        path = self.keys_dir / "linkage" / "PREVIOUS"
        return _check_version(path.read_text().strip()) if path.is_file() else None

    def end_transition(self) -> None:
        """Stop sending ids under the previous version (the warehouse has completed the rotation)."""
        (self.keys_dir / "linkage" / "PREVIOUS").unlink(missing_ok=True)

    def linkage_secret(self, version: str | None = None) -> LinkageSecret:
        version = _check_version(version or self.current_linkage_version())
        master = _read_private(self.keys_dir / "linkage" / f"{version}.key", f"linkage secret {version}")
        return LinkageSecret.from_master(version, master)

    def signing_key(self) -> Ed25519PrivateKey:
        path = self.keys_dir / "signing.key"
        try:
            key = serialization.load_pem_private_key(_read_private(path, "signing key"), password=None)
        except ValueError:
            raise KeyError_(f"{path}: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyError_(f"{path}: not an Ed25519 private key")
        return key

    def signing_public_hex(self) -> str:
        return _raw_public(self.signing_key().public_key()).hex()

    def transport_public_key(self) -> X25519PublicKey:
        path = self.keys_dir / "transport.pub"
        if not path.is_file():
            raise KeyError_(f"{path}: the warehouse's public transport key is not installed "
                            "(`vpdc-kit keys install-transport`)")
        return X25519PublicKey.from_public_bytes(public_key_from_text(path.read_text(), what=str(path)))


# ------------------------------------------------------------------------------------ warehouse
class WarehouseKeyRing:
    """The warehouse's keys: the transport key pair, the registered partner public keys, the study master.

    It has no method that loads a linkage secret, and it refuses a keys folder that holds one (a
    ``linkage`` folder or any file named like a linkage secret): start-up fails rather than run a
    warehouse that could compute encodings.
    """

    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)
        leaks = [p for p in (self.keys_dir / "linkage", self.keys_dir / "custodian") if p.exists()]
        leaks += [p for p in self.keys_dir.rglob("*.key") if VERSION.match(p.stem)] if self.keys_dir.is_dir() else []
        if (self.keys_dir / LinkageZoneKeyRing.ARCHIVE_KEY).exists():
            raise KeyError_(f"{self.keys_dir}: the warehouse's keys folder holds the linkage zone's archive key "
                            f"({LinkageZoneKeyRing.ARCHIVE_KEY}); with it the archive's encodings and content parts could "
                            "be rejoined: move it to the linkage zone's keys folder")
        if leaks:
            raise KeyError_(f"{self.keys_dir}: the warehouse's keys folder holds linkage-secret material "
                            f"({', '.join(sorted(str(p.relative_to(self.keys_dir)) for p in leaks)[:3])}); "
                            "the warehouse must never hold the linkage secret: move it to the key custodian")

    @staticmethod
    def _partner_file_name(partner: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", partner or ""):
            raise KeyError_(f"partner {str(partner)[:40]!r}: not a partner id (lower-case letters, digits, _)")
        return f"{partner}.pub"

    def trusted_partner_key(self, partner: str) -> Ed25519PublicKey | None:
        """The registered public signing key of a partner, or None if it has none (or is no partner id)."""
        try:
            path = self.keys_dir / "partners" / self._partner_file_name(partner)
        except KeyError_:
            return None
        if not path.is_file() or path.is_symlink():
            return None
        return Ed25519PublicKey.from_public_bytes(public_key_from_text(path.read_text(), what=str(path)))

    def register_partner_key(self, partner: str, public_hex: str) -> str:
        """Record ``partner``'s public signing key (replacing an earlier one); returns its key id."""
        raw = public_key_from_text(public_hex, what=f"{partner}'s public signing key")
        Ed25519PublicKey.from_public_bytes(raw)
        _write_public(self.keys_dir / "partners" / self._partner_file_name(partner), (raw.hex() + "\n").encode(),
                      overwrite=True)
        return key_id(raw)

    def registered_partners(self) -> list[str]:
        d = self.keys_dir / "partners"
        return sorted(p.stem for p in d.glob("*.pub")) if d.is_dir() else []

    def transport_private_key(self) -> X25519PrivateKey:
        path = self.keys_dir / "transport.key"
        key = serialization.load_pem_private_key(_read_private(path, "transport key"), password=None)
        if not isinstance(key, X25519PrivateKey):
            raise KeyError_(f"{path}: not an X25519 private key")
        return key

    def transport_public_hex(self) -> str:
        path = self.keys_dir / "transport.pub"
        if not path.is_file():
            raise KeyError_(f"{path}: warehouse transport public key not found; run `vpdc keys init`")
        return public_key_from_text(path.read_text(), what=str(path)).hex()

    def study_master_secret(self) -> bytes:
        return _read_private(self.keys_dir / "study-master.key", "study master secret")

    #: The audit key's file in the warehouse keys folder. Never a linkage secret (its name is no version).
    AUDIT_KEY = "audit.key"

    def has_audit_key(self) -> bool:
        return (self.keys_dir / self.AUDIT_KEY).is_file()

    def audit_key(self) -> bytes:
        """The key of the registry's audit chain (HMAC-SHA-256; ADR 0007). It lives here, outside the registry
        database, so that whoever can write that database cannot recompute the chain."""
        key = _read_private(self.keys_dir / self.AUDIT_KEY, "audit key")
        if len(key) != 32:
            raise KeyError_(f"{self.keys_dir / self.AUDIT_KEY}: expected 32 bytes, got {len(key)}")
        return key

    def create_audit_key(self) -> bool:
        """Make the audit key (0600) if there is none; returns whether one was made. Never overwritten: a new
        key would make every existing entry of the chain unverifiable."""
        return _write_private(self.keys_dir / self.AUDIT_KEY, os.urandom(32), overwrite=False)

    #: The zone-boundary key's file (ADR 0010). Its name is no linkage-secret version.
    BOUNDARY_KEY = "zone-boundary.key"
    #: The public half of the linkage zone's archive key, installed here (:meth:`install_linkage_archive_key`).
    LINKAGE_ARCHIVE_PUB = "linkage-archive.pub"

    def boundary_key(self) -> bytes:
        """The key of the zone boundary (ADR 0010): the linkage zone's opaque source and record labels and the
        analytics zone's person keys derive from it. The linkage zone never holds it, so nothing there can be
        matched to the warehouse's names, record ids or person keys."""
        key = _read_private(self.keys_dir / self.BOUNDARY_KEY, "zone-boundary key")
        if len(key) != 32:
            raise KeyError_(f"{self.keys_dir / self.BOUNDARY_KEY}: expected 32 bytes, got {len(key)}")
        return key

    def install_linkage_archive_key(self, public_hex: str) -> str:
        """Install the public half of the linkage zone's archive key; returns its key id."""
        raw = public_key_from_text(public_hex, what="linkage zone archive key")
        _write_public(self.keys_dir / self.LINKAGE_ARCHIVE_PUB, (raw.hex() + "\n").encode(), overwrite=True)
        return key_id(raw)

    def linkage_archive_public_key(self) -> X25519PublicKey:
        """The linkage zone's public archive key: the archived encodings part of each envelope is sealed to it, so
        the warehouse can write that part and never read it again."""
        path = self.keys_dir / self.LINKAGE_ARCHIVE_PUB
        if not path.is_file():
            raise KeyError_(f"{path}: the linkage zone's public archive key is not installed; run `vpdc keys init`")
        return X25519PublicKey.from_public_bytes(public_key_from_text(path.read_text(), what=str(path)))

    def create(self, *, overwrite: bool = False) -> list[str]:
        """The transport key pair, the study master secret and the zone-boundary key, if missing; returns the files
        made. The boundary key is never replaced: a new one would give every person a new analytics key."""
        made = []
        if overwrite or not (self.keys_dir / "transport.key").exists():
            tk = X25519PrivateKey.generate()
            _write_private(self.keys_dir / "transport.key", _pem_private(tk), overwrite=True)
            _write_public(self.keys_dir / "transport.pub", (_raw_public(tk.public_key()).hex() + "\n").encode(),
                          overwrite=True)
            made.append("transport.key")
        if _write_private(self.keys_dir / "study-master.key", os.urandom(32), overwrite=overwrite):
            made.append("study-master.key")
        if _write_private(self.keys_dir / self.BOUNDARY_KEY, os.urandom(32), overwrite=False):
            made.append(self.BOUNDARY_KEY)
        return made


# --------------------------------------------------------------------------------- linkage zone
class LinkageZoneKeyRing:
    """The linkage zone's own keys: the X25519 key pair the archived encodings part of every envelope is sealed to
    (ADR 0010). Only whoever rebuilds the linkage zone from the archive opens it; the warehouse holds the public
    half. It refuses a folder that holds the warehouse's transport key or zone-boundary key: with either beside
    it, one account could rejoin both parts of the archive, or match labels to names."""

    ARCHIVE_KEY = "linkage-archive.key"
    ARCHIVE_PUB = "linkage-archive.pub"

    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)
        leaks = [n for n in ("transport.key", WarehouseKeyRing.BOUNDARY_KEY) if (self.keys_dir / n).exists()]
        if leaks:
            raise KeyError_(f"{self.keys_dir}: the linkage zone's keys folder holds the warehouse's {', '.join(leaks)}; "
                            "the linkage zone must never hold it: move it to the warehouse's keys folder")

    def create(self, *, overwrite: bool = False) -> bool:
        """The archive key pair, if missing; returns whether one was made."""
        if (self.keys_dir / self.ARCHIVE_KEY).exists() and not overwrite:
            return False
        sk = X25519PrivateKey.generate()
        _write_private(self.keys_dir / self.ARCHIVE_KEY, _pem_private(sk), overwrite=True)
        _write_public(self.keys_dir / self.ARCHIVE_PUB, (_raw_public(sk.public_key()).hex() + "\n").encode(),
                      overwrite=True)
        return True

    def archive_private_key(self) -> X25519PrivateKey:
        path = self.keys_dir / self.ARCHIVE_KEY
        key = serialization.load_pem_private_key(_read_private(path, "linkage zone archive key"), password=None)
        if not isinstance(key, X25519PrivateKey):
            raise KeyError_(f"{path}: not an X25519 private key")
        return key

    def archive_public_hex(self) -> str:
        return _raw_public(self.archive_private_key().public_key()).hex()


# ------------------------------------------------------------------------------------------ demo
def init_demo_keys(home: Home, partners: list[str] | tuple[str, ...], *, overwrite: bool = False) -> dict[str, list[str]]:
    """Every party's keys for a demo ``VPDC_HOME``, each in its own folder, made the way each party makes them.

    The custodian creates the linkage secret (``custodian/``); the warehouse its transport key pair, study
    master secret and zone-boundary key (``keys/``); the linkage zone its archive key pair (``linkage-keys/``,
    whose public half the warehouse installs); each partner its own signing key at its site (``partners/<p>/keys/``) and
    receives the linkage secret and the warehouse's public key there. The partners' public halves are
    returned for registration with the warehouse (``vpdc partners register``); nothing else crosses.

    Returns:
        ``created`` and ``kept`` file lists (relative to the home) and ``public_keys`` {partner: hex}.
    """
    created: list[str] = []
    kept: list[str] = []
    custodian = Custodian(home.custodian)
    version, made = custodian.create(overwrite=overwrite)
    (created if made else kept).append(f"custodian/linkage/{version}.key")
    warehouse = WarehouseKeyRing(home.keys)
    made_wh = warehouse.create(overwrite=overwrite)
    created += [f"keys/{f}" for f in made_wh]
    kept += [f"keys/{f}" for f in ("transport.key", "study-master.key", WarehouseKeyRing.BOUNDARY_KEY) if f not in made_wh]
    zone = LinkageZoneKeyRing(home.linkage_keys)
    (created if zone.create(overwrite=overwrite) else kept).append(f"linkage-keys/{LinkageZoneKeyRing.ARCHIVE_KEY}")
    warehouse.install_linkage_archive_key(zone.archive_public_hex())
    public_keys = {}
    for partner in partners:
        site = home.partner_keys(partner)
        public, made = generate_signing_key(site, overwrite=overwrite)
        (created if made else kept).append(f"partners/{partner}/keys/signing.key")
        public_keys[partner] = public
        for v in custodian.versions():
            if overwrite or not (site / "linkage" / f"{v}.key").is_file():
                install_linkage_secret(site, v, custodian.secret_bytes(v), transition=False)
        install_linkage_secret(site, custodian.current_version(), custodian.secret_bytes(), transition=False)
        install_transport_key(site, warehouse.transport_public_hex())
    return {"created": created, "kept": kept, "public_keys": public_keys}
