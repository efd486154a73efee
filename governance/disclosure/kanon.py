"""k-anonymity for record-level files: generalise, then suppress; report what was done."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from governance.disclosure.rules import DisclosureError, DisclosureRules

Generaliser = Callable[[pd.Series], pd.Series] | Mapping[Any, Any]


def band(width: int, *, top: int | None = None) -> Callable[[pd.Series], pd.Series]:
    """A generaliser that turns numbers (e.g. age) into bands of ``width``: 23 -> ``"20-24"``.

    ``top`` top-codes: values at or above it become ``"top+"`` (e.g. ``"85+"``). Missing stays missing.

    Example:
        >>> band(10)(pd.Series([7, 23, None])).tolist()
        ['0-9', '20-29', nan]
    """
    if width < 1:
        raise DisclosureError("band width must be >= 1")

    def generalise(series: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(series, errors="coerce")
        if (numbers.isna() & series.notna()).any():
            raise DisclosureError("band(): values that are not numbers")
        low = (np.floor(numbers / width) * width).astype("Int64")
        labels = low.astype(str) + "-" + (low + width - 1).astype(str)
        out = labels.astype(object).where(numbers.notna(), np.nan)
        if top is not None:
            out[numbers >= top] = f"{top}+"
        return out

    generalise.__name__ = f"band_{width}" + (f"_top_{top}" if top is not None else "")
    return generalise


def count_band(top: int) -> Callable[[pd.Series], pd.Series]:
    """A generaliser that top-codes a count: 0, 1, .. top-1 as themselves, ``top`` or more as ``"<top>+"``.

    Counts of events are quasi-identifiers (the agency that recorded them knows them): released record by
    record they are coarsened like any other. ``count_band(1)`` keeps only whether there was any.

    Example:
        >>> count_band(3)(pd.Series([0, 2, 5, None])).tolist()
        ['0', '2', '3+', nan]
    """
    if top < 1:
        raise DisclosureError("count_band top must be >= 1")

    def generalise(series: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(series, errors="coerce")
        if (numbers.isna() & series.notna()).any():
            raise DisclosureError("count_band(): values that are not numbers")
        out = numbers.astype("Int64").astype(str).astype(object)
        out[numbers >= top] = f"{top}+"
        return out.where(numbers.notna(), np.nan)

    generalise.__name__ = f"count_band_{top}"
    return generalise


def period(to: Literal["month", "quarter", "year"]) -> Callable[[pd.Series], pd.Series]:
    """A generaliser that coarsens dates: ``"2025-03"``, ``"2025Q1"`` or ``"2025"``.

    Example:
        >>> period("quarter")(pd.Series(pd.to_datetime(["2025-02-14"]))).tolist()
        ['2025Q1']
    """
    freq = {"month": "M", "quarter": "Q", "year": "Y"}.get(to)
    if freq is None:
        raise DisclosureError("period() takes 'month', 'quarter' or 'year'")

    def generalise(series: pd.Series) -> pd.Series:
        dates = pd.to_datetime(series, errors="coerce")
        if (dates.isna() & series.notna()).any():
            raise DisclosureError("period(): values that are not dates")
        labels = [np.nan if pd.isna(d) else str(d.to_period(freq)) for d in dates]
        return pd.Series(labels, index=series.index, dtype=object)

    generalise.__name__ = f"period_{to}"
    return generalise


def _apply_generaliser(series: pd.Series, generaliser: Generaliser, qi: str, level: int) -> pd.Series:
    if isinstance(generaliser, Mapping):
        out = series.map(generaliser)
    else:
        out = generaliser(series)
        if not isinstance(out, pd.Series) or len(out) != len(series):
            raise DisclosureError(f"generaliser {level} of {qi!r} must return a Series of the same length")
        out = out.set_axis(series.index)
    lost = int((out.isna() & series.notna()).sum())
    if lost:
        raise DisclosureError(f"generaliser {level} of {qi!r} leaves {lost} values unmapped: every value "
                              "needs a place in the hierarchy")
    return out


def _codes(series: pd.Series) -> np.ndarray:
    """Integer code per distinct value (missing is a value of its own, as it is to a reader)."""
    codes, _ = pd.factorize(series, use_na_sentinel=False)
    return codes.astype(np.int64)


def _classes_from_codes(columns: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(size of each row's class, size of each class) for rows keyed by the code columns."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not columns:
        return np.full(n, n, dtype=np.int64), np.array([n], dtype=np.int64)
    _, inverse, counts = np.unique(np.column_stack(columns), axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()], counts


def _entity_classes_from_codes(columns: Sequence[np.ndarray], entity: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_classes_from_codes`, but a class's size is its number of distinct entities (persons).

    A record-level file with several rows per person (events) is k-anonymous only when every class
    holds k different people: eleven events of one person are one person.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if columns:
        _, cls = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        cls = cls.ravel()
    else:
        cls = np.zeros(n, dtype=np.int64)
    pairs = np.unique(np.column_stack([cls, entity]), axis=0)
    per_class = np.bincount(pairs[:, 0], minlength=int(cls.max()) + 1).astype(np.int64)
    return per_class[cls], per_class


def _classes(frame: pd.DataFrame, cols: Sequence[str], entity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Equivalence classes of ``frame`` on ``cols`` (rows sharing every value): see _classes_from_codes.
    With ``entity``, sizes count distinct values of that column (persons) instead of rows."""
    if entity is not None:
        return _entity_classes_from_codes([_codes(frame[c]) for c in cols], _codes(frame[entity]), len(frame))
    return _classes_from_codes([_codes(frame[c]) for c in cols], len(frame))


