"""No traceback reaches a user: every case found in review prints one clear line and an exit status."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vpdc.cli import app


def run(*args, env=None):
    res = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in res.output
    return res


def test_link_and_marts_on_an_empty_home_say_what_to_run_first(tmp_path):
    res = run("link", "--home", str(tmp_path))
    assert res.exit_code == 2 and "vpdc ingest" in res.output
    res = run("marts", "--home", str(tmp_path))
    assert res.exit_code == 2 and "vpdc ingest" in res.output and "vpdc link" in res.output


def test_an_unreachable_registry_is_named_without_its_password(tmp_path):
    url = "postgresql+psycopg://steward:s3cret-pw@127.0.0.1:1/registry"
    res = run("request", "status", "atv-eval", "--home", str(tmp_path), env={"VPDC_REGISTRY_URL": url})
    assert res.exit_code == 2 and "cannot be reached" in res.output and "127.0.0.1" in res.output
    assert "s3cret-pw" not in res.output


@pytest.mark.parametrize("args", [
    ("quarantine", "show", "nothing.vpdc"), ("quarantine", "retry", "../../etc/passwd"),
    ("synth", "--periods", "2025-13"), ("cohort", "export", "x", "--as", "e", "--from", "yesterday"),
    ("keys", "retire-linkage", "v1"), ("partner", "encode", "--partner", "police", "--period", "x"),
    ("envelope", "inspect", "missing.vpdc"),
])
def test_bad_input_gets_a_clear_refusal(tmp_path, args):
    res = run(*args, "--home", str(tmp_path)) if args[0] not in ("partner", "envelope") else run(*args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error:") or "error:" in res.output


def test_json_output_is_json_only(tmp_path):
    res = CliRunner().invoke(app, ["quarantine", "list", "--home", str(tmp_path), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = CliRunner().invoke(app, ["partner", "profile", "list", "--json"])
    assert res.exit_code == 0 and {r["partner"] for r in json.loads(res.stdout)} >= {"police", "county"}


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path, monkeypatch):
    import landing.quarantine

    def boom(home):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(landing.quarantine, "list_quarantine", boom)
    res = run("quarantine", "list", "--home", str(tmp_path))
    assert res.exit_code == 70 and "unexpected RuntimeError: disk on fire" in res.output
    assert "second line" not in res.output and "VPDC_DEBUG=1" in res.output
    res = CliRunner().invoke(app, ["quarantine", "list", "--home", str(tmp_path)], env={"VPDC_DEBUG": "1"})
    assert isinstance(res.exception, RuntimeError)  # the engineer's way to the traceback


def test_warehouse_commands_in_a_kit_only_install_say_what_to_install(tmp_path):
    code = ("import sys\n"
            "for m in ('dagster', 'duckdb', 'sqlalchemy'): sys.modules[m] = None  # as if not installed\n"
            "from vpdc.cli import app\n"
            f"app(['ingest', '--home', {str(tmp_path)!r}], prog_name='vpdc')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2 and "warehouse install" in res.stderr and "Traceback" not in res.stderr, res.stderr
