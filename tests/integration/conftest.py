"""Integration fixtures: one tiny synthetic collaborative, encoded and sealed once per session."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import TODAY, make_keys
from workspace import Home


@pytest.fixture(scope="session")
def sent_home(tmp_path_factory) -> Home:
    """A VPDC_HOME with keys, synthetic extracts for 400 persons over two periods, and every envelope in landing/."""
    from synthetic import SynthConfig, generate
    from vpdc.demo import encode_and_send_all

    home = Home(tmp_path_factory.mktemp("sent-home")).ensure()
    make_keys(home.root)
    generate(SynthConfig(persons=400, seed=11, periods=("2025-11", "2025-12")), home.root)
    encode_and_send_all(home, today=TODAY)
    # the dbt manifest Dagster's definitions read (`dbt parse`, 8 s): made once here, so that every copy of this home
    # has it as a home that has run before would (it is rebuilt whenever a dbt source is newer)
    from orchestration.dbt_project import prepare_manifest

    prepare_manifest(home.root)
    return home


@pytest.fixture
def home(sent_home: Home, tmp_path: Path, monkeypatch) -> Home:
    """A private copy of the sent home, with the Dagster environment pointed at it (restored after)."""
    root = tmp_path / "home"
    top = str(sent_home.root)
    # the warehouse's copy: no custodian, no truth, and of each partner site only its keys (so that tests can
    # act as a partner: reseal, forge), never its extracts
    sites = str(sent_home.root / "partners")

    def ignore(d: str, names: list[str]) -> list[str]:
        if d == top:
            return [n for n in names if n in ("truth", "custodian")]
        if str(Path(d).parent) == sites:
            return [n for n in names if n != "keys"]
        return []

    shutil.copytree(sent_home.root, root, ignore=ignore)
    h = Home(root)
    monkeypatch.setenv("VPDC_HOME", str(root))
    monkeypatch.setenv("VPDC_KEYS_DIR", str(h.keys))
    monkeypatch.setenv("DAGSTER_HOME", str(h.dagster))
    return h


def envelopes(home: Home, partner: str | None = None, extract: str | None = None) -> list[Path]:
    from envelope.format import read_manifest

    files = sorted(home.landing().glob(f"{partner or '*'}/*.vpdc"))
    return [f for f in files if extract is None or read_manifest(f).extract_type == extract]


def boundary(home: Home):
    """The zone boundary of a test home (its labels are what the linkage zone holds, ADR 0010)."""
    from envelope.keys import WarehouseKeyRing
    from landing.boundary import ZoneBoundary

    return ZoneBoundary.from_keyring(WarehouseKeyRing(home.keys))
