"""The release gate (the final check of a file) and the release manifest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from governance.disclosure.kanon import _classes
from governance.disclosure.rules import DisclosureError, DisclosureRules, _plural
from governance.disclosure.tables import _layout, _lines_with_one, _recoverable, _whole_counts
from workspace.files import atomic_write


@dataclass(frozen=True)
class ReleaseCheck:
    """The verdict of :func:`check_release` on one file. ``failures`` name columns and rules, never values."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "failures": list(self.failures)}


def check_release(df: pd.DataFrame, *, kind: Literal["aggregate", "record"], rules: DisclosureRules,
                  quasi_identifiers: Sequence[str] = (), count_cols: Sequence[str] = (),
                  by: Sequence[str] | None = None, total_col: str | None = None,
                  total_row: Mapping[str, object] | None = None, entity: str | None = None,
                  dominance: Sequence[tuple[str, str]] = ()) -> ReleaseCheck:
    """The final gate, run on every file just before release. Returns every failure, not just the first.

    For any file: no column may be forbidden by ``rules`` (``person_key``, ``enc_*``, names, dates of
    birth, SSNs, ...).

    For ``kind="aggregate"`` (``count_cols`` required; ``by``, ``total_col``, ``total_row`` as in
    :func:`suppress_counts`): counts are whole and non-negative; no published count is in
    ``1 .. min_cell - 1``; no row or column holds exactly one suppressed (missing) cell; and no
    suppressed cell can be solved exactly from the lines together.

    For ``kind="record"`` (``quasi_identifiers`` required): each quasi-identifier is present and every
    combination of their values occurs at least ``rules.k_anonymity`` times (in that many distinct
    ``entity`` values, when rows repeat per person).

    ``dominance`` lists (sum column, share column) pairs of an aggregate file: a published sum whose
    ``rules.dominance_n`` largest contributors hold a share of at least ``rules.dominance_k`` of it
    (computed before release by :func:`check_dominance` into the share column) fails.

    Fails closed: missing declarations (no count columns, no quasi-identifiers) are failures.

    Returns:
        ``ReleaseCheck(passed, failures, kind)``.

    Raises:
        DisclosureError: for an unknown ``kind`` (a programming error, not a data problem).
    """
    if kind not in ("aggregate", "record"):
        raise DisclosureError(f"unknown release kind {kind!r}: use 'aggregate' or 'record'")
    failures: list[str] = []
    for col in df.columns:
        if rules.forbids(col):
            failures.append(f"forbidden column {str(col)!r}: identifiers, linkage keys and encodings never "
                            "leave the warehouse (rule: forbidden_columns); drop it or replace person_key "
                            "with a study pseudonym")

    if kind == "aggregate":
        failures += _aggregate_failures(df, count_cols, rules, by, total_col, total_row)
        for value_col, share_col in dominance:
            if share_col not in df.columns:
                failures.append(f"dominance: no share column {share_col!r} for {value_col!r} (fail closed)")
                continue
            shares = pd.to_numeric(df[share_col], errors="coerce")
            published = df[value_col].notna() if value_col in df.columns else shares.notna()
            bad = int(((shares >= rules.dominance_k - 1e-9) & published).sum())
            if bad:
                failures.append(f"column {value_col!r}: {_plural(bad, 'published sum')} where the "
                                f"{rules.dominance_n} largest contributors hold at least {rules.dominance_k:.0%} "
                                f"(rule: dominance n={rules.dominance_n}, k={rules.dominance_k}); suppress it")
    else:
        failures += _record_failures(df, quasi_identifiers, rules, entity)
    return ReleaseCheck(passed=not failures, failures=failures, kind=kind)


