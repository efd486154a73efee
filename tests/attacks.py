"""Plaintext disguises of issue 12, built as an attacker would: decrypt a valid payload, put identifiers into it,
and seal it again with the partner's own kit code and keys (a valid signature and encryption).

Shared by ``tests/integration/test_landing_attacks.py`` and ``bench/bench_landing_attacks.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from envelope.format import open_envelope, read_manifest, seal_envelope
from envelope.keys import PartnerKeyRing, WarehouseKeyRing
from workspace import Home

FIRST, LAST = "MARIA", "GARCIA"  # both on the name list; any of its names would do
#: share of rows a disguise is planted in: every row, 10 %, 1 %, one row
SHARES = {"100%": 1.0, "10%": 0.10, "1%": 0.01, "one_row": 0.0}


def _pad(text: str, width: int, pad: str = "_") -> str:
    return (text + pad * width)[:width]


@dataclass(frozen=True)
class Disguise:
    """One way of putting an identifier into a column: ``target`` is where (partner, extract, column)."""

    name: str
    partner: str
    extract: str
    column: str
    value: Callable[[int], object]  # row number -> the planted value


def _names(i: int) -> tuple[str, str]:
    rng = random.Random(i)
    return rng.choice([FIRST, "JOHN", "AALIYAH", "DEANDRE", "NGUYEN"]), rng.choice([LAST, "SMITH", "WASHINGTON", "OKAFOR"])


def _case(i: int, text: str) -> str:
    return (str.upper, str.lower, str.title)[i % 3](text)


SC = ("schools", "enrollments", "SCHOOL_CODE")  # the one pattern column that was free text before issue 12
DISGUISES: list[Disguise] = [
    Disguise("name_first_last", *SC, lambda i: _case(i, "{} {}".format(*_names(i)))),
    Disguise("name_last_comma_first", *SC, lambda i: _case(i, "{1}, {0}".format(*_names(i)))),
    Disguise("name_first_only", *SC, lambda i: _case(i, _names(i)[0])),
    Disguise("name_last_only", *SC, lambda i: _case(i, _names(i)[1])),
    Disguise("name_with_accents", *SC, lambda i: "María García" if i % 2 else "JOSÉ NÚÑEZ"),
    Disguise("ssn_no_dashes", *SC, lambda i: f"{123 + i % 500:03d}{45 + i % 50:02d}{6789 - i % 1000:04d}"),
    Disguise("ssn_spaces", *SC, lambda i: f"{123 + i % 500:03d} {45 + i % 50:02d} {6789 - i % 1000:04d}"),
    Disguise("ssn_dashes", *SC, lambda i: f"{123 + i % 500:03d}-{45 + i % 50:02d}-{6789 - i % 1000:04d}"),
    Disguise("dob_yyyymmdd", *SC, lambda i: f"{1990 + i % 20}{1 + i % 12:02d}{1 + i % 28:02d}"),
    Disguise("dob_month_d_yyyy", *SC, lambda i: f"November {1 + i % 28}, {1990 + i % 20}"),
    Disguise("name_and_dob", *SC, lambda i: _case(i, "{} {} 2011-11-16".format(*_names(i)))),
    Disguise("code_with_name", *SC, lambda i: "610052 {} {}".format(*_names(i))),
    Disguise("street_address", *SC, lambda i: f"{100 + i} N Tryon St"),
    Disguise("phone", *SC, lambda i: f"(704) 555-{i % 10000:04d}"),
    Disguise("email", *SC, lambda i: f"student{i}@example.org"),
    Disguise("name_in_zip_column", "police", "persons", "ZIP", lambda i: _case(i, _names(i)[1])),
    Disguise("name_padded_in_record_id", "police", "persons", "source_record_id",
             lambda i: _pad(_case(i, "{}_{}".format(*_names(i))) + f"_{i}", 20)),
    Disguise("name_padded_in_person_ref", "schools", "enrollments", "person_record_id",
             lambda i: _pad(_case(i, "{1}-{0}".format(*_names(i))), 20, "-")),
    Disguise("name_in_token", "police", "persons", "enc_ln_full", lambda i: _pad(_case(i, _names(i)[1]), 16)),
    Disguise("first_last_in_token", "police", "persons", "enc_fn_full",
             lambda i: _pad(_case(i, "{}{}".format(*_names(i))), 16, "0")),
    Disguise("dob_in_token", "police", "persons", "enc_dob_full", lambda i: _pad(f"{1990 + i % 20}-11-16", 16)),
    Disguise("address_in_token", "police", "persons", "enc_addr", lambda i: _pad(f"{100 + i}_MAIN_ST", 16)),
    Disguise("name_in_bloom_filter", "police", "persons", "enc_fn_bf",
             lambda i: ("{} {}".format(*_names(i)).encode() + b"\x00" * 64)[:64]),
    Disguise("name_dob_in_bloom_filter", "police", "persons", "enc_ln_bf",
             lambda i: ("{1}, {0} 2011-11-16".format(*_names(i)).encode() + b" " * 64)[:64]),
]


def payload_of(home: Home, envelope: Path) -> pa.Table:
    """The payload inside an envelope (decrypted with the warehouse key: what an attacker starts from)."""
    with open_envelope(envelope, WarehouseKeyRing(home.keys)) as opened:
        return pq.read_table(opened.payload)


def plant(table: pa.Table, column: str, share: float, value: Callable[[int], object], seed: int = 12) -> tuple[pa.Table, int]:
    """``table`` with ``value(i)`` in ``column`` for ``share`` of its rows (at least one). Returns it and the
    number of rows planted."""
    n = table.num_rows
    k = max(1, round(n * share)) if share > 0 else 1
    rows = set(random.Random(seed).sample(range(n), k))
    idx = table.schema.get_field_index(column)
    col = table.column(column).to_pylist()
    for i in rows:
        col[i] = value(i)
    return table.set_column(idx, table.schema.field(idx), pa.array(col, table.schema.field(idx).type)), k


def reseal(home: Home, table: pa.Table, like: Path, *, name: str, out_dir: Path | None = None) -> Path:
    """Seal ``table`` like the envelope ``like`` (same partner, extract, period), with the partner's own kit keys."""
    m = read_manifest(like)
    tmp = home.root / f".{name}.parquet"
    pq.write_table(table, tmp)
    try:
        return seal_envelope(tmp, partner=m.partner, extract_type=m.extract_type, period=m.period,
                             schema_version=m.schema_version, row_count=table.num_rows,
                             linkage_key_version=m.linkage_key_version,
                             keyring=PartnerKeyRing(home.partner_keys(m.partner)),
                             out_dir=out_dir or home.landing(m.partner), extra=m.extra)
    finally:
        tmp.unlink(missing_ok=True)
