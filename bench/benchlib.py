"""Shared helpers for the benchmarks (bench-only; never imported by the project or its tests).

* :func:`machine` describes where a number was measured (cores, CPU, load, Python, library versions).
* :func:`run_child` runs a measurement in a fresh Python process and returns the one JSON object it
  prints last on stdout, so every peak RSS (``ru_maxrss``) belongs to that measurement alone.
* :func:`child_usage` is what a child reports about itself: peak RSS and CPU seconds so far.
* :func:`pin_one_core` restricts the calling process (and the threads it starts later) to one CPU.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"

if str(REPO) not in sys.path:  # the project's packages, when run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))


def log(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON results."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    return {
        "date": date.today().isoformat(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "mem_gib": _mem_total_gib(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        # set here: no .pyc is written, so every import compiles from source (slower imports)
        "PYTHONDONTWRITEBYTECODE": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "libs": {p: _version(p) for p in ("pyarrow", "pandas", "cryptography", "duckdb", "great-expectations",
                                          "jellyfish")},
    }


def pin_one_core() -> int:
    """Pin this process to one CPU (the lowest it may use); returns that CPU's number."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def peak_rss_mib() -> float:
    """Peak RSS of this process so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def vm_hwm_mib() -> float | None:
    """Peak RSS of this process's own address space (/proc/self/status VmHWM).

    Unlike ``ru_maxrss``, which after fork+exec starts from the parent's RSS at the fork, VmHWM belongs to
    the new program image only. Both are reported; the drivers keep themselves small so they agree.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """Samples this process's RSS (/proc/self/statm) every ``interval`` s, to tell which stage holds the peak."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_evt = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        try:
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return
        self.samples.append((time.perf_counter(), rss))

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self._sample()
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()
        self._sample()

    def peak_between(self, t0: float, t1: float) -> float | None:
        vals = [r for t, r in self.samples if t0 <= t <= t1]
        return round(max(vals) / 2**20, 1) if vals else None


def child_usage() -> dict[str, float | None]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mib": round(ru.ru_maxrss / 1024, 1), "vm_hwm_mib": vm_hwm_mib(),
            "cpu_seconds_process": round(ru.ru_utime + ru.ru_stime, 3)}


def last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object on stdout")


def run_child(argv: list[str], *, env: dict[str, str] | None = None, pin_core: int | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run ``argv`` (a Python command) in a fresh process; return its last stdout JSON object.

    The child's stderr passes through (progress). Raises RuntimeError with the exit code if it fails.
    ``pin_core`` pins the child to that CPU before it starts (like ``taskset -c``).
    """
    preexec = (lambda: os.sched_setaffinity(0, {pin_core})) if pin_core is not None else None
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=REPO,
                          preexec_fn=preexec, timeout=timeout, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:3]))} ... exited with {proc.returncode}: {proc.stdout[-2000:]}")
    out = last_json(proc.stdout)
    out.setdefault("process_wall_seconds", round(wall, 3))
    return out


def profile_top(prof: Any, n: int = 25) -> list[dict[str, Any]]:
    """The ``n`` functions with the most own time (cProfile ``tottime``), as JSON-able rows."""
    import pstats

    st = pstats.Stats(prof)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})" if line else func, "calls": nc,
                     "tottime": round(tt, 3), "cumtime": round(ct, 3)})
    rows.sort(key=lambda r: -r["tottime"])
    return rows[:n]


def rate(n: float, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def demo_keys(home_root: Path) -> None:
    """Every party's demo keys under a VPDC_HOME (each in its own folder), partners' public keys registered."""
    from envelope.keys import WarehouseKeyRing, init_demo_keys
    from partner_kit.profiles import partners
    from workspace import Home

    made = init_demo_keys(Home(Path(home_root)), partners())
    for partner, public in made["public_keys"].items():
        WarehouseKeyRing(Home(Path(home_root)).keys).register_partner_key(partner, public)
