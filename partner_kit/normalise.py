"""Normalisation of identifiers before encoding.

Two records of one person differ in case, accents, punctuation, particles and suffixes long before
they differ in substance; normalising first lets equal tokens mean equal people. Every function is
pure and total over strings: bad input gives ``None`` (missing) or raises :class:`NormaliseError`
with a reason, never a crash.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pyarrow as pa

__all__ = [
    "NormaliseError",
    "Surname",
    "clean_text",
    "normalise_address",
    "normalise_given",
    "name_words",
    "normalise_sex",
    "normalise_ssn",
    "normalise_surname",
    "normalise_zip",
    "parse_date",
    "split_formatted_name",
]


class NormaliseError(ValueError):
    """A value cannot be normalised; ``rule`` is a short machine-readable name."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        super().__init__(message)


# Letters that Unicode decomposition does not reduce to ASCII.
_SPECIAL = str.maketrans({"ß": "SS", "ẞ": "SS", "Æ": "AE", "æ": "AE", "Ø": "O", "ø": "O", "Ł": "L", "ł": "L",
                          "Đ": "D", "đ": "D", "Œ": "OE", "œ": "OE", "Þ": "TH", "þ": "TH", "ı": "I"})
_APOSTROPHES = re.compile(r"[’'`´ʻʼ]")
_SEPARATORS = re.compile(r"[-‐‑‒–—_.,/\\;:()\[\]]+")
_NON_ALNUM = re.compile(r"[^A-Z0-9 ]+")
_SPACES = re.compile(r"\s+")

#: Generational suffixes, normalised. Kept apart from the name: Jr and Sr at one address are two people.
SUFFIXES = {"JR": "JR", "JUNIOR": "JR", "SR": "SR", "SENIOR": "SR", "II": "II", "2ND": "II",
            "III": "III", "3RD": "III", "IV": "IV", "4TH": "IV"}
_TITLES = {"MR", "MRS", "MS", "MISS", "DR", "REV", "PROF"}
#: Surname particles: "DE LA CRUZ", "VAN DER BERG", "AL HASSAN". Dropped from surname parts,
#: kept in the compact form so "DELACRUZ" and "DE LA CRUZ" give the same full token.
PARTICLES = {"DE", "DEL", "DELA", "LA", "LAS", "LOS", "LE", "DA", "DAS", "DO", "DOS", "DI", "DU", "VAN",
             "VON", "DER", "DEN", "TER", "BIN", "BEN", "IBN", "AL", "EL", "ST", "SAINT", "Y"}
_ONE_WORD = re.compile(r"[A-Za-z]+").fullmatch  # the fast path of the name normalisers
_NULLS = {"", "NULL", "NONE", "NA", "N/A", "UNKNOWN", "UNK", "NFN", "NLN", "FNU", "LNU"}


def clean_text(value: str | None) -> str:
    """Uppercase ASCII letters, digits and single spaces; accents and punctuation removed.

    Apostrophes join (O'Brien → OBRIEN); hyphens and other separators split (Garcia-Lopez →
    GARCIA LOPEZ).

    >>> clean_text("  José-María  O'Brien ")
    'JOSE MARIA OBRIEN'
    """
    if not value:
        return ""
    s = str(value)
    if not s.isascii():  # decomposition only matters beyond ASCII, and costs a loop per character
        s = unicodedata.normalize("NFKD", s.translate(_SPECIAL))
        s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = _APOSTROPHES.sub("", s.upper())
    s = _SEPARATORS.sub(" ", s)
    s = _NON_ALNUM.sub("", s)
    return _SPACES.sub(" ", s).strip()


def _strip_suffix(tokens: list[str]) -> tuple[list[str], str | None]:
    suffix = None
    while len(tokens) > 1 and tokens[-1] in SUFFIXES:
        suffix = suffix or SUFFIXES[tokens[-1]]
        tokens = tokens[:-1]
    return tokens, suffix


def normalise_given(value: str | None) -> str | None:
    """A given (first or middle) name without titles, suffixes or digits; None when missing.

    Multi-word given names are joined ("MARY ANN" → "MARYANN") so spacing differences do not matter.
    """
    if value and _ONE_WORD(value):  # most names: one word of ASCII letters, nothing to strip or split
        name = value.upper()
        return None if name in _NULLS or name in _TITLES else name
    return _normalise_given(value)


