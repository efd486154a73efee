"""Signed, encrypted envelopes: how an extract travels from a partner to the landing zone.

An envelope is one file::

    b"VPDCENV1" | u32 manifest length | manifest JSON | 64-byte Ed25519 signature | ciphertext

* The manifest says what is inside (partner, extract type, period, schema version, row count, SHA-256 of
  payload and ciphertext, key ids, envelope id, created at) and is signed by the partner.
* The payload (a Parquet file of encodings and content) is encrypted with a fresh 256-bit data key in
  1 MiB AES-256-GCM chunks (the STREAM construction: the nonce carries the chunk counter and a
  last-chunk flag, so reordering, dropping or truncating chunks fails authentication). The data key is
  wrapped to the warehouse with HPKE (RFC 9180: X25519, HKDF-SHA256, AES-256-GCM) from ``cryptography``.
  Chunking lets the warehouse stream a large extract without holding it in memory.

:func:`open_envelope` verifies everything before the payload is used and refuses with an
:class:`EnvelopeRefused` that names the failed check. It never returns partially verified data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import uuid
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from envelope.keys import PartnerKeyRing, WarehouseKeyRing, _raw_public, key_id
from workspace.files import atomic_writer

__all__ = [
    "ENVELOPE_FORMAT",
    "EnvelopeRefused",
    "Manifest",
    "OpenedEnvelope",
    "StreamError",
    "check_manifest_fields",
    "decrypt_stream",
    "encrypt_stream",
    "open_envelope",
    "open_regular",
    "read_manifest",
    "read_signed_manifest",
    "verify_signed_manifest",
    "seal_envelope",
    "special_file_kind",
]

MAGIC = b"VPDCENV1"
ENVELOPE_FORMAT = "vpdc-envelope/1"
CHUNK = 1 << 20
_TAG = 16
_SIG = 64
_MAX_MANIFEST = 1 << 20
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_SIGN_CONTEXT = b"vpdc-envelope-v1\x00"

#: Every check that can refuse an envelope, in the order they run. Quarantine reasons use these names.
CHECKS = (
    "format",  # not an envelope: empty, wrong magic, unreadable manifest
    "unknown_partner",  # no registered key for the partner named in the manifest
    "partner_mismatch",  # arrived in another partner's landing folder
    "partner_key",  # signed with a key other than the partner's registered key
    "signature",  # manifest altered after signing, or signed by someone else
    "replay",  # this envelope id was already received
    "transport_key",  # encrypted to a warehouse key we do not hold
    "truncated",  # ciphertext shorter or longer than the manifest says
    "decrypt",  # ciphertext altered (authentication failed)
    "checksum",  # SHA-256 of ciphertext or payload differs from the manifest
    "row_count",  # payload rows differ from the manifest
)


class EnvelopeRefused(Exception):
    """An envelope failed a check. ``check`` is one of :data:`CHECKS`; the message names the file."""

    def __init__(self, path: Path, check: str, detail: str, manifest: dict[str, Any] | None = None):
        self.path = Path(path)
        self.check = check
        self.detail = detail
        self.manifest = manifest
        super().__init__(f"{self.path.name}: refused ({check}): {detail}")

    def reason(self) -> dict[str, Any]:
        """Machine-readable reason for quarantine (no payload content, only manifest fields)."""
        m = self.manifest or {}
        return {
            "file": self.path.name,
            "check": self.check,
            "detail": self.detail,
            "envelope_id": m.get("envelope_id"),
            "partner": m.get("partner"),
            "extract_type": m.get("extract_type"),
            "period": m.get("period"),
        }


@dataclass(frozen=True)
class Manifest:
    """The signed description of an envelope's payload."""

    envelope_id: str
    partner: str
    extract_type: str
    period: str
    schema_version: str
    row_count: int
    payload_sha256: str
    payload_bytes: int
    ciphertext_sha256: str
    ciphertext_bytes: int
    signing_key_id: str
    transport_key_id: str
    linkage_key_version: str
    created_at: str
    wrapped_key: str
    extra: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        p, k = d["payload"], d["keys"]
        return cls(
            envelope_id=str(d["envelope_id"]),
            partner=str(d["partner"]),
            extract_type=str(d["extract_type"]),
            period=str(d["period"]),
            schema_version=str(d["schema_version"]),
            row_count=int(d["row_count"]),
            payload_sha256=str(p["sha256"]),
            payload_bytes=int(p["bytes"]),
            ciphertext_sha256=str(p["ciphertext_sha256"]),
            ciphertext_bytes=int(p["ciphertext_bytes"]),
            signing_key_id=str(k["signing_key_id"]),
            transport_key_id=str(k["transport_key_id"]),
            linkage_key_version=str(k["linkage_key_version"]),
            created_at=str(d["created_at"]),
            wrapped_key=str(d["encryption"]["wrapped_key"]),
            extra=dict(d.get("extra") or {}),
        )


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamError(Exception):
    """A STREAM ciphertext failed: ``check`` is ``truncated`` or ``decrypt`` (as :data:`CHECKS` names them)."""

    def __init__(self, check: str, detail: str):
        self.check, self.detail = check, detail
        super().__init__(f"{check}: {detail}")


