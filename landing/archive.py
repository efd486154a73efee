"""The archive keeps each loaded envelope as the two zones' parts, each sealed to its own zone's key.

An envelope carries encodings and content together, encrypted to the warehouse's transport key. Archived whole,
the transport key plus ``archive/`` would undo the zone split: whoever holds the warehouse's key could rejoin
every record's identifier encodings with its content. So ingestion archives what it split (ADR 0010)::

    archive/<partner>/<envelope file name>/
        manifest.json   the partner's signed manifest (exact bytes and signature), the parts' sizes and SHA-256
        linkage.part    the linkage zone's rows (boundary labels + encodings), sealed to the linkage zone's
                        archive key (``LinkageZoneKeyRing``; the warehouse holds only its public half)
        content.part    the analytics zone's rows (record id + content), sealed to the warehouse's transport key

A part is ``b"VPDCPRT1" | u32 header length | header JSON | AES-256-GCM STREAM`` (the envelope's own chunked
construction, :func:`envelope.format.encrypt_stream`) under a fresh data key wrapped with HPKE to the part's
recipient; the HPKE info and the AEAD data name the envelope and the part, so parts cannot be swapped between
entries or between zones. The linkage part's record ids are the zone boundary's labels: even the two zones'
keys together cannot join the parts without the boundary key.

Replay: the linkage zone rebuilds itself from ``linkage.part`` with its own key, the warehouse its content
from ``content.part`` with its own (:func:`open_part`, then :func:`landing.load.load_payload`). The original
envelope is removed once its parts are written and its load is committed; its signed manifest stays.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from envelope.format import Manifest, StreamError, decrypt_stream, encrypt_stream, read_signed_manifest
from envelope.keys import key_id
from workspace.files import atomic_write, private_dir

__all__ = ["ARCHIVE_FORMAT", "ArchiveError", "PARTS", "archive_destination", "entry_manifest", "is_entry",
           "open_part", "reload_entry", "signed_manifest", "write_entry"]

ARCHIVE_FORMAT = "vpdc-archive/1"
PARTS = ("linkage", "content")
_MAGIC = b"VPDCPRT1"
_MAX_HEADER = 1 << 16
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_MANIFEST = "manifest.json"


class ArchiveError(Exception):
    """An archive entry or part is missing, altered, or cannot be opened with the key given; the message says
    which and why."""


def _info(envelope_id: str, part: str) -> bytes:
    return f"vpdc-archive-v1/{envelope_id}/{part}".encode()


def _public_id(key: X25519PublicKey) -> str:
    return key_id(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def is_entry(path: Path) -> bool:
    """True for an archive entry (a folder with its manifest), not for an envelope archived whole before ADR 0010."""
    return Path(path).is_dir() and not Path(path).is_symlink() and (Path(path) / _MANIFEST).is_file()


def _entry_json(entry: Path) -> dict[str, Any]:
    try:
        d = json.loads((Path(entry) / _MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{entry}: not an archive entry ({type(exc).__name__})") from None
    if d.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{entry}: not a {ARCHIVE_FORMAT} entry")
    return d


def entry_manifest(entry: Path) -> Manifest:
    """The envelope manifest an archive entry keeps (as signed by the partner; verify it with
    :func:`envelope.format.verify_signed_manifest` and :func:`signed_manifest`)."""
    return Manifest.from_dict(json.loads(signed_manifest(entry)[0]))


def signed_manifest(entry: Path) -> tuple[bytes, bytes]:
    """The manifest bytes and the partner's signature of an archive entry."""
    d = _entry_json(entry)["envelope"]
    return base64.b64decode(d["manifest"]), base64.b64decode(d["signature"])


def archive_destination(folder: Path, name: str, envelope_id: str) -> Path:
    """Where an envelope's entry goes: ``folder/name``, or the entry a crashed attempt at the same envelope left
    there, or a free name beside it (nothing archived is ever overwritten by another envelope)."""
    dest, n = Path(folder) / name, 1
    stem, suffix = Path(name).stem, Path(name).suffix
    while os.path.lexists(dest):
        if is_entry(dest) and entry_manifest(dest).envelope_id == envelope_id:
            return dest
        dest, n = Path(folder) / f"{stem}.{n}{suffix}", n + 1
    return dest


def _seal_part(plain: Path, out: Path, recipient: X25519PublicKey, *, envelope_id: str, part: str) -> dict[str, Any]:
    dek = AESGCM.generate_key(bit_length=256)
    header = {"format": ARCHIVE_FORMAT, "envelope_id": envelope_id, "part": part,
              "recipient_key_id": _public_id(recipient),
              "wrapped_key": base64.b64encode(_SUITE.encrypt(dek, recipient, info=_info(envelope_id, part))).decode()}
    hbytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    with open(plain, "rb") as src, open(out, "xb") as dst:
        dst.write(_MAGIC + struct.pack(">I", len(hbytes)) + hbytes)
        sums = encrypt_stream(src, dst, dek, _info(envelope_id, part))
        dst.flush()
        os.fsync(dst.fileno())
    return {"recipient_key_id": header["recipient_key_id"], "sha256": sums["sha256"], "bytes": sums["bytes"]}


