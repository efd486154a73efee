"""Is the process that started something still alive? (A pid alone is not enough: pids are reused.)

An owner token is ``<boot id>:<pid>:<start time>`` (Linux: the kernel's boot id and the process's start time in
clock ticks since boot, from ``/proc``); a process is the token's owner only if all three still match. Elsewhere
the token is ``-:<pid>:-`` and liveness falls back to ``kill(pid, 0)``. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["owner_alive", "owner_token"]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or "-"
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields after the last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}:{pid}:{_start_ticks(pid) or '-'}"


def owner_alive(token: str) -> bool:
    """True if the process the token names is still running (an unreadable token counts as alive: never reap
    what cannot be judged)."""
    try:
        boot, pid_text, start = token.split(":")
        pid = int(pid_text)
    except ValueError:
        return True
    if boot != "-" and boot != _boot_id():
        return False  # the machine restarted since
    if start != "-" and Path("/proc").is_dir():
        return _start_ticks(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
