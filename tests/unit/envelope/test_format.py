import json
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envelope.format import MAGIC, EnvelopeRefused, open_envelope, read_manifest, seal_envelope
from envelope.keys import WarehouseKeyRing
from tests.conftest import make_keys


def payload(tmp_path: Path, rows: int = 1000) -> Path:
    p = tmp_path / "payload.parquet"
    pq.write_table(pa.table({"source_record_id": [f"r{i}" for i in range(rows)],
                             "noise": [os.urandom(200) for _ in range(rows)]}), p)
    return p


def seal(keyring, tmp_path, rows=1000, partner="police", row_count=None, out="landing"):
    p = payload(tmp_path, rows)
    return seal_envelope(p, partner=partner, extract_type="persons", period="2025-11",
                         schema_version="police.persons/1", row_count=rows if row_count is None else row_count,
                         linkage_key_version="v1", keyring=keyring.partner(partner), out_dir=tmp_path / out)


def refused(path, keyring, **kw) -> EnvelopeRefused:
    ring = keyring if isinstance(keyring, WarehouseKeyRing) else keyring.warehouse
    with pytest.raises(EnvelopeRefused) as exc, open_envelope(path, ring, **kw):
        pass
    return exc.value


def header_len(path: Path) -> int:
    data = path.read_bytes()
    (mlen,) = struct.unpack(">I", data[len(MAGIC): len(MAGIC) + 4])
    return len(MAGIC) + 4 + mlen + 64