def _normalise_given(value: str | None) -> str | None:
    tokens = [t for t in clean_text(value).split() if not t.isdigit()]
    tokens = [t for t in tokens if t not in _TITLES]
    tokens, _ = _strip_suffix(tokens)
    name = "".join(tokens)
    return None if name in _NULLS else name


@dataclass(frozen=True)
class Surname:
    """A normalised surname: ``compact`` for the full token, ``parts`` for compound surnames."""

    compact: str
    parts: tuple[str, ...]
    suffix: str | None


def normalise_surname(value: str | None) -> Surname | None:
    """Normalise a surname, keeping compound parts so "GARCIA LOPEZ" can match "GARCIA".

    >>> normalise_surname("de la Cruz-Hernández Jr.")
    Surname(compact='DELACRUZHERNANDEZ', parts=('CRUZ', 'HERNANDEZ'), suffix='JR')
    """
    if value and _ONE_WORD(value):  # one word of ASCII letters: it is its own compact form and only part
        compact = value.upper()
        return None if compact in _NULLS else Surname(compact, (compact,), None)
    return _normalise_surname(value)


def _normalise_surname(value: str | None) -> Surname | None:
    tokens = [t for t in clean_text(value).split() if not t.isdigit()]
    tokens, suffix = _strip_suffix(tokens)
    compact = "".join(tokens)
    if compact in _NULLS:
        return None
    parts = tuple(t for t in tokens if t not in PARTICLES and len(t) > 1) or (compact,)
    return Surname(compact, parts, suffix)


def name_words(*parts: str | None) -> str | None:
    """The words of a person's names, in no order: every word of at least two letters of the given, middle
    and family names together, without titles, suffixes, particles (DE, VAN, AL ...) or placeholders; sorted,
    each once, joined by spaces; None when there is none.

    It feeds the order-free whole-name filter (encoding scheme 3, ADR 0014): a name written family name first,
    a middle name merged into the given name or moved into the surname field gives the same words, where the
    field-by-field comparison of first and last name sees two different names.

    >>> name_words("Nguyen", "Van Anh", "Thi")
    'ANH NGUYEN THI'
    >>> name_words("Anh", None, "Nguyen") == name_words("Nguyen", "", "Anh")
    True
    """
    if len(parts) == 1 and parts[0] and _ONE_WORD(parts[0]):  # one field of one ASCII word (the kit's usual call)
        w = parts[0].upper()
        return w if len(w) > 1 and w not in _NOT_NAME_WORDS else None
    words: set[str] = set()
    for part in parts:
        for w in clean_text(part).split():
            if len(w) > 1 and w.isalpha() and w not in _NULLS and w not in _TITLES and w not in SUFFIXES \
                    and w not in PARTICLES:
                words.add(w)
    return " ".join(sorted(words)) or None


_NOT_NAME_WORDS = frozenset(_NULLS | _TITLES | set(SUFFIXES) | set(PARTICLES))


def normalise_suffix(value: str | None) -> str | None:
    """A generational suffix (JR, SR, II, III, IV) or None."""
    tokens = clean_text(value).split()
    return SUFFIXES.get(tokens[-1]) if tokens else None


def split_formatted_name(value: str | None) -> tuple[str | None, str | None, str | None]:
    """Split a ``LAST, FIRST MIDDLE`` display name into (last, first, middle) raw parts.

    A suffix inside the last part ("SMITH JR, JOHN A") stays with the last name, where
    :func:`normalise_surname` finds it. Without a comma the value is read as ``FIRST [MIDDLE] LAST``.
    """
    if not value or not value.strip():
        return None, None, None
    if "," in value:
        last, _, rest = value.partition(",")
        given = rest.split()
        return last.strip() or None, (given[0] if given else None), (" ".join(given[1:]) or None)
    words = value.split()
    if len(words) == 1:
        return words[0], None, None
    return words[-1], words[0], " ".join(words[1:-1]) or None


