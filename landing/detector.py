"""Plaintext identifier detector: refuse an envelope in which any value looks like an identifier in the clear.

Partners do make this mistake (an export gains a name column, a kit is misconfigured, a code column holds a
name), and an attacker holding a partner's signing key may try it on purpose. The kit refuses unknown columns
at the partner, but the warehouse never relies on that: every column of every payload is scanned here before
anything is stored, with **no tolerance**: one value is enough.

* **Content columns** (strings): every distinct value outside the column's declared code values goes through
  the recognisers (:data:`RECOGNISERS`): SSNs (and ITINs) in every common format with the SSA validity rules,
  dates (of birth) in the formats partners use, street addresses and PO boxes, phone numbers, e-mail
  addresses, and person names (any word of the name list, ``landing/data/names.txt``, in any casing, order
  or accents). They run in Arrow (RE2) on distinct values, so a code column of a million rows costs a few
  distinct values.
* **Keyed columns** (tokens, pseudonymous ids, Bloom filters): every well-formed distinct value is tested
  against text (:mod:`landing.keyed`): a name, date or address padded into a token is refused. Values of the
  wrong length or alphabet are refused by validation (``token_format``, ``id_format``, ``bloom_length``).
* **Column names**: a column named like an identifier (``FNAME``, ``DOB``, ``SSN`` ...).

Presidio's pattern recognisers were evaluated for this (issue 12): ``presidio-analyzer`` requires spaCy (and
thinc, tldextract, which downloads the public-suffix list at run time) and loads a spaCy model in its
analyzer engine; its person names come from spaCy's NER only, and it runs per value in Python. The SSN
validity rules here follow its ``UsSsnRecognizer`` (and the SSA's rules); everything runs vectorised.

Findings carry column names, counts and rule names only, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from landing import keyed

__all__ = ["RECOGNISERS", "Finding", "KeyedColumn", "keyed_columns", "recognise", "scan_batches",
           "suspicious_column_name"]

_COLUMN_NAME = re.compile(
    r"(^|_)(F|L|M|FIRST|LAST|MIDDLE|MAIDEN|GIVEN|FAMILY|SUR|FULL|PAT|PATIENT|MOTHER|FATHER)?_?NAME(_|$)"
    r"|(^|_)(FNAME|LNAME|MNAME|SURNAME|DOB|BIRTH_?(DATE|DT|DAY)|DATE_OF_BIRTH|SSN|SOCIAL|SSN4|PHONE|TEL|MOBILE|CELL"
    r"|EMAIL|E_MAIL|STREET|ADDR|ADDRESS|ADD_LINE(_\d)?|MRN|MEDICAID_ID|DRIVERS?_LIC(ENSE)?)(_|$)",
    re.IGNORECASE,
)


# ----------------------------------------------------------------------------------------- recognisers
def _alt(*parts: str) -> str:
    return "(" + "|".join(parts) + ")"


_D = "[0-9]"
_AREA = _alt("00[1-9]", "0[1-9][0-9]", "[1-57-8][0-9]{2}", "6[0-57-9][0-9]", "66[0-57-9]")  # not 000, 666, 9xx
_GROUP = _alt("0[1-9]", "[1-9][0-9]")  # not 00
_SERIAL = _alt("000[1-9]", "00[1-9][0-9]", "0[1-9][0-9]{2}", "[1-9][0-9]{3}")  # not 0000
_ITIN_GROUP = _alt("5[0-9]", "6[0-5]", "7[0-9]", "8[0-8]", "9[0-2]", "9[4-9]")
_SEPS = ("-", " ", r"\.", "")
_SSN = (r"(^|[^0-9])" + _alt(*(f"{_AREA}{s}{_GROUP}{s}{_SERIAL}" for s in _SEPS),
                             *(f"9[0-9]{{2}}{s}{_ITIN_GROUP}{s}[0-9]{{4}}" for s in _SEPS),
                             "[0-9]{3}-[0-9]{2}-[0-9]{4}")  # dashed: an SSN's layout, valid or not
        + r"([^0-9]|$)")

_Y = "(19[0-9]{2}|20[0-9]{2})"
_M, _DY = "(0?[1-9]|1[0-2])", "(0?[1-9]|[12][0-9]|3[01])"
_MM, _DD = "(0[1-9]|1[0-2])", "(0[1-9]|[12][0-9]|3[01])"
_MON = r"(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*\.?"
_SEP = "[-/._ ]"
_DATE = _alt(
    rf"(^|[^0-9]){_Y}{_SEP}{_M}{_SEP}{_DY}([^0-9]|$)",  # 2011-11-16, 2011/11/16
    rf"(^|[^0-9]){_M}{_SEP}{_DY}{_SEP}{_Y}([^0-9]|$)",  # 11/16/2011, 11-16-2011
    rf"(^|[^0-9]){_DY}{_SEP}{_M}{_SEP}{_Y}([^0-9]|$)",  # 16.11.2011
    rf"(^|[^0-9]){_DY}[-/._ ]*{_MON}[-/._, ]*{_Y}([^0-9]|$)",  # 16-NOV-2011, 16 November 2011, 16NOV2011
    rf"(^|[^A-Z]){_MON}[-/._ ]*{_DY}(ST|ND|RD|TH)?[-/._, ]+{_Y}([^0-9]|$)",  # November 16, 2011
    rf"(^|[^0-9]){_Y}{_MM}{_DD}([^0-9]|$)",  # 20111116
    rf"(^|[^0-9]){_MM}{_DD}{_Y}([^0-9]|$)",  # 11162011
)
_PHONE = _alt(
    r"(^|[^0-9])(\+?1[-. _]?)?(\([2-9][0-9]{2}\)[-. _]?|[2-9][0-9]{2}[-. _])[2-9][0-9]{2}[-. _][0-9]{4}([^0-9]|$)",
    r"(^|[^0-9])(\+?1)?[2-9][0-9]{2}[2-9][0-9]{6}([^0-9]|$)",
)
_STREET_TYPES = ("ST|STREET|AVE|AVENUE|AV|RD|ROAD|DR|DRIVE|LN|LANE|CT|COURT|BLVD|BOULEVARD|WAY|PL|PLACE|CIR|CIRCLE"
                 "|PKWY|PARKWAY|HWY|HIGHWAY|TER|TERRACE|TRL|TRAIL|LOOP|ALY|ALLEY|SQ|SQUARE|PIKE|ROW|RUN|XING")
_ADDRESS = _alt(
    rf"(^|[^0-9A-Z])[0-9]{{1,6}}[A-Z]?[-_ ]+([A-Z0-9.']+[-_ ]+){{0,4}}({_STREET_TYPES})\.?([^A-Z]|$)",
    r"(^|[^A-Z])P\.? ?O\.? ?BOX[-_ ]*[0-9]+",
)
_EMAIL = r"[A-Z0-9._%+-]+@[A-Z0-9-]+(\.[A-Z0-9-]+)*\.[A-Z]{2,}"

#: kind → (rule name, RE2 pattern searched in the value, folded to upper-case ASCII). Names: :func:`_names`.
RECOGNISERS: dict[str, tuple[str, str]] = {
    "ssn": ("ssn_formats", _SSN),
    "date_of_birth": ("date_formats", _DATE),
    "phone": ("phone_formats", _PHONE),
    "street_address": ("street_address_formats", _ADDRESS),
    "email": ("email_format", _EMAIL),
}
_NAME_RULE = "name_list"
_RULES = {**{k: r for k, (r, _) in RECOGNISERS.items()}, "name": _NAME_RULE, "column_name": "identifier_column_name",
          "text_in_keyed_column": "keyed_value_randomness"}
_KIND_TEXT = {"ssn": "SSNs", "date_of_birth": "dates in the clear", "phone": "phone numbers",
              "street_address": "street addresses", "email": "e-mail addresses", "name": "person names",
              "text_in_keyed_column": "text, not keyed values"}


@cache
def _name_array() -> pa.Array:
    return pa.array(sorted(keyed.name_words()))


def fold(values: pa.Array) -> pa.Array:
    """Upper-case ASCII: accents decomposed and dropped (José → JOSE), apostrophes removed (O'Brien → OBRIEN)."""
    v = pc.utf8_normalize(values, "NFKD")
    v = pc.replace_substring_regex(v, r"\p{Mn}+", "")
    return pc.replace_substring_regex(pc.utf8_upper(v), "['’`´]", "")


def _names(folded: pa.Array) -> np.ndarray:
    """True where a value holds a person name: a word of the name list of three letters or more, or two words
    of the list (``LI WU``)."""
    n = len(folded)
    words = pc.split_pattern_regex(folded, "[^A-Z]+")
    flat = pc.list_flatten(words)
    parents = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
    hit = pc.fill_null(pc.is_in(flat, value_set=_name_array()), False).to_numpy(zero_copy_only=False)
    long = pc.greater_equal(pc.utf8_length(flat), 3).to_numpy(zero_copy_only=False)
    strong = np.bincount(parents[hit & long], minlength=n)
    weak = np.bincount(parents[hit], minlength=n)
    return (strong >= 1) | (weak >= 2)


def recognise(values: pa.Array) -> dict[str, np.ndarray]:
    """For each identifier kind, a boolean mask over ``values`` (strings, no nulls): which look like that kind."""
    if len(values) == 0:
        return {}
    folded = fold(values)
    out = {kind: pc.fill_null(pc.match_substring_regex(folded, pattern), False).to_numpy(zero_copy_only=False)
           for kind, (_, pattern) in RECOGNISERS.items()}
    out["name"] = _names(folded)
    return out


# ----------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """Rows of one column that look like one kind of identifier (counts and names only, never values)."""

    column: str
    kind: str
    count: int
    scanned: int

    @property
    def rule(self) -> str:
        return _RULES.get(self.kind, self.kind)

    def __str__(self) -> str:
        if self.kind == "column_name":
            return f"column {self.column}: its name says it holds an identifier (rule {self.rule})"
        return (f"column {self.column}: {self.count:,} of {self.scanned:,} rows look like "
                f"{_KIND_TEXT.get(self.kind, self.kind)} (rule {self.rule})")


@dataclass(frozen=True)
class KeyedColumn:
    """A column whose values the kit computes with the linkage secret: ``kind`` token, id or bloom, ``width``
    characters (bytes for a Bloom filter)."""

    kind: str
    width: int


def keyed_columns(schema_names: Iterable[str], *, id_columns: Iterable[str], bloom_columns: Iterable[str],
                  token_columns: Iterable[str], token_width: int = 16, id_width: int = 20,
                  bloom_bytes: int = 64) -> dict[str, KeyedColumn]:
    names = set(schema_names)
    out = {c: KeyedColumn("id", id_width) for c in id_columns if c in names}
    out |= {c: KeyedColumn("token", token_width) for c in token_columns if c in names}
    out |= {c: KeyedColumn("bloom", bloom_bytes) for c in bloom_columns if c in names}
    return out


def suspicious_column_name(name: str) -> bool:
    """True if a column's name says it holds a direct identifier (``FNAME``, ``DOB``, ``SSN``, ``ADDRESS``…).

    >>> suspicious_column_name("PAT_LAST_NAME"), suspicious_column_name("RACE_CD")
    (True, False)
    """
    return bool(_COLUMN_NAME.search(name))


class _Keyed:
    """Per keyed column: rows scanned and rows whose value is text, batch by batch."""

    def __init__(self) -> None:
        self.scanned: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        self._unique: dict[str, bool] = {}  # scoring distinct values pays only when values repeat
        self.stats: dict[str, list[int]] = {}

    def add(self, name: str, col: pa.Array, spec: KeyedColumn) -> None:
        binary = pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)
        if (spec.kind == "bloom") != binary or not (binary or pa.types.is_string(col.type)
                                                    or pa.types.is_large_string(col.type)):
            return  # the wrong type: validation refuses the schema (column_types)
        non_null = len(col) - col.null_count
        self.scanned[name] = self.scanned.get(name, 0) + non_null
        values = col
        if self._unique.get(name, True):
            values = pc.unique(col)
            if name not in self._unique:
                self._unique[name] = len(values) < 0.5 * len(col)
        raw, ok = keyed.well_formed(values, spec.width, alphabet=spec.kind != "bloom")
        # the format counts validation reports (token_format / bloom_length, null_rate): one pass for both
        if values is col:
            ill = non_null - len(raw)
        else:
            bad_values = values.filter(pa.array(~ok & values.is_valid().to_numpy(zero_copy_only=False)))
            ill = int(pc.sum(pc.is_in(col, value_set=bad_values)).as_py() or 0) if len(bad_values) else 0
        s = self.stats.setdefault(name, [0, 0, 0, 0])  # non-null, ill-formed, nulls, rows
        s[0] += non_null
        s[1] += ill
        s[2] += col.null_count
        s[3] += len(col)
        score = keyed.bloom_text_bits if spec.kind == "bloom" else keyed.token_text_bits
        bad = score(raw, spec.width) >= keyed.THRESHOLD_BITS
        if not bad.any():
            return
        if values is col:
            n = int(bad.sum())
        else:
            flagged = [r.tobytes() for r in raw[bad]]
            flagged_arr = pa.array(flagged, col.type) if binary else pa.array([f.decode("ascii") for f in flagged],
                                                                             col.type)
            n = int(pc.sum(pc.is_in(col, value_set=flagged_arr)).as_py() or 0)
        self.hits[name] = self.hits.get(name, 0) + n


