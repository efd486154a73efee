"""Governance unit fixtures: a real registry (SQLite, or PostgreSQL with VPDC_TEST_REGISTRY_URL), seeded."""

import pytest

from governance.registry.db import Registry
from governance.registry.seed import seed_demo
from tests.conftest import postgres_url


@pytest.fixture
def reg(tmp_path) -> Registry:
    """A fresh registry: SQLite by default; VPDC_TEST_REGISTRY_URL runs the same tests on PostgreSQL."""
    url = postgres_url("VPDC_TEST_REGISTRY_URL")
    if url:
        r = Registry(url, keys_dir=tmp_path / "keys", checkpoints=tmp_path / "checkpoints")
    else:
        r = Registry.at(tmp_path / "registry.db")
    with r.transaction() as s:
        seed_demo(s)
    return r