_DATE_LABELS = {"%Y-%m-%d": "YYYY-MM-DD", "%m/%d/%Y": "MM/DD/YYYY", "%Y%m%d": "YYYYMMDD",
                "%d-%b-%Y": "DD-MON-YYYY", "%Y-%m-%d %H:%M": "YYYY-MM-DD HH:MM",
                "%Y-%m-%d %H:%M:%S": "YYYY-MM-DD HH:MM:SS", "%m/%d/%Y %H:%M": "MM/DD/YYYY HH:MM"}


_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}


def _ymd(y: str, m: str, d: str) -> date:
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        raise ValueError("not digits")
    return date(int(y), int(m), int(d))


# Fixed-position parsers for the formats partners use most; strptime is ~10x slower.
_FAST_DATES = {
    "%Y-%m-%d": lambda v: _ymd(v[0:4], v[5:7], v[8:10]) if len(v) == 10 and v[4] == v[7] == "-" else _bad(),
    "%Y%m%d": lambda v: _ymd(v[0:4], v[4:6], v[6:8]) if len(v) == 8 else _bad(),
    "%m/%d/%Y": lambda v: _ymd(v[6:10], v[0:2], v[3:5]) if len(v) == 10 and v[2] == v[5] == "/" else _bad(),
    "%d-%b-%Y": lambda v: _ymd(v[7:11], _MONTHS.get(v[3:6].upper(), "x"), v[0:2])
    if len(v) == 11 and v[2] == v[6] == "-" else _bad(),
}


def _bad() -> date:
    raise ValueError("wrong length or separators")


def parse_date(value: str | None, fmt: str, *, earliest: date = date(1900, 1, 1), latest: date | None = None) -> date | None:
    """Parse a date in a partner's format; None when blank.

    Raises:
        NormaliseError: ``date_format`` when the value does not match ``fmt``; ``date_range`` when it
            falls before ``earliest`` or after ``latest``. Messages never contain the value itself.
    """
    if value is None or not str(value).strip():
        return None
    v = str(value).strip()
    try:
        fast = _FAST_DATES.get(fmt)
        d = fast(v) if fast else datetime.strptime(v, fmt).date()
    except ValueError:
        raise NormaliseError("date_format", f"not a date in format {_DATE_LABELS.get(fmt, fmt)}") from None
    if d < earliest or (latest is not None and d > latest):
        raise NormaliseError("date_range", f"date outside {earliest.isoformat()}..{latest or 'today'}")
    return d


_NON_DIGITS = re.compile(r"[^0-9]")  # ASCII digits only: "\D" would keep the digits of other scripts
_INVALID_SSNS = {"123456789", "111111111", "222222222", "333333333", "444444444", "555555555",
                 "666666666", "777777777", "888888888", "999999999", "078051120", "219099999"}


def normalise_ssn(value: str | None) -> str | None:
    """Nine digits, or None when missing or impossible (area 000/666/9xx, group 00, serial 0000, known fakes).

    An impossible SSN is treated as missing rather than rejecting the row: the rest of the record still links.
    """
    digits = _NON_DIGITS.sub("", value or "")
    if len(digits) != 9 or digits in _INVALID_SSNS:
        return None
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
        return None
    return digits


def normalise_zip(value: str | None) -> str | None:
    """Five-digit ZIP (ZIP+4 truncated), or None."""
    digits = _NON_DIGITS.sub("", value or "")
    if len(digits) not in (5, 9) or digits[:5] == "00000":
        return None
    return digits[:5]


def normalise_sex(value: str | None, mapping: dict[str, str | None]) -> str | None:
    """Map a source's sex code to M/F through the profile's map; unknown codes become None."""
    if value is None:
        return None
    out = mapping.get(str(value).strip())
    return out if out in ("M", "F") else None


