"""A Fellegi–Sunter model over encodings, with Splink 5 (DESIGN.md, "Linkage on encodings").

Only the linkage zone is read: tokens and Bloom filters keyed by (source, source_record_id). The
comparisons win back fuzzy matching from equality-only tokens with graded levels:

* names: full token > first/last swapped > Bloom-filter Dice bands > phonetic token > initial > else,
  with term-frequency adjustment on the full name tokens; surnames also match on compound parts;
* date of birth: full > day/month swapped > year-month > year > else;
* sex; SSN full > last four; address > ZIP; middle initial; generational suffix (JR vs SR disagree).

The database API is a parameter (DuckDB by default) so the same settings can run on Splink's Spark
backend for partners who outgrow one machine.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

__all__ = ["MODEL_VERSION", "KeyVersionError", "LinkageParams", "build_settings", "blocking_rules",
           "prepare_inputs", "train", "input_fingerprint"]

MODEL_VERSION = "vpdc-linkage/1"

#: encodings column → short name used in the model (kept short: Splink repeats them in every SQL).
COLUMNS = {
    "enc_fn_full": "fn", "enc_fn_phon": "fn_phon", "enc_fn_init": "fn_init", "enc_ln_full": "ln",
    "enc_ln_phon": "ln_phon", "enc_ln_part1": "ln_p1", "enc_ln_part2": "ln_p2", "enc_mn_init": "mi",
    "enc_sfx": "sfx", "enc_dob_full": "dob", "enc_dob_swap": "dob_swap", "enc_dob_ym": "dob_ym",
    "enc_dob_y": "dob_y", "enc_sex": "sex", "enc_ssn_full": "ssn", "enc_ssn_last4": "ssn4", "enc_addr": "addr",
    "enc_zip": "zip",
}
BLOOMS = {"enc_fn_bf": "fn_bf", "enc_ln_bf": "ln_bf"}


class KeyVersionError(Exception):
    """Encodings made under different linkage key versions cannot be compared: tokens would never match."""


@dataclass(frozen=True)
class LinkageParams:
    """Thresholds and seeds. Recorded in every model file and report."""

    predict_threshold: float = 0.5  # pairs kept from prediction
    cluster_threshold: float = 0.9  # pairs that join records into one person
    seed: int = 20261121
    u_max_pairs: float = 2e6
    dice_bands: tuple[float, float, float] = (0.9, 0.8, 0.7)


def _dice(col: str) -> str:
    # the filters' own bit counts are precomputed per record (``<col>_n``): per pair only the AND is counted
    return f"(bit_count({col}_l & {col}_r) * 2.0 / nullif({col}_n_l + {col}_n_r, 0))"


def build_settings(params: LinkageParams = LinkageParams()) -> Any:
    """The Splink settings: comparisons and blocking rules over encodings only."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    hi, mid, lo = params.dice_bands

    def name_levels(col: str, other: str, bf: str, phon: str, extra: list[Any]) -> list[Any]:
        return [
            cll.NullLevel(col),
            cll.ExactMatchLevel(col, term_frequency_adjustments=True),
            cll.CustomLevel(f"{col}_l = {other}_r and {other}_l = {col}_r", label_for_charts="first/last swapped"),
            *extra,
            cll.CustomLevel(f"{_dice(bf)} >= {hi}", label_for_charts=f"Dice >= {hi}"),
            cll.CustomLevel(f"{_dice(bf)} >= {mid}", label_for_charts=f"Dice >= {mid}"),
            cll.CustomLevel(f"{_dice(bf)} >= {lo}", label_for_charts=f"Dice >= {lo}"),
            cll.ExactMatchLevel(phon),
        ]

    first = cl.CustomComparison(output_column_name="first_name", comparison_levels=[
        *name_levels("fn", "ln", "fn_bf", "fn_phon", []),
        cll.ExactMatchLevel("fn_init"),
        cll.ElseLevel(),
    ])
    compound = ("(ln_l = ln_p1_r or ln_l = ln_p2_r or ln_r = ln_p1_l or ln_r = ln_p2_l "
                "or ln_p1_l = ln_p1_r or ln_p2_l = ln_p2_r)")
    last = cl.CustomComparison(output_column_name="last_name", comparison_levels=[
        *name_levels("ln", "fn", "ln_bf", "ln_phon",
                     [cll.CustomLevel(compound, label_for_charts="compound surname part")]),
        cll.ElseLevel(),
    ])
    dob = cl.CustomComparison(output_column_name="dob", comparison_levels=[
        cll.NullLevel("dob"),
        cll.ExactMatchLevel("dob", term_frequency_adjustments=True),
        cll.CustomLevel("dob_swap_l = dob_r or dob_l = dob_swap_r", label_for_charts="day/month swapped"),
        cll.ExactMatchLevel("dob_ym"),
        cll.ExactMatchLevel("dob_y"),
        cll.ElseLevel(),
    ])
    ssn = cl.CustomComparison(output_column_name="ssn", comparison_levels=[
        cll.NullLevel("ssn4"),
        cll.ExactMatchLevel("ssn"),
        cll.ExactMatchLevel("ssn4"),
        cll.ElseLevel(),
    ])
    address = cl.CustomComparison(output_column_name="address", comparison_levels=[
        cll.CustomLevel("(addr_l is null or addr_r is null) and (zip_l is null or zip_r is null)",
                        label_for_charts="null").configure(is_null_level=True),
        cll.ExactMatchLevel("addr"),
        cll.ExactMatchLevel("zip"),
        cll.ElseLevel(),
    ])
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        comparisons=[first, last, dob, cl.ExactMatch("sex"), ssn, address, cl.ExactMatch("mi"), cl.ExactMatch("sfx")],
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )
    return settings


