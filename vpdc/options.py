"""Options every `vpdc` command shares, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workspace import default_home
from workspace.permissions import check_home, private_umask


def _private_home(value: Path) -> Path:
    """Before a command touches its home: what it creates is private (0600/0700), and a home with anything open to
    other accounts is refused (``workspace.permissions``)."""
    private_umask()
    check_home(Path(value))
    return value


HomeOpt = Annotated[Path, typer.Option("--home", envvar="VPDC_HOME", help="Working directory (VPDC_HOME).",
                                       default_factory=default_home, show_default="./var", callback=_private_home)]
