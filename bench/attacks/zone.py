"""A linkage zone for the attacks, built the way ingestion builds it, without Dagster.

``build_population`` simulates a population (``synthetic.generate``), makes keys, and encodes every
partner's person extract of every period with the real partner kit (``partner_kit.encode_extract``).
``load_zone`` puts the payloads into ``linkage.duckdb`` table ``encodings`` with the columns ingestion
stores (``landing.load.load_payload``: source, extract_type, load_id, source_record_id,
linkage_key_version, every ``enc_`` column), and nothing else: that file is all the attacker reads.

``encode_population`` takes any encoder with the kit's column-wise interface, so the hardening
experiments can encode the same population under candidate encodings (same native extracts, same
normalisation, same pseudonymous record ids).

Synthetic data only. The home holds keys and plaintext extracts: it lives in a temporary directory
(or one the caller names), never in the repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from partner_kit.encode import ENCODING_COLUMNS
from partner_kit.geocode import site_address_points

__all__ = ["PERSON_EXTRACTS", "TODAY", "Population", "build_population", "encode_population", "load_zone"]

#: the person extract of each partner (events carry no identifiers)
PERSON_EXTRACTS = {"county": "clients", "police": "persons", "schools": "students", "hospital_a": "patients",
                   "hospital_b": "patients"}
PERIODS = ("2025-11", "2025-12")
TODAY = date(2026, 1, 31)
ZONE_COLUMNS = ("source", "extract_type", "load_id", "source_record_id", "linkage_key_version",
                *ENCODING_COLUMNS)


@dataclass(frozen=True)
class Population:
    """A synthetic home: keys, native extracts, truth. ``linkage_db`` is the attacked file."""

    root: Path
    persons: int
    seed: int

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def truth(self) -> Path:
        return self.root / "truth" / "truth.parquet"

    @property
    def linkage_db(self) -> Path:
        return self.root / "linkage.duckdb"

    def payloads(self, label: str = "kit") -> Path:
        return self.root / "payloads" / label


def build_population(root: Path, *, persons: int, seed: int, periods: tuple[str, ...] = PERIODS,
                     log: Callable[[str], Any] | None = None) -> Population:
    """Simulate, make keys, encode with the kit and load ``linkage.duckdb``. Reuses what ``root`` holds."""
    from partner_kit import Encoder
    from synthetic import SynthConfig, generate

    root = Path(root)
    pop = Population(root, persons, seed)
    if not pop.truth.exists():
        if log:
            log(f"simulating {persons:,} persons (seed {seed})")
        generate(SynthConfig(persons=persons, seed=seed, periods=periods), root)
    if not pop.linkage_db.exists():
        if log:
            log("encoding person extracts with the partner kit")
        out = encode_population(pop, lambda: Encoder(linkage_secret(pop)), "kit")
        load_zone(out, pop.linkage_db)
    return pop


def linkage_secret(pop: Population):
    """The population's linkage secret (versioned sub-keys from one random master, as the kit's own key
    ring derives them), made on first use and kept in the population's ``keys/`` (mode 0600). Only the
    kit and the scorer use it; no attack does. Independent of how a deployment stores its keys."""
    from envelope.keys import LinkageSecret

    path = pop.keys / "attack-bench-linkage-master"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return LinkageSecret.from_master("v1", path.read_bytes())


def encode_population(pop: Population, make_encoder: Callable[[], Any], label: str) -> Path:
    """Encode every partner's person extracts (every period) with ``make_encoder()`` (one per partner).

    Returns the directory of payloads ``<partner>/<period>/<extract>.parquet``.
    """
    from partner_kit import encode_extract, load_profile

    out = pop.payloads(label)
    for partner, extract in PERSON_EXTRACTS.items():
        profile = load_profile(partner, extract)
        encoder = make_encoder()
        raw = pop.root / "partners" / partner
        for period in sorted(p.name for p in raw.iterdir() if p.is_dir() and p.name[:2].isdigit()):
            src = raw / period / profile.file
            if src.exists():
                encode_extract(profile, src, out / partner / period / f"{extract}.parquet", encoder, today=TODAY,
                               address_points=site_address_points(profile, raw / "reference"))
    return out


def load_zone(payloads: Path, linkage_db: Path) -> int:
    """(Re)create ``linkage_db`` with one ``encodings`` table from the payloads; returns the row count."""
    linkage_db.unlink(missing_ok=True)
    files = sorted(payloads.glob("*/*/*.parquet"))
    with duckdb.connect(str(linkage_db)) as con:
        for i, f in enumerate(files):
            partner, period, extract = f.parent.parent.name, f.parent.name, f.stem
            names = pq.read_schema(f).names
            enc = ", ".join(c if c in names else f"null::varchar as {c}" for c in ZONE_COLUMNS[3:])
            select = f"select ?::varchar as source, ?::varchar as extract_type, ?::varchar as load_id, {enc} " \
                     f"from read_parquet('{f}')"
            if i == 0:
                con.execute(f"create table encodings as {select}", [partner, extract, f"{partner}/{period}"])
            else:
                con.execute(f"insert into encodings {select}", [partner, extract, f"{partner}/{period}"])
        return con.execute("select count(*) from encodings").fetchone()[0] if files else 0


def register_loads(linkage_db: Path) -> int:
    """Make the zone linkable by ``linkage.run``: one complete load per (partner, period, extract), as landing
    records them (the attacked zone holds only ``encodings``). Returns the number of loads."""
    from landing.load import ensure_schemas

    with duckdb.connect(str(linkage_db)) as con:
        ensure_schemas(con, None)
        con.execute("""insert into loads by name
            select load_id, load_id as envelope_id, source, extract_type, split_part(load_id, '/', 2) as period,
                   '1' as schema_version, any_value(linkage_key_version) as linkage_key_version, count(*) as row_count,
                   now() as created_at, now() as loaded_at, true as is_current, null as superseded_by,
                   'complete' as state
            from encodings where load_id not in (select load_id from loads) group by source, extract_type, load_id""")
        return con.execute("select count(*) from loads").fetchone()[0]
