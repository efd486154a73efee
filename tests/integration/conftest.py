"""Integration fixtures: one tiny synthetic collaborative, encoded and sealed once per session."""

import shutil
from pathlib import Path

import pytest

from envelope.keys import init_keys
from partner_kit.profiles import partners
from tests.conftest import TODAY
from workspace import Home


@pytest.fixture(scope="session")
def sent_home(tmp_path_factory) -> Home:
    """A VPDC_HOME with keys, synthetic extracts for 400 persons over two periods, and every envelope in landing/."""
    from synthetic import SynthConfig, generate
    from vpdc.pipeline import encode_and_send_all

    home = Home(tmp_path_factory.mktemp("sent-home")).ensure()
    init_keys(home.keys, tuple(partners()))
    generate(SynthConfig(persons=400, seed=11, periods=("2025-11", "2025-12")), home.root)
    encode_and_send_all(home, today=TODAY)
    return home


@pytest.fixture
def home(sent_home: Home, tmp_path: Path, monkeypatch) -> Home:
    """A private copy of the sent home, with the Dagster environment pointed at it (restored after)."""
    root = tmp_path / "home"
    top = str(sent_home.root)
    shutil.copytree(sent_home.root, root,
                    ignore=lambda d, names: [n for n in names if d == top and n in ("partners", "truth")])
    h = Home(root)
    monkeypatch.setenv("VPDC_HOME", str(root))
    monkeypatch.setenv("VPDC_KEYS_DIR", str(h.keys))
    monkeypatch.setenv("DAGSTER_HOME", str(h.dagster))
    return h


def envelopes(home: Home, partner: str | None = None, extract: str | None = None) -> list[Path]:
    from envelope.format import read_manifest

    files = sorted(home.landing().glob(f"{partner or '*'}/*.vpdc"))
    return [f for f in files if extract is None or read_manifest(f).extract_type == extract]
