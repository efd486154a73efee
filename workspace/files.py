"""Writing files so that a reader (or a crash) never sees half of one.

Every file the system writes goes through here: the bytes go to a temporary file in the same directory,
are flushed to disk, and the temporary file is renamed over the target (or, with ``exclusive``, linked to
it so that an existing file is never replaced). On any error the temporary file is removed and the target
is untouched. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_copy", "atomic_path", "atomic_write", "atomic_writer", "private_dir", "process_lock"]


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only (0700); tighten it if it exists."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it becomes ``path``.

    For writers that want a file name (Parquet writers, ``DataFrame.to_csv``). The caller writes and closes
    the file inside the block.

    Args:
        path: the target.
        mode: permission bits of the new file (e.g. 0o600 for keys); default: the process umask.
        exclusive: never replace an existing target (raises ``FileExistsError``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, mode if mode is not None else _default_mode())
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # a writer may have recreated the file with default permissions
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _default_mode() -> int:
    """0666 less the process umask (read without changing it, so threads are safe); 0644 if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0o644


@contextmanager
def atomic_writer(path: Path, *, text: bool = False, mode: int | None = None, exclusive: bool = False,
                  encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """An open file whose content becomes ``path`` when the block ends without error."""
    with atomic_path(path, mode=mode, exclusive=exclusive) as tmp:
        f = open(tmp, "w", encoding=encoding, newline=newline) if text else open(tmp, "wb")  # noqa: SIM115
        with f:
            yield f
            f.flush()


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None, exclusive: bool = False) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_writer(path, mode=mode, exclusive=exclusive) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def atomic_copy(src: Path, dest: Path, *, mode: int | None = None) -> Path:
    """Copy ``src`` to ``dest`` atomically."""
    with atomic_writer(dest, mode=mode) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)
    return Path(dest)


@contextmanager
def process_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, waiting while another process holds it.

    The lock is ``flock`` on an open descriptor: the kernel releases it when its process ends however it ends
    (``kill -9`` included), so a dead holder never blocks the next one. Advisory: only code that takes the
    same lock is kept out.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
