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
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from partner_kit.normalise import normalise_address_array, normalise_zip_array

__all__ = ["ADDRESS_POINT_COLUMNS", "AddressPoints", "GeocodeError", "TRACT_PATTERN", "site_address_points"]

#: the address-points file's header (extra columns are ignored)
ADDRESS_POINT_COLUMNS = ("address", "zip", "tract")
#: an 11-digit census tract GEOID (state, county, tract)
TRACT_PATTERN = r"^[0-9]{11}$"


class GeocodeError(Exception):
    """The address-points file is missing or malformed; the message names the file, the row and the rule."""


@dataclass
class AddressPoints:
    """Normalised ``address|zip`` -> tract, ambiguous points dropped."""

    points: dict[str, str] = field(default_factory=dict)
    ambiguous: int = 0
    source: str = ""

    @classmethod
    def load(cls, path: Path) -> AddressPoints:
        path = Path(path)
        if not path.is_file():
            raise GeocodeError(f"{path}: no address-points file (columns {', '.join(ADDRESS_POINT_COLUMNS)}; the "
                               "county's master address list with census tracts), needed by the profile's "
                               "\"geocode\"")
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ADDRESS_POINT_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise GeocodeError(f"{path}: missing columns {missing} (the header must name "
                                   f"{', '.join(ADDRESS_POINT_COLUMNS)})")
            addresses, zips, tracts = [], [], []
            for line, row in enumerate(reader, start=2):
                tract = (row["tract"] or "").strip()
                if not (len(tract) == 11 and tract.isdigit()):
                    raise GeocodeError(f"{path}: line {line}: tract {tract[:20]!r} is not an 11-digit census tract")
                addresses.append(row["address"] or "")
                zips.append(row["zip"] or "")
                tracts.append(tract)
        keys = _keys(pa.array(addresses, pa.string()), pa.array(zips, pa.string())).to_pylist()
        points: dict[str, str] = {}
        clash: set[str] = set()
        for k, t in zip(keys, tracts, strict=True):
            if k is None:
                continue
            if points.setdefault(k, t) != t:
                clash.add(k)
        for k in clash:
            del points[k]
        return cls(points, len(clash), str(path))

    def tracts(self, normalised_address: pa.Array, normalised_zip: pa.Array) -> pa.Array:
        """The tract of each (already normalised) address and ZIP, null where the file has no single tract."""
        keys = pc.binary_join_element_wise(normalised_address, normalised_zip, "|")
        if not self.points:
            return pa.nulls(len(keys), pa.string())
        index = pa.array(list(self.points), pa.string())
        values = pa.array(list(self.points.values()), pa.string())
        return pc.take(values, pc.index_in(keys, index))


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
