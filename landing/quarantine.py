"""Quarantine: refused envelopes, why each was refused, and returning one to landing after its cause is fixed.

A refused envelope is moved to ``quarantine/`` with ``<file>.reason.json`` (counts, check names and column
names; never a record value). Nothing is deleted. Returning a file names it ``<stem>.retry<N>.vpdc`` in the
landing folder of the partner it arrived from (recorded at arrival, checked against the partner list:
never a folder the envelope's own unverified manifest names), and keeps the old reason beside it as history.
"""

from __future__ import annotations

import json
import re
import shutil
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
        reason = json.loads(path.read_text())
    except (OSError, ValueError):
        raise QuarantineError(f"{quarantined.name}: its reason file is missing or unreadable") from None
    if not isinstance(reason, dict):
        raise QuarantineError(f"{quarantined.name}: its reason file is not a JSON object")
    return reason


def list_quarantine(home: Home) -> list[dict[str, Any]]:
    """Every quarantined envelope with the check it failed (a file without a readable reason says so)."""
    rows = []
    q = home.quarantine
    for f in sorted(q.glob("*.vpdc")) if q.is_dir() else []:
        if not f.is_file() or f.is_symlink():
            continue
        try:
            r = quarantine_reason(f)
        except QuarantineError:
            r = {"check": "unknown", "detail": "reason file missing or unreadable"}
        rows.append({"file": f.name, "partner": r.get("partner"), "extract": r.get("extract_type"),
                     "period": r.get("period"), "check": r.get("check"), "detail": r.get("detail"),
                     "quarantined_at": r.get("quarantined_at")})
    return rows


def _quarantined(home: Home, file: str) -> Path:
    name = Path(file).name
    path = home.quarantine / name
    if name != file.strip() and Path(file).parent not in (Path("."), home.quarantine):
        raise QuarantineError(f"{file}: give the file name as `vpdc quarantine list` shows it")
    if not name.endswith(".vpdc") or not path.is_file() or path.is_symlink():
        raise QuarantineError(f"{name}: not in quarantine; see `vpdc quarantine list`")
    return path


def return_to_landing(home: Home, file: str) -> Path:
    """Move a quarantined envelope back to the landing folder it arrived in, as its next retry.

    Raises:
        QuarantineError: not in quarantine, or the folder it arrived in is unknown or not a partner's.
    """
    path = _quarantined(home, file)
    reason = quarantine_reason(path)
    partner = Path(str(reason.get("original_path") or "")).parent.name
    if partner not in partners():
        raise QuarantineError(f"{path.name}: it did not arrive in a partner's landing folder "
                              f"({', '.join(partners())}); move it there by hand if it belongs to one")
    stem = _original_stem(path.name)
    n = 1
    while True:
        dest = home.landing(partner) / f"{stem}.retry{n}.vpdc"
        if not dest.exists() and not (home.quarantine / dest.name).exists():
            break
        n += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), dest)
    shutil.move(str(path.with_name(path.name + ".reason.json")), home.quarantine / f"{dest.name}.previous-reason.json")
    return dest