def encrypt_stream(src: BinaryIO, out: BinaryIO, key: bytes, aad: bytes) -> dict[str, Any]:
    """AES-256-GCM STREAM of ``src`` into ``out`` in :data:`CHUNK` chunks (the nonce carries the chunk counter and
    a last-chunk flag, so reordering, dropping or truncating chunks fails authentication). Envelopes and the
    archive's parts both use it. Returns the plaintext's and ciphertext's SHA-256 and sizes."""
    aes = AESGCM(key)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    plain_bytes = cipher_bytes = counter = 0
    chunk = src.read(CHUNK)
    while True:
        nxt = src.read(CHUNK)
        last = not nxt
        plain_hash.update(chunk)
        plain_bytes += len(chunk)
        ct = aes.encrypt(_nonce(counter, last), chunk, aad)
        cipher_hash.update(ct)
        cipher_bytes += len(ct)
        out.write(ct)
        if last:
            break
        chunk, counter = nxt, counter + 1
    return {"sha256": plain_hash.hexdigest(), "bytes": plain_bytes, "ciphertext_sha256": cipher_hash.hexdigest(),
            "ciphertext_bytes": cipher_bytes}


def decrypt_stream(src: BinaryIO, out: BinaryIO, key: bytes, aad: bytes, *,
                   expected_ciphertext_bytes: int | None = None) -> dict[str, Any]:
    """Undo :func:`encrypt_stream`, authenticating every chunk before its plaintext is written; returns the same
    hashes and sizes. Raises :class:`StreamError` (``truncated`` or ``decrypt``) on any failure."""
    aes = AESGCM(key)
    cipher_hash, plain_hash = hashlib.sha256(), hashlib.sha256()
    cipher_bytes = plain_bytes = counter = 0
    block = src.read(CHUNK + _TAG)
    while True:
        if not block:
            raise StreamError("truncated", "ciphertext ends without its final chunk")
        nxt = src.read(CHUNK + _TAG)
        last = not nxt
        cipher_hash.update(block)
        cipher_bytes += len(block)
        try:
            plain = aes.decrypt(_nonce(counter, last), block, aad)
        except InvalidTag:
            short = expected_ciphertext_bytes is not None and cipher_bytes < expected_ciphertext_bytes
            what = "truncated" if last and short else "decrypt"
            raise StreamError(what, f"chunk {counter} fails authentication (altered, reordered or cut)") from None
        plain_hash.update(plain)
        plain_bytes += len(plain)
        out.write(plain)
        if last:
            break
        block, counter = nxt, counter + 1
    return {"sha256": plain_hash.hexdigest(), "bytes": plain_bytes, "ciphertext_sha256": cipher_hash.hexdigest(),
            "ciphertext_bytes": cipher_bytes}