def test_round_trip_returns_the_exact_payload(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    src = (tmp_path / "payload.parquet").read_bytes()
    with open_envelope(env, keyring.warehouse, expected_partner="police") as opened:
        assert opened.payload.read_bytes() == src
        assert opened.manifest.row_count == 1000 and opened.manifest.partner == "police"
        tmp = opened.payload
    assert not tmp.exists()  # decrypted payload is removed on exit


def test_large_payload_spans_many_chunks(tmp_path, keyring):
    env = seal(keyring, tmp_path, rows=20_000)  # ~4 MB → several 1 MiB chunks
    with open_envelope(env, keyring.warehouse) as opened:
        assert pq.ParquetFile(opened.payload).metadata.num_rows == 20_000


def test_ciphertext_does_not_contain_payload_bytes(tmp_path, keyring):
    env = seal(keyring, tmp_path, rows=50)
    src, sealed = (tmp_path / "payload.parquet").read_bytes(), env.read_bytes()
    # 32-byte windows of the payload across its length (long enough that chance cannot put one in ciphertext)
    windows = [src[i : i + 32] for i in range(0, len(src) - 32, max(1, len(src) // 64))]
    assert len(windows) >= 32
    assert not [w for w in windows if w in sealed]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampered_ciphertext_is_refused(tmp_path, keyring, where):
    env = seal(keyring, tmp_path, rows=20_000)
    data = bytearray(env.read_bytes())
    start = header_len(env)
    pos = {"first": start + 5, "middle": (start + len(data)) // 2, "last": len(data) - 3}[where]
    data[pos] ^= 0x01
    env.write_bytes(bytes(data))
    assert refused(env, keyring).check == "decrypt"


def test_tampered_manifest_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    data = env.read_bytes().replace(b'"row_count":1000', b'"row_count":1001')
    env.write_bytes(data)
    assert refused(env, keyring).check == "signature"


def test_truncated_envelope_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path, rows=20_000)
    data = env.read_bytes()
    cut = header_len(env) + (1 << 20) + 16  # exactly at a chunk boundary: only the final-chunk flag tells
    env.write_bytes(data[:cut])
    assert refused(env, keyring).check == "truncated"
    env.write_bytes(data[: len(data) - 100])
    assert refused(env, keyring).check in {"truncated", "decrypt"}
    env.write_bytes(data[:30])
    assert refused(env, keyring).check == "truncated"


def test_appended_bytes_are_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    env.write_bytes(env.read_bytes() + b"\x00" * 40)
    assert refused(env, keyring).check in {"decrypt", "truncated"}


def test_replayed_envelope_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    eid = read_manifest(env).envelope_id
    err = refused(env, keyring, seen_envelope_ids={eid})
    assert err.check == "replay" and eid in str(err)


def test_envelope_signed_by_another_partner_is_refused(tmp_path, keyring):
    # county signs an envelope claiming to be police: swap police's trusted key for county's
    env = seal(keyring, tmp_path, partner="county")
    data = env.read_bytes()
    forged = data.replace(b'"partner":"county"', b'"partner":"police"')
    env.write_bytes(forged)
    err = refused(env, keyring)
    assert err.check == "partner_key"


def test_wrong_registered_key_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    other = make_keys(tmp_path / "other-home")
    keyring.warehouse.register_partner_key("police", other.partner("police").signing_public_hex())
    assert refused(env, keyring).check == "partner_key"


def test_unknown_partner_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    (keyring.home.keys / "partners" / "police.pub").unlink()
    assert refused(env, keyring).check == "unknown_partner"


def test_partner_folder_mismatch_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    assert refused(env, keyring, expected_partner="schools").check == "partner_mismatch"


def test_envelope_for_another_warehouse_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    other = make_keys(tmp_path / "other-home")
    for f in (keyring.home.keys / "partners").iterdir():  # the same registered partners, another transport key
        (other.home.keys / "partners" / f.name).write_bytes(f.read_bytes())
    assert refused(env, other.warehouse).check == "transport_key"


def test_row_count_mismatch_is_refused(tmp_path, keyring):
    env = seal(keyring, tmp_path, rows=10, row_count=11)
    err = refused(env, keyring)
    assert err.check == "row_count" and "10 rows" in str(err)


@pytest.mark.parametrize("content", [b"", b"hello world, not an envelope", MAGIC + b"\x00\x00\x00\x05{bad}"])
def test_non_envelopes_are_refused_as_format(tmp_path, keyring, content):
    f = tmp_path / "x.vpdc"
    f.write_bytes(content)
    err = refused(f, keyring)
    assert err.check in {"format", "truncated"}
    assert err.path.name == "x.vpdc"


def test_refusal_reason_is_machine_readable_and_value_free(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    reason = refused(env, keyring, seen_envelope_ids={read_manifest(env).envelope_id}).reason()
    assert reason["check"] == "replay" and reason["partner"] == "police"
    json.dumps(reason)


def test_seal_is_atomic_and_leaves_no_temp_files(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    assert [p.name for p in env.parent.iterdir()] == [env.name]


@pytest.mark.parametrize(("field", "value"), [("period", "2025-13"), ("period", "../../x"), ("period", "2025/11"),
                                              ("partner", "../../landing/evil"), ("extract_type", "a/b"),
                                              ("envelope_id", "../x"), ("created_at", "yesterday")])
def test_manifest_fields_of_the_wrong_form_are_refused_before_any_use(tmp_path, keyring, field, value):
    env = seal(keyring, tmp_path)
    data = env.read_bytes()
    (mlen,) = struct.unpack(">I", data[len(MAGIC): len(MAGIC) + 4])
    start = len(MAGIC) + 4
    manifest = json.loads(data[start: start + mlen])
    manifest[field] = value
    mbytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    env.write_bytes(MAGIC + struct.pack(">I", len(mbytes)) + mbytes + data[start + mlen:])
    with pytest.raises(EnvelopeRefused) as exc:
        read_manifest(env)
    assert exc.value.check == "format" and field in exc.value.detail and value not in exc.value.detail
    assert refused(env, keyring).check == "format"


def test_a_fifo_or_symlink_is_refused_without_being_opened(tmp_path, keyring):
    env = seal(keyring, tmp_path)
    os.mkfifo(tmp_path / "pipe.vpdc")  # opening it for reading would block forever
    os.symlink(env, tmp_path / "link.vpdc")  # even a link to a valid envelope is not followed
    for name in ("pipe.vpdc", "link.vpdc"):
        e = refused(tmp_path / name, keyring)
        assert e.check == "format" and "not a regular file" in e.detail
