"""Shared fixtures: keys in tmp dirs, a fixed clock."""

from datetime import date
from pathlib import Path

import pytest

from governance.keys import KeyRing, init_keys
from vpdc.config import SOURCES

TODAY = date(2026, 11, 21)


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    keys = tmp_path / "keys"
    init_keys(keys, SOURCES)
    return KeyRing(keys)


@pytest.fixture(scope="session")
def session_keyring(tmp_path_factory) -> KeyRing:
    keys = tmp_path_factory.mktemp("session-keys")
    init_keys(keys, SOURCES)
    return KeyRing(keys)
