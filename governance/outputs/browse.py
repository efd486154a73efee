"""Analyst views of the marts: what analysts may browse without a study, k-anonymous on their quasi-identifiers.

The marts themselves are read only by the pipeline and the gate: one known event pins a person there (at 200,000
persons, 83 % of persons with a police incident are unique on its date, type and neighbourhood; 92 % of assault
ED visits on date and age), and a person key then gives their whole cross-sector history. Analysts still need
to see what the data hold before they write a request (which event types, which months, which neighbourhoods,
how many records of each kind). They get a separate file, ``VPDC_HOME/analyst/browse.duckdb``, rebuilt with the
marts, holding one view per mart:

* **no person identifier** of any kind (no person key, event id or cohort member id): rows cannot be chained
  into a history, so a row that matches what an attacker knows says nothing they did not know;
* **no exact dates or ages**, no tract and no event code: months, age bands and neighbourhoods, coarsened
  further where needed;
* **k-anonymous on its quasi-identifiers**, k counted in distinct persons (eleven events of one person are one
  person): the catalogue's quasi-identifiers plus what the agency that recorded a row knows about it (the kind of
  event and which source recorded it; which agencies hold a person). :func:`governance.disclosure.enforce_k_anonymity`
  generalises (months to quarters to years, age bands to wider ones, attributes withheld) and drops what is
  left in classes under k, exactly as for a released file; the strictest partner's k applies.

Each build records what it did per view (its quasi-identifiers, the generalisation level of each, rows in,
suppressed and out, the smallest class) in the file's ``about`` table and in the audit log. Reading a view needs
the ``browse`` permission (analysts, evaluators) and is audited.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from governance.outputs.cohort import AGE_WIDER, ALL, DEFAULT_COLUMNS, cohort_generalisers

__all__ = ["BROWSE_VIEWS", "BrowseResult", "BrowseView", "BrowseViewError", "browse_rows", "build_browse_views"]


class BrowseViewError(ValueError):
    """The browse file is missing, or a view or option that does not exist was asked for (the message names it)."""


@dataclass(frozen=True)
class BrowseView:
    """One analyst view of a mart.

    Attributes:
        mart: the mart it is made from (``analytics.<mart>``).
        columns: the mart columns it shows (never a person identifier; ``dates`` shown as ``YYYY-MM``).
        dates: date columns, shown as months (and generalised further when k needs it).
        lists: list columns, shown as one ``;``-joined string.
        extra_quasi_identifiers: columns that identify beside the catalogue's quasi-identifiers in a view that
            anyone with browse rights reads: what the recording agency knows about the row.
        generalisers: per quasi-identifier, its coarser levels (:func:`enforce_k_anonymity`).
    """

    mart: str
    columns: tuple[str, ...]
    dates: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    extra_quasi_identifiers: tuple[str, ...] = ()
    generalisers: Callable[[], dict[str, list[Any]]] = field(default=dict, compare=False)


def _events_generalisers() -> dict[str, list[Any]]:
    from governance.disclosure import period

    return {"event_month": [period("quarter"), period("year")], "age_band_at_event": [AGE_WIDER, ALL],
            "neighbourhood": [ALL], "priority_area": [ALL]}


def _persons_generalisers() -> dict[str, list[Any]]:
    return {"age_band": [AGE_WIDER, ALL], "sex": [ALL], "race_ethnicity": [ALL], "sources": [ALL]}


_COHORT_DATES = ("enrollment_date",)
_COHORT_COLUMNS = tuple(c for c in DEFAULT_COLUMNS if c not in _COHORT_DATES)

BROWSE_VIEWS: dict[str, BrowseView] = {
    "events": BrowseView(
        "events",
        ("event_month", "sector", "source", "event_type", "age_band_at_event", "neighbourhood", "priority_area",
         "is_priority_area", "is_violent_offense_victim", "is_violent_offense_suspect", "is_homicide_victim",
         "is_firearm_involved", "is_firearm_injury", "is_assault_injury", "is_assault_ed_visit",
         "is_intimate_partner_violence_victim", "is_school_suspension_fighting", "is_program_enrollment", "program",
         "geography_basis", "geography_precision", "match_confidence"),
        dates=("event_month",), extra_quasi_identifiers=("sector", "source", "event_type"),
        generalisers=_events_generalisers),
    "persons": BrowseView(
        "persons",
        ("age_band", "sex", "race_ethnicity", "race_ethnicity_collection_method", "race_ethnicity_rule",
         "race_ethnicity_disagreement", "sex_disagreement", "sources", "weakest_match_confidence"),
        lists=("sources",), extra_quasi_identifiers=("sources",), generalisers=_persons_generalisers),
    "program_cohorts": BrowseView(
        "program_cohorts", ("program", "enrollment_date", "window_days", "post_window_complete", *_COHORT_COLUMNS[1:]),
        dates=_COHORT_DATES, extra_quasi_identifiers=("program",),
        generalisers=lambda: cohort_generalisers(list(_COHORT_DATES),
                                                 [c for c in _COHORT_COLUMNS if c.endswith(("_pre", "_post"))])),
}


@dataclass
class BrowseResult:
    path: str
    views: dict[str, dict[str, Any]]


def _frame(con: duckdb.DuckDBPyConnection, view: BrowseView, schema: str) -> pd.DataFrame:
    have = {r[0] for r in con.execute("select column_name from information_schema.columns where table_schema = ? "
                                      "and table_name = ?", [schema, view.mart]).fetchall()}
    if not have:
        raise BrowseViewError(f"{schema}.{view.mart}: the mart is not built; run `vpdc marts` first")
    missing = [c for c in view.columns if c not in have]
    if missing:
        raise BrowseViewError(f"{schema}.{view.mart}: columns {', '.join(missing)} are not in the mart")
    select = ", ".join(
        f"strftime({c}, '%Y-%m') as {c}" if c in view.dates else
        f"array_to_string(list_sort({c}), ';') as {c}" if c in view.lists else c for c in view.columns)
    return con.execute(f"select person_key, {select} from {schema}.{view.mart}").df()


def build_browse_views(warehouse_db: Path, out_db: Path, *, rules: Any, now: datetime, registry: Any = None,
                       actor: str = "pipeline", mart_schema: str = "analytics") -> BrowseResult:
    """Build every analyst view (:data:`BROWSE_VIEWS`) into ``out_db``, replacing it whole.

    The new file is written beside the old one and moved into place only when every view is k-anonymous, so a
    failed build leaves the previous file (or none), never a half-written one. With ``registry``, the build is
    audited (``browse.built``: per view rows in, suppressed and out, levels used).

    Args:
        rules: the disclosure rules (k); :func:`browse_rules` gives the strictest partner's from the registry.
    """
    from governance.catalog import quasi_identifiers
    from governance.disclosure import check_release, enforce_k_anonymity

    out_db = Path(out_db)
    out_db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    frames: dict[str, pd.DataFrame] = {}
    about: dict[str, dict[str, Any]] = {}
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        for name, view in BROWSE_VIEWS.items():
            df = _frame(con, view, mart_schema)
            qis = [c for c in (*quasi_identifiers(view.mart), *view.extra_quasi_identifiers) if c in view.columns]
            qis = list(dict.fromkeys(qis))
            gens = {q: g for q, g in view.generalisers().items() if q in qis}
            kept, report = enforce_k_anonymity(df, qis, rules, gens, entity="person_key")
            # the final release check, as for a file that leaves (the person key renamed: the check forbids it)
            check = check_release(kept.rename(columns={"person_key": "_person"}), kind="record", rules=rules,
                                  quasi_identifiers=qis, entity="_person")
            if not check.passed:
                raise BrowseViewError(f"{name}: the view fails the release check after k-anonymity: "
                                      + "; ".join(check.failures[:3]))
            frames[name] = kept.drop(columns=["person_key"]).reset_index(drop=True)
            about[name] = report.to_dict() | {"mart": view.mart, "persons_out": int(kept["person_key"].nunique()),
                                              "built_at": now.isoformat()}
    tmp = out_db.with_name(f".{out_db.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with duckdb.connect(str(tmp)) as out:
            for name, frame in frames.items():
                out.register("_frame", frame)
                out.execute(f'create table "{name}" as select * from _frame')
                out.unregister("_frame")
            out.execute("create table about (view varchar, mart varchar, k integer, quasi_identifiers varchar, "
                        "levels varchar, records_in bigint, records_suppressed bigint, records_out bigint, "
                        "persons_out bigint, smallest_class bigint, built_at varchar)")
            for name, a in about.items():
                out.execute("insert into about values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [name, a["mart"], a["k"], json.dumps(a["quasi_identifiers"]), json.dumps(a["level_names"]),
                             a["records_in"], a["records_suppressed"], a["records_out"], a["persons_out"],
                             a["smallest_class"], a["built_at"]])
        os.chmod(tmp, 0o600)
        os.replace(tmp, out_db)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    if registry is not None:
        from governance.registry import audit

        with registry.transaction() as s:
            audit.append(s, actor=actor, action="browse.built", subject=str(out_db.name), at=now,
                         detail={n: {k: a[k] for k in ("k", "records_in", "records_suppressed", "records_out",
                                                       "smallest_class", "level_names")} for n, a in about.items()})
    return BrowseResult(str(out_db), about)


def browse_rules(registry: Any) -> Any:
    """The strictest disclosure rules of every registered partner (the views mix every partner's records)."""
    from governance.disclosure import DisclosureRules, combine
    from governance.registry.models import Partner

    with registry.read() as s:
        partners = s.query(Partner).all()
        return combine([DisclosureRules(min_cell=p.min_cell, k_anonymity=p.k_anonymity) for p in partners]
                       or [DisclosureRules()])


def browse_rows(registry: Any, browse_db: Path, *, actor: str, view: str, now: datetime, limit: int = 50,
                where: Sequence[tuple[str, str]] = (), columns: Sequence[str] = ()) -> dict[str, Any]:
    """Rows of one analyst view, for a user with the ``browse`` permission (refusals and reads audited).

    ``where``: (column, value) equality filters on the view's own columns (values compared as text);
    ``columns``: the columns to show (default all).

    Returns ``{"view", "columns", "rows", "total", "about"}``.

    Raises:
        PermissionRefused: the actor may not browse (audited by the registry).
        BrowseViewError: an unknown view, column or limit, or no browse file yet (audited as a refusal).
    """
    from governance.registry import audit
    from governance.registry.permissions import require
    from governance.registry.workflow import record_refusal

    with registry.transaction() as s:
        require(s, actor, "browse", subject=str(view)[:64], now=now)

    def refuse(reason: str) -> BrowseViewError:
        record_refusal(registry, actor=actor, action="browse", subject=str(view)[:64], reason=reason, now=now)
        return BrowseViewError(reason)

    if view not in BROWSE_VIEWS:
        raise refuse(f"no view named {view!r}; the views are {', '.join(BROWSE_VIEWS)}")
    if not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise refuse(f"limit {limit!r}: give a number of rows from 1 to 10000")
    if not Path(browse_db).is_file():
        raise refuse(f"{browse_db}: the analyst views are not built yet (they are built with the marts: `vpdc marts`)")
    have = list(BROWSE_VIEWS[view].columns)
    bad = [c for c in [*(c for c, _ in where), *columns] if c not in have]
    if bad:
        raise refuse(f"{', '.join(map(repr, bad))}: not a column of {view} ({', '.join(have)})")
    shown = ", ".join(f'"{c}"' for c in (columns or have))
    cond = " and ".join(f'cast("{c}" as varchar) = ?' for c, _ in where) or "true"
    params = [str(v) for _, v in where]
    with duckdb.connect(str(browse_db), read_only=True) as con:
        total = con.execute(f'select count(*) from "{view}" where {cond}', params).fetchall()[0][0]
        frame = con.execute(f'select {shown} from "{view}" where {cond} limit {limit}', params).df()
        about = con.execute("select k, quasi_identifiers, levels, records_suppressed, smallest_class, built_at "
                            "from about where view = ?", [view]).fetchall()
    with registry.transaction() as s:
        audit.append(s, actor=actor, action="browse.read", subject=view, at=now,
                     detail={"filters": [c for c, _ in where], "rows": int(len(frame)), "total": int(total)})
    k, qis, levels, suppressed, smallest, built = about[0] if about else (None, "[]", "{}", None, None, None)
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return {"view": view, "columns": list(frame.columns), "rows": rows, "total": int(total),
            "about": {"k": k, "quasi_identifiers": json.loads(qis), "levels": json.loads(levels),
                      "records_suppressed": suppressed, "smallest_class": smallest, "built_at": built}}
