"""Governance unit fixtures: a real registry (SQLite, or PostgreSQL with VPDC_TEST_REGISTRY_URL), seeded."""

import os

import pytest

from governance.registry.db import Registry
from governance.registry.seed import seed_demo


@pytest.fixture
def reg(tmp_path) -> Registry:
    """A fresh registry: SQLite by default; VPDC_TEST_REGISTRY_URL runs the same tests on PostgreSQL."""
    url = os.environ.get("VPDC_TEST_REGISTRY_URL")
    if url:
        from sqlalchemy import create_engine

        with create_engine(url).begin() as c:
            c.exec_driver_sql("drop schema public cascade; create schema public")
        r = Registry(url, keys_dir=tmp_path / "keys", checkpoints=tmp_path / "checkpoints")
    else:
        r = Registry.at(tmp_path / "registry.db")
    with r.transaction() as s:
        seed_demo(s)
    return r