def blocking_rules() -> list[Any]:
    """Prediction blocking rules, chosen with Splink's blocking analysis (see ``blocking_report``).

    Each is selective enough that comparisons grow near-linearly with records; together they catch
    pairs with one identifier wrong: a typo (dob + initial), a DOB error (full name), a name change
    (dob + first name), swapped names, swapped day/month, and records without a DOB (SSN, address).
    """
    from splink import block_on

    return [
        block_on("dob", "fn_init"),
        block_on("fn", "ln"),
        block_on("dob", "ln_phon"),
        block_on("fn", "dob_ym"),
        block_on("ssn"),
        block_on("addr", "fn_init"),
        "l.fn = r.ln and l.ln = r.fn",
        "l.dob_swap = r.dob and l.fn_init = r.fn_init",
    ]


def prepare_inputs(con: duckdb.DuckDBPyConnection, *, table: str = "link_input", incremental: bool = False) -> dict[str, Any]:
    """Define the model's input from the current loads of the linkage zone.

    One row per (source, source_record_id), from its newest current load; Bloom filters cast to BIT, with
    their bit counts. Normally a view: Splink materialises its own copy of the inputs once per run, so a
    table here was a second copy of every record (2-3 s at a million). When some record sits in two current
    loads (two periods' extracts both carry it), a table is built and only its newest row kept.
    ``incremental`` is accepted for callers of the table era and changes nothing: the view always shows the
    current loads, so there is no difference to apply.

    Raises:
        KeyVersionError: when current encodings come from more than one linkage key version.
    """
    del incremental
    version = link_version(con)
    # the newest complete load of each (source, extract, period) under that version: during a rotation's
    # transition the old version is linked until every period has been re-sent under the new one
    con.execute("""create or replace table link_loads as
        select load_id, created_at from (
            select load_id, created_at, row_number() over (partition by source, extract_type, period
                                                          order by created_at desc, loaded_at desc, load_id desc) rn
            from loads where state = 'complete' and linkage_key_version is not distinct from ?)
        where rn = 1""", [version])
    versions = con.execute(
        "select e.linkage_key_version, e.source, count(*) from encodings e join link_loads l using (load_id) "
        "group by all order by 1, 2").fetchall()
    if len({v[0] for v in versions}) > 1:
        detail = ", ".join(f"{src} {n:,} rows under {v}" for v, src, n in versions)
        raise KeyVersionError(f"current encodings mix linkage key versions ({detail}); "
                              "every partner must re-encode under one version before linkage")
    cols = ", ".join(f"e.{k} as {v}" for k, v in COLUMNS.items())
    blooms = ", ".join(f"e.{k}::BIT as {v}, bit_count(e.{k}::BIT)::integer as {v}_n" for k, v in BLOOMS.items())
    select = (f"select e.source as source_dataset, e.source_record_id as unique_id, e.linkage_key_version, "
              f"e.load_id, l.created_at as load_created_at, {cols}, {blooms} "
              "from encodings e join link_loads l using (load_id)")
    dupes = con.execute("select count(*) - count(distinct (e.source, e.source_record_id)) from encodings e "
                        "join link_loads l using (load_id)").fetchall()[0][0]
    for (kind,) in con.execute("select table_type from information_schema.tables where table_name = ? "
                               "and table_schema = 'main'", [table]).fetchall():
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {table}")
    if dupes:
        con.execute(f"create table {table} as " + select)
        _newest_only(con, table)
        counts = dict(con.execute(f"select source_dataset, count(*) from {table} group by 1").fetchall())
    else:
        con.execute(f"create view {table} as " + select)
        counts = {}
        for _, src, n in versions:
            counts[src] = counts.get(src, 0) + n
    return {"key_version": versions[0][0] if versions else None, "records": counts}


