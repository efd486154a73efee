"""Every command of the `vpdc` CLI answers --help with a description (the issue's promise to every role)."""

import pytest
import typer
from typer.testing import CliRunner

from vpdc.cli import app


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if hasattr(group, "commands"):  # a group (typer ships its own click)
        for name, cmd in group.commands.items():
            out += _commands(cmd, (*path, name))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_the_cli_has_a_command_for_every_role():
    top = {p[0] for p in COMMANDS if p}
    assert {"keys", "synth", "partner", "envelope", "ingest", "quarantine", "link", "marts", "registry", "request",
            "review", "cohort", "study", "audit", "retention", "demo"} <= top


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "vpdc")
def test_every_command_has_help(path):
    res = CliRunner().invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output
    body = res.output.split("Usage:", 1)[1]
    assert len(body.strip().splitlines()) >= 3  # a usage line and a description, not a bare signature
