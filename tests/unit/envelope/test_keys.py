import os
import stat

import pytest

from envelope.keys import KeyError_, KeyRing, init_keys, rotate_linkage_secret
from partner_kit.profiles import partners


def test_private_keys_are_0600_and_init_is_idempotent(tmp_path):
    keys = tmp_path / "keys"
    first = init_keys(keys, tuple(partners()))
    second = init_keys(keys, tuple(partners()))
    assert first["created"] and not second["created"]
    private = [p for p in keys.rglob("*") if p.is_file() and p.suffix == ".key"]
    assert len(private) == len(tuple(partners())) + 3
    for p in private:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_group_readable_private_key_is_refused(tmp_path):
    keys = tmp_path / "keys"
    init_keys(keys, tuple(partners()))
    path = keys / "linkage" / "v1.key"
    os.chmod(path, 0o644)
    with pytest.raises(KeyError_, match="chmod 600"):
        KeyRing(keys).linkage_secret()


def test_missing_keys_say_what_to_run(tmp_path):
    with pytest.raises(KeyError_, match="vpdc keys init"):
        KeyRing(tmp_path).linkage_secret()


def test_rotation_makes_a_new_current_version(tmp_path):
    keys = tmp_path / "keys"
    init_keys(keys, tuple(partners()))
    ring = KeyRing(keys)
    old = ring.linkage_secret()
    assert rotate_linkage_secret(keys) == "v2"
    new = ring.linkage_secret()
    assert new.version == "v2" and new.token_key != old.token_key
    assert ring.linkage_secret("v1").token_key == old.token_key