def _wrap_info(envelope_id: str, partner: str) -> bytes:
    return f"vpdc-envelope-v1/{partner}/{envelope_id}".encode()


def seal_envelope(
    payload: Path,
    *,
    partner: str,
    extract_type: str,
    period: str,
    schema_version: str,
    row_count: int,
    linkage_key_version: str,
    keyring: PartnerKeyRing,
    out_dir: Path,
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Path:
    """Encrypt and sign ``payload`` into ``out_dir/<partner>_<extract>_<period>_<id>.vpdc``; atomic."""
    envelope_id = uuid.uuid4().hex
    signing = keyring.signing_key()
    transport_pub = keyring.transport_public_key()
    dek = AESGCM.generate_key(bit_length=256)
    wrapped = _SUITE.encrypt(dek, transport_pub, info=_wrap_info(envelope_id, partner))
    aad = envelope_id.encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{partner}_{extract_type}_{period}_{envelope_id[:12]}.vpdc"
    body = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".sealing-", delete=False)
    try:
        with open(payload, "rb") as src, body:
            sums = encrypt_stream(src, body, dek, aad)
        manifest = {
            "format": ENVELOPE_FORMAT,
            "envelope_id": envelope_id,
            "partner": partner,
            "extract_type": extract_type,
            "period": period,
            "schema_version": schema_version,
            "row_count": int(row_count),
            "payload": {"format": "parquet", **sums, "chunk_size": CHUNK},
            "keys": {
                "signing_key_id": key_id(_raw_public(signing.public_key())),
                "transport_key_id": key_id(_raw_public(transport_pub)),
                "linkage_key_version": linkage_key_version,
            },
            "encryption": {
                "suite": "HPKE(X25519,HKDF-SHA256,AES-256-GCM) key wrap + AES-256-GCM STREAM 1MiB",
                "wrapped_key": base64.b64encode(wrapped).decode(),
            },
            "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "extra": extra or {},
        }
        mbytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        signature = signing.sign(_SIGN_CONTEXT + mbytes)
        with atomic_writer(final) as out, open(body.name, "rb") as ct_in:
            out.write(MAGIC + struct.pack(">I", len(mbytes)) + mbytes + signature)
            shutil.copyfileobj(ct_in, out, CHUNK)
        return final
    finally:
        Path(body.name).unlink(missing_ok=True)


#: Every manifest field that names something (a folder, a key, a run, a partition, a report) has a strict form,
#: checked before any use; a manifest that breaks one is not an envelope (``format``). Messages never echo values.
_FIELD_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("envelope_id", re.compile(r"[0-9a-f]{32}"), "32 lower-case hex digits"),
    ("partner", re.compile(r"[a-z][a-z0-9_]{0,39}"), "a partner id (lower-case letters, digits, _)"),
    ("extract_type", re.compile(r"[a-z][a-z0-9_]{0,39}"), "an extract name (lower-case letters, digits, _)"),
    ("period", re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])"), "a period YYYY-MM"),
    ("schema_version", re.compile(r"[a-z0-9_]+\.[a-z0-9_]+/[0-9]+"), "<partner>.<extract>/<n>"),
    ("linkage_key_version", re.compile(r"v[0-9]{1,6}"), "v1, v2, ..."),
    ("signing_key_id", re.compile(r"[0-9a-f]{16}"), "16 hex digits"),
    ("transport_key_id", re.compile(r"[0-9a-f]{16}"), "16 hex digits"),
    ("payload_sha256", re.compile(r"[0-9a-f]{64}"), "64 hex digits"),
    ("ciphertext_sha256", re.compile(r"[0-9a-f]{64}"), "64 hex digits"),
)


