"""Unique, random-looking native record ids.

Each id space hands out numbers ``lo + perm(counter)`` where ``perm`` is a keyed pseudorandom permutation of
``[0, size)`` (a balanced Feistel network with cycle walking). The counter advances in generation order, so ids
are unique across chunks and deterministic for a seed, while sorting a file by id shuffles it: row order
carries no information about which persons are the same across sources.
"""

from __future__ import annotations

import hashlib

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray, k: np.uint64) -> np.ndarray:
    x = (x ^ k) * _M1
    x ^= x >> np.uint64(31)
    x *= _M2
    x ^= x >> np.uint64(29)
    x *= _M3
    x ^= x >> np.uint64(32)
    return x


class IdSpace:
    """A keyed permutation of ``[0, size)`` consumed in order by :meth:`take`."""

    ROUNDS = 4

    def __init__(self, name: str, size: int, seed: int, lo: int = 0) -> None:
        if size < 2:
            raise ValueError("id space too small")
        self.name, self.size, self.lo = name, int(size), int(lo)
        bits = max(2, int(size - 1).bit_length())
        self._half = (bits + 1) // 2
        self._mask = np.uint64((1 << self._half) - 1)
        digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
        self._keys = [np.uint64(int.from_bytes(digest[8 * i: 8 * i + 8], "little")) for i in range(self.ROUNDS)]
        self.used = 0

    def _round_trip(self, v: np.ndarray) -> np.ndarray:
        h = np.uint64(self._half)
        left, right = v >> h, v & self._mask
        for k in self._keys:
            left, right = right, left ^ (_mix(right, k) & self._mask)
        return (left << h) | right

    def permute(self, idx: np.ndarray) -> np.ndarray:
        v = self._round_trip(idx.astype(np.uint64))
        out = v >= np.uint64(self.size)
        while out.any():  # cycle walking: stays a permutation of [0, size)
            v[out] = self._round_trip(v[out])
            out = v >= np.uint64(self.size)
        return v.astype(np.int64)

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` ids (int64, ``lo`` added)."""
        if self.used + n > self.size:
            raise ValueError(f"id space {self.name!r} exhausted ({self.size:,} ids): population too large")
        idx = np.arange(self.used, self.used + n, dtype=np.uint64)
        self.used += n
        return self.permute(idx) + self.lo
