"""Issue 12's attacks as tests: plaintext disguised in validly signed envelopes (built with the kit's own code and
keys), hostile files in landing/, hostile manifest fields. Each is refused or ignored with a reason, never
crashes, hangs or moves a file outside its folder, and nothing of a refused envelope reaches either zone."""

import json
import os
import shutil
import struct

import duckdb
import pytest

from envelope.format import MAGIC, read_manifest
from envelope.keys import PartnerKeyRing, WarehouseKeyRing, generate_signing_key
from landing.archive import entry_manifest
from landing.ingest import IngestError, ingest_envelope
from landing.quarantine import QuarantineError, list_quarantine, quarantine_reason, return_to_landing
from orchestration.resources import GovernanceRegistry
from orchestration.runner import run_landing_sensor_once
from tests.attacks import DISGUISES, SHARES, payload_of, plant, reseal
from tests.integration.conftest import envelopes
from workspace import Home

pytestmark = pytest.mark.integration


def keep_only(home: Home, keep: list) -> None:
    held = home.root / "held"
    for f in home.landing().glob("*/*.vpdc"):
        if f not in keep:
            (held / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), held / f.parent.name / f.name)


def held(home: Home, partner: str, extract: str):
    return [f for f in sorted((home.root / "held" / partner).glob("*.vpdc")) if read_manifest(f).extract_type == extract]


def audit_entries(home: Home) -> list[tuple[str, str, dict]]:
    from governance.registry.db import Registry, sqlite_url
    from governance.registry.models import AuditEntry

    if not home.registry_db.exists():
        return []
    with Registry(sqlite_url(home.registry_db)).read() as s:
        return [(e.action, e.subject, e.detail) for e in s.query(AuditEntry).order_by(AuditEntry.seq)]


def _load_ids(db, schema: str) -> set[str]:
    if not db.exists():
        return set()
    with duckdb.connect(str(db), read_only=True) as con:
        if not con.execute("select count(*) from information_schema.tables where table_schema = ? and "
                           "table_name = 'loads'", [schema]).fetchone()[0]:
            return set()
        return {r[0] for r in con.execute(f"select load_id from {schema}.loads").fetchall()}


def loads(home: Home) -> set[str]:
    return _load_ids(home.warehouse_db, "raw")


def linkage_loads(home: Home) -> set[str]:
    return _load_ids(home.linkage_db, "main")


# ----------------------------------------------------------------------------------------------- plaintext
@pytest.mark.parametrize("disguise", DISGUISES, ids=lambda d: d.name)
def test_every_plaintext_disguise_is_quarantined_at_every_share_with_the_check_named(home, disguise):
    source = envelopes(home, disguise.partner, disguise.extract)[0]
    keep_only(home, [])
    table = payload_of(home, home.root / "held" / disguise.partner / source.name)
    audit = GovernanceRegistry(home=str(home.root)).audit_ingest
    for label, share in SHARES.items():
        bad, planted = plant(table, disguise.column, share, disguise.value)
        env = reseal(home, bad, home.root / "held" / disguise.partner / source.name, name=label)
        eid = read_manifest(env).envelope_id
        out = ingest_envelope(env, home, WarehouseKeyRing(home.keys), audit=audit)
        assert (out.status, out.check) == ("quarantined", "plaintext_identifier"), (label, out.check, out.detail)
        assert disguise.column in out.detail and "rule " in out.detail
        if share < 1:  # the count is of rows, never more than were planted (a value may be caught twice: kinds)
            assert f" {planted:,} of " in out.detail or f"{planted:,} of" in out.detail, out.detail
        assert eid not in loads(home) and eid not in linkage_loads(home)
        refused = [d for a, s, d in audit_entries(home) if a == "refused.ingest" and d.get("envelope_id") == eid]
        assert len(refused) == 1 and refused[0]["check"] == "plaintext_identifier"
        reason = quarantine_reason(home.quarantine / out.file)
        assert reason["arrived_in"] == disguise.partner and reason["check"] == "plaintext_identifier"
        # stage timings to the millisecond: a float's 16 digits once held a planted date by chance
        assert reason["seconds"] and all(round(v, 3) == v for v in reason["seconds"].values()), reason["seconds"]
    # never a planted value in what was written about it
    written = " ".join(p.read_text() for p in home.quarantine.glob("*.json")) + json.dumps(audit_entries(home))
    for i in range(table.num_rows):
        v = disguise.value(i)
        if isinstance(v, str) and len(v) >= 6:
            assert v not in written


