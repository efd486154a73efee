"""The partner kit: normalise, encode, and (with :mod:`governance.transfer`) seal extracts.

Runs at the partner's site with light dependencies only (cryptography, pyarrow, pandas, jellyfish).
"""

from linkage.encoding.encode import BLOOM_COLUMNS, ENCODING_COLUMNS, Encoder, EncodingParams, dice
from linkage.encoding.kit import (
    EncodeSummary,
    ExtractProfile,
    ProfileError,
    SchemaError,
    encode_extract,
    extract_types,
    load_profile,
    partners,
    seal_encoded,
)

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