def _aggregate_failures(df: pd.DataFrame, count_cols: Sequence[str], rules: DisclosureRules,
                        by: Sequence[str] | None, total_col: str | None,
                        total_row: Mapping[str, object] | None) -> list[str]:
    if not count_cols:
        return [("aggregate file without declared count columns: pass count_cols so small cells can be "
                 "checked (fail closed)")]
    try:
        layout = _layout(df, count_cols, by, total_col, total_row)
        values, hidden = _whole_counts(df, layout.cols, allow_missing=True)
    except DisclosureError as exc:
        return [f"aggregate layout: {exc}"]
    failures = []
    small = (~hidden) & (values >= 1) & (values < rules.min_cell)
    per_col = small.reshape(layout.n_rows, layout.n_cols).sum(axis=0)
    for col, n in zip(layout.cols, per_col):
        if n:
            failures.append(f"column {col!r}: {_plural(int(n), 'published cell')} between 1 and "
                            f"{rules.min_cell - 1} (rule: min_cell={rules.min_cell}); run suppress_counts")
    single: dict[str, int] = {}
    for k in _lines_with_one(layout, hidden):
        kind = layout.lines[k][2]
        single[kind] = single.get(kind, 0) + 1
    for kind, n in sorted(single.items()):
        failures.append(f"complementary suppression: {_plural(n, kind + ' line')} with exactly one "
                        "suppressed cell, which the line total would reveal; run suppress_counts")
    if not single:
        exposed = _recoverable(layout, hidden)
        if exposed.size:
            failures.append(f"complementary suppression: {_plural(int(exposed.size), 'suppressed cell')} "
                            "can be recovered exactly by combining row and column totals; run suppress_counts")
    return failures


def _record_failures(df: pd.DataFrame, quasi_identifiers: Sequence[str], rules: DisclosureRules,
                     entity: str | None = None) -> list[str]:
    qis = list(quasi_identifiers)
    if not qis:
        return [("record-level file without declared quasi-identifiers: pass quasi_identifiers so "
                 "k-anonymity can be checked (fail closed)")]
    missing = [q for q in qis if q not in df.columns]
    if missing:
        return [f"quasi-identifier {q!r} is not a column of the file" for q in missing]
    if len(df) == 0:
        return []
    if entity is not None and entity not in df.columns:
        return [f"entity column {entity!r} is not a column of the file"]
    _, sizes = _classes(df, qis, entity)
    small = sizes[sizes < rules.k_anonymity]
    if small.size:
        classes = _plural(int(small.size), "equivalence class", "equivalence classes")
        unit = "persons" if entity else "records"
        return [(f"k-anonymity on ({', '.join(qis)}): {classes} have fewer than {rules.k_anonymity} {unit} "
                 f"(rule: k_anonymity={rules.k_anonymity}); run enforce_k_anonymity")]
    return []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MANIFEST_SCHEMA = "vpdc-release-manifest/1"


def release_manifest(files: Sequence[Path], *, study_id: str, request_id: str,
                     checks: Mapping[str, ReleaseCheck], rules: DisclosureRules, now: datetime) -> dict[str, Any]:
    """The record of one release: each file's SHA-256 and size, the rules applied, each check's verdict.

    Recipients verify the checksums; auditors see which rules were in force. Refuses (fails closed)
    to describe a file that has no check, or whose check failed, so a manifest's existence means
    every file in it passed.

    Args:
        files: the released files.
        study_id, request_id: the approved request the release belongs to.
        checks: :class:`ReleaseCheck` per file, keyed by file name (``path.name``).
        rules: the combined rules the checks used.
        now: the release time, timezone-aware (the clock is passed in).

    Raises:
        DisclosureError: naive ``now``, duplicate names, a missing file, or a missing or failed check.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise DisclosureError("release_manifest needs a timezone-aware `now`")
    paths = [Path(f) for f in files]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise DisclosureError("two released files share a name; manifest entries are keyed by name")
    entries = []
    for path in paths:
        if not path.is_file():
            raise DisclosureError(f"{path.name}: not a file; nothing to release")
        check = checks.get(path.name)
        if check is None:
            raise DisclosureError(f"{path.name}: no disclosure check; run check_release on it first")
        if not check.passed:
            raise DisclosureError(f"{path.name}: failed its disclosure check ({len(check.failures)} "
                                  "failures); fix the file and check it again")
        entries.append({"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path),
                        "check": check.to_dict()})
    return {"schema": MANIFEST_SCHEMA, "study_id": study_id, "request_id": request_id,
            "created_at": now.isoformat(), "rules": rules.to_dict(), "files": entries}


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as JSON atomically, never over an existing manifest.

    The JSON goes to a temporary file in the same directory, is flushed to disk, then hard-linked to
    ``path``: readers see the whole manifest or none, and a second release cannot silently replace
    the record of the first (``FileExistsError``).
    """
    return atomic_write(Path(path), json.dumps(manifest, indent=2, sort_keys=True) + "\n", exclusive=True)
