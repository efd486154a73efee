"""Shared fixtures: keys in tmp dirs, a fixed clock."""

import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings

from envelope.keys import KeyRing, init_keys
from partner_kit.profiles import partners

TODAY = date(2026, 11, 21)

# Property tests run the "ci" profile unless told otherwise: the same examples every run, so a red build
# is a change in the code, never the luck of the draw, and no per-example deadline (a deadline is a timing
# assertion, and timings do not belong in tests). `HYPOTHESIS_PROFILE=explore make test` searches ten
# times wider with fresh randomness; pin what it finds with @example.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    keys = tmp_path / "keys"
    init_keys(keys, tuple(partners()))
    return KeyRing(keys)


@pytest.fixture(scope="session")
def session_keyring(tmp_path_factory) -> KeyRing:
    keys = tmp_path_factory.mktemp("session-keys")
    init_keys(keys, tuple(partners()))
    return KeyRing(keys)