def check_manifest_fields(m: Manifest) -> None:
    """Raise ValueError naming the first field of ``m`` that is not of its strict form (never its value)."""
    for name, pattern, what in _FIELD_RULES:
        if not pattern.fullmatch(getattr(m, name)):
            raise ValueError(f"field {name} is not {what}")
    for name in ("row_count", "payload_bytes", "ciphertext_bytes"):
        if getattr(m, name) < 0:
            raise ValueError(f"field {name} is negative")
    try:
        created = datetime.fromisoformat(m.created_at)
    except ValueError:
        raise ValueError("field created_at is not an ISO date and time") from None
    if created.tzinfo is None:
        raise ValueError("field created_at has no time zone")


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file, never following a symlink and never blocking on a
    FIFO or device (the check is made on the open descriptor, so a file swapped in between cannot slip by).

    Raises:
        EnvelopeRefused: ``format``, naming what the path is instead.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise EnvelopeRefused(path, "format", "no such file") from None
    except OSError:
        kind = special_file_kind(path)
        raise EnvelopeRefused(path, "format", f"not a regular file ({kind or 'cannot be opened'})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise EnvelopeRefused(path, "format", f"not a regular file ({_kind(st.st_mode)})")
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISLNK, "a symbolic link: never followed"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return what
    return "a special file"


def special_file_kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (by ``lstat``: a symlink is never followed); None for a
    regular file or nothing at all."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def _read_header(path: Path, f: BinaryIO) -> tuple[dict[str, Any], bytes, bytes]:
    head = f.read(len(MAGIC) + 4)
    if len(head) == 0:
        raise EnvelopeRefused(path, "format", "file is empty (0 bytes)")
    if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
        raise EnvelopeRefused(path, "format", "not a vpdc envelope (bad magic bytes)")
    (mlen,) = struct.unpack(">I", head[len(MAGIC) :])
    if mlen > _MAX_MANIFEST:
        raise EnvelopeRefused(path, "format", f"manifest length {mlen} exceeds {_MAX_MANIFEST}")
    mbytes = f.read(mlen)
    sig = f.read(_SIG)
    if len(mbytes) != mlen or len(sig) != _SIG:
        raise EnvelopeRefused(path, "truncated", "file ends inside the manifest or signature")
    try:
        manifest = json.loads(mbytes)
        if not isinstance(manifest, dict) or manifest.get("format") != ENVELOPE_FORMAT:
            raise ValueError(f"its format is not {ENVELOPE_FORMAT}")
        check_manifest_fields(Manifest.from_dict(manifest))
    except KeyError as exc:
        raise EnvelopeRefused(path, "format", f"manifest is not valid: field {str(exc)[:40]} is missing") from None
    except (ValueError, TypeError, AttributeError) as exc:
        detail = str(exc) if str(exc).startswith(("field ", "its format")) else type(exc).__name__
        raise EnvelopeRefused(path, "format", f"manifest is not valid: {detail}") from None
    return manifest, mbytes, sig


def read_signed_manifest(path: Path) -> tuple[bytes, bytes]:
    """The manifest exactly as the partner signed it, and its signature (unverified): what the archive keeps of an
    envelope beside its split payload, so the partner's signature can still be checked later."""
    with open_regular(path) as f:
        _, mbytes, sig = _read_header(Path(path), f)
    return mbytes, sig


def verify_signed_manifest(mbytes: bytes, sig: bytes, keyring: WarehouseKeyRing) -> Manifest:
    """A manifest kept apart from its envelope, checked against its partner's registered key.

    Raises:
        ValueError: no registered key for its partner, or the signature does not verify.
    """
    m = Manifest.from_dict(json.loads(mbytes))
    pub = keyring.trusted_partner_key(m.partner)
    if pub is None:
        raise ValueError(f"partner {m.partner!r} has no registered signing key")
    try:
        pub.verify(sig, _SIGN_CONTEXT + mbytes)
    except InvalidSignature:
        raise ValueError("manifest signature does not verify with the partner's key") from None
    return m


def read_manifest(path: Path) -> Manifest:
    """The manifest of an envelope, unverified: for listing and routing only, never for trust."""
    with open_regular(path) as f:
        manifest, _, _ = _read_header(Path(path), f)
    return Manifest.from_dict(manifest)


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified envelope: the manifest and the decrypted payload in a private temporary file."""

    source: Path
    manifest: Manifest
    payload: Path


@contextmanager
def open_envelope(
    path: Path,
    keyring: WarehouseKeyRing,
    *,
    seen_envelope_ids: Container[str] = (),
    expected_partner: str | None = None,
    workdir: Path | None = None,
) -> Iterator[OpenedEnvelope]:
    """Verify and decrypt an envelope; yield it; delete the decrypted payload on exit.

    Checks, in order: format; the partner is registered (and is the partner whose folder it came
    from); the manifest's signing key is the partner's registered key and the signature verifies;
    the envelope id was never seen (replay); it is encrypted to our transport key; the ciphertext is
    complete, authentic and matches its SHA-256; the payload matches its SHA-256 and row count.

    Raises:
        EnvelopeRefused: naming the failed check; nothing is yielded and no plaintext is left behind.
    """
    path = Path(path)
    with open_regular(path) as f:
        manifest_d, mbytes, sig = _read_header(path, f)
        m = Manifest.from_dict(manifest_d)

        def refuse(check: str, detail: str) -> EnvelopeRefused:
            return EnvelopeRefused(path, check, detail, manifest_d)

        pub = keyring.trusted_partner_key(m.partner)
        if pub is None:
            raise refuse("unknown_partner", f"partner {m.partner!r} has no registered signing key")
        if expected_partner is not None and m.partner != expected_partner:
            raise refuse("partner_mismatch", f"manifest says partner {m.partner!r}, landed under {expected_partner!r}")
        registered_id = key_id(_raw_public(pub))
        if m.signing_key_id != registered_id:
            raise refuse(
                "partner_key",
                f"signed with key {m.signing_key_id}, but {m.partner!r}'s registered key is {registered_id}",
            )
        try:
            pub.verify(sig, _SIGN_CONTEXT + mbytes)
        except InvalidSignature:
            raise refuse("signature", "manifest signature does not verify with the partner's key") from None
        if m.envelope_id in seen_envelope_ids:
            raise refuse("replay", f"envelope {m.envelope_id} was already received")
        transport = keyring.transport_private_key()
        ours = key_id(_raw_public(transport.public_key()))
        if m.transport_key_id != ours:
            raise refuse("transport_key", f"encrypted to key {m.transport_key_id}, warehouse key is {ours}")
        try:
            dek = _SUITE.decrypt(base64.b64decode(m.wrapped_key), transport, info=_wrap_info(m.envelope_id, m.partner))
        except (InvalidTag, ValueError):
            raise refuse("decrypt", "data key cannot be unwrapped with the warehouse key") from None

        aad = m.envelope_id.encode()
        tmpdir = Path(tempfile.mkdtemp(prefix="vpdc-open-", dir=workdir))  # mkdtemp: mode 0700
        out_path = tmpdir / "payload.parquet"
        try:
            with open(out_path, "wb") as out:
                try:
                    sums = decrypt_stream(f, out, dek, aad, expected_ciphertext_bytes=m.ciphertext_bytes)
                except StreamError as exc:
                    raise refuse(exc.check, exc.detail) from None
            cipher_bytes = sums["ciphertext_bytes"]
            if cipher_bytes != m.ciphertext_bytes:
                raise refuse("truncated", f"ciphertext is {cipher_bytes} bytes, manifest says {m.ciphertext_bytes}")
            if sums["ciphertext_sha256"] != m.ciphertext_sha256:
                raise refuse("checksum", "ciphertext SHA-256 differs from the manifest")
            if sums["sha256"] != m.payload_sha256:
                raise refuse("checksum", "payload SHA-256 differs from the manifest")
            rows = _parquet_rows(out_path)
            if rows != m.row_count:
                raise refuse("row_count", f"payload has {rows} rows, manifest says {m.row_count}")
            yield OpenedEnvelope(path, m, out_path)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
