"""Run every attack on one linkage zone and grade it: shared by the benchmark, the test and the experiments.

The attacks (:data:`ATTACKS`) see only the zone file and the reference; :func:`grade` hands their guesses
to the scorer with the truth. ``combined`` is what an attacker holds after running them all: for each token
the most confident guess of any attack (Bloom, side tokens, frequency), plus the profile attack's birth
years and ZIPs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.attacks import bloom, frequency, profiles, side_tokens
from bench.attacks.common import Guesses
from bench.attacks.reference import Reference
from bench.attacks.score import score

__all__ = ["ATTACKS", "grade", "run_attacks"]

ATTACKS: dict[str, Callable[..., Guesses]] = {
    "frequency": frequency.attack,
    "side_tokens": side_tokens.attack,
    "bloom": bloom.attack,
    "profiles": profiles.attack,
}


def run_attacks(linkage_db: Path, reference: Reference, *, only: tuple[str, ...] | None = None,
                bloom_seeds: int = 50) -> tuple[dict[str, Guesses], dict[str, float]]:
    """Every attack (or ``only`` those) on ``linkage_db``; returns (guesses by attack, CPU seconds by attack)."""
    guesses: dict[str, Guesses] = {}
    seconds: dict[str, float] = {}
    for name, fn in ATTACKS.items():
        if only and name not in only:
            continue
        if name == "profiles" and reference.profiles is None:
            continue
        t0 = time.process_time()
        guesses[name] = fn(linkage_db, reference, seeds=bloom_seeds) if name == "bloom" else fn(linkage_db, reference)
        seconds[name] = round(time.process_time() - t0, 2)
    names = [guesses[a] for a in ("bloom", "side_tokens", "frequency") if a in guesses]
    if names and "profiles" in guesses:
        combined = names[0]
        for g in names[1:]:  # per token, the most confident guess of any attack
            combined = combined.merged(g, "combined")
        guesses["combined"] = combined.merged(guesses["profiles"], "combined")
    return guesses, seconds


def grade(linkage_db: Path, truth: pd.DataFrame, guesses: dict[str, Guesses],
          seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The scorer's report for each attack, with the attack's CPU seconds and notes."""
    out = {}
    for name, g in guesses.items():
        r = score(linkage_db, truth, g)
        r["cpu_seconds"] = (seconds or {}).get(name)
        r["notes"] = _jsonable(g.notes)
        out[name] = r
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x
