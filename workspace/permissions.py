"""Zone files are the owner's alone: every file under ``VPDC_HOME`` 0600, every folder 0700, checked at start-up.

The warehouse, the linkage zone, the registry, the archive, keys, partner sites (in the demo) and truth all live
under one home; a group- or world-readable file there is a leak waiting for any other account on the machine
(DuckDB, SQLite and Dagster create files with the process umask, usually 0644). So every process that works on a
home first narrows its umask (:func:`private_umask`), so that what it and the tools it starts (dbt, DuckDB) create
is private, and refuses to start on a home where something is readable or writable by others
(:func:`check_home`), naming the paths and the one command that fixes them. Standard library only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["HomePermissionError", "PRIVATE_UMASK", "check_home", "exposed", "private_umask", "secure_home"]

#: files 0600, folders 0700
PRIVATE_UMASK = 0o077


class HomePermissionError(PermissionError):
    """Something under the home is readable, writable or searchable by other accounts; the message names it."""


def private_umask() -> int:
    """Narrow this process's umask (inherited by the tools it starts) so that what it creates is private; returns
    the previous umask."""
    return os.umask(PRIVATE_UMASK)


def exposed(root: Path, *, limit: int = 10_000) -> list[tuple[Path, int]]:
    """Every entry under ``root`` (``root`` included; symbolic links are not followed) whose permission bits give
    anything to group or others, with its mode; at most ``limit``."""
    root = Path(root)
    found: list[tuple[Path, int]] = []
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return found
    if stat.S_IMODE(st.st_mode) & 0o077 and not stat.S_ISLNK(st.st_mode):
        found.append((root, stat.S_IMODE(st.st_mode)))
    stack = [root] if stat.S_ISDIR(st.st_mode) else []
    while stack and len(found) < limit:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except FileNotFoundError:
                        continue
                    if stat.S_ISLNK(mode):
                        continue
                    if stat.S_IMODE(mode) & 0o077:
                        found.append((Path(entry.path), stat.S_IMODE(mode)))
                    if stat.S_ISDIR(mode):
                        stack.append(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError as exc:
            raise HomePermissionError(f"{exc.filename}: cannot be read by this account; the home must belong "
                                      "to the account that runs vpdc") from None
    return sorted(found)


def check_home(root: Path) -> None:
    """Refuse a home where anything is open to other accounts (a missing home passes: it will be created
    private)."""
    found = exposed(root)
    if not found:
        return
    shown = ", ".join(f"{p.relative_to(root) if p != Path(root) else p} ({m:04o})" for p, m in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise HomePermissionError(
        f"{root}: {len(found)} path(s) are open to other accounts: {shown}{more}. Zone files must be 0600 and "
        f"folders 0700; run `vpdc home secure --home {root}` (or `chmod -R go-rwx {root}`)")


def secure_home(root: Path) -> int:
    """Take group and other permissions off everything under ``root`` (no link followed); returns how many
    entries changed."""
    changed = 0
    for path, mode in exposed(root, limit=10**9):
        os.chmod(path, mode & 0o700)  # never a link: exposed() skips them
        changed += 1
    return changed