#: street types in full -> standard abbreviation: USPS Publication 28 (appendix C1, primary names) and the common
#: types of AS/NZS 4819 (Australia, New Zealand: CIRCUIT, CLOSE, PARADE ...; public benchmark sets use them)
_STREET_TYPES = {
    "ALLEY": "ALY", "ANNEX": "ANX", "ARCADE": "ARC", "AVENUE": "AVE", "BAYOU": "BYU", "BOULEVARD": "BLVD",
    "BRANCH": "BR", "BRIDGE": "BRG", "BYPASS": "BYP", "CANYON": "CYN", "CAUSEWAY": "CSWY", "CENTER": "CTR",
    "CENTRE": "CTR", "CIRCLE": "CIR", "CIRCUIT": "CCT", "CLOSE": "CL", "COMMON": "CMN", "CORNER": "COR",
    "COURSE": "CRSE", "COURT": "CT", "CRESCENT": "CRES", "CROSSING": "XING", "CURVE": "CURV", "DRIVE": "DR",
    "ESPLANADE": "ESP", "ESTATES": "ESTS", "EXPRESSWAY": "EXPY", "EXTENSION": "EXT", "FREEWAY": "FWY",
    "GARDENS": "GDNS", "GATEWAY": "GTWY", "GROVE": "GRV", "HARBOR": "HBR", "HEIGHTS": "HTS", "HIGHWAY": "HWY",
    "HOLLOW": "HOLW", "JUNCTION": "JCT", "LANDING": "LNDG", "LANE": "LN", "MEADOWS": "MDWS", "PARADE": "PDE",
    "PARKWAY": "PKWY", "PLACE": "PL", "PLAZA": "PLZ", "RIDGE": "RDG", "ROAD": "RD", "SQUARE": "SQ",
    "STREET": "ST", "TERRACE": "TER", "TRACE": "TRCE", "TRAIL": "TRL", "TURNPIKE": "TPKE",
}
_DIRECTIONS = {"NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE", "NORTHWEST": "NW",
               "SOUTHEAST": "SE", "SOUTHWEST": "SW"}
_STREET_WORDS = {**_STREET_TYPES, "STR": "ST", "AV": "AVE", "WAY": "WAY", **_DIRECTIONS}
#: a street type as written after normalisation (abbreviated, or short in full): nothing to correct
_TYPE_WORDS = frozenset(_STREET_TYPES.values()) | {"WAY", "LOOP", "PATH", "PIKE", "ROW", "RUN", "WALK", "MALL",
                                                      "OVAL", "PARK", "PASS", "SPUR", "BEND", "COVE", "GLEN"}


_UNIT = re.compile(r"\b(APT|APARTMENT|UNIT|STE|SUITE|LOT|RM|ROOM|BLDG|FL)\b.*$|#.*$")


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion (A-Z) away from ``word``."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b} | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in letters} | {a + c + b for a, b in splits for c in letters})


@functools.cache
def _type_typos() -> dict[str, str]:
    """A street type of five letters or more with one typo -> its abbreviation (STREEET, CRESCNET, SITREET ...).

    Only typos that reach a single type, are four letters or more and are not themselves a word of the tables.
    """
    reach: dict[str, set[str]] = {}
    for full, abbreviation in _STREET_TYPES.items():
        if len(full) >= 5:
            for typo in _one_edit(full):
                reach.setdefault(typo, set()).add(abbreviation)
    return {typo: next(iter(a)) for typo, a in reach.items()
            if len(a) == 1 and len(typo) >= 4 and typo not in _STREET_WORDS and typo not in _TYPE_WORDS}


#: a street type of five letters or more glued to the street name (WALKERCRESCENT, SHERLOCKSTREET)
_GLUED_TYPE = re.compile(r"^([A-Z]{3,})(" + "|".join(sorted((t for t in _STREET_TYPES if len(t) >= 5),
                                                          key=len, reverse=True)) + ")$")


def _street_type_corrected(address: str) -> str:
    """The address with its street type (last word, or the one before a trailing direction) standardised where it
    was mistyped (one typo in a type of five letters or more), split by a space (S TREET, CO URT) or glued to the
    name (WALKERCRESCENT). Clerks mistype the type as often as the name, and an exact address token otherwise
    differs for one letter of STREET. Words are standardised already; anything else is returned as it is.
    """
    words = address.split(" ")
    i = len(words) - 1
    if i >= 2 and words[i] in _DIRECTIONS.values():
        i -= 1
    word = words[i]
    if i < 1 or word in _TYPE_WORDS or not word.isalpha():
        return address
    # a space inside the type: only where a street name stays before it
    if i >= 2 and words[i - 1].isalpha() and any(c.isalpha() for w in words[:i - 1] for c in w):
        joined = words[i - 1] + word
        fixed = _STREET_TYPES.get(joined) or _type_typos().get(joined)
        if fixed:
            return " ".join([*words[:i - 1], fixed, *words[i + 1:]])
    fixed = _type_typos().get(word)
    if fixed:
        return " ".join([*words[:i], fixed, *words[i + 1:]])
    glued = _GLUED_TYPE.match(word)
    if glued:
        return " ".join([*words[:i], glued.group(1), _STREET_TYPES[glued.group(2)], *words[i + 1:]])
    return address


