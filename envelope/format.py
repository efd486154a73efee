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
import shutil
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
    "open_envelope",
    "read_manifest",
    "seal_envelope",
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
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
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
    aes = AESGCM(dek)
    aad = envelope_id.encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{partner}_{extract_type}_{period}_{envelope_id[:12]}.vpdc"
    body = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".sealing-", delete=False)
    try:
        plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
        plain_bytes = cipher_bytes = 0
        with open(payload, "rb") as src, body:
            counter = 0
            chunk = src.read(CHUNK)
            while True:
                nxt = src.read(CHUNK)
                last = not nxt
                plain_hash.update(chunk)
                plain_bytes += len(chunk)
                ct = aes.encrypt(_nonce(counter, last), chunk, aad)
                cipher_hash.update(ct)
                cipher_bytes += len(ct)
                body.write(ct)
                if last:
                    break
                chunk, counter = nxt, counter + 1
        manifest = {
            "format": ENVELOPE_FORMAT,
            "envelope_id": envelope_id,
            "partner": partner,
            "extract_type": extract_type,
            "period": period,
            "schema_version": schema_version,
            "row_count": int(row_count),
            "payload": {
                "format": "parquet",
                "sha256": plain_hash.hexdigest(),
                "bytes": plain_bytes,
                "ciphertext_sha256": cipher_hash.hexdigest(),
                "ciphertext_bytes": cipher_bytes,
                "chunk_size": CHUNK,
            },
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
        if manifest.get("format") != ENVELOPE_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r} is not {ENVELOPE_FORMAT}")
        Manifest.from_dict(manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeRefused(path, "format", f"manifest is not valid: {exc}") from None
    return manifest, mbytes, sig


def read_manifest(path: Path) -> Manifest:
    """The manifest of an envelope, unverified: for listing and routing only, never for trust."""
    with open(path, "rb") as f:
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
    if not path.is_file():
        raise EnvelopeRefused(path, "format", "no such file")
    with open(path, "rb") as f:
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

        aes, aad = AESGCM(dek), m.envelope_id.encode()
        tmpdir = Path(tempfile.mkdtemp(prefix="vpdc-open-", dir=workdir))  # mkdtemp: mode 0700
        out_path = tmpdir / "payload.parquet"
        try:
            cipher_hash, plain_hash = hashlib.sha256(), hashlib.sha256()
            cipher_bytes = 0
            with open(out_path, "wb") as out:
                counter = 0
                block = f.read(CHUNK + _TAG)
                while True:
                    if not block:
                        raise refuse("truncated", "ciphertext ends without its final chunk")
                    nxt = f.read(CHUNK + _TAG)
                    last = not nxt
                    cipher_hash.update(block)
                    cipher_bytes += len(block)
                    try:
                        plain = aes.decrypt(_nonce(counter, last), block, aad)
                    except InvalidTag:
                        what = "truncated" if last and cipher_bytes < m.ciphertext_bytes else "decrypt"
                        raise refuse(what, f"chunk {counter} fails authentication (altered, reordered or cut)") from None
                    plain_hash.update(plain)
                    out.write(plain)
                    if last:
                        break
                    block, counter = nxt, counter + 1
            if cipher_bytes != m.ciphertext_bytes:
                raise refuse("truncated", f"ciphertext is {cipher_bytes} bytes, manifest says {m.ciphertext_bytes}")
            if cipher_hash.hexdigest() != m.ciphertext_sha256:
                raise refuse("checksum", "ciphertext SHA-256 differs from the manifest")
            if plain_hash.hexdigest() != m.payload_sha256:
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
