"""landing/ is scanned without following anything; a file's partner is the real folder it arrived in."""

import os
import threading
from pathlib import Path

import pytest

from envelope.format import EnvelopeRefused, read_manifest
from landing.arrivals import arrival_partner, scan_landing
from landing.quarantine import QuarantineError, list_quarantine, return_to_landing
from workspace import Home


@pytest.fixture
def home(tmp_path) -> Home:
    h = Home(tmp_path / "home").ensure()
    for p in ("police", "county"):
        h.landing(p).mkdir(parents=True)
    return h


def test_special_files_are_listed_as_such_and_never_followed(home):
    police = home.landing("police")
    (police / "ok.vpdc").write_bytes(b"x")
    os.symlink(home.root / "nowhere", police / "dangling.vpdc")
    os.symlink("/etc/passwd", police / "passwd.vpdc")
    os.mkfifo(police / "pipe.vpdc")
    (police / "dir.vpdc").mkdir()
    (police / ".partial.vpdc").write_bytes(b"x")  # a sender's write in progress
    (police / "notes.txt").write_text("x")
    scan = scan_landing(home)
    kinds = {a.name: a.special for a in scan.arrivals}
    assert kinds["ok.vpdc"] is None and set(kinds) == {"ok.vpdc", "dangling.vpdc", "passwd.vpdc", "pipe.vpdc", "dir.vpdc"}
    assert "symbolic link" in kinds["dangling.vpdc"] and "symbolic link" in kinds["passwd.vpdc"]
    assert "FIFO" in kinds["pipe.vpdc"] and "directory" in kinds["dir.vpdc"]


def test_only_real_partner_folders_count(home):
    os.symlink(home.landing("county"), home.landing() / "linked")
    (home.landing() / "fire_dept").mkdir()
    (home.landing() / "stray.vpdc").write_bytes(b"x")
    (home.landing("county") / "a.vpdc").write_bytes(b"x")
    scan = scan_landing(home)
    assert [(a.partner, a.name) for a in scan.arrivals] == [("county", "a.vpdc")]
    assert {i.entry for i in scan.ignored} == {"linked", "fire_dept", "stray.vpdc"}


def test_arrival_partner_is_the_folder_and_nothing_else(home):
    assert arrival_partner(home, home.landing("police") / "x.vpdc") == "police"
    assert arrival_partner(home, home.landing("police") / ".." / "county" / "x.vpdc") is None
    assert arrival_partner(home, home.landing() / "fire_dept" / "x.vpdc") is None
    assert arrival_partner(home, home.quarantine / "x.vpdc") is None
    os.rename(home.landing("county"), home.root / "real-county")
    os.symlink(home.root / "real-county", home.landing("county"))
    assert arrival_partner(home, home.landing("county") / "x.vpdc") is None


def test_reading_a_fifo_or_a_link_refuses_at_once_instead_of_hanging_or_following(home):
    police = home.landing("police")
    os.mkfifo(police / "pipe.vpdc")
    os.symlink("/etc/passwd", police / "link.vpdc")
    (police / "dir.vpdc").mkdir()
    errors = {}

    def read(name):
        try:
            read_manifest(police / name)
        except EnvelopeRefused as exc:
            errors[name] = exc

    for name in ("pipe.vpdc", "link.vpdc", "dir.vpdc"):
        t = threading.Thread(target=read, args=(name,), daemon=True)
        t.start()
        t.join(30)
        assert not t.is_alive(), f"{name}: reading it hangs"
    assert {n: e.check for n, e in errors.items()} == dict.fromkeys(("pipe.vpdc", "link.vpdc", "dir.vpdc"), "format")


def test_retry_uses_the_recorded_arrival_folder_only(home):
    q = home.quarantine
    (q / "a.vpdc").write_bytes(b"x")
    (q / "a.vpdc.reason.json").write_text('{"arrived_in": "police", "partner": "../../../.."}')
    dest = return_to_landing(home, "a.vpdc")
    assert dest == home.landing("police") / "a.retry1.vpdc" and dest.exists()
    for reason in ('{"partner": "police"}', '{"arrived_in": "../../.."}', '{"arrived_in": "fire_dept"}', "[]", "{"):
        (q / "b.vpdc").write_bytes(b"x")
        (q / "b.vpdc.reason.json").write_text(reason)
        with pytest.raises(QuarantineError):
            return_to_landing(home, "b.vpdc")
        assert (q / "b.vpdc").exists()
    os.symlink("/etc/passwd", q / "c.vpdc")
    with pytest.raises(QuarantineError):
        return_to_landing(home, "c.vpdc")
    assert {r["file"] for r in list_quarantine(home)} == {"b.vpdc", "c.vpdc"}


def test_retry_never_writes_through_a_symlinked_landing_folder(home, tmp_path):
    q = home.quarantine
    (q / "a.vpdc").write_bytes(b"x")
    (q / "a.vpdc.reason.json").write_text('{"arrived_in": "police"}')
    os.rename(home.landing("police"), tmp_path / "outside")
    os.symlink(tmp_path / "outside", home.landing("police"))
    with pytest.raises(QuarantineError):
        return_to_landing(home, "a.vpdc")
    assert list(Path(tmp_path / "outside").iterdir()) == []
