"""Plaintext identifier detector: refuse any column that looks like identifiers in the clear.

Partners do make this mistake (an export gains a name column, a kit is misconfigured, a free-text
field holds an address). The kit refuses unknown columns at the partner, but the warehouse must
never rely on that: every string column of every payload is scanned here before anything is stored.

Findings carry counts and column names only, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Finding", "DetectorRules", "scan_batches", "suspicious_column_name"]

_COLUMN_NAME = re.compile(
    r"(^|_)(F|L|M|FIRST|LAST|MIDDLE|MAIDEN|GIVEN|FAMILY|SUR|FULL|PAT|PATIENT|MOTHER|FATHER)?_?NAME(_|$)"
    r"|(^|_)(FNAME|LNAME|MNAME|SURNAME|DOB|BIRTH_?(DATE|DT|DAY)|DATE_OF_BIRTH|SSN|SOCIAL|SSN4|PHONE|TEL|MOBILE|CELL"
    r"|EMAIL|E_MAIL|STREET|ADDR|ADDRESS|ADD_LINE(_\d)?|MRN|MEDICAID_ID|DRIVERS?_LIC(ENSE)?)(_|$)",
    re.IGNORECASE,
)

#: Value patterns (RE2 syntax, full-match) → the kind of identifier they reveal.
VALUE_PATTERNS: dict[str, str] = {
    "ssn": r"^\d{3}-\d{2}-\d{4}$",
    "phone": r"^(\+?1[-. ]?)?\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}$",
    "date_in_clear": r"^(19|20)\d{2}-[01]\d-[0-3]\d$|^[01]?\d/[0-3]?\d/(19|20)\d{2}$|^[0-3]\d-[A-Za-z]{3}-(19|20)\d{2}$",
    "street_address": (r"(?i)^\d{1,6}\s+([A-Z0-9.']+\s+){0,4}(ST|STREET|AVE|AVENUE|RD|ROAD|DR|DRIVE|LN|LANE|CT"
                       r"|COURT|BLVD|BOULEVARD|WAY|PL|PLACE|CIR|CIRCLE|PKWY|PARKWAY|HWY|TER|TRL)\.?(\s.*)?$"),
    "email": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
}
_NAME_SHAPE = r"^[A-Za-z][A-Za-z'\-]+(,?\s+[A-Za-z][A-Za-z'\-.]*){0,3}$"


@cache
def _common_names() -> pa.Array:
    text = resources.files("landing.data").joinpath("common_names.txt").read_text()
    words = {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}
    return pa.array(sorted(words))


@dataclass(frozen=True)
class DetectorRules:
    """How much evidence refuses a column: a share of scanned non-null values, and at least ``min_count``."""

    min_share: float = 0.01
    min_count: int = 3
    name_share: float = 0.05  # names need more evidence: "White" is a race and a surname
    #: patterns so specific that one value in the clear is already a leak: refused at the first match
    zero_tolerance: tuple[str, ...] = ("ssn", "phone", "email")


@dataclass(frozen=True)
class Finding:
    column: str
    kind: str
    count: int
    scanned: int

    def __str__(self) -> str:
        if self.kind == "column_name":
            return f"column {self.column}: its name says it holds an identifier"
        return f"column {self.column}: {self.count} of {self.scanned} values look like {self.kind.replace('_', ' ')}"


def suspicious_column_name(name: str) -> bool:
    """True if a column's name says it holds a direct identifier (``FNAME``, ``DOB``, ``SSN``, ``ADDRESS``…).

    >>> suspicious_column_name("PAT_LAST_NAME"), suspicious_column_name("RACE_CD")
    (True, False)
    """
    return bool(_COLUMN_NAME.search(name))


def scan_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    known_values: dict[str, set[str]] | None = None,
    formats: dict[str, str] | None = None,
    rules: DetectorRules = DetectorRules(),
) -> list[Finding]:
    """Scan every string column of a payload, batch by batch (constant memory).

    Args:
        batches: the payload's record batches.
        known_values: per column, code values the partner's schema declares (e.g. "White"); they are
            never counted as names.
        formats: per declared encoding or pseudonymous-id column, the regex its values must match
            (a 16-character token). These columns are not scanned here: validation refuses any value
            in them that does not match its format, so a plaintext name there is refused all the same.
        rules: thresholds.

    Returns:
        One finding per (column, kind) over the threshold; empty when the payload looks clean.
    """
    known_values = known_values or {}
    formats = formats or {}
    counts: dict[tuple[str, str], int] = {}
    scanned: dict[str, int] = {}
    names_seen: set[str] = set()
    for batch in batches:
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if name not in names_seen:
                names_seen.add(name)
                if name not in formats and suspicious_column_name(name):
                    counts[(name, "column_name")] = 1
            if name in formats or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                continue
            col = pc.utf8_trim_whitespace(col.filter(pc.is_valid(col)))
            if name in known_values and known_values[name]:
                col = col.filter(pc.invert(pc.is_in(col, value_set=pa.array(sorted(known_values[name])))))
            scanned[name] = scanned.get(name, 0) + len(col)
            if len(col) == 0:
                continue
            for kind, pattern in VALUE_PATTERNS.items():
                hits = pc.sum(pc.match_substring_regex(col, pattern)).as_py() or 0
                if hits:
                    counts[(name, kind)] = counts.get((name, kind), 0) + hits
            shaped = col.filter(pc.match_substring_regex(col, _NAME_SHAPE))
            if len(shaped):
                first = pc.list_element(pc.split_pattern_regex(pc.utf8_upper(shaped), r"[,\s]+"), 0)
                hits = pc.sum(pc.is_in(first, value_set=_common_names())).as_py() or 0
                if hits:
                    counts[(name, "name")] = counts.get((name, "name"), 0) + hits
    findings = []
    for (col, kind), n in sorted(counts.items()):
        total = scanned.get(col, 0)
        if kind == "column_name":
            findings.append(Finding(col, kind, 0, total))
            continue
        share = rules.name_share if kind == "name" else rules.min_share
        if kind in rules.zero_tolerance or (n >= rules.min_count and n >= share * total):
            findings.append(Finding(col, kind, n, total))
    return findings