def link_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The linkage-secret version to link on: the one under which the most (source, extract, period) have a
    complete load, the newest on a tie. Before a rotation every period is under the old version; during its
    transition the old one still covers every period; once every partner has re-sent, the new one does too
    and wins the tie (ADR 0005). None when nothing is loaded."""
    rows = con.execute("select linkage_key_version, count(distinct (source, extract_type, period)) from loads "
                       "where state = 'complete' group by 1").fetchall()
    if not rows:
        return None
    return max(rows, key=lambda r: (r[1], int(r[0][1:]) if str(r[0])[1:].isdigit() else -1))[0]


def _newest_only(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Keep one row per (source, record): the one of the newest current load.

    A record is in two current loads only when two periods' extracts both carry it. Such keys are rare
    (none in the synthetic extracts), so they are found first and only their rows are ranked: a window
    over every wide row of a million-record table cost 7 of the 9 seconds of building it.
    """
    dupes = con.execute(f"select count(*) - count(distinct (source_dataset, unique_id)) from {table}").fetchall()[0][0]
    if not dupes:
        return
    con.execute(f"""delete from {table} where rowid in (
        select rid from (
            select t.rowid as rid, row_number() over (partition by t.source_dataset, t.unique_id
                                                      order by t.load_created_at desc, t.load_id desc) as rn
            from {table} t semi join (select source_dataset, unique_id from {table} group by all having count(*) > 1) d
                on t.source_dataset = d.source_dataset and t.unique_id = d.unique_id)
        where rn > 1)""")


def input_fingerprint(con: duckdb.DuckDBPyConnection, table: str = "link_input") -> str:
    """A fingerprint of the training data: SHA-256 over aggregates of the (source, record id, load id) keys.

    The load id is the envelope id, and an envelope's payload never changes, so the same records
    re-sent or re-encoded (a new load) give another fingerprint; no encoding enters the hash.
    """
    # order-independent aggregates of a 64-bit hash per key (no sort of a million strings): a fingerprint
    # to tell training sets apart, not a cryptographic commitment
    n, x, total = con.execute(
        f"select count(*), coalesce(bit_xor(hash(source_dataset, unique_id, load_id)), 0), "
        f"coalesce(sum(hash(source_dataset, unique_id, load_id)::hugeint), 0) from {table}").fetchall()[0]
    return hashlib.sha256(f"{n}|{x}|{total}".encode()).hexdigest()


def source_views(con: duckdb.DuckDBPyConnection, table: str = "link_input") -> list[str]:
    """One view per source: Splink's link_and_dedupe takes one input per dataset."""
    names = []
    for (src,) in con.execute(f"select distinct source_dataset from {table} order by 1").fetchall():
        name = f"link_input_{src}"
        # DuckDB views cannot take parameters: inline the literal, quoted
        con.execute(f"create or replace view {name} as select * from {table} where source_dataset = "
                    f"'{src.replace(chr(39), chr(39) * 2)}'")
        names.append(name)
    return names


def train(linker: Any, params: LinkageParams) -> None:
    """Estimate λ, u by random sampling (seeded), m by EM on two complementary blockings."""
    from splink import block_on

    linker.training.estimate_probability_two_random_records_match(
        [block_on("fn", "ln", "dob"), block_on("ssn", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=params.u_max_pairs, seed=params.seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob", "fn_init"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("fn", "ln"))


def make_linker(db_api: Any, inputs: Sequence[str], settings: Any) -> Any:
    from splink import Linker

    sdfs = [db_api.register(name) for name in inputs]
    return Linker(sdfs, settings, log_level=logging.ERROR)


def model_json(linker: Any, *, key_version: str | None, fingerprint: str, params: LinkageParams) -> dict[str, Any]:
    """The saved model: Splink's settings and parameters with our version, key version and data fingerprint."""
    return {"model_version": MODEL_VERSION, "linkage_key_version": key_version, "training_fingerprint": fingerprint,
            "params": asdict(params), "splink": linker.misc.save_model_to_json()}
