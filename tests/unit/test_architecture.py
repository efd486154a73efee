"""The tree is the architecture: zones in the order data flows, no import circle, no import running back up,
light dependencies where the kit runs, and shells (CLI, Dagster) that hold no rule of their own.

The import graph is read from the source (every ``import``, including those inside functions), so a lazy
import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Packages in the order data flows; a module may import its own package and those before it, never after.
LAYERS: list[tuple[str, ...]] = [
    ("workspace",),             # the VPDC_HOME layout and file helpers: standard library only
    ("envelope",),              # the contract between kit and landing zone
    ("partner_kit",),           # zone 1, runs at the agency
    ("synthetic",),             # stands in for the agencies' own systems
    ("landing",),               # zone 2
    ("linkage",),               # zone 3
    ("governance",),            # beside every zone, and zone 5 (outputs)
    ("evaluation",),            # program evaluation over zone 4, gated by governance
    ("dashboard",),             # the public dashboard: a static site from the published indicators
    ("scoring",),               # scoring against the synthetic truth (engineers' harness; the custodian's secret)
    ("orchestration",),         # the Dagster shell
    ("vpdc",),                  # the CLI shell
]
LAYER_OF = {pkg: i for i, group in enumerate(LAYERS) for pkg in group}
#: What each package may import besides the standard library and the packages below it.
THIRD_PARTY: dict[str, set[str] | None] = {
    "workspace": set(),
    "envelope": {"cryptography", "pyarrow"},
    "partner_kit": {"cryptography", "pyarrow", "numpy", "jellyfish", "typer", "rich"},
    "synthetic": {"numpy", "pandas", "pyarrow"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in LAYER_OF:
        base = ROOT / pkg
        for path in base.rglob("*.py") if base.is_dir() else []:
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = module.split(".")[: -node.level or None] if not path.name == "__init__.py" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _internal(name: str) -> str | None:
    """The project module an import names (the longest known prefix), or None for a third-party one."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


GRAPH = {m: {t for n in _imports(p, m) if (t := _internal(n)) and t != m} for m, p in MODULES.items()}


def test_the_tree_has_the_zones_of_the_design():
    assert {"workspace", "envelope", "partner_kit", "landing", "linkage", "governance", "orchestration",
            "vpdc"} <= {m.split(".")[0] for m in MODULES}
    assert "linkage.encoding" not in MODULES and "governance.transfer" not in MODULES and "vpdc.config" not in MODULES


def test_no_import_runs_back_up_the_zones():
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                    if LAYER_OF[t.split(".")[0]] > LAYER_OF[m.split(".")[0]])
    assert not upward, "imports that run back up: " + "; ".join(upward)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), package __init__ re-exports excluded."""
    graph = {m: {t for t in ts if not MODULES[t].name == "__init__.py"} for m, ts in GRAPH.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert _cycles() == []


#: packages that run the pipeline: none may reach the key custodian's linkage secret (ADR 0010)
PIPELINE_PACKAGES = ("landing", "linkage", "governance", "evaluation", "dashboard", "orchestration")


def test_no_pipeline_package_can_reach_the_linkage_secret():
    """Scoring against the synthetic truth needs the custodian's linkage secret, so it lives in ``scoring``; no
    package of the pipeline imports it, the custodian's key ring, or a module that does."""
    reach = {m for m, p in MODULES.items() if {"envelope.keys.Custodian", "scoring"} & _imports(p, m)
             or any(t.startswith("scoring") for t in GRAPH[m])}
    bad = sorted(m for m in reach if m.split(".")[0] in PIPELINE_PACKAGES)
    assert not bad, f"pipeline modules that reach the custodian's secret: {bad}"
    # and the check sees one: scoring itself does
    assert "scoring.linkage" in reach


@pytest.mark.parametrize("package", sorted(THIRD_PARTY))
def test_light_packages_import_only_their_declared_dependencies(package):
    allowed = THIRD_PARTY[package] | {p for p in LAYER_OF if LAYER_OF[p] <= LAYER_OF[package]}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = sorted({f"{m}: {n}" for m, p in MODULES.items() if m.split(".")[0] == package
                  for n in _imports(p, m) if n.split(".")[0] not in allowed | stdlib})
    assert not bad, bad


# -------------------------------------------------------------------------------------------- shells
SHELLS = sorted(m for m in MODULES if m.split(".")[0] in ("vpdc", "orchestration"))
#: A shell calls the library; these in a shell mean a rule (a query, a file move, a threshold) lives there.
RULE_MARKERS = {
    "imports": {"duckdb", "sqlalchemy", "shutil", "great_expectations", "splink"},
    "calls": {"query", "execute", "rmtree", "move", "replace", "unlink", "rename"},
}


def _rule_smells(module: str) -> list[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    smells = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            smells += [f"imports {n}" for n in names if n.split(".")[0] in RULE_MARKERS["imports"]]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in RULE_MARKERS["calls"] and not (
                    isinstance(node.func.value, ast.Name) and node.func.value.id in ("str", "text", "t")):
            smells.append(f"calls .{node.func.attr}() at line {node.lineno}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                ("select " in node.value.lower() and " from " in node.value.lower()):
            smells.append(f"SQL at line {node.lineno}")
    return smells


@pytest.mark.parametrize("module", SHELLS)
def test_shells_hold_no_rule_the_library_does_not(module):
    """No SQL, database session, file move or deletion in the CLI or the Dagster definitions: those are rules,
    and rules live once, in the library, where the CLI, Dagster and the portal call them."""
    allowed = {  # the one place each shell must touch what it shells: documented exceptions
        "orchestration.runner": {"imports shutil"},
    }.get(module, set())
    smells = [s for s in _rule_smells(module) if s not in allowed]
    assert not smells, f"{module}: {smells}"


def test_the_rule_check_sees_a_rule_in_a_shell(tmp_path, monkeypatch):
    """The check above is not vacuous: a shell with a query and a file move is caught."""
    fake = tmp_path / "fake_shell.py"
    fake.write_text("import duckdb, shutil\n"
                    "def f(con, a, b):\n    con.execute('select count(*) from raw.loads')\n    shutil.move(a, b)\n")
    monkeypatch.setitem(MODULES, "vpdc.fake_shell", fake)
    smells = _rule_smells("vpdc.fake_shell")
    assert "imports duckdb" in smells and "imports shutil" in smells
    assert any(s.startswith("calls .execute") for s in smells) and any(s.startswith("SQL") for s in smells)
    assert any(s.startswith("calls .move") for s in smells)