def write_entry(dest: Path, *, envelope: Path, envelope_id: str, parts: dict[str, Path | None],
                recipients: dict[str, X25519PublicKey], rows: int, now: datetime) -> Path:
    """Write an envelope's archive entry at ``dest`` whole or not at all: each part sealed to its recipient, with
    the envelope's signed manifest. An entry a crashed attempt left for the same envelope is replaced.

    Args:
        dest: from :func:`archive_destination`.
        envelope: the envelope file (its signed manifest is kept; its payload is not).
        parts: ``linkage`` (None for an extract without encodings) and ``content`` Parquet files.
        recipients: the public key each part is sealed to.
        rows: rows in each part (the manifest's row count).
    """
    mbytes, sig = read_signed_manifest(envelope)
    folder = private_dir(Path(dest).parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{Path(dest).name}.partial-", dir=folder))
    try:
        sealed = {}
        for part in PARTS:
            if parts.get(part) is not None:
                sealed[part] = _seal_part(parts[part], tmp / f"{part}.part", recipients[part],
                                          envelope_id=envelope_id, part=part) | {"rows": rows}
        atomic_write(tmp / _MANIFEST, json.dumps(
            {"format": ARCHIVE_FORMAT, "envelope_id": envelope_id, "archived_at": now.isoformat(timespec="seconds"),
             "envelope": {"manifest": base64.b64encode(mbytes).decode(), "signature": base64.b64encode(sig).decode()},
             "parts": sealed}, indent=2))
        if os.path.lexists(dest):  # only ever our own crashed attempt (archive_destination)
            old = Path(folder) / f".{Path(dest).name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Path(dest)


@contextmanager
def open_part(entry: Path, part: str, private_key: X25519PrivateKey, *, workdir: Path | None = None) -> Iterator[Path]:
    """Decrypt one part of an archive entry to a private temporary Parquet file; yield it; remove it on exit.

    Only the part's own zone can: the linkage part opens with the linkage zone's archive key, the content part
    with the warehouse's transport key.

    Raises:
        ArchiveError: no such part, a key that is not its recipient, or a part altered, cut or swapped.
    """
    entry = Path(entry)
    if part not in PARTS:
        raise ArchiveError(f"{part!r}: no such part (expected one of {', '.join(PARTS)})")
    d = _entry_json(entry)
    expected = d["parts"].get(part)
    path = entry / f"{part}.part"
    if expected is None or not path.is_file():
        raise ArchiveError(f"{entry.name}: has no {part} part")
    with open(path, "rb") as f:
        head = f.read(len(_MAGIC) + 4)
        if len(head) < len(_MAGIC) + 4 or head[: len(_MAGIC)] != _MAGIC:
            raise ArchiveError(f"{path}: not an archive part")
        (hlen,) = struct.unpack(">I", head[len(_MAGIC):])
        if hlen > _MAX_HEADER:
            raise ArchiveError(f"{path}: header length {hlen} exceeds {_MAX_HEADER}")
        try:
            header = json.loads(f.read(hlen))
        except ValueError:
            raise ArchiveError(f"{path}: header is not valid") from None
        if header.get("envelope_id") != d["envelope_id"] or header.get("part") != part:
            raise ArchiveError(f"{path}: belongs to another entry or part")
        ours = _public_id(private_key.public_key())
        if header.get("recipient_key_id") != ours:
            raise ArchiveError(f"{entry.name}: the {part} part is sealed to key {header.get('recipient_key_id')}, "
                               f"not to this key ({ours}): only its own zone can open it")
        info = _info(d["envelope_id"], part)
        try:
            dek = _SUITE.decrypt(base64.b64decode(header["wrapped_key"]), private_key, info=info)
        except (InvalidTag, ValueError, KeyError):
            raise ArchiveError(f"{entry.name}: the {part} part's data key cannot be unwrapped with this key") from None
        tmpdir = Path(tempfile.mkdtemp(prefix="vpdc-archive-", dir=workdir))  # mode 0700
        out_path = tmpdir / f"{part}.parquet"
        try:
            with open(out_path, "wb") as out:
                try:
                    sums = decrypt_stream(f, out, dek, info)
                except StreamError as exc:
                    raise ArchiveError(f"{entry.name}: the {part} part is {exc.check}: {exc.detail}") from None
            if sums["sha256"] != expected["sha256"]:
                raise ArchiveError(f"{entry.name}: the {part} part's SHA-256 differs from the entry's manifest")
            yield out_path
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def reload_entry(entry: Path, *, linkage_key: X25519PrivateKey, content_key: X25519PrivateKey, linkage_db: Path,
                 warehouse_db: Path, boundary: Any, now: datetime, workdir: Path | None = None) -> Any:
    """Load one archived envelope's rows into both zones again (rebuilding lost zone files): each part is opened
    with its own zone's key, so the linkage zone and the warehouse act together, and neither part is ever
    rejoined with the other. Idempotent, as every load is (a load replaces its own rows).

    Returns:
        the :class:`landing.load.LoadResult`.
    """
    from landing.load import SplitPayload, load_payload

    m = entry_manifest(entry)
    has_linkage = "linkage" in _entry_json(entry)["parts"]
    with open_part(entry, "content", content_key, workdir=workdir) as content:
        if not has_linkage:
            return load_payload(SplitPayload(None, content, m.row_count), m, linkage_db=linkage_db,
                                warehouse_db=warehouse_db, now=now, boundary=boundary)
        with open_part(entry, "linkage", linkage_key, workdir=workdir) as linkage:
            return load_payload(SplitPayload(linkage, content, m.row_count), m, linkage_db=linkage_db,
                                warehouse_db=warehouse_db, now=now, boundary=boundary)
