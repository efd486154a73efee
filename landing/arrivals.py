"""What is waiting in ``landing/``, and which partner each file arrived from.

Partners drop files into ``landing/<partner>/``; anything can be dropped there. A file's partner is the folder
it arrived in (never a field of its own manifest): a real directory (not a symlink) directly under a real
``landing/`` directory, named after a partner of the profiles. Only regular ``*.vpdc`` files are envelopes;
a symlink, FIFO, socket, device or directory named ``*.vpdc`` is refused with a reason and never followed,
opened or read. Everything is examined with ``lstat``/``scandir`` (no symlink is followed), so a dangling
link or a FIFO can neither crash nor hang a scan.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from envelope.format import special_file_kind
from partner_kit.profiles import partners
from workspace import Home

__all__ = ["Arrival", "Ignored", "LandingScan", "arrival_partner", "scan_landing"]

SUFFIX = ".vpdc"


@dataclass(frozen=True)
class Arrival:
    """A file waiting in ``landing/<partner>/``: ``special`` names what it is when it is not a regular file."""

    partner: str
    path: Path
    size: int
    mtime_ns: int
    inode: int
    special: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def fingerprint(self) -> str:
        """Identifies this file (folder, name, size, time, inode): a copy under another name, or the same name
        arriving again with other bytes, is another file with another fingerprint."""
        text = f"{self.partner}/{self.name}:{self.size}:{self.mtime_ns}:{self.inode}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


@dataclass(frozen=True)
class Ignored:
    """An entry of ``landing/`` that is no partner's folder, with the reason (logged, never followed)."""

    entry: str
    reason: str


@dataclass
class LandingScan:
    arrivals: list[Arrival]
    ignored: list[Ignored]


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def scan_landing(home: Home) -> LandingScan:
    """Every ``*.vpdc`` entry in a partner's landing folder (regular or not), and every other top-level entry
    of ``landing/`` with why it is ignored. Hidden files (a sender's partial write) are skipped silently."""
    root = home.landing()
    scan = LandingScan([], [])
    if not root.exists() and not root.is_symlink():
        return scan
    if not _is_real_dir(root):
        scan.ignored.append(Ignored("landing", "landing/ is not a real directory (a symlink is never followed)"))
        return scan
    known = set(partners())
    with os.scandir(root) as top:
        entries = sorted(top, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            scan.ignored.append(Ignored(entry.name, "a symbolic link: never followed"))
            continue
        if not entry.is_dir(follow_symlinks=False):
            scan.ignored.append(Ignored(entry.name, "a file outside any partner's folder"))
            continue
        if entry.name not in known:
            scan.ignored.append(Ignored(entry.name, "a folder that is no partner's"))
            continue
        with os.scandir(entry.path) as inner:
            files = sorted(inner, key=lambda e: e.name)
        for f in files:
            if f.name.startswith(".") or not f.name.endswith(SUFFIX):
                continue
            st = f.stat(follow_symlinks=False)
            kind = None if stat.S_ISREG(st.st_mode) else special_file_kind(Path(f.path)) or "a special file"
            scan.arrivals.append(Arrival(entry.name, Path(f.path), st.st_size, st.st_mtime_ns, st.st_ino, kind))
    return scan


def arrival_partner(home: Home, path: Path) -> str | None:
    """The partner whose landing folder ``path`` is in, or None when it is in no partner's folder.

    ``path`` must be ``<home>/landing/<partner>/<file name>`` lexically (no ``..``), with ``landing/`` and
    ``landing/<partner>/`` real directories and ``<partner>`` a partner of the profiles.
    """
    if ".." in Path(path).parts:  # resolved by the kernel through symlinks, never lexically
        return None
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(home.landing()))
    if path.parent.parent != root:
        return None
    partner = path.parent.name
    if partner not in partners() or not _is_real_dir(root) or not _is_real_dir(path.parent):
        return None
    return partner
