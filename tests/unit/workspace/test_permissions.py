"""Zone files are the owner's alone: a command refuses a home open to other accounts, names what is open and how
to fix it; `vpdc home secure` fixes it without following links; what commands create is private."""

import os
import stat

from typer.testing import CliRunner

from vpdc.cli import app
from workspace.permissions import check_home, exposed, secure_home


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_a_home_open_to_others_is_refused_naming_the_path_then_secured(tmp_path):
    home = tmp_path / "home"
    (home / "archive").mkdir(parents=True)
    os.chmod(home, 0o700)
    os.chmod(home / "archive", 0o700)
    db = home / "warehouse.duckdb"
    db.write_bytes(b"x")
    os.chmod(db, 0o644)
    res = CliRunner().invoke(app, ["quarantine", "list", "--home", str(home)])
    assert res.exit_code != 0
    assert "warehouse.duckdb (0644)" in res.output and "vpdc home secure" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, ["home", "secure", "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    assert '"changed": 1' in res.output and mode(db) == 0o600
    assert CliRunner().invoke(app, ["quarantine", "list", "--home", str(home)]).exit_code == 0


def test_every_kind_of_opening_is_found_folders_included_links_skipped(tmp_path):
    home = tmp_path / "h"
    (home / "keys").mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    outside = tmp_path / "outside.txt"
    outside.write_text("public")
    os.chmod(outside, 0o644)
    (home / "link").symlink_to(outside)
    check_home(home)  # a link's target is not the home's
    for bits in (0o640, 0o604, 0o620, 0o601):
        f = home / "keys" / f"k{bits:o}"
        f.write_text("s")
        os.chmod(f, bits)
    os.chmod(home / "keys", 0o750)
    found = dict(exposed(home))
    assert set(found) == {home / "keys", *(home / "keys").iterdir()}
    assert secure_home(home) == 5
    assert exposed(home) == [] and mode(outside) == 0o644  # the link was not followed
    check_home(tmp_path / "missing")  # a home not created yet passes: commands create it private


def test_what_a_command_creates_is_private(tmp_path):
    home = tmp_path / "fresh"
    old = os.umask(0o022)  # as a shell would have it
    try:
        res = CliRunner().invoke(app, ["keys", "init", "--home", str(home), "--json"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert any(home.rglob("*")) and exposed(home) == []