def normalise_address(value: str | None) -> str | None:
    """Street address with standard abbreviations, the street type corrected, and no unit designator; None when
    missing.

    >>> normalise_address("1200 North Tryon Street, Apt 4B")
    '1200 N TRYON ST'
    >>> normalise_address("8 Conlon Cresent"), normalise_address("5 Sherlockstreet"), normalise_address("9 Genoa S treet")
    ('8 CONLON CRES', '5 SHERLOCK ST', '9 GENOA ST')
    """
    if not value:
        return None
    s = _UNIT.sub("", str(value).upper())
    words = [_STREET_WORDS.get(w, w) for w in clean_text(s).split()]
    out = _street_type_corrected(" ".join(words)) if words else ""
    return out if out and any(c.isalpha() for c in out) else None


# -- vectorised address normalisation (Arrow) ----------------------------------------------------------
# Addresses are nearly unique per record, so a per-value cache does not help and the Python normaliser
# was a third of the kit's time. For printable-ASCII values this Arrow version gives exactly the same
# result (a property test proves it); any other value goes through normalise_address.
_PRINTABLE = r"^[ -~]*$"
_UNIT_RE2 = r"\b(APT|APARTMENT|UNIT|STE|SUITE|LOT|RM|ROOM|BLDG|FL)\b.*$|#.*$"


@functools.cache
def _street_lookup() -> "tuple[pa.Array, pa.Array]":
    import pyarrow as pa

    return pa.array(list(_STREET_WORDS)), pa.array(list(_STREET_WORDS.values()))


def _rows_with_bytes(values: "pa.Array", flagged: "np.ndarray") -> "np.ndarray":
    """Per row of a string array: does it hold any byte ``b`` with ``flagged[b]``? (False for null.)

    One pass over the data buffer with numpy: a regex per row cost more than the rest of the address normaliser.
    """
    import numpy as np
    import pyarrow.compute as pc

    n = len(values)
    _, offs_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int32)[values.offset: values.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start:end] if data_buf is not None else np.zeros(0, np.uint8)
    # the row of each flagged byte (few): the last row starting at or before it (empty rows start there too)
    rows = np.searchsorted(offsets, np.flatnonzero(flagged[data]) + start, side="right") - 1
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out & pc.is_valid(values).to_numpy(zero_copy_only=False)  # Arrow lets a null slot hold bytes


@functools.cache
def _byte_table(allowed: bytes) -> "np.ndarray":
    """True for every byte not in ``allowed``."""
    import numpy as np

    table = np.ones(256, dtype=bool)
    table[np.frombuffer(allowed, dtype=np.uint8)] = False
    return table


#: a street word the word pass abbreviates, or spaces it collapses or trims (the rows it would change)
_WORD_PASS_RE2 = r"^ | $|  |\b(" + "|".join(sorted(k for k, v in _STREET_WORDS.items() if k != v)) + r")\b"
_PRINTABLE_BYTES = bytes(range(32, 127))
_ADDRESS_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
_DIRECTION_RE2 = "(?: (?:" + "|".join(sorted(_DIRECTIONS.values())) + "))?$"
_ENDS_IN_LETTER_RE2 = "[A-Z]" + _DIRECTION_RE2
_ENDS_IN_TYPE_RE2 = "(?:^| )(?:" + "|".join(sorted(_TYPE_WORDS)) + ")" + _DIRECTION_RE2
_UNIT_FOUND_RE2 = r"\b(APT|APARTMENT|UNIT|STE|SUITE|LOT|RM|ROOM|BLDG|FL)\b|#"