def test_honest_demo_envelopes_are_never_refused_by_the_new_checks(home):
    audit = GovernanceRegistry(home=str(home.root)).audit_ingest
    outcomes = [ingest_envelope(env, home, WarehouseKeyRing(home.keys), audit=audit) for env in envelopes(home)]
    assert [(o.file, o.check, o.detail) for o in outcomes if o.status != "loaded"] == []


# ----------------------------------------------------------------------------------------- hostile files
def test_a_dangling_symlink_a_fifo_and_a_directory_do_not_stop_a_valid_envelope(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    folder = home.landing("police")
    os.symlink(home.root / "no-such-target", folder / "dangling.vpdc")
    os.mkfifo(folder / "pipe.vpdc")
    (folder / "dir.vpdc").mkdir()
    os.symlink(home.landing("county"), home.landing() / "linked")  # a folder that is no partner's
    runs = run_landing_sensor_once(home)
    assert entry_manifest(home.archive / "police" / env.name).envelope_id in loads(home)
    refused = {r["file"]: r for r in list_quarantine(home)}
    assert set(refused) == {"dangling.vpdc", "pipe.vpdc", "dir.vpdc"}
    assert "symbolic link" in refused["dangling.vpdc"]["detail"] and "FIFO" in refused["pipe.vpdc"]["detail"]
    assert "directory" in refused["dir.vpdc"]["detail"]
    assert os.path.islink(home.quarantine / "dangling.vpdc")  # the link itself was moved, never followed
    assert (home.landing() / "linked").is_symlink()  # ignored, left where it is
    assert len(runs) == 4 and not any(r.error and "Traceback" in r.error for r in runs)


def test_a_symlinked_partner_folder_is_never_followed(home):
    env = envelopes(home, "county", "clients")[0]
    keep_only(home, [env])
    real = home.root / "elsewhere"
    shutil.move(str(home.landing("county")), real)
    os.symlink(real, home.landing("county"))
    assert run_landing_sensor_once(home) == []
    assert (real / env.name).exists() and loads(home) == set()


def test_a_valid_envelope_in_another_partners_folder_is_refused(home):
    env = envelopes(home, "county", "clients")[0]
    keep_only(home, [env])
    moved = home.landing("police") / env.name
    shutil.move(str(env), moved)
    runs = run_landing_sensor_once(home)
    assert [r.job for r in runs] == ["triage_job"] and loads(home) == set()
    assert quarantine_reason(home.quarantine / env.name)["check"] == "partner_mismatch"
    with pytest.raises(IngestError):  # a file outside any partner's folder is not ingested, nor moved
        ingest_envelope(home.root / "held" / "x.vpdc", home, WarehouseKeyRing(home.keys))


def test_a_truncated_copy_under_another_name_never_blocks_the_genuine_envelope(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    genuine = home.root / "genuine.vpdc"
    shutil.move(str(env), genuine)
    data = genuine.read_bytes()
    (home.landing("police") / "aaa-copy.vpdc").write_bytes(data[: len(data) // 2])
    run_landing_sensor_once(home)
    assert quarantine_reason(home.quarantine / "aaa-copy.vpdc")["check"] == "truncated"
    shutil.move(str(genuine), env)
    runs = run_landing_sensor_once(home)
    assert [r.success for r in runs] == [True] and entry_manifest(home.archive / "police" / env.name).envelope_id in loads(home)


def _resign(home: Home, env, edit: dict, *, keys=None) -> None:
    """Edit manifest fields of ``env`` and sign again with the partner's own key (a partner-built attack)."""
    raw = env.read_bytes()
    (mlen,) = struct.unpack(">I", raw[len(MAGIC): len(MAGIC) + 4])
    start = len(MAGIC) + 4
    manifest = json.loads(raw[start: start + mlen])
    manifest.update(edit)
    mbytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    sk = (keys or PartnerKeyRing(home.partner_keys(manifest["partner"] if "partner" not in edit else "police"))).signing_key()
    sig = sk.sign(b"vpdc-envelope-v1\x00" + mbytes)
    env.write_bytes(MAGIC + struct.pack(">I", len(mbytes)) + mbytes + sig + raw[start + mlen + 64:])


@pytest.mark.parametrize("period", ["2025-13", "x", "2025/11", "../../x"])
def test_invalid_periods_are_refused_before_any_use(home, period):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    _resign(home, env, {"period": period})
    runs = run_landing_sensor_once(home)
    assert [r.job for r in runs] == ["triage_job"] and loads(home) == set() and linkage_loads(home) == set()
    reason = quarantine_reason(home.quarantine / env.name)
    assert reason["check"] == "format" and "period" in reason["detail"] and period not in reason["detail"]


def test_retry_returns_a_file_only_to_the_folder_it_arrived_in(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    data = bytearray(env.read_bytes())
    start = len(MAGIC) + 4
    text = data[start:].replace(b'"partner":"police"', b'"partner":"../../../.."', 1)
    env.write_bytes(bytes(data[:start]) + bytes(text))  # unsigned, and claiming another folder
    run_landing_sensor_once(home)
    [row] = list_quarantine(home)
    dest = return_to_landing(home, row["file"])
    assert dest.parent == home.landing("police") and dest.resolve().is_relative_to(home.root.resolve())
    # a reason file edited to point elsewhere moves nothing
    run_landing_sensor_once(home)
    [row] = [r for r in list_quarantine(home) if r["file"].endswith(".vpdc")]
    reason_file = home.quarantine / (row["file"] + ".reason.json")
    reason = json.loads(reason_file.read_text())
    reason["arrived_in"] = "../../../.."
    reason_file.write_text(json.dumps(reason))
    with pytest.raises(QuarantineError):
        return_to_landing(home, row["file"])
    assert (home.quarantine / row["file"]).exists()


def test_quarantine_list_and_show_survive_markup_and_junk_in_reason_fields(home):
    from typer.testing import CliRunner

    from vpdc.cli import app

    home.quarantine.mkdir(parents=True, exist_ok=True)
    (home.quarantine / "x.vpdc").write_bytes(b"junk")
    (home.quarantine / "x.vpdc.reason.json").write_text(json.dumps(
        {"partner": "[/]", "period": "[bold]", "check": {"a": "[/]"}, "detail": "[/]" * 40}))
    (home.quarantine / "y.vpdc").write_bytes(b"junk")  # no reason at all
    os.symlink("/etc/passwd", home.quarantine / "z.vpdc")
    for args in (["quarantine", "list"], ["quarantine", "list", "--json"], ["quarantine", "show", "x.vpdc"],
                 ["quarantine", "retry", "y.vpdc"], ["quarantine", "retry", "z.vpdc"]):
        res = CliRunner().invoke(app, [*args, "--home", str(home.root)])
        assert "Traceback" not in res.output and not isinstance(res.exception, Exception) or \
            isinstance(res.exception, SystemExit), (args, res.output)


def test_envelope_verify_uses_only_registered_keys(home, tmp_path):
    from typer.testing import CliRunner

    from vpdc.cli import app

    env = envelopes(home, "police", "persons")[0]
    attacker = tmp_path / "attacker"
    public, _ = generate_signing_key(attacker)
    (home.landing() / "evil.pub").write_text(public + "\n")  # the key the attacker hopes verify will trust
    for partner in ("../../landing/evil", "evil"):
        forged = tmp_path / f"forged-{len(partner)}.vpdc"
        shutil.copy(env, forged)
        _resign(home, forged, {"partner": partner}, keys=PartnerKeyRing(attacker))
        res = CliRunner().invoke(app, ["envelope", "verify", str(forged), "--home", str(home.root), "--json"])
        assert res.exit_code == 1 and json.loads(res.stdout)["verified"] is False, res.output
        assert json.loads(res.stdout)["check"] in ("format", "unknown_partner")
