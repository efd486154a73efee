"""The partner kit: normalise, encode and seal extracts at the partner's own site.

Runs with light dependencies only (cryptography, pyarrow, pandas, jellyfish; typer and rich for its
command line). It ships with :mod:`envelope` (the format it seals into) and :mod:`workspace`; it never
imports Dagster, dbt, Splink, Great Expectations or a database driver (a test proves it).
"""

from partner_kit.encode import BLOOM_COLUMNS, ENCODING_COLUMNS, Encoder, EncodingParams, dice
from partner_kit.extract import EncodeSummary, SchemaError, encode_extract, seal_encoded
from partner_kit.profiles import ExtractProfile, ProfileError, extract_types, load_profile, partners

__all__ = [
    "BLOOM_COLUMNS",
    "ENCODING_COLUMNS",
    "EncodeSummary",
    "Encoder",
    "EncodingParams",
    "ExtractProfile",
    "ProfileError",
    "SchemaError",
    "dice",
    "encode_extract",
    "extract_types",
    "load_profile",
    "partners",
    "seal_encoded",
]
