"""Given names and their nicknames: which formal names a first name may stand for (encoding scheme 8, ADR 0019).

One person is BILL at the police and WILLIAM at the hospital, LUPE at school and GUADALUPE at the county. Their
first-name tokens, filters and phonetic likeness say nothing about that; only a table does. The table here is
the ``nicknames`` package (Carlton Northern and Nick Crews, Apache-2.0: about 2,700 hand-curated English
name/nickname pairs) plus the kit's own supplement of Spanish hypocoristics (``data/nicknames_es.csv``, from
common usage: JOSE / PEPE, FRANCISCO / PACO, JESUS / CHUY), which the package lacks. Without it the table would
help English names only and widen the gap between groups' missed links that issue 13 asks to close.

The relation is many-to-many (AL is short for ALAN, ALBERT, ALEXANDER, ALFRED ...), so a first name maps to the
formal names it may stand for, ranked (:func:`formal_names`): the kit encodes up to :data:`MAX_FORMAL` of them as
first-name tokens (``enc_fn_alt1`` ...), and two records' first names are one name by the table when one's name
is among the other's formal names or their formal names meet.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files

__all__ = ["MAX_FORMAL", "TABLE_SHA256", "NicknameTableError", "formal_names", "fingerprint", "nickname_pairs",
           "ranked_table", "table"]

#: formal names encoded per record: 3 cover every formal name of 88 % of the package's nicknames and 84 % of its
#: pairs (AL, BERT, LENA have a dozen or more: the ones with the most nicknames of their own come first; ADR 0019)
MAX_FORMAL = 3
_NOT_LETTER = re.compile(r"[^A-Z]")
#: the fingerprint of the ranked table the encoding scheme was made with (:func:`fingerprint`): the tokens depend
#: on every entry, so a kit whose installed ``nicknames`` package gives another table refuses to encode (two
#: partners on two tables would write tokens that do not meet, under one scheme's name)
TABLE_SHA256 = "8bdf3ee29a6f19db789b98dff6924171df78605fe504396142ef739723b21d88"


class NicknameTableError(ValueError):
    """The installed nickname table is not the one the encoding scheme was made with."""


def _clean(name: str) -> str:
    """The kit's normalised first name (:func:`partner_kit.normalise.normalise_given`) of a table entry: upper-case
    letters, words joined."""
    return _NOT_LETTER.sub("", name.upper())


def nickname_pairs() -> list[tuple[str, str, str]]:
    """Every (formal name, nickname, source) pair of the table, normalised as the kit normalises first names."""
    out: list[tuple[str, str, str]] = []
    with files("nicknames").joinpath("names.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("relationship") == "has_nickname":
                out.append((_clean(row["name1"]), _clean(row["name2"]), "nicknames"))
    with files("partner_kit").joinpath("data", "nicknames_es.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.append((_clean(row["name"]), _clean(row["nickname"]), "kit-es"))
    return [(a, b, s) for a, b, s in out if a and b and a != b]


def fingerprint(ranked: dict[str, tuple[str, ...]]) -> str:
    """SHA-256 of a ranked table (names and their formal names in order), in a fixed serialisation."""
    return hashlib.sha256(json.dumps(sorted(ranked.items()), separators=(",", ":")).encode()).hexdigest()


@lru_cache(maxsize=1)
def table() -> dict[str, tuple[str, ...]]:
    """First name -> the formal names it may stand for (:func:`ranked_table`), refused unless it is the table the
    encoding scheme was made with (:data:`TABLE_SHA256`)."""
    ranked = ranked_table()
    if fingerprint(ranked) != TABLE_SHA256:
        try:
            version = importlib.metadata.version("nicknames")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
            version = "unknown"
        raise NicknameTableError(
            f"the nickname table (the nicknames package {version} and partner_kit/data/nicknames_es.csv) is not the one "
            "this kit's encoding scheme was made with: its first-name tokens would not match other partners'. "
            "Reinstall the kit with the nicknames version it pins (pip install --force-reinstall the kit's wheel)")
    return ranked


def ranked_table() -> dict[str, tuple[str, ...]]:
    """First name -> the formal names it may stand for, most prominent first (at most :data:`MAX_FORMAL`).

    Ranked: formal names that begin with the name's own letter first (AL: ALBERT, ALEXANDER before JALEN), then
    by how many nicknames each has in the table (a proxy for how common it is: WILLIAM before WILLIS for BILL),
    then by the name (a fixed order). Names that are formal only are not keys: their own token is their formal name.
    """
    formal_of: dict[str, set[str]] = defaultdict(set)
    nicknames_of: dict[str, set[str]] = defaultdict(set)
    for formal, nick, _ in nickname_pairs():
        formal_of[nick].add(formal)
        nicknames_of[formal].add(nick)
    return {name: tuple(sorted(formals, key=lambda f: (f[0] != name[0], -len(nicknames_of[f]), f))[:MAX_FORMAL])
            for name, formals in formal_of.items()}


def formal_names(names: Iterable[str | None]) -> list[tuple[str, ...]]:
    """The formal names each first name may stand for (empty for a name the table does not hold, or None)."""
    t = table()
    return [t.get(n, ()) if n else () for n in names]
