"""Shared fixtures: keys in tmp dirs, a fixed clock."""

import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings

from envelope.keys import Custodian, LinkageSecret, PartnerKeyRing, WarehouseKeyRing, init_demo_keys
from partner_kit.profiles import partners
from workspace import Home

TODAY = date(2026, 11, 21)

# As every `vpdc` command and the Dagster definitions do before they touch a home: what the tests create is
# private, so a home a fixture built passes the start-up check (workspace.permissions) the CLI makes.
os.umask(0o077)

# Property tests run the "ci" profile unless told otherwise: the same examples every run, so a red build
# is a change in the code, never the luck of the draw, and no per-example deadline (a deadline is a timing
# assertion, and timings do not belong in tests). `HYPOTHESIS_PROFILE=explore make test` searches ten
# times wider with fresh randomness; pin what it finds with @example.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Keys:
    """Every party's keys in a test home, each in its own folder as in the demo: the custodian's linkage
    secret, the warehouse's key ring (partners' public keys registered), each partner site's key ring."""

    def __init__(self, home: Home):
        self.home = home

    @property
    def warehouse(self) -> WarehouseKeyRing:
        return WarehouseKeyRing(self.home.keys)

    def partner(self, partner: str = "police") -> PartnerKeyRing:
        return PartnerKeyRing(self.home.partner_keys(partner))

    @property
    def custodian(self) -> Custodian:
        return Custodian(self.home.custodian)

    def linkage_secret(self, version: str | None = None) -> LinkageSecret:
        return self.custodian.linkage_secret(version)


def make_keys(root: Path) -> Keys:
    """Demo keys of every party under ``root``, each partner's public half registered with the warehouse."""
    home = Home(root)
    made = init_demo_keys(home, partners())
    for partner, public in made["public_keys"].items():
        WarehouseKeyRing(home.keys).register_partner_key(partner, public)
    return Keys(home)


@pytest.fixture
def keyring(tmp_path: Path) -> Keys:
    return make_keys(tmp_path / "keyhome")


@pytest.fixture(scope="session")
def session_keyring(tmp_path_factory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("session-keys"))


def postgres_url(var: str) -> str | None:
    """The PostgreSQL URL in environment variable ``var`` (``.ci/run`` sets it after starting a server), emptied
    for this test: its ``public`` schema dropped and made again. Unset: None (the tests run on SQLite). Set but
    unreachable: the test fails, never skips, so CI cannot pass without the PostgreSQL run it claims."""
    url = os.environ.get(var)
    if not url:
        return None
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from governance.registry.db import safe_url

    engine = create_engine(url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("drop schema if exists public cascade; create schema public")
    except SQLAlchemyError as exc:
        pytest.fail(f"{var}={safe_url(url)} is set but PostgreSQL cannot be used: "
                    f"{str(getattr(exc, 'orig', exc)).strip()[:300]}", pytrace=False)
    finally:
        engine.dispose()
    return url


#: the files that take longest (`make test` with `--durations=0`, summed per file; 2026-12-04: 95-140 s each),
#: longest first, started before the rest so that no worker is left running one alone at the end
LONGEST_FILES = ("test_dashboard_browser.py", "test_linkage.py", "test_spark.py", "test_governance.py",
                 "test_marts.py", "test_landing_kills_jobs.py", "test_landing_kills.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first, then the other integration and browser files, unit files last: `make test`'s
    workers take whole files in this order (xdist's own reordering is off, see the Makefile), so the long files
    start at once and the many short unit files fill the gaps at the end."""
    def rank(item) -> int:
        if item.path.name in LONGEST_FILES:
            return LONGEST_FILES.index(item.path.name)
        return len(LONGEST_FILES) + ("/tests/unit/" in str(item.path))

    items.sort(key=rank)
