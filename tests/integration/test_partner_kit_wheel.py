"""The partner kit is a deliverable: a wheel that installs alone into an empty virtualenv, with only its light
dependencies, and encodes, seals and sends a synthetic extract that the warehouse then opens.

The wheel is built exactly as a release would be (``make kit``). The virtualenv gets the wheel and, as
constraints, the versions this project's environment already has (so the install needs no new download).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from envelope.format import open_envelope
from envelope.keys import Custodian, WarehouseKeyRing
from tests.conftest import TODAY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("dagster", "dbt", "splink", "great_expectations", "sqlalchemy", "duckdb", "pandas")


def _uv() -> str:
    local = ROOT / ".tools" / "bin" / "uv"
    return str(local) if local.exists() else "uv"


@pytest.fixture(scope="module")
def kit_venv(tmp_path_factory) -> Path:
    build = subprocess.run(["make", "-s", "kit"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = sorted((ROOT / "dist").glob("vpdc_partner_kit-*.whl"), key=lambda p: p.stat().st_mtime)
    assert wheels, "make kit built no wheel"
    venv = tmp_path_factory.mktemp("kit-venv") / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    freeze = subprocess.run([_uv(), "pip", "freeze", "--python", sys.executable], capture_output=True, text=True,
                            check=True).stdout
    constraints = venv.parent / "constraints.txt"
    constraints.write_text("\n".join(line for line in freeze.splitlines() if "==" in line and "vpdc" not in line))
    res = subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-c",
                          str(constraints), str(wheels[-1])], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return venv


def kit(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VPDC_HOME", "VPDC_SITE", "PYTHONPATH")}
    return subprocess.run([str(venv / "bin" / "vpdc-kit"), *args], capture_output=True, text=True, env=env,
                          cwd=cwd or venv.parent, check=False)


def test_the_wheel_holds_only_the_kit_and_installs_no_heavy_dependency(kit_venv):
    py = str(kit_venv / "bin" / "python")
    code = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
            f"{list(HEAVY) + ['landing', 'linkage', 'governance', 'orchestration', 'vpdc']!r}}}))")
    found = json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=kit_venv.parent).stdout)
    assert not [m for m, present in found.items() if present], found


def test_a_partner_keys_checks_encodes_and_sends_with_the_wheel_alone(kit_venv, tmp_path):
    from synthetic import SynthConfig, generate

    # the collaborative's side: a custodian's secret, the warehouse's keys, and synthetic extracts
    world = tmp_path / "world"
    generate(SynthConfig(persons=150, seed=5, periods=("2025-11",)), world)
    custodian = Custodian(tmp_path / "custodian")
    custodian.create()
    (tmp_path / "v1.key").write_bytes(custodian.secret_bytes("v1"))
    warehouse = WarehouseKeyRing(tmp_path / "warehouse")
    warehouse.create()

    # the partner's side, with nothing but the kit installed
    site = tmp_path / "police-site"
    (site / "2025-11").mkdir(parents=True)
    (site / "2025-11" / "persons.csv").write_bytes((world / "partners" / "police" / "2025-11" / "persons.csv").read_bytes())
    gen = kit(kit_venv, "keys", "generate", "--site", str(site), "--json")
    assert gen.returncode == 0, gen.stderr
    public = json.loads(gen.stdout)["public_key"]
    assert "PRIVATE" not in gen.stdout and (site / "keys" / "signing.pub").read_text().strip() == public
    for args in (("keys", "install-linkage", "--version", "v1", "--file", str(tmp_path / "v1.key")),
                 ("keys", "install-transport", "--public-key", warehouse.transport_public_hex())):
        res = kit(kit_venv, *args, "--site", str(site))
        assert res.returncode == 0, res.stderr
    check = kit(kit_venv, "profile", "check", "--site", str(site), "--partner", "police", "--extract", "persons",
                "--sample", str(site / "2025-11" / "persons.csv"), "--json")
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["passed"], report
    enc = kit(kit_venv, "encode", "--site", str(site), "--partner", "police", "--period", "2025-11",
              "--extract", "persons", "--json")
    assert enc.returncode == 0, enc.stderr
    summary = json.loads(enc.stdout)[0]
    assert summary["rows_read"] > 10 and summary["rows_encoded"] >= 0.95 * summary["rows_read"]
    sent = kit(kit_venv, "send", "--site", str(site), "--partner", "police", "--period", "2025-11", "--json")
    assert sent.returncode == 0, sent.stderr
    envelope = Path(json.loads(sent.stdout)[0]["envelope"])
    assert envelope.parent == site / "outbox"

    # the warehouse registers the partner's public half and opens what it sent
    warehouse.register_partner_key("police", public)
    with open_envelope(envelope, warehouse, expected_partner="police") as opened:
        table = pq.read_table(opened.payload)
    assert table.num_rows == json.loads(enc.stdout)[0]["rows_encoded"]
    assert "LNAME" not in table.column_names and "enc_ln_full" in table.column_names
    assert TODAY  # the kit ran with the machine's own clock

    # a partner whose install holds another nickname table (another release of the package) would write first-name
    # tokens that match no one else's under the same scheme: the kit refuses, in one line, before writing anything
    names_csv = next(kit_venv.glob("lib/python*/site-packages/nicknames/names.csv"))
    original = names_csv.read_bytes()
    try:
        names_csv.write_bytes(original + b"zorblax,has_nickname,zor\n")
        again = kit(kit_venv, "encode", "--site", str(site), "--partner", "police", "--period", "2025-11",
                    "--extract", "persons", "--json")
        assert again.returncode == 2 and "nickname table" in again.stderr, again.stderr
        assert "Traceback" not in again.stderr + again.stdout
    finally:
        names_csv.write_bytes(original)


def test_the_kit_refuses_clearly_and_never_prints_a_traceback(kit_venv, tmp_path):
    res = kit(kit_venv, "encode", "--site", str(tmp_path), "--partner", "police", "--period", "2025-13")
    assert res.returncode == 2 and "--period" in res.stderr and "Traceback" not in res.stderr + res.stdout
    res = kit(kit_venv, "encode", "--site", str(tmp_path), "--partner", "fire_dept", "--period", "2025-11")
    assert res.returncode == 2 and "fire_dept" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "2025-11").mkdir()
    (tmp_path / "2025-11" / "persons.csv").write_text("PERSON_ID,LNAME\nP1,X\n")
    res = kit(kit_venv, "encode", "--site", str(tmp_path), "--partner", "police", "--period", "2025-11",
              "--extract", "persons")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "linkage secret" in res.stderr or "missing columns" in res.stderr
