"""Is the process that started something still alive? (A pid alone is not enough: pids are reused.)

An owner token is ``<boot id>:<pid>:<start time>`` (Linux: the kernel's boot id and the process's start time in
clock ticks since boot, from ``/proc``); a process is the token's owner only if all three still match. Elsewhere
the token is ``-:<pid>:-`` and liveness falls back to ``kill(pid, 0)``. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OWNER_ENV", "end_orphans", "orphans", "owner_alive", "owner_token"]

#: environment variable a run's process sets to its own owner token; the tools it starts (dbt) inherit it, so the
#: children a killed run leaves behind can be found and ended (:func:`end_orphans`)
OWNER_ENV = "VPDC_RUN_OWNER"


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


def orphans(token: str) -> list[int]:
    """Processes still running with ``VPDC_RUN_OWNER=<token>`` in their environment: the children a run's process
    started (dbt) and left behind when it was killed. Linux only (``/proc``); elsewhere an empty list."""
    needle = f"{OWNER_ENV}={token}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def end_orphans(token: str, *, grace: float = 10.0) -> list[int]:
    """End what a dead run's process left running (its owner is gone, so nothing will record their result, and a
    leftover dbt would hold the warehouse's write lock): SIGTERM, then SIGKILL after ``grace`` seconds to what
    ignores it. Returns the pids ended."""
    import signal

    pids = orphans(token)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal_and_wait([p for p in pids if _alive_not_zombie(p)], sig, grace)
    return pids


def _signal_and_wait(pids: list[int], sig: int, grace: float) -> None:
    import time

    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive_not_zombie(p) for p in pids):
        time.sleep(0.1)


def _alive_not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
