"""Quarantine: refused envelopes, why each was refused, and returning one to landing after its cause is fixed.

A refused envelope is moved to ``quarantine/`` with ``<file>.reason.json`` (counts, check names and column
names; never a record value). Nothing is deleted. Returning a file names it ``<stem>.retry<N>.vpdc`` in the
landing folder of the partner it arrived from (recorded at arrival, checked against the partner list:
never a folder the envelope's own unverified manifest names), and keeps the old reason beside it as history.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from partner_kit.profiles import partners
from workspace import Home

__all__ = ["QuarantineError", "list_quarantine", "quarantine_reason", "retry_attempt", "return_to_landing"]

_RETRY = re.compile(r"^(?P<stem>.+?)\.retry(?P<n>[0-9]+)$")


class QuarantineError(Exception):
    """A quarantine action cannot be done; the message names the file and what to do."""


def retry_attempt(file_name: str) -> str:
    """The retry number in a returned file's name (``"2"`` for ``x.retry2.vpdc``), or ``""``."""
    m = _RETRY.match(Path(file_name).name.removesuffix(".vpdc"))
    return m.group("n") if m else ""


def _original_stem(file_name: str) -> str:
    stem = Path(file_name).name.removesuffix(".vpdc")
    m = _RETRY.match(stem)
    return m.group("stem") if m else stem


def quarantine_reason(quarantined: Path) -> dict[str, Any]:
    """The machine-readable reason of a quarantined file.

    Raises:
        QuarantineError: the reason file is missing or unreadable.
    """
    path = quarantined.with_name(quarantined.name + ".reason.json")
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise OSError("not a regular file")
        reason = json.loads(path.read_text())
    except (OSError, ValueError):
        raise QuarantineError(f"{quarantined.name}: its reason file is missing or unreadable") from None
    if not isinstance(reason, dict):
        raise QuarantineError(f"{quarantined.name}: its reason file is not a JSON object")
    return reason


def _entries(home: Home) -> list[os.DirEntry]:
    q = home.quarantine
    if not q.is_dir() or q.is_symlink():
        return []
    with os.scandir(q) as it:
        return sorted((e for e in it if e.name.endswith(".vpdc")), key=lambda e: e.name)


def list_quarantine(home: Home) -> list[dict[str, Any]]:
    """Every quarantined envelope (and refused special file) with the check it failed; a file without a
    readable reason says so. Nothing is followed or opened but the reason files."""
    rows = []
    for e in _entries(home):
        try:
            r = quarantine_reason(Path(e.path))
        except QuarantineError:
            r = {"check": "unknown", "detail": "reason file missing or unreadable"}
        rows.append({"file": e.name, **{k: _text(r.get(k)) for k in ("partner", "extract_type", "period", "check",
                                                                      "detail", "quarantined_at", "arrived_in")}})
        rows[-1]["extract"] = rows[-1].pop("extract_type")
    return rows


def _text(value: Any) -> str | None:
    """A reason field as plain text (a hostile reason file may hold any JSON)."""
    return None if value is None else str(value)[:2000]


def _quarantined(home: Home, file: str) -> Path:
    name = Path(file).name
    path = home.quarantine / name
    if name != file.strip() and Path(file).parent not in (Path("."), home.quarantine):
        raise QuarantineError(f"{file}: give the file name as `vpdc quarantine list` shows it")
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        regular = False
    if not name.endswith(".vpdc") or not regular:
        raise QuarantineError(f"{name}: not a quarantined envelope file; see `vpdc quarantine list`")
    return path


def return_to_landing(home: Home, file: str) -> Path:
    """Move a quarantined envelope back to the landing folder it arrived in, as its next retry.

    The folder is the partner recorded when the file arrived (``arrived_in`` in its reason), checked against the
    partner list; never a field of the envelope. The destination is inside ``landing/<partner>/``, a real
    directory.

    Raises:
        QuarantineError: not a quarantined file, its reason is missing, or the folder it arrived in is unknown
            or not a partner's.
    """
    path = _quarantined(home, file)
    reason = quarantine_reason(path)
    partner = reason.get("arrived_in")
    if not isinstance(partner, str) or partner not in partners():
        raise QuarantineError(f"{path.name}: its reason records no partner folder it arrived in "
                              f"({', '.join(partners())}); move it there by hand if it belongs to one")
    folder = home.landing(partner)
    for d in (home.landing(), folder):
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise QuarantineError(f"{path.name}: {d.relative_to(home.root)} is not a real directory; nothing moved")
    stem = _original_stem(path.name)
    n = 1
    while True:
        dest = folder / f"{stem}.retry{n}.vpdc"
        if not os.path.lexists(dest) and not os.path.lexists(home.quarantine / dest.name):
            break
        n += 1
    folder.mkdir(parents=True, exist_ok=True)
    os.rename(path, dest)
    os.rename(path.with_name(path.name + ".reason.json"), home.quarantine / f"{dest.name}.previous-reason.json")
    return dest
