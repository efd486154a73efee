"""Partner profiles: how each partner's native extract maps onto the kit's identifier roles and content columns.

A profile (``<partner>.json`` in this package) is the contract between a partner and the warehouse: the kit
encodes an extract by it, and the landing zone validates the envelope against the schema it implies
(:meth:`ExtractProfile.output_schema`). The list of partners is derived from the profiles shipped here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from importlib import resources
from typing import Any

import pyarrow as pa

__all__ = ["CONTENT_TYPES", "IDENTIFIER_ROLES", "ExtractProfile", "ProfileError", "extract_types", "load_profile",
           "partners"]

IDENTIFIER_ROLES = ("first_name", "middle_name", "last_name", "suffix", "formatted_name", "dob", "sex", "ssn",
                    "address", "zip")
CONTENT_TYPES = {"string": pa.string(), "int": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("ms")}  # Parquet has no seconds unit


class ProfileError(Exception):
    """A profile is missing or malformed."""


@dataclass(frozen=True)
class ExtractProfile:
    partner: str
    extract_type: str
    kind: str  # "persons" or "events"
    file: str
    delimiter: str
    schema_version: str
    record_id: dict[str, Any]
    content: dict[str, dict[str, Any]]
    identifiers: dict[str, Any] = field(default_factory=dict)
    person_ref: dict[str, Any] | None = None
    group_ref: dict[str, Any] | None = None

    def expected_columns(self) -> set[str]:
        cols = set(self.record_id["columns"]) | set(self.content)
        for ref in (self.person_ref, self.group_ref):
            if ref:
                cols |= set(ref["columns"])
        cols |= {v for k, v in self.identifiers.items() if k in IDENTIFIER_ROLES and v}
        return cols

    def output_schema(self) -> pa.Schema:
        """The payload's columns, in order. The warehouse validates envelopes against this."""
        from partner_kit.encode import BLOOM_COLUMNS, ENCODING_COLUMNS

        fields = [pa.field("source_record_id", pa.string(), nullable=False)]
        if self.person_ref:
            fields.append(pa.field("person_record_id", pa.string(), nullable=False))
        if self.group_ref:
            fields.append(pa.field(self.group_ref["name"], pa.string()))
        fields.append(pa.field("linkage_key_version", pa.string(), nullable=False))
        if self.kind == "persons":
            for col in ENCODING_COLUMNS:
                fields.append(pa.field(col, pa.binary() if col in BLOOM_COLUMNS else pa.string()))
            fields.append(pa.field("birth_year", pa.int16()))
        for col, spec in self.content.items():
            fields.append(pa.field(col, CONTENT_TYPES[spec["type"]]))
        return pa.schema(fields)


def partners() -> list[str]:
    """Partners with a shipped profile."""
    return sorted(p.name.removesuffix(".json") for p in resources.files("partner_kit.profiles").iterdir()
                  if p.name.endswith(".json"))


def load_profile(partner: str, extract_type: str) -> ExtractProfile:
    try:
        raw = json.loads(resources.files("partner_kit.profiles").joinpath(f"{partner}.json").read_text())
    except FileNotFoundError:
        raise ProfileError(f"no profile for partner {partner!r}; known partners: {', '.join(partners())}") from None
    ex = raw["extracts"].get(extract_type)
    if ex is None:
        raise ProfileError(f"partner {partner!r} has no extract {extract_type!r}; known: {', '.join(raw['extracts'])}")
    for col, spec in ex.get("content", {}).items():
        if spec.get("type") not in CONTENT_TYPES:
            raise ProfileError(f"{partner}.{extract_type}: content column {col} has unknown type {spec.get('type')!r}")
    return ExtractProfile(
        partner=partner, extract_type=extract_type, kind=ex["kind"], file=ex["file"],
        delimiter=ex.get("delimiter", ","), schema_version=ex["schema_version"], record_id=ex["record_id"],
        content=ex.get("content", {}), identifiers=ex.get("identifiers", {}), person_ref=ex.get("person_ref"),
        group_ref=ex.get("group_ref"),
    )


def extract_types(partner: str) -> list[str]:
    raw = json.loads(resources.files("partner_kit.profiles").joinpath(f"{partner}.json").read_text())
    return list(raw["extracts"])


