"""Atomic, streaming writers.

CSV files are sorted by their native id (like an agency export sorted by primary key). Rows arrive chunk by chunk
with an integer sort key; each row is appended (key-prefixed) to one of a few bucket files by key range in a private
scratch directory, and at the end each bucket is read, sorted and appended to a temporary file next to the target,
which then replaces the target with ``os.replace``. A crash leaves the scratch directory (removed by the caller's
``finally``) and at worst a hidden temporary file, never a partial extract.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEY_WIDTH = 16


def atomic_write_text(path: Path, chunks) -> None:
    """Write an iterable of str chunks to ``path`` atomically (temp file in the same directory, then replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class SortedCsvSink:
    """One output CSV: rows sorted by an int64 key in ``[key_lo, key_hi)``."""

    def __init__(self, path: Path, columns: tuple[str, ...], sep: str, scratch: Path, key_lo: int, key_hi: int,
                 buckets: int, tag: str) -> None:
        self.path, self.columns, self.sep, self.tag = path, columns, sep, tag
        self.key_lo, self.key_hi = int(key_lo), int(key_hi)
        if self.key_hi >= 10 ** KEY_WIDTH:
            raise ValueError("sort key too wide")
        self.buckets = max(1, int(buckets))
        self._scratch = scratch
        self._files: dict[int, Path] = {}
        self.rows = 0

    def add(self, keys: np.ndarray, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        if list(frame.columns) != list(self.columns):
            raise ValueError(f"{self.path}: columns {list(frame.columns)} != layout {list(self.columns)}")
        keys = np.asarray(keys, dtype=np.int64)
        if keys.min() < self.key_lo or keys.max() >= self.key_hi:
            raise ValueError(f"{self.path}: sort key out of range")
        body = frame.to_csv(sep=self.sep, header=False, index=False, lineterminator="\n")
        lines = body.split("\n")[:-1]
        if len(lines) != len(frame):
            raise ValueError(f"{self.path}: a field contains a line break")
        prefix = [f"{k:0{KEY_WIDTH}d}" for k in keys.tolist()]
        bucket = (keys - self.key_lo) * self.buckets // (self.key_hi - self.key_lo)
        order = np.argsort(bucket, kind="stable")
        bs = bucket[order]
        cuts = np.flatnonzero(np.r_[True, bs[1:] != bs[:-1], True])
        for a, b in pairwise(cuts.tolist()):
            bi = int(bs[a])
            f = self._files.get(bi)
            if f is None:
                f = self._files[bi] = self._scratch / f"{self.tag}-{bi}.part"
            with open(f, "a", encoding="utf-8", newline="") as out:
                out.write("".join(prefix[i] + self.sep + lines[i] + "\n" for i in order[a:b].tolist()))
        self.rows += len(frame)

    def _sorted_chunks(self):
        yield self.sep.join(self.columns) + "\n"
        cut = KEY_WIDTH + len(self.sep)
        for bi in sorted(self._files):
            with open(self._files[bi], encoding="utf-8", newline="") as f:
                lines = f.read().split("\n")[:-1]
            lines.sort()
            yield "".join(line[cut:] + "\n" for line in lines)
            self._files[bi].unlink()

    def finish(self) -> int:
        atomic_write_text(self.path, self._sorted_chunks())
        return self.rows


TRUTH_SCHEMA = pa.schema([
    ("source", pa.string()), ("extract", pa.string()), ("record_id", pa.string()), ("person_id", pa.int64()),
    ("period", pa.string()), ("race_eth", pa.string()), ("sex", pa.string()), ("birth_year", pa.int32()),
    ("noise", pa.string()),
])


class TruthSink:
    """``truth.parquet`` written row group by row group into a temp file, replaced at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self._tmp, TRUTH_SCHEMA, compression="zstd")
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._writer.write_table(pa.Table.from_pandas(frame, schema=TRUTH_SCHEMA, preserve_index=False))
            self.rows += len(frame)

    def finish(self) -> int:
        self._writer.close()
        with open(self._tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self._tmp, self.path)
        return self.rows

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # best effort on the error path
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