def _replace_where(s: "pa.Array", rows: "np.ndarray", fn: "Callable[[pa.Array], pa.Array]") -> "pa.Array":
    """``s`` with ``fn`` applied to the rows flagged in ``rows`` only (the regex passes touch only the rows they
    can change; most addresses have no unit, no punctuation)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not rows.any():
        return s
    mask = pa.array(rows)
    return pc.replace_with_mask(s, mask, fn(s.filter(mask)))


def normalise_address_array(values: "pa.Array") -> "pa.Array":
    """Column-wise :func:`normalise_address` (same results; None for missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _string_array(values)
    if len(values) == 0:
        return values
    # printable ASCII takes the fast path (so does null: its result is null anyway)
    simple = ~_rows_with_bytes(values, _byte_table(_PRINTABLE_BYTES))
    s = pc.ascii_upper(values)  # rows that are not ASCII take the scalar path below
    unit = pc.fill_null(pc.match_substring_regex(s, _UNIT_FOUND_RE2), False).to_numpy(zero_copy_only=False)
    s = _replace_where(s, unit, lambda v: pc.replace_substring_regex(v, _UNIT_RE2, ""))
    s = _replace_where(s, _rows_with_bytes(s, _byte_table(_ADDRESS_BYTES)),  # apostrophes join, as in clean_text
                       lambda v: pc.replace_substring_regex(pc.replace_substring_regex(v, r"[-_.,/\\;:()\[\]]+", " "),
                                                            r"[^A-Z0-9 ]+", ""))
    # street words: split at runs of spaces, map each word through one lookup, join with single spaces
    # (one pass instead of a regex pass per abbreviation; no abbreviation is itself a key, so the same), on the
    # rows with a word to abbreviate or spaces to collapse or trim only (most lists are abbreviated already)
    def words_mapped(v: "pa.Array") -> "pa.Array":
        words = pc.ascii_split_whitespace(v)
        keys, abbreviations = _street_lookup()
        words_d = pc.dictionary_encode(pc.list_flatten(words))  # mapped per distinct word: per word cost 3x
        mapped = pc.take(pc.coalesce(pc.take(abbreviations, pc.index_in(words_d.dictionary, keys)),
                                     words_d.dictionary), words_d.indices)
        return pc.ascii_trim_whitespace(pc.binary_join(pa.ListArray.from_arrays(words.offsets, mapped), " "))

    s = _replace_where(s, pc.fill_null(pc.match_substring_regex(s, _WORD_PASS_RE2), False).to_numpy(
        zero_copy_only=False), words_mapped)
    # the street type: rows not ending in a known one (nor one before a direction) go through the scalar pass
    ends_in_letter = pc.fill_null(pc.match_substring_regex(s, _ENDS_IN_LETTER_RE2), False)
    typed = pc.fill_null(pc.match_substring_regex(s, _ENDS_IN_TYPE_RE2), False)
    s = _replace_where(s, pc.and_(ends_in_letter, pc.invert(typed)).to_numpy(zero_copy_only=False),
                       lambda v: pa.array([_street_type_corrected(x) for x in v.to_pylist()], pa.string()))
    s = pc.if_else(pc.match_substring_regex(s, "[A-Z]"), s, pa.scalar(None, pa.string()))
    if simple.all():
        return s
    slow = [normalise_address(v) if not ok else None for v, ok in zip(values.to_pylist(), simple.tolist(), strict=True)]
    return pc.if_else(pa.array(simple), s, pa.array(slow, pa.string()))


# -- more column-wise normalisers ------------------------------------------------------------------------
# Same contract as normalise_address_array: each equals its scalar function on every value (property
# tests), and hands anything outside its fast path to the scalar function.


def _string_array(values: "pa.Array") -> "pa.Array":
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else pc.cast(values, pa.string())


def normalise_ssn_array(values: "pa.Array") -> "pa.Array":
    """Column-wise :func:`normalise_ssn`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.fill_null(_string_array(values), "")
    digits = _replace_where(values, _rows_with_bytes(values, _byte_table(b"0123456789")),
                            lambda v: pc.replace_substring_regex(v, "[^0-9]", ""))
    area, group, serial = (pc.utf8_slice_codeunits(digits, a, b) for a, b in ((0, 3), (3, 5), (5, 9)))
    bad = pc.or_(pc.not_equal(pc.utf8_length(digits), 9), pc.is_in(digits, pa.array(sorted(_INVALID_SSNS))))
    bad = pc.or_(bad, pc.is_in(area, pa.array(["000", "666"])))
    bad = pc.or_(bad, pc.starts_with(area, "9"))
    bad = pc.or_(bad, pc.or_(pc.equal(group, "00"), pc.equal(serial, "0000")))
    return pc.if_else(bad, pa.scalar(None, pa.string()), digits)


def normalise_zip_array(values: "pa.Array") -> "pa.Array":
    """Column-wise :func:`normalise_zip`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.fill_null(_string_array(values), "")
    digits = _replace_where(values, _rows_with_bytes(values, _byte_table(b"0123456789")),
                            lambda v: pc.replace_substring_regex(v, "[^0-9]", ""))
    five = pc.utf8_slice_codeunits(digits, 0, 5)
    ok = pc.and_(pc.is_in(pc.utf8_length(digits), pa.array([5, 9], pa.int32())), pc.not_equal(five, "00000"))
    return pc.if_else(ok, five, pa.scalar(None, pa.string()))


# (shape of the whole value, slices of year, month, day) for the formats with a fixed layout
_DATE_SHAPES = {
    "%Y-%m-%d": (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", (0, 4), (5, 7), (8, 10)),
    "%Y%m%d": (r"^[0-9]{8}$", (0, 4), (4, 6), (6, 8)),
    "%m/%d/%Y": (r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$", (6, 10), (0, 2), (3, 5)),
    "%d-%b-%Y": (r"^[0-9]{2}-[A-Za-z]{3}-[0-9]{4}$", (7, 11), (3, 6), (0, 2)),
}


def parse_date_array(values: "pa.Array", fmt: str, *, earliest: date = date(1900, 1, 1),
                     latest: date | None = None) -> "tuple[pa.Array, dict[int, NormaliseError]]":
    """Column-wise :func:`parse_date`: (date32 array with null for blank or bad, {row: error}).

    Values in one of the fixed layouts that Arrow parses to a real calendar date inside the range are
    done column-wise; every other non-blank value (wrong shape, 30 February, out of range, formats
    without a fixed layout) goes through :func:`parse_date` itself, once per distinct value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = pc.fill_null(_string_array(values), "")
    n = len(raw)
    v = pc.ascii_trim_whitespace(raw)
    blank = pc.equal(v, "")
    null_date = pa.scalar(None, pa.date32())
    if fmt in _DATE_SHAPES and n:
        shape, ys, ms, ds = _DATE_SHAPES[fmt]
        y, m, d = (pc.utf8_slice_codeunits(v, a, b) for a, b in (ys, ms, ds))
        if fmt == "%d-%b-%Y":
            months = pa.array(list(_MONTHS))
            m = pc.take(pa.array(list(_MONTHS.values())), pc.index_in(pc.utf8_upper(m), months))
        iso = pc.binary_join_element_wise(y, m, d, "-")
        parsed = pc.cast(pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
        ok = pc.and_(pc.match_substring_regex(v, shape),
                     pc.equal(pc.cast(parsed, pa.string()), iso))  # 2020-02-30 parses as 03-01
        ok = pc.and_(ok, pc.greater_equal(parsed, pa.scalar(earliest, pa.date32())))
        if latest is not None:
            ok = pc.and_(ok, pc.less_equal(parsed, pa.scalar(latest, pa.date32())))
        ok = pc.fill_null(ok, False)
        dates = pc.if_else(ok, parsed, null_date)
    else:
        ok = pa.array([False] * n, pa.bool_())
        dates = pa.nulls(n, pa.date32())
    slow = pc.indices_nonzero(pc.and_(pc.invert(blank), pc.invert(ok))).to_pylist()
    if not slow:
        return dates, {}
    errors: dict[int, NormaliseError] = {}
    results: dict[str, date | None | NormaliseError] = {}
    mask, replacement = [False] * n, [None] * n
    for i in slow:
        value = raw[i].as_py()
        if value not in results:
            try:
                results[value] = parse_date(value, fmt, earliest=earliest, latest=latest)
            except NormaliseError as exc:
                results[value] = exc
        r = results[value]
        if isinstance(r, NormaliseError):
            errors[i] = r
        else:
            mask[i], replacement[i] = True, r
    return pc.if_else(pa.array(mask), pa.array(replacement, pa.date32()), dates), errors


def split_formatted_name_array(values: "pa.Array") -> "tuple[pa.Array, pa.Array, pa.Array]":
    """Column-wise :func:`split_formatted_name`: (last, first, middle) raw string arrays, null when absent.

    Printable-ASCII values (where the only whitespace is the space) are split with Arrow kernels and numpy index
    arithmetic on the words; any other value once per distinct value in Python. (Formatted names are near-unique,
    so the per-value Python split was a tenth of a hospital's kit run; ``extract_regex`` measured twice as slow
    as Python: capture groups take RE2 off its fast path.)
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.fill_null(_string_array(values), "")
    s = pa.string()
    if len(values) == 0:
        return pa.array([], s), pa.array([], s), pa.array([], s)
    # partition at the first comma: before it the last name; after it (or the whole value) the words
    comma = pc.fill_null(pc.match_substring(values, ","), False).to_numpy(zero_copy_only=False)
    parts = pc.split_pattern(values, ",", max_splits=1)
    p_off = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    p_start = np.concatenate(([0], np.cumsum(p_off)[:-1]))
    flat_parts = pc.list_flatten(parts)
    before = pc.ascii_trim_whitespace(pc.take(flat_parts, pa.array(p_start)))
    after = pc.take(flat_parts, pa.array(np.where(comma, p_start + 1, p_start)))
    seq = pc.ascii_trim_whitespace(pc.if_else(pa.array(comma), after, values))
    words = pc.ascii_split_whitespace(seq)
    count = np.where(pc.equal(seq, "").to_numpy(zero_copy_only=False), 0,
                     pc.list_value_length(words).to_numpy(zero_copy_only=False)).astype(np.int64)
    w_start = np.concatenate(([0], np.cumsum(pc.list_value_length(words).to_numpy(zero_copy_only=False))[:-1]))
    flat = pc.list_flatten(words)

    def word(at: np.ndarray, present: np.ndarray) -> pa.Array:
        return pc.take(flat, pa.array(np.where(present, at, 0), mask=~present))

    # comma: (before or None, words[0], words[1:]); no comma: 1 word (it, None, None), more (last, first, middle)
    last = pc.if_else(pa.array(comma), pc.if_else(pc.equal(before, ""), pa.scalar(None, s), before),
                      word(w_start + count - 1, count >= 1))
    first = word(w_start, (count >= 1) & (comma | (count >= 2)))
    # middle words: positions 1 .. count-1 (comma) or 1 .. count-2 (no comma) of each row's words
    mid_n = np.maximum(0, np.where(comma, count - 1, count - 2))
    take = np.repeat(w_start + 1, mid_n) + (np.arange(mid_n.sum()) - np.repeat(np.cumsum(mid_n) - mid_n, mid_n))
    middle = pc.binary_join(pa.ListArray.from_arrays(pa.array(np.concatenate(([0], np.cumsum(mid_n))), pa.int32()),
                                                     pc.take(flat, pa.array(take, pa.int64()))), " ")
    middle = pc.if_else(pc.equal(middle, ""), pa.scalar(None, s), middle)
    out = [last, first, middle]
    other = _rows_with_bytes(values, _byte_table(_PRINTABLE_BYTES))
    if other.any():  # not printable ASCII (accents, tabs, other whitespace): the scalar split, per distinct value
        d = pc.dictionary_encode(values.filter(pa.array(other)))
        split = [split_formatted_name(v) for v in d.dictionary.to_pylist()]
        mask = pa.array(other)
        out = [pc.replace_with_mask(col, mask, pc.take(pa.array([p[k] for p in split], s), d.indices))
               for k, col in enumerate(out)]
    return out[0], out[1], out[2]