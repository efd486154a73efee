"""Stable person keys over changing clusters, with merge and split history.

A person keeps the same key across runs: each new cluster inherits the old key it overlaps most
(each old key goes to at most one cluster: the one holding most of its records). When a cluster
joins records of several old keys, the survivor keeps its key and the others are recorded as
*merged* into it; when an old key's records now fall into several clusters, the clusters that did not
inherit it get new keys recorded as *split* from it. Every run's full assignment is kept
(``person_key_versions``, a change log) so a study can pin a linkage run (:func:`person_keys_as_of`)
and follow merges and splits afterwards.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

__all__ = ["ensure_tables", "assign_person_keys", "carry_keys_across_rotation", "confidence_bands",
           "person_keys_as_of"]

DDL = [
    """create table if not exists linkage_runs (run_id varchar primary key, started_at timestamptz,
        finished_at timestamptz, mode varchar, model_run_id varchar, model_version varchar,
        linkage_key_version varchar, training_fingerprint varchar, records bigint, persons bigint,
        new_records bigint, pairs bigint, seconds double, params varchar, result varchar)""",
    "create table if not exists linkage_models (run_id varchar primary key, created_at timestamptz, model_json varchar)",
    # no primary key: an upsert through DuckDB's index cost 4.6 of 6.6 s of key assignment at 1 M records;
    # (source, source_record_id) stays unique by construction (delete, then insert, in one transaction)
    """create table if not exists person_keys (source varchar, source_record_id varchar, person_key varchar,
        match_confidence varchar, run_id varchar)""",
    """create table if not exists person_key_versions (run_id varchar, source varchar, source_record_id varchar,
        person_key varchar, match_confidence varchar)""",
    """create table if not exists person_key_history (run_id varchar, event_at timestamptz, event varchar,
        person_key varchar, other_key varchar, records bigint)""",
]


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL:
        con.execute(ddl)
    # linkage zones made before the key table lost its primary key: rebuild it once, same rows
    indexed = con.execute("select count(*) from duckdb_constraints() where table_name = 'person_keys' "
                          "and constraint_type = 'PRIMARY KEY'").fetchall()[0][0]
    if indexed:
        con.execute("create or replace table person_keys as select * from person_keys")


def assign_person_keys(con: duckdb.DuckDBPyConnection, clusters: str, *, run_id: str, now: datetime) -> dict[str, int]:
    """Give every cluster of ``clusters`` (source, source_record_id, cluster_id) a stable person key.

    Writes ``person_keys`` (current), ``person_key_versions`` (this run) and ``person_key_history``
    (created / merged / split events). Returns event counts.
    """
    con.execute(f"""
        create or replace temp table _overlap as
        select c.cluster_id, p.person_key, count(*) n
        from {clusters} c join person_keys p using (source, source_record_id)
        group by all
    """)
    # each old key goes to the cluster holding most of its records; each cluster keeps its best won key
    con.execute("""
        create or replace temp table _inherit as
        with won as (
            select * from _overlap
            qualify row_number() over (partition by person_key order by n desc, cluster_id) = 1)
        select cluster_id, person_key from won
        qualify row_number() over (partition by cluster_id order by n desc, person_key) = 1
    """)
    # new persons get random keys: they carry no information about the person or the encodings
    con.execute(f"""
        create or replace temp table _cluster_key as
        select cluster_id::varchar cluster_id, person_key from _inherit
        union all
        select cluster_id::varchar, 'pk_' || substr(replace(gen_random_uuid()::varchar, '-', ''), 1, 20)
        from (select distinct cluster_id from {clusters} where cluster_id not in (select cluster_id from _inherit))
    """)

    # history: merges (old keys absorbed by a cluster that kept another key), splits (new keys from an old one)
    con.execute("""
        insert into person_key_history
        select ?, ?, 'merged', k.person_key, o.person_key, o.n
        from _overlap o join _cluster_key k using (cluster_id)
        where o.person_key <> k.person_key and o.person_key not in (select person_key from _cluster_key)
    """, [run_id, now])
    con.execute("""
        insert into person_key_history
        select ?, ?, 'split', k.person_key, o.person_key, o.n
        from _overlap o join _cluster_key k using (cluster_id)
        where o.person_key <> k.person_key and o.person_key in (select person_key from _cluster_key)
    """, [run_id, now])
    con.execute("""
        insert into person_key_history
        select ?, ?, 'created', k.person_key, null, count(*)
        from _cluster_key k join {c} c using (cluster_id)
        where k.cluster_id not in (select cluster_id from _overlap)
        group by k.person_key
    """.replace("{c}", clusters), [run_id, now])
    con.execute(f"""
        create or replace temp table _assigned as
        select c.source, c.source_record_id, k.person_key from {clusters} c join _cluster_key k using (cluster_id)
    """)
    # a record without a new in-cluster link keeps its previous band (incremental runs)
    con.execute("""
        create or replace temp table _new_keys as
        select a.source, a.source_record_id, a.person_key,
               coalesce(b.band, p.match_confidence, 'singleton') match_confidence, ? run_id
        from _assigned a left join _bands b using (source, source_record_id)
        left join person_keys p using (source, source_record_id)
    """, [run_id])
    # versions are a change log: only records whose key or band changed (or that are new) get a row, so a
    # run's cost follows what changed; person_keys_as_of() rebuilds any run's full map
    con.execute("""insert into person_key_versions
        select ?, n.source, n.source_record_id, n.person_key, n.match_confidence from _new_keys n
        left join person_keys p using (source, source_record_id)
        where p.person_key is distinct from n.person_key or p.match_confidence is distinct from n.match_confidence""",
                [run_id])
    con.execute("delete from person_keys p using _new_keys n "
                "where p.source = n.source and p.source_record_id = n.source_record_id")
    con.execute("insert into person_keys select * from _new_keys")
    counts = dict(con.execute("select event, count(*) from person_key_history where run_id = ? group by 1",
                              [run_id]).fetchall())
    return {"created": counts.get("created", 0), "merged": counts.get("merged", 0), "split": counts.get("split", 0)}


def carry_keys_across_rotation(con: duckdb.DuckDBPyConnection, *, from_version: str, to_version: str) -> int:
    """Move every record's person key from its id under ``from_version`` to its id under ``to_version``.

    A rotated linkage secret gives every record a new pseudonymous id. During the transition the kit sent
    both (``record_aliases``, written at ingestion); the first linkage run on the new version calls this in
    its key transaction, before keys are assigned, so the new clusters inherit the old keys and every person
    keeps theirs. The old ids stay in the key history and in the person map (as aliases). Returns the rows moved.
    """
    have = con.execute("select count(*) from information_schema.tables where table_name = 'record_aliases'").fetchall()
    if not have[0][0]:
        return 0
    con.execute("""create or replace temp table _carry as
        select distinct source, previous_id, source_record_id from record_aliases
        where linkage_key_version = ? and previous_key_version = ?""", [to_version, from_version])
    n = con.execute("""select count(*) from person_keys p join _carry c
                       on p.source = c.source and p.source_record_id = c.previous_id""").fetchall()[0][0]
    con.execute("""update person_keys set source_record_id = c.source_record_id from _carry c
                   where person_keys.source = c.source and person_keys.source_record_id = c.previous_id""")
    return int(n)


def confidence_bands(con: duckdb.DuckDBPyConnection, clusters: str, edges: str) -> None:
    """Per record, the band of its strongest link inside its own cluster (``_bands`` temp table).

    high ≥ 0.99, medium ≥ 0.95, low below; records linked to nobody are singletons.
    """
    con.execute(f"""
        create or replace temp table _bands as
        with e as (
            select l.source, l.source_record_id, e.match_probability p from {edges} e
            join {clusters} l on l.node_id = e.node_id_l join {clusters} r on r.node_id = e.node_id_r
            where l.cluster_id = r.cluster_id
            union all
            select r.source, r.source_record_id, e.match_probability from {edges} e
            join {clusters} l on l.node_id = e.node_id_l join {clusters} r on r.node_id = e.node_id_r
            where l.cluster_id = r.cluster_id)
        select source, source_record_id,
               case when max(p) >= 0.99 then 'high' when max(p) >= 0.95 then 'medium' else 'low' end band
        from e group by all
    """)


def person_keys_as_of(con: duckdb.DuckDBPyConnection, run_id: str, *, versions: str = "person_key_versions",
                      runs: str = "linkage_runs", run_col: str = "run_id") -> duckdb.DuckDBPyRelation:
    """The full (source, source_record_id) → person_key map as it stood after linkage run ``run_id``."""
    return con.sql(f"""
        with pinned as (select finished_at from {runs} where {run_col} = '{run_id.replace("'", "''")}'),
        upto as (select v.*, r.finished_at from {versions} v join {runs} r on r.{run_col} = v.{run_col}
                 where r.finished_at <= (select finished_at from pinned))
        select source, source_record_id, person_key, match_confidence from upto
        qualify row_number() over (partition by source, source_record_id order by finished_at desc) = 1""")
