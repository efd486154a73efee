"""Residence census tracts computed at the partner's site, from the address it already holds (issue 15).

A hospital extract carries where the patient lives, but the address is an identifier: it leaves the site only as
encodings. The tract it lies in is what the indicators need (where patients live), and a census tract of several
thousand residents identifies no one alone. So the kit looks the address up in an address-points file (the
county's published master address list: one row per address point with its census tract) and sends the tract as
a content column; the address itself never leaves.

The lookup is exact on the normalised address line (house number and street, the unit dropped; the same
normaliser as the encodings, so "12 Oak Street Apt 4" and "12 OAK ST" are one point) and the 5-digit ZIP. An
address the file does not know, or one the file places in more than one tract, gets no tract: the kit does not
guess, and the summary counts how many rows were not placed.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from partner_kit.normalise import normalise_address_array, normalise_zip_array

__all__ = ["ADDRESS_POINT_COLUMNS", "AddressPoints", "GeocodeError", "TRACT_PATTERN", "prepare_reference",
           "site_address_points"]

#: the address-points file's header (extra columns are ignored)
ADDRESS_POINT_COLUMNS = ("address", "zip", "tract")
#: an 11-digit census tract GEOID (state, county, tract)
TRACT_PATTERN = r"^[0-9]{11}$"


class GeocodeError(Exception):
    """The address-points file is missing or malformed; the message names the file, the row and the rule."""


@dataclass
class AddressPoints:
    """Normalised ``address|zip`` -> tract; an address whose points lie in more than one tract gets none."""

    points: dict[str, str] = field(default_factory=dict)
    source: str = ""
    #: the lookup as two aligned arrays (keys, tracts), one row per point of the list, a key repeated where the list
    #: has several points at one address: what :meth:`load` builds; ``points`` is for small lookups made in code
    #: (tests, trials) and is read when the arrays are absent. Which keys are ambiguous is decided per lookup, for
    #: the keys looked up: finding the distinct keys of the whole list (a hash of 1,300,000 strings) was half of
    #: building the lookup, on a hospital's first run after a new list
    arrays: tuple[pa.Array, pa.Array] | None = None
    #: (distinct addresses with one tract, ambiguous addresses), counted when first asked (:attr:`ambiguous`)
    _counts: tuple[int, int] | None = field(default=None, repr=False)

    @property
    def ambiguous(self) -> int:
        """How many addresses of the list have points in more than one tract (they get no tract)."""
        return self._count()[1]

    def _count(self) -> tuple[int, int]:
        if self._counts is None:
            if self.arrays is None:
                self._counts = (len(self.points), 0)
            else:
                k, t = self.arrays
                g = pa.table({"k": k, "t": t}).group_by("k").aggregate([("t", "count_distinct")])
                n = g.column("t_count_distinct").to_numpy()
                self._counts = (int((n == 1).sum()), int((n > 1).sum()))
        return self._counts

    @classmethod
    def load(cls, path: Path, *, cache: bool = True) -> AddressPoints:
        """Read an address-points file (CSV, UTF-8, header naming at least :data:`ADDRESS_POINT_COLUMNS`).

        Read column-wise with Arrow's CSV reader. Every tract must be an 11-digit GEOID: the first that is not is
        named with its line. Normalising a county's list (about a point per resident) was a quarter of a hospital's
        kit run at 1,000,000 persons, and the list changes a few times a year: the lookup it gives is kept beside
        it (:func:`lookup_cache_path`, 0600) and reused while the file's SHA-256 and the normaliser's code are
        unchanged. The list is the county's public data, never a record of the partner. A cache that cannot be
        read is rebuilt; one that cannot be written (a read-only folder) is skipped.
        """
        path = Path(path)
        if not path.is_file():
            raise _missing(path, "the profile's \"geocode\"")
        stamp = _stamp(path) if cache else None
        if stamp is not None:
            cached = _read_cache(path, stamp)
            if cached is not None:
                return cached
        points = cls._parse(path)
        if stamp is not None:
            _write_cache(path, stamp, points)
        return points

    @classmethod
    def _parse(cls, path: Path) -> AddressPoints:
        try:
            with path.open("rb") as f:
                header = f.readline().decode("utf-8-sig").strip()
            names = next(csv.reader([header]), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise GeocodeError(f"{path}: not a readable UTF-8 CSV file ({type(exc).__name__})") from None
        missing = [c for c in ADDRESS_POINT_COLUMNS if c not in names]
        if missing:
            raise GeocodeError(f"{path}: missing columns {missing} (the header must name "
                               f"{', '.join(ADDRESS_POINT_COLUMNS)})")
        try:
            table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding="utf-8"),
                                   convert_options=pacsv.ConvertOptions(
                                       include_columns=list(ADDRESS_POINT_COLUMNS),
                                       column_types={c: pa.string() for c in ADDRESS_POINT_COLUMNS},
                                       strings_can_be_null=False, quoted_strings_can_be_null=False))
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise GeocodeError(f"{path}: not a well-formed CSV file: {str(exc).splitlines()[0][:200]}") from None
        tracts = pc.utf8_trim_whitespace(table.column("tract").combine_chunks())
        bad = pc.invert(pc.match_substring_regex(tracts, TRACT_PATTERN))
        if pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            tract = tracts[row].as_py()
            raise GeocodeError(f"{path}: line {row + 2}: tract {tract[:20]!r} is not an 11-digit census tract")
        keys = _keys(table.column("address").combine_chunks(), table.column("zip").combine_chunks())
        placed = pc.is_valid(keys)
        return cls({}, str(path), arrays=(keys.filter(placed), tracts.filter(placed)))

    def __len__(self) -> int:
        """Distinct addresses the lookup places (one tract each)."""
        return self._count()[0]

    def tracts(self, normalised_address: pa.Array, normalised_zip: pa.Array) -> pa.Array:
        """The tract of each (already normalised) address and ZIP, null where the file has no single tract.

        A county's list has about a point per resident; a batch of an extract far fewer distinct addresses. So the
        batch's distinct keys are hashed and the list is probed against them (hashing the list on every batch
        was most of the lookup's cost at 1,000,000 persons).
        """
        keys = pc.binary_join_element_wise(normalised_address, normalised_zip, "|")
        if self.arrays is not None:
            index, values = self.arrays
        elif self.points:
            index, values = pa.array(list(self.points), pa.string()), pa.array(list(self.points.values()), pa.string())
        else:
            return pa.nulls(len(keys), pa.string())
        distinct = pc.unique(keys.drop_null())
        at = pc.index_in(index, value_set=distinct)  # for each point: its key's place among the batch's, or null
        found = pc.is_valid(at)
        pos = pc.filter(at, found).to_numpy(zero_copy_only=False)
        point = np.flatnonzero(found.to_numpy(zero_copy_only=False))
        # per key looked up, one of its points (the last written); a key with a point in another tract gets none
        where = np.full(len(distinct), -1, dtype=np.int64)
        where[pos] = point
        tract = pc.take(values, pa.array(point))
        other = pc.not_equal(tract, pc.take(values, pa.array(where[pos]))).to_numpy(zero_copy_only=False)
        where[pos[other]] = -1
        tract_of_distinct = pc.take(values, pa.array(where, mask=where < 0))
        return pc.take(tract_of_distinct, pc.index_in(keys, value_set=distinct))


def lookup_cache_path(path: Path) -> Path:
    """Where the lookup computed from an address-points file is kept: beside it, hidden."""
    return path.with_name(f".{path.name}.lookup.parquet")


def _missing(path: Path, needed_by: str) -> GeocodeError:
    return GeocodeError(f"{path}: no address-points file (columns {', '.join(ADDRESS_POINT_COLUMNS)}; the county's "
                        f"master address list with census tracts), needed by {needed_by}")


def _stamp(path: Path) -> str:
    """What the cached lookup depends on: the file's bytes and the normaliser's code."""
    from partner_kit import normalise

    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(b"\0" + Path(normalise.__file__).read_bytes() + b"\0" + Path(__file__).read_bytes())
    return h.hexdigest()


def _read_cache(path: Path, stamp: str) -> AddressPoints | None:
    cache = lookup_cache_path(path)
    if not cache.is_file():
        return None
    try:
        table = pq.read_table(cache)
        meta = table.schema.metadata or {}
        if meta.get(b"vpdc_stamp", b"").decode() != stamp or table.column_names != ["k", "t"]:
            return None
        return AddressPoints({}, str(path),
                             arrays=(table.column("k").combine_chunks(), table.column("t").combine_chunks()))
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None  # unreadable or foreign: rebuilt from the list


def _write_cache(path: Path, stamp: str, points: AddressPoints) -> None:
    from workspace.files import atomic_path

    if points.arrays is None:
        return
    table = pa.table({"k": points.arrays[0], "t": points.arrays[1]}).replace_schema_metadata({"vpdc_stamp": stamp})
    try:
        with atomic_path(lookup_cache_path(path), mode=0o600) as tmp:
            pq.write_table(table, tmp)
    except OSError:
        pass  # a read-only reference folder: every run normalises the list again


def _keys(address: pa.Array, zip_: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(normalise_address_array(address), normalise_zip_array(zip_), "|")


def site_address_points(profile, reference_dir: Path, *, missing_ok: bool = False) -> AddressPoints | None:
    """The address points a profile's ``geocode`` names, from a site's ``reference/`` folder (None when the profile
    computes no tract). ``missing_ok``: an absent file gives an empty lookup (every tract unplaced), for trials."""
    if not getattr(profile, "geocode", None):
        return None
    path = Path(reference_dir) / profile.geocode["reference"]
    if missing_ok and not path.is_file():
        return AddressPoints(source=str(path))
    return AddressPoints.load(path)


def prepare_reference(profiles, reference_dir: Path) -> list[dict]:
    """Check every address-points file the given profiles geocode with and build its lookup now (``vpdc-kit
    reference check``): run when the county publishes a new list, so a malformed file is named (with its line)
    before the month's encode run, and the list is normalised once instead of in that run (at 1,300,000 points, a
    second or two of a hospital's encode). One row per file: its name, the points kept, the ambiguous ones dropped,
    and whether the lookup was ``built``, ``reused`` (already current) or ``not kept`` (a read-only folder: every
    encode run normalises the list again)."""
    import time

    rows: list[dict] = []
    seen: set[Path] = set()
    for profile in profiles:
        if not getattr(profile, "geocode", None):
            continue
        path = Path(reference_dir) / profile.geocode["reference"]
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            raise _missing(path, f"profile {profile.partner}/{profile.extract_type}")
        t0 = time.perf_counter()
        stamp = _stamp(path)
        points = _read_cache(path, stamp)
        state = "reused"
        if points is None:
            points = AddressPoints._parse(path)
            _write_cache(path, stamp, points)
            state = "built" if _read_cache(path, stamp) is not None else "not kept"
        rows.append({"file": path.name, "points": len(points), "ambiguous": points.ambiguous, "lookup": state,
                     "seconds": round(time.perf_counter() - t0, 3)})
    return rows
