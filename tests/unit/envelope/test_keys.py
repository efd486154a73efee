import os
import stat

import pytest

from envelope.keys import (
    Custodian,
    KeyError_,
    PartnerKeyRing,
    WarehouseKeyRing,
    generate_signing_key,
    init_demo_keys,
    install_linkage_secret,
)
from partner_kit.profiles import partners
from workspace import Home


def test_private_keys_are_0600_in_0700_folders_and_init_is_idempotent(tmp_path):
    home = Home(tmp_path)
    first = init_demo_keys(home, partners())
    second = init_demo_keys(home, partners())
    assert first["created"] and not second["created"]
    private = [p for p in tmp_path.rglob("*.key") if p.is_file()]
    # custodian v1, transport, study master, zone boundary, the linkage zone's archive key, and per partner: its
    # signing key and its copy of the secret
    assert len(private) == 5 + 2 * len(partners())
    for p in private:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700, p.parent


def test_each_party_holds_only_its_own_keys(tmp_path):
    home = Home(tmp_path)
    made = init_demo_keys(home, partners())
    # the warehouse's folder holds no linkage secret and no partner's private key
    assert not [p for p in home.keys.rglob("*") if p.name.startswith("v") and p.suffix == ".key"]
    assert not list(home.keys.rglob("signing.key"))
    # a partner's site holds its own signing key and nobody else's; the others see only public halves
    for p in partners():
        assert [k.parent.name for k in home.root.rglob("signing.key") if p in k.parts] == ["keys"]
        assert PartnerKeyRing(home.partner_keys(p)).signing_public_hex() == made["public_keys"][p]


def test_the_warehouse_key_ring_cannot_load_and_refuses_the_linkage_secret(tmp_path):
    home = Home(tmp_path)
    init_demo_keys(home, partners())
    ring = WarehouseKeyRing(home.keys)
    assert not hasattr(ring, "linkage_secret")
    # a copy of the custodian's secret dropped into the warehouse's folder stops it at start-up
    (home.keys / "v1.key").write_bytes(Custodian(home.custodian).secret_bytes())
    with pytest.raises(KeyError_, match="must never hold the linkage secret"):
        WarehouseKeyRing(home.keys)


def test_the_zones_keys_stay_apart_each_ring_refusing_the_others(tmp_path):
    import shutil

    from envelope.keys import LinkageZoneKeyRing

    home = Home(tmp_path)
    init_demo_keys(home, partners())
    ring, zone = WarehouseKeyRing(home.keys), LinkageZoneKeyRing(home.linkage_keys)
    # the warehouse holds the boundary key and only the public half of the linkage zone's archive key
    assert len(ring.boundary_key()) == 32 and not hasattr(ring, "archive_private_key")
    assert ring.linkage_archive_public_key().public_bytes_raw().hex() == zone.archive_public_hex()
    assert not (home.keys / LinkageZoneKeyRing.ARCHIVE_KEY).exists()
    # a copy of the linkage zone's archive key in the warehouse's folder stops the warehouse at start-up ...
    shutil.copy(home.linkage_keys / LinkageZoneKeyRing.ARCHIVE_KEY, home.keys / LinkageZoneKeyRing.ARCHIVE_KEY)
    with pytest.raises(KeyError_, match="encodings and content parts could be rejoined"):
        WarehouseKeyRing(home.keys)
    # ... and the warehouse's transport or boundary key in the linkage zone's folder stops the linkage zone
    for name in ("transport.key", WarehouseKeyRing.BOUNDARY_KEY):
        shutil.copy(home.keys / name, home.linkage_keys / name)
        with pytest.raises(KeyError_, match="linkage zone must never hold it"):
            LinkageZoneKeyRing(home.linkage_keys)
        (home.linkage_keys / name).unlink()


def test_the_boundary_key_is_never_replaced(tmp_path):
    home = Home(tmp_path)
    init_demo_keys(home, partners())
    key = WarehouseKeyRing(home.keys).boundary_key()
    init_demo_keys(home, partners(), overwrite=True)  # even a forced re-init keeps every analytics person key
    assert WarehouseKeyRing(home.keys).boundary_key() == key


def test_group_readable_private_key_is_refused(tmp_path):
    home = Home(tmp_path)
    init_demo_keys(home, ["police"])
    path = home.partner_keys("police") / "linkage" / "v1.key"
    os.chmod(path, 0o644)
    with pytest.raises(KeyError_, match="chmod 600"):
        PartnerKeyRing(home.partner_keys("police")).linkage_secret()


def test_missing_keys_say_what_to_do(tmp_path):
    with pytest.raises(KeyError_, match="key custodian"):
        PartnerKeyRing(tmp_path).linkage_secret()


def test_a_partner_makes_its_own_signing_key_and_hands_over_only_the_public_half(tmp_path):
    public, made = generate_signing_key(tmp_path / "site" / "keys")
    assert made and len(public) == 64 and (tmp_path / "site" / "keys" / "signing.pub").read_text().strip() == public
    assert generate_signing_key(tmp_path / "site" / "keys") == (public, False)
    wh = WarehouseKeyRing(tmp_path / "warehouse")
    wh.register_partner_key("police", public)
    assert wh.trusted_partner_key("police").public_bytes_raw().hex() == public
    with pytest.raises(KeyError_, match="64 hex digits"):
        wh.register_partner_key("police", "not a key")
    assert wh.trusted_partner_key("../../etc/passwd") is None  # a field never chooses a path


def test_rotation_makes_a_new_current_version_and_a_transition_at_the_partner(tmp_path):
    home = Home(tmp_path)
    init_demo_keys(home, ["police"])
    custodian = Custodian(home.custodian)
    ring = PartnerKeyRing(home.partner_keys("police"))
    old = ring.linkage_secret()
    assert custodian.rotate() == "v2"
    install_linkage_secret(home.partner_keys("police"), "v2", custodian.secret_bytes("v2"))
    new = ring.linkage_secret()
    assert new.version == "v2" and new.token_key != old.token_key
    assert ring.previous_linkage_version() == "v1"
    assert ring.linkage_secret("v1").token_key == old.token_key
    ring.end_transition()
    assert ring.previous_linkage_version() is None