def scan_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    known_values: Mapping[str, Iterable[str]] | None = None,
    keyed_columns: Mapping[str, KeyedColumn] | None = None,
    keyed_stats: dict[str, list[int]] | None = None,
) -> list[Finding]:
    """Scan every column of a payload, batch by batch.

    Args:
        batches: the payload's record batches.
        known_values: per content column, the code values its profile declares (``"White"``): never scanned.
        keyed_columns: the token, pseudonymous-id and Bloom-filter columns (:func:`keyed_columns`): tested
            against text instead of the recognisers.
        keyed_stats: if given, filled per keyed column with [non-null, ill-formed, null, rows] counts: the
            format and null-rate counts validation reports, computed in this pass
            (:func:`landing.validation.validate_payload` ``encoding_stats``) so the payload is read once.

    Returns:
        One finding per (column, kind) with at least one row; empty when the payload looks clean.
    """
    known = {c: pa.array(sorted(set(v)), pa.string()) for c, v in (known_values or {}).items() if v}
    keyed_specs = dict(keyed_columns or {})
    distinct: dict[str, list[pa.Table]] = {}
    rows: dict[str, int] = {}
    suspicious: set[str] = set()
    kc = _Keyed()
    seen: set[str] = set()
    for batch in batches:
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if name not in seen:
                seen.add(name)
                if name not in keyed_specs and suspicious_column_name(name):
                    suspicious.add(name)
            if name in keyed_specs:
                kc.add(name, col, keyed_specs[name])
                continue
            if pa.types.is_large_string(col.type):
                col = col.cast(pa.string())
            if not pa.types.is_string(col.type):
                continue
            col = col.filter(pc.is_valid(col))
            rows[name] = rows.get(name, 0) + len(col)
            if name in known and len(col):
                col = col.filter(pc.invert(pc.is_in(col, value_set=known[name])))
            if len(col):
                vc = pc.value_counts(col)
                distinct.setdefault(name, []).append(pa.table({"v": vc.field("values"), "n": vc.field("counts")}))
    findings = [Finding(c, "column_name", 0, rows.get(c, 0)) for c in sorted(suspicious)]
    for name in sorted(distinct):
        t = pa.concat_tables(distinct[name]).group_by("v").aggregate([("n", "sum")])
        counts = t.column("n_sum").to_numpy()
        for kind, mask in sorted(recognise(t.column("v").combine_chunks()).items()):
            n = int(counts[mask].sum())
            if n:
                findings.append(Finding(name, kind, n, rows[name]))
    for name in sorted(kc.hits):
        findings.append(Finding(name, "text_in_keyed_column", kc.hits[name], kc.scanned[name]))
    if keyed_stats is not None:
        keyed_stats.update(kc.stats)
    return findings