@dataclass(frozen=True)
class KAnonReport:
    """What :func:`enforce_k_anonymity` did, as counts and level names only.

    Attributes:
        k: the threshold applied.
        quasi_identifiers: the columns checked.
        levels: per quasi-identifier, the generalisation level used (0 = as supplied).
        level_names: per quasi-identifier, the generaliser used (``"raw"``, ``"band_10"``, ``"mapping"``).
        records_in, records_suppressed, records_out: rows before, dropped, after.
        classes: equivalence classes in the output; smallest_class: size of the smallest (0 if empty).
    """

    k: int
    quasi_identifiers: list[str]
    levels: dict[str, int]
    level_names: dict[str, str]
    records_in: int
    records_suppressed: int
    records_out: int
    classes: int
    smallest_class: int

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "quasi_identifiers": list(self.quasi_identifiers), "levels": dict(self.levels),
                "level_names": dict(self.level_names), "records_in": self.records_in,
                "records_suppressed": self.records_suppressed, "records_out": self.records_out,
                "classes": self.classes, "smallest_class": self.smallest_class}


def enforce_k_anonymity(df: pd.DataFrame, quasi_identifiers: Sequence[str], rules: DisclosureRules,
                        generalisers: Mapping[str, Sequence[Generaliser]] | None = None, *,
                        max_suppressed_fraction: float = 0.01,
                        entity: str | None = None) -> tuple[pd.DataFrame, KAnonReport]:
    """Generalise quasi-identifiers, then drop what is left over, until every class has >= k records.

    Quasi-identifiers are columns that are harmless alone but identifying together (age, sex, tract,
    event date). A record-level file is k-anonymous when every combination of their values is shared
    by at least ``rules.k_anonymity`` records.

    The search is greedy (in the spirit of Datafly): while more than ``max_suppressed_fraction`` of
    the records sit in classes smaller than k, move the one quasi-identifier whose next level leaves
    the fewest records in small classes one level up its hierarchy. When the budget is met or every
    hierarchy is exhausted, records still in small classes are dropped. The output is therefore always
    k-anonymous; the budget only trades detail against dropped rows.

    Args:
        df: record-level data; never modified. The index of kept rows is preserved.
        quasi_identifiers: the columns to protect.
        rules: the combined rules; ``rules.k_anonymity`` is k.
        generalisers: per quasi-identifier, coarser and coarser levels. Each level is applied to the
            original column (not to the previous level): a callable ``Series -> Series`` such as
            :func:`band` or :func:`period`, or a mapping such as ``{tract: neighbourhood}`` then
            ``{tract: county}``. A value a level leaves unmapped raises.
        max_suppressed_fraction: share of records that may be dropped before generalising further.
        entity: a column naming the person each row belongs to (several rows per person, as in an
            event extract): classes must then hold k distinct persons, not k rows.

    Returns:
        The generalised, filtered copy and a :class:`KAnonReport` (``smallest_class`` in persons when
        ``entity`` is given).

    Example:
        >>> df = pd.DataFrame({"age": range(30), "sex": ["F", "M"] * 15})
        >>> out, rep = enforce_k_anonymity(df, ["age", "sex"], DisclosureRules(k_anonymity=5),
        ...                                {"age": [band(10), band(30)]})
        >>> rep.levels, rep.records_suppressed
        ({'age': 1, 'sex': 0}, 0)
    """
    qis = list(quasi_identifiers)
    gens = {q: list(levels) for q, levels in (generalisers or {}).items()}
    missing = [q for q in qis if q not in df.columns]
    if missing:
        raise DisclosureError(f"quasi-identifiers not in the frame: {', '.join(map(repr, missing))}")
    if len(set(qis)) != len(qis):
        raise DisclosureError("quasi-identifiers are listed more than once")
    stray = [q for q in gens if q not in qis]
    if stray:
        raise DisclosureError(f"generalisers given for columns that are not quasi-identifiers: {stray!r}")
    if not 0 <= max_suppressed_fraction <= 1:
        raise DisclosureError("max_suppressed_fraction must be between 0 and 1")
    if entity is not None and (entity not in df.columns or entity in qis):
        raise DisclosureError(f"entity column {entity!r} must be a column of the frame and not a quasi-identifier")
    k = rules.k_anonymity
    entity_codes = _codes(df[entity]) if entity is not None else None

    cache: dict[tuple[str, int], tuple[pd.Series, np.ndarray]] = {}

    def column(q: str, level: int) -> tuple[pd.Series, np.ndarray]:
        if (q, level) not in cache:
            values = df[q] if level == 0 else _apply_generaliser(df[q], gens[q][level - 1], q, level)
            cache[(q, level)] = values, _codes(values)
        return cache[(q, level)]

    def sizes(levels: dict[str, int]) -> np.ndarray:
        codes = [column(q, levels[q])[1] for q in qis]
        if entity_codes is not None:
            return _entity_classes_from_codes(codes, entity_codes, len(df))[0]
        return _classes_from_codes(codes, len(df))[0]

    def in_small_classes(levels: dict[str, int]) -> int:
        return int((sizes(levels) < k).sum())

    levels = {q: 0 for q in qis}
    budget = math.floor(max_suppressed_fraction * len(df))
    small = in_small_classes(levels)
    while small > budget:
        options = [(in_small_classes(levels | {q: levels[q] + 1}), i, q)
                   for i, q in enumerate(qis) if levels[q] < len(gens.get(q, ()))]
        if not options:
            break
        small, _, chosen = min(options)
        levels[chosen] += 1

    keep = sizes(levels) >= k
    out = df.copy()
    for q in qis:
        out[q] = column(q, levels[q])[0]
    out = out[keep]
    _, class_sizes = _classes(out, qis, entity)

    def name(q: str) -> str:
        if levels[q] == 0:
            return "raw"
        g = gens[q][levels[q] - 1]
        return "mapping" if isinstance(g, Mapping) else getattr(g, "__name__", "callable")

    report = KAnonReport(
        k=k, quasi_identifiers=qis, levels=dict(levels), level_names={q: name(q) for q in qis},
        records_in=len(df), records_suppressed=int((~keep).sum()), records_out=len(out),
        classes=int(class_sizes.size), smallest_class=int(class_sizes.min()) if class_sizes.size else 0,
    )
    return out, report


