"""The gate every study output passes: the policy (audited either way), the strictest partner's disclosure rules,
the study's linkage pin, the last check before a file is written, and the write of a record-level release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from governance.catalog import quasi_identifiers
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import OutputLevel, Partner
from governance.registry.policy import PolicyRefused, authorize
from governance.registry.workflow import record_refusal

__all__ = ["ExportResult", "ReleaseRequestError", "authorize_output", "check_release_request", "gate_release",
           "linkage_state", "refuse_request", "release_records", "study_key"]


class ReleaseRequestError(ValueError):
    """A release was asked for with an invalid option; the message names the option and the rule."""

    exit_code = 2


def check_release_request(registry: Registry, *, study_id: str, actor: str, now: datetime, action: str,
                          warehouse_db: Path, mart_schema: str = "analytics", program: str | None = None,
                          window_days: int | None = None, period: tuple[Any, Any] | None = None,
                          by: tuple[str, ...] | None = None, outcomes: tuple[str, ...] | None = None,
                          dataset: str | None = None, columns: tuple[str, ...] | None = None) -> None:
    """Refuse a release whose options are not what the marts hold, before anything is read or written.

    Every option is checked against a strict rule (the study id names a folder; the program and the window
    must exist in the cohort mart; dates ordered; breakdowns, outcomes and columns known), never echoed
    beyond a short, escaped excerpt. The refusal is audited.

    Raises:
        ReleaseRequestError: naming each option that breaks its rule.
    """
    from governance.catalog import catalogue
    from governance.defaults import OUTCOME_MEASURES, SUMMARY_BREAKDOWNS
    from governance.outputs.ledger import STUDY_ID

    def show(v: Any) -> str:
        return repr(str(v)[:40])

    problems = []
    if not isinstance(study_id, str) or not STUDY_ID.fullmatch(study_id):
        problems.append(f"study id {show(study_id)}: 3-64 letters, digits, '.', '_' or '-' (it names a folder)")
    if program is not None or window_days is not None:
        with duckdb.connect(str(warehouse_db), read_only=True) as con:
            have = con.execute(f"select distinct program, window_days from {mart_schema}.program_cohorts").fetchall()
        programs, windows = sorted({p for p, _ in have if p}), sorted({w for _, w in have if w is not None})
        if program is not None and program not in programs:
            problems.append(f"--program {show(program)}: the cohort mart holds {', '.join(programs) or 'no program'}")
        if window_days is not None and window_days not in windows:
            problems.append(f"--window-days {show(window_days)}: the cohort mart holds windows of "
                            f"{', '.join(map(str, windows)) or 'none'} days")
    if period is not None and period[0] > period[1]:
        problems.append("--from is after --to")
    if by is not None:
        bad = [b for b in by if b not in SUMMARY_BREAKDOWNS]
        if bad or len(set(by)) != len(by):
            problems.append(f"--by {', '.join(map(show, bad)) or 'repeated'}: one of {', '.join(SUMMARY_BREAKDOWNS)}, "
                            "each at most once")
    if outcomes is not None:
        bad = [o for o in outcomes if o not in OUTCOME_MEASURES]
        if bad or not outcomes:
            problems.append(f"--outcome {', '.join(map(show, bad)) or '(none)'}: one of {', '.join(OUTCOME_MEASURES)}")
    if columns is not None and dataset is not None:
        known = catalogue().get(dataset, {})
        bad = [c for c in columns if c not in known]
        if bad:
            problems.append(f"--column {', '.join(map(show, bad[:5]))}: not a releasable column of {dataset}")
    if problems:
        reason = "; ".join(problems)
        record_refusal(registry, actor=actor, action=f"{action}.request", subject=str(study_id)[:64].strip(),
                       reason=reason, now=now)
        raise ReleaseRequestError(f"refused: {reason}")


@dataclass
class ExportResult:
    study_id: str
    files: list[str]
    manifest: str
    rows: int
    suppressed_rows: int
    generalised: dict[str, Any] = field(default_factory=dict)



def linkage_state(warehouse_db: Path, pinned_run: str | None = None) -> dict[str, Any]:
    """The person-key version the analytics zone holds now, and what changed since ``pinned_run``.

    Read from ``raw.linkage_runs`` and ``raw.person_key_events`` (exported with the person map): run ids,
    times and counts only. ``current_run`` is None when no linkage run was exported yet.
    """
    state: dict[str, Any] = {"current_run": None, "pinned_run": pinned_run, "merged_since_pin": 0,
                             "split_since_pin": 0}
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        have = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                          "where table_schema = 'raw'").fetchall()}
        if "linkage_runs" not in have:
            return state
        row = con.execute("select linkage_run_id from raw.linkage_runs order by finished_at desc, linkage_run_id desc "
                          "limit 1").fetchone()
        state["current_run"] = row[0] if row else None
        if pinned_run and pinned_run != state["current_run"] and "person_key_events" in have:
            for event, n in con.execute(
                    "select event, count(*) from raw.person_key_events where event in ('merged', 'split') and "
                    "linkage_run_id in (select linkage_run_id from raw.linkage_runs where finished_at > "
                    "(select finished_at from raw.linkage_runs where linkage_run_id = ?)) group by 1",
                    [pinned_run]).fetchall():
                state[f"{event}_since_pin"] = int(n)
    return state


def refuse_request(registry: Registry, study_id: str, actor: str, now: datetime, action: str, reason: str) -> None:
    """Refuse a release request (audited) with a reason that names what is wrong."""
    record_refusal(registry, actor=actor, action=f"{action}.request", subject=str(study_id)[:64], reason=reason, now=now)
    raise ReleaseRequestError(f"refused: {reason}")


def authorize_output(registry: Registry, *, study_id: str, actor: str, now: datetime, level: OutputLevel,
               columns: list[tuple[str, str]], action: str, refused_as: str,
               detail: dict[str, Any], warehouse_db: Path, repin: bool = False) -> tuple[Any, dict[str, Any]]:
    """The gate, audited either way; returns the strictest disclosure rules of the partners involved and
    the study's linkage pin.

    ``refused_as`` is the action as declared in ``roles.ACTIONS`` (``export.cohort``, ``export.summary``,
    ``study.run``): the actor must hold its permission. The partners' disclosure rules are read only from
    rows the audit covers, and a new pin is bound to the ``<action>.authorized`` entry that records it.

    The first output of a study pins the linkage run (person-key version) it was made from. A later
    output made after merges or splits of person keys is refused unless ``repin`` accepts the new
    linkage (audited as ``study.repinned``): study pseudonyms derive from person keys, so a merge or
    split changes who is who between two releases of the same study.
    """
    from governance.disclosure import DisclosureRules, combine
    from governance.registry.models import Request

    try:
        with registry.transaction() as s:
            scope = authorize(s, study_id, at=now, actor=actor, output_level=level, columns=columns,
                              action=refused_as)
            partners = s.query(Partner).filter(Partner.id.in_(scope.sources)).all()
            untrusted = audit.row_problems(s, partners)
            if untrusted:
                raise PolicyRefused(f"{study_id}: refused: " + "; ".join(untrusted[:3]) +
                                    " (the gate decides only from audited state)")
            rules = combine([DisclosureRules(min_cell=p.min_cell, k_anonymity=p.k_anonymity)
                             for p in partners] or [DisclosureRules()])
            req = s.query(Request).filter(Request.study_id == study_id).one()
            linkage = linkage_state(warehouse_db, req.linkage_run_id)
            current, pinned = linkage["current_run"], req.linkage_run_id
            changed = linkage["merged_since_pin"] + linkage["split_since_pin"]
            if current and pinned and current != pinned and changed:
                if not repin:
                    raise PolicyRefused(
                        f"{study_id}: refused: person keys changed since the study's pinned linkage run {pinned} "
                        f"({linkage['merged_since_pin']} merges, {linkage['split_since_pin']} splits up to run "
                        f"{current}); outputs would not line up with earlier ones. Repin to accept the new "
                        "linkage (--repin; audited)")
                audit.append(s, actor=actor, action="study.repinned", subject=study_id, at=now,
                             detail={"from_run": pinned, "to_run": current, "merged": linkage["merged_since_pin"],
                                     "split": linkage["split_since_pin"]})
                pinned = None
            pin = bool(current and not pinned)
            if pin:
                req.linkage_run_id, req.linkage_pinned_at = current, now
                linkage["pinned_run"] = current
            audit.append(s, actor=actor, action=f"{action}.authorized", subject=study_id, at=now,
                         detail={"columns": len(columns), "output_level": level.value,
                                 "linkage_run": linkage["pinned_run"], **detail}, rows=[req] if pin else [])
    except PolicyRefused as exc:
        record_refusal(registry, actor=actor, action=refused_as, subject=study_id, reason=str(exc), now=now)
        raise
    return rules, linkage


def gate_release(registry: Registry, check: Any, *, study_id: str, actor: str, action: str, now: datetime) -> None:
    """The last gate before a file is written: its disclosure check, then the policy asked again (a request
    revoked or expired while the file was prepared releases nothing). A refusal is audited.

    Raises:
        PolicyRefused: naming the failed checks or the reasons the request is no longer active.
    """
    from governance.registry.policy import decide

    if not check.passed:
        reason = "release check failed: " + "; ".join(check.failures)
    else:
        with registry.read() as s:
            scope = decide(s, study_id, at=now)
        if scope.active:
            return
        reason = "refused: no longer active at release: " + "; ".join(scope.reasons)
    record_refusal(registry, actor=actor, action=f"{action}.release", subject=study_id, reason=reason, now=now)
    raise PolicyRefused(f"{study_id}: {reason}")


def release_records(df: pd.DataFrame, *, registry: Registry, study_id: str, actor: str, now: datetime, rules: Any,
                    dataset: str, generalisers: dict[str, list[Any]], outputs_dir: Path, stem: str, kind: str,
                    action: str, spec: dict[str, Any], manifest_extra: dict[str, Any] | None = None,
                    extra_quasi_identifiers: tuple[str, ...] = ()) -> ExportResult:
    """k-anonymity, the final release check, then the file (a new version), its manifest, audited before and after.

    Everything a reader could join this file with counts: the study's earlier record-level files share its
    pseudonym, so their columns are quasi-identifiers of this one too (a person's rows there, as one value);
    and no person may be joinable one to one with another study's file on the columns both carry.

    Raises:
        PolicyRefused: the final check, the policy asked again, or a join with another study's file (audited).
    """
    from governance.disclosure import check_release, enforce_k_anonymity, release_manifest
    from governance.outputs import ledger

    qis = [c for c in quasi_identifiers(dataset) if c in df.columns] + \
        [c for c in extra_quasi_identifiers if c in df.columns]
    joined, carried = _with_earlier_releases(df, registry, study_id, outputs_dir)
    # k counts persons, not rows: an extract has several events per person
    joined, kreport = enforce_k_anonymity(joined, qis + carried, rules,
                                          {q: g for q, g in generalisers.items() if q in qis}, entity="study_person_id")
    check = check_release(joined, kind="record", rules=rules, quasi_identifiers=qis + carried, entity="study_person_id")
    df = joined.drop(columns=carried)
    linkable = _linkable_to_other_studies(df, registry, study_id, outputs_dir, rules)
    if linkable:
        reason = (f"{linkable} persons of this file could be joined one to one with another study's file on the "
                  "columns both carry; release fewer or coarser columns")
        record_refusal(registry, actor=actor, action=f"{action}.release", subject=study_id, reason=reason, now=now)
        raise PolicyRefused(f"{study_id}: refused: {reason}")
    gate_release(registry, check, study_id=study_id, actor=actor, action=action, now=now)
    intent = ledger.begin(registry, study_id=study_id, kind=kind, spec=spec, stem=stem, outputs_dir=outputs_dir,
                          actor=actor, now=now, action=action)
    kinfo = kreport.to_dict()

    def manifest() -> dict[str, Any]:
        m = release_manifest([intent.path], study_id=study_id, request_id=study_id,
                             checks={intent.path.name: check}, rules=rules, now=now)
        return m | {"version": intent.version, "k_anonymity": kinfo, "joined_with_earlier_releases": len(carried),
                    **(manifest_extra or {})}

    ledger.write(intent, df, manifest)
    ledger.complete(registry, intent, study_id=study_id, kind=kind, cells=[],
                    columns=[c for c in df.columns if c != "study_person_id"],
                    persons=int(df["study_person_id"].nunique()), actor=actor, now=now,
                    detail={"rows": int(len(df))})
    return ExportResult(study_id, [str(intent.path)], str(intent.manifest), int(len(df)),
                        int(kinfo["records_suppressed"]), json.loads(json.dumps(kinfo, default=str)))


def _person_signature(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Per study person, everything a file says about them on ``columns``, as one value (rows sorted)."""
    rows = pd.Series(["\x1f".join(map(str, r)) for r in frame[columns].itertuples(index=False)], index=frame.index,
                     dtype=object)
    return rows.groupby(frame["study_person_id"].astype(str)).agg(lambda s: "\x1e".join(sorted(s)))


def _with_earlier_releases(df: pd.DataFrame, registry: Registry, study_id: str,
                           outputs_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """``df`` with, per person, what each earlier record-level file of the study says about them (joinable on the
    study pseudonym): those columns are quasi-identifiers of this release."""
    from governance.outputs import ledger

    carried = []
    for r in ledger.earlier(registry, study_id=study_id, kinds=("cohort", "study")):
        path = outputs_dir / study_id / r.file
        if not path.is_file():
            continue
        earlier = pd.read_csv(path, dtype=str)
        if "study_person_id" not in earlier.columns:
            continue
        name = f"__{r.kind}_v{r.version}"
        sig = _person_signature(earlier, [c for c in earlier.columns if c != "study_person_id"]).rename(name)
        df = df.merge(sig, left_on="study_person_id", right_index=True, how="left")
        df[name] = df[name].fillna("(not in that file)")
        carried.append(name)
    return df, carried


def _linkable_to_other_studies(df: pd.DataFrame, registry: Registry, study_id: str, outputs_dir: Path,
                               rules: Any) -> int:
    """Persons of ``df`` whose values on the columns shared with another study's released file are unique in both
    files (a one-to-one join: the other study's pseudonym and columns attach to them)."""
    from governance.registry.models import Release

    with registry.read() as s:
        others = list(s.query(Release).filter(Release.study_id != study_id, Release.kind.in_(("cohort", "study")),
                                              Release.state == "released"))
    worst = 0
    mine = df.astype(str)
    for r in others:
        path = outputs_dir / r.study_id / r.file
        if not path.is_file():
            continue
        other = pd.read_csv(path, dtype=str)
        common = sorted((set(mine.columns) & set(other.columns)) - {"study_person_id"})
        if not common:
            continue
        a = _person_signature(mine, common).value_counts()
        b = _person_signature(other, common).value_counts()
        unique_both = a[(a == 1)].index.intersection(b[b == 1].index)
        worst = max(worst, len(unique_both))
    return worst


def study_key(keys_dir: Path, study_id: str) -> bytes:
    from envelope.keys import WarehouseKeyRing
    from governance.pseudonyms import StudyKeyStore

    return StudyKeyStore(keys_dir / "studies").get_or_create(study_id, WarehouseKeyRing(keys_dir).study_master_secret())


