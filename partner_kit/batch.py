"""Every extract of a period, at one partner site: encode them, then seal them into envelopes.

What the kit's ``encode`` and ``send`` commands do, as plain functions; the demo runs them for every partner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from envelope.keys import PartnerKeyRing
from partner_kit.encode import Encoder, EncodingParams
from partner_kit.extract import SchemaError, encode_extract, seal_encoded
from partner_kit.geocode import site_address_points
from partner_kit.profiles import extract_types, load_profile
from workspace import PartnerSite

__all__ = ["encode_period", "send_period"]


def encode_period(site: PartnerSite, partner: str, period: str, *, keyring: PartnerKeyRing, today: date,
                  extracts: list[str] | None = None, input_path: Path | None = None, profiles_dir: Path | None = None,
                  params: EncodingParams | None = None,
                  progress: Callable[[str], Callable[[int], None] | None] | None = None) -> list[dict[str, Any]]:
    """Encode the period's extracts (every extract type of the profile that has a file, or ``extracts``).

    Args:
        input_path: one native file to encode instead of ``<site>/<period>/<profile file>`` (needs one extract).
        progress: called with a task label, returns a row counter (or None).

    Raises:
        SchemaError, ProfileError, KeyError_: the file, profile or keys cannot be used (nothing is written).
    """
    names = extracts or extract_types(partner, profiles_dir=profiles_dir)
    if input_path is not None and len(names) != 1:
        raise SchemaError("an input file needs exactly one extract type")
    previous = keyring.previous_linkage_version()
    encoder = Encoder(keyring.linkage_secret(), params,
                      previous=keyring.linkage_secret(previous) if previous else None)
    results = []
    for extract in names:
        profile = load_profile(partner, extract, profiles_dir=profiles_dir)
        src = input_path or site.extracts(period) / profile.file
        if input_path is None and not src.exists() and extracts is None:
            continue  # this period has no file of this extract type
        dest = site.encoded(period) / f"{extract}.parquet"
        summary = encode_extract(profile, src, dest, encoder, today=today,
                                 address_points=site_address_points(profile, site.reference),
                                 progress=progress(f"{partner}/{extract} {period}") if progress else None)
        results.append(summary.as_dict() | {"period": period})
    return results


def send_period(site: PartnerSite, partner: str, period: str, *, keyring: PartnerKeyRing, out_dir: Path,
                extracts: list[str] | None = None, profiles_dir: Path | None = None) -> list[dict[str, Any]]:
    """Seal the period's encoded payloads into envelopes in ``out_dir``.

    Raises:
        SchemaError: an asked-for extract was not encoded yet (says which command to run), or mixes key versions.
    """
    base = site.encoded(period)
    files = [base / f"{e}.parquet" for e in extracts] if extracts else sorted(base.glob("*.parquet"))
    results = []
    for f in files:
        if not f.is_file():
            raise SchemaError(f"{f}: not encoded yet; run `encode --partner {partner} --extract {f.stem} "
                              f"--period {period}` first")
        env = seal_encoded(f, partner=partner, extract_type=f.stem, period=period, keyring=keyring, out_dir=out_dir,
                           profiles_dir=profiles_dir)
        results.append({"partner": partner, "extract_type": f.stem, "period": period,
                        "rows": pq.ParquetFile(f).metadata.num_rows, "envelope": str(env)})
    return results
