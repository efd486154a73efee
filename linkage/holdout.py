"""A linkage error estimate that does not trust the model: the SSN held out (ADR 0012).

The model's own estimate (the mean match probability of the links) said 0.9996 where the true precision was 0.978:
Fellegi–Sunter's independence assumption fails exactly where errors happen (twins share a birth date, a surname
and an address, and each agreement is counted as separate evidence). An honest estimate needs a signal the model
did not use. Many records carry an SSN, an identifier independent of the names, dates and addresses the model
otherwise reads. So:

1. **Hold it out.** Every record is linked again by the same model, blocking rules and clustering, with every
   SSN-derived field blanked (the SSN tokens and filter, the SSN-salted name tokens): the run that a population
   without SSNs would get. Records that never carried one take part as in the run (a link through such a record
   joins two that carry one); only pairs whose records both carry an SSN are labelled.
2. **Label by it.** In that run, two records in one cluster whose SSNs agree (the same token, or one typo apart
   by the positional filter) are a correct link, otherwise a false one (the held-out precision); two records with
   the same SSN token are a true pair, and the share of those in one cluster is the held-out recall. One person's
   SSNs do not always agree (FEBRL's duplicates carry several edits in a third of them): the rate at which they
   disagree is measured on pairs with equal name and date-of-birth tokens, and disagreeing links are counted
   false only beyond it (:func:`ssn_disagreement`).
3. **Apply to the run.** In the run's own clustering, a within-cluster pair whose records both carry an SSN is
   judged by it directly; every other pair is a link made without the SSN, so it is counted false at the
   held-out false-link rate, and its missed partners are estimated at the held-out recall.

What it assumes, and says in the report: records with an SSN are linked about as well as those without once the
SSN is hidden (a source that never records SSNs, e.g. a school district, is represented only through its links to
records that have one), and one person's SSNs disagree about as often in the links as in the pairs with equal names
and birth dates (where keying errors cluster in sloppy records, more often: the estimate then errs towards fewer
correct links). Where too few records carry an SSN, no estimate is made and
the report says so; the quality gate then falls back on the model's figure, flagged as such.

The 95 % ranges count events, not pairs: a false link in the held-out run is one merge of two persons (several false
pairs), a missed one a person split (several missed pairs), so the ranges use the ratio estimator's variance over
held-out clusters and SSN values (:func:`_ratio_interval`). A source that records no SSN at all is reached by no
label: its links are estimated at the held-out rates, and the range's upper end lets them be error-free.

Aggregate counts only: no pair, record id or token leaves this module.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from linkage.model import LinkageParams, _dice_of, filter_words, make_linker, pruned_rules, pruning

__all__ = ["HELD_OUT_COLUMNS", "MIN_LABELLED_PAIRS", "apply_rates", "estimate_errors", "holdout_rates", "holdout_sample",
           "ssn_disagreement"]

#: the fields derived from the SSN, blanked in the held-out run (tokens, filter and the SSN-salted names)
HELD_OUT_COLUMNS = ("ssn", "ssn4", "fn_ssn", "ln_ssn", *(c for f in ("ssn_bf", "nws_bf") for c in (*filter_words(f), f"{f}_n")))
#: below this many labelled pairs (held-out links, or true pairs by SSN) no estimate is made
MIN_LABELLED_PAIRS = 200


def _agree(a: str, b: str, params: LinkageParams) -> str:
    """SQL: the two records' SSNs are one person's (the same token, or one keying error apart on the filter)."""
    dice = _dice_of(f"{a}.ssn_bf", f"{b}.ssn_bf", f"{a}.ssn_bf_n", f"{b}.ssn_bf_n", "duckdb")
    return f"({a}.ssn = {b}.ssn or coalesce({dice} >= {params.ssn_dice}, false))"


def ssn_disagreement(con: duckdb.DuckDBPyConnection, params: LinkageParams,
                     table: str = "link_input") -> dict[str, Any]:
    """How often one person's two records carry SSNs that do not agree (keying errors beyond one typo, an SSN
    recorded for the wrong family member): measured on the pairs that are almost surely one person, those whose
    first-name, surname and date-of-birth tokens are all equal (names are salted by the date, so the three agree
    only for the same name on the same birthday) and that both carry an SSN.

    Those pairs are the cleanest records, so where errors cluster in sloppy records the rate is an underestimate:
    the correction it drives errs towards the uncorrected estimate, never past the truth.

    Its 95 % range counts persons, not pairs (:func:`_ratio_interval` over the groups of one name and birthday): one
    person with a wrong SSN on one of several records makes several disagreeing pairs, not several independent ones.
    """
    pairs, disagree, units = con.execute(f"""
        select coalesce(sum(n), 0)::bigint, coalesce(sum(k), 0)::bigint,
               [count(*), sum(k), sum(n), sum(k * k), sum(n * n), sum(k * n)]
        from (select a.fn, a.ln, a.dob, count(*)::double n, count(*) filter (not {_agree('a', 'b', params)})::double k
              from {table} a join {table} b
                on a.fn = b.fn and a.ln = b.ln and a.dob = b.dob
               and (a.source_dataset, a.unique_id) < (b.source_dataset, b.unique_id)
              where a.ssn is not null and b.ssn is not null group by 1, 2, 3)""").fetchall()[0]
    if pairs < MIN_LABELLED_PAIRS:
        return {"pairs": pairs, "rate": 0.0, "applied": False,
                "reason": f"fewer than {MIN_LABELLED_PAIRS} pairs with equal names and date of birth"}
    rate, rate_95 = _ratio_interval(units, pairs)
    return {"pairs": pairs, "disagree": disagree, "persons": int(units[0]), "rate": round(disagree / pairs, 5),
            "rate_95": rate_95, "applied": True}


def _correct(agree: int, total: int, rate: float) -> float:
    """Correct links among ``total`` SSN-judged pairs of which ``agree`` agree, when one person's SSNs disagree at
    ``rate``: correct = agree / (1 - rate), at most ``total``."""
    return min(float(total), agree / (1 - rate)) if rate < 1 else float(total)


def _ratio_interval(units: list[float], pairs: int, scale: float = 1.0, *, failure_weight: float = 1.0,
                    z: float = 1.96) -> tuple[float, tuple[float, float] | None]:
    """A share of pairs (agreeing links of all links, linked true pairs of all true pairs) that come in units (a
    held-out cluster, an SSN value): one merge of two persons makes several false pairs, one missed person several
    missed pairs, so the pairs are not independent trials. ``units``: [units, sum y, sum x, sum y², sum x², sum xy]
    of the unit totals (y the pairs counted, x all pairs; weighted where sampled). The share is y/x (times
    ``scale``, at most 1); its 95 % range is Wilson's at the effective number of pairs that the ratio estimator's
    between-unit variance implies (Kish's design effect), never more than the ``pairs`` observed. Where no unit
    varies (no false link seen) there is no variance to estimate: the range is Wilson's over the units, times
    ``failure_weight``, the chance that a failure would have been seen relative to a unit (a sample of a share f of
    SSN values keeps a cluster with f, a false link between two values with f squared: ``failure_weight`` f)."""
    n, y, x, yy, xx, xy = (float(v or 0) for v in units)
    if x <= 0 or n < 1:
        return 0.0, None
    share = y / x
    resid = max(0.0, yy - 2 * share * xy + share * share * xx)
    var = n / (n - 1) * resid / (x * x) if n > 1 else 0.0
    # never more than the units allow: with a handful of failing units the variance itself is underestimated
    n_eff = min(float(pairs), n * failure_weight)
    if var > 0:
        n_eff = min(n_eff, share * (1 - share) / var)
    lo, hi = _wilson_share(share, n_eff, z)
    return round(min(1.0, share * scale), 5), (round(min(1.0, lo * scale), 5), round(min(1.0, hi * scale), 5))


def _held_out_precision(units: list[float], linked: int, failure_weight: float, rate: float,
                        rate_95: tuple[float, float] | None) -> tuple[float, tuple[float, float] | None]:
    """The held-out precision: agreeing links over all labelled links, scaled by 1 / (1 - ``rate``) (a true link
    whose SSNs disagree is not a false one). Its range is the ratio's own (:func:`_ratio_interval`) widened by the
    rate's: the lower end at the rate's lower bound, the upper end at its upper bound."""
    def scale(r: float) -> float:
        return 1 / (1 - r) if r < 1 else 1.0

    precision, out = _ratio_interval(units, linked, scale(rate), failure_weight=failure_weight)
    if out is not None and rate_95 is not None:
        low = _ratio_interval(units, linked, scale(rate_95[0]), failure_weight=failure_weight)[1]
        high = _ratio_interval(units, linked, scale(rate_95[1]), failure_weight=failure_weight)[1]
        out = (min(out[0], low[0]), max(out[1], high[1]))
    return precision, out


def _wilson_share(p: float, n: float, z: float = 1.96) -> tuple[float, float]:
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def holdout_sample(total: int, with_ssn: int, params: LinkageParams) -> int | None:
    """Per mille of SSN values whose records take part in the held-out run, so that it links about
    ``params.holdout_records`` records (every record without an SSN, and the records of a seeded share of SSN
    values); None when all records fit. A random set of SSN values is an unbiased sample of the true pairs (one
    value: every record of a kept value is kept); a link between two values (a false one) is kept only when both
    are, so :func:`holdout_rates` weights those back. At least a tenth of the values is kept."""
    if total <= params.holdout_records or with_ssn == 0:
        return None
    share = (params.holdout_records - (total - with_ssn)) / with_ssn
    return min(999, max(100, round(1000 * share)))


def holdout_rates(con: duckdb.DuckDBPyConnection, db_api: Any, model: dict[str, Any], params: LinkageParams, *,
                  cluster: Any, table: str = "link_input") -> dict[str, Any]:
    """Link every record with the SSN hidden; return the held-out precision and recall of the pairs whose records
    both carry an SSN (aggregates).

    Args:
        model: the trained Splink model with the run's blocking rules (``blocking_rules_to_generate_predictions``).
        cluster: ``cluster(con, db_api, nodes_table, edges_table) -> clusters table`` (node_id, cluster_id): the
            run's own clustering (threshold and the same-birthday sibling rule), so the held-out run decides as
            the run does.
    """
    # every record, the SSN blanked: records without one take part as they do in the run (a link through a record
    # without an SSN joins two that carry one); the rates are measured on pairs whose records both carry one
    total, records = con.execute(f"select count(*), count(ssn) from {table}").fetchall()[0]
    out: dict[str, Any] = {"held_out": "SSN", "records": records, "available": False}
    if records < 2:
        return out | {"reason": "no record carries an SSN"}
    sample = holdout_sample(total, records, params)
    con.execute(f"create or replace temp table _ho_input as select * replace "
                f"({', '.join(f'null as {c}' for c in HELD_OUT_COLUMNS)}) from {table}"
                + (f" where ssn is null or hash(ssn, {int(params.seed)}) % 1000 < {sample}" if sample else ""))
    linked_records = con.execute("select count(*) from _ho_input").fetchall()[0][0]
    out |= {"records_linked": linked_records, "ssn_values_sampled_per_mille": sample or 1000}
    views = []
    for i, (src,) in enumerate(con.execute("select distinct source_dataset from _ho_input order by 1").fetchall()):
        views.append(f"_ho_input_{i}")
        con.execute(f"create or replace temp view {views[-1]} as select * from _ho_input where source_dataset = "
                    f"'{src.replace(chr(39), chr(39) * 2)}'")
    # pairs that cannot reach the threshold are skipped in the last rule (the one making the most pairs: see
    # choose_blocking_rules); the SSN comparison is blank on every held-out record, so it is left out of the bound
    prune = pruning(model, linked_records, params, always_null=("ssn",))
    rules = [r["blocking_rule"] if isinstance(r, dict) else r for r in model["blocking_rules_to_generate_predictions"]]
    rules = rules[:-1] + pruned_rules(rules[-1:], prune)
    linker = make_linker(db_api, views, model | {"blocking_rules_to_generate_predictions": rules})
    pred = linker.inference.predict(threshold_match_probability=params.predict_threshold)
    con.execute(f"create or replace temp table _ho_edges as select source_dataset_l || ':' || unique_id_l node_id_l, "
                f"source_dataset_r || ':' || unique_id_r node_id_r, match_probability from {pred.physical_name}")
    con.execute("create or replace temp table _ho_nodes as select source_dataset || ':' || unique_id node_id, "
                "source_dataset source, unique_id source_record_id from _ho_input")
    clusters = cluster(con, db_api, "_ho_nodes", "_ho_edges")
    con.execute(f"""create or replace temp table _ho_clusters as select n.source, n.source_record_id, c.cluster_id
        from {clusters} c join _ho_nodes n using (node_id)""")
    # a sample of SSN values keeps a link between two records of one value with probability f, one between two
    # values (every false link, and a typo apart) with f squared: each labelled link is weighted by the inverse
    f = (sample or 1000) / 1000
    # per held-out cluster (the unit a false link comes in: one merge of two persons makes several false pairs)
    con.execute(f"""create or replace temp table _ho_labelled as
        select x.cluster_id, count(*) linked, count(*) filter ({_agree('a', 'b', params)}) agree,
               count(*) filter (a.ssn = b.ssn) same_value
        from _ho_clusters x join _ho_clusters y
          on x.cluster_id = y.cluster_id and (x.source, x.source_record_id) < (y.source, y.source_record_id)
        join {table} a on a.source_dataset = x.source and a.unique_id = x.source_record_id
        join {table} b on b.source_dataset = y.source and b.unique_id = y.source_record_id
        where a.ssn is not null and b.ssn is not null group by 1""")
    weighted = f"same_value / {f} + (agree - same_value) / {f * f}"
    linked, agree, prec_units = con.execute(f"""
        select coalesce(sum(linked), 0)::bigint, coalesce(sum(agree), 0)::bigint,
               [count(*), sum(w_agree), sum(w_linked), sum(w_agree * w_agree), sum(w_linked * w_linked),
                sum(w_agree * w_linked)]
        from (select linked, agree, {weighted} w_agree, {weighted} + (linked - agree) / {f * f} w_linked
              from _ho_labelled)""").fetchall()[0]
    # per SSN value (the unit a missed person comes in: all pairs of its records)
    pairs, together, rec_units = con.execute(f"""
        select coalesce(sum(n), 0)::bigint, coalesce(sum(k), 0)::bigint,
               [count(*), sum(k), sum(n), sum(k * k), sum(n * n), sum(k * n)]
        from (select a.ssn, count(*)::double n, count(*) filter (x.cluster_id = y.cluster_id)::double k
              from {table} a join {table} b
                on a.ssn = b.ssn and (a.source_dataset, a.unique_id) < (b.source_dataset, b.unique_id)
              join _ho_clusters x on x.source = a.source_dataset and x.source_record_id = a.unique_id
              join _ho_clusters y on y.source = b.source_dataset and y.source_record_id = b.unique_id
              group by 1)""").fetchall()[0]
    con.execute("drop table if exists _ho_labelled")
    for v in views:
        con.execute(f"drop view if exists {v}")
    for t in ("_ho_input", "_ho_edges", "_ho_nodes", "_ho_clusters"):
        con.execute(f"drop table if exists {t}")
    err = ssn_disagreement(con, params, table)
    out |= {"linked_pairs": linked, "linked_pairs_ssn_agree": agree, "true_pairs_by_ssn": pairs,
            "true_pairs_by_ssn_linked": together, "ssn_disagreement": err}
    if linked < MIN_LABELLED_PAIRS or pairs < MIN_LABELLED_PAIRS:
        return out | {"reason": f"too few labelled pairs (links {linked}, true pairs {pairs}; at least "
                                f"{MIN_LABELLED_PAIRS} of each)"}
    # a true link whose SSNs disagree is not a false one: agreeing links are the correct ones less those SSN errors
    precision, precision_95 = _held_out_precision(prec_units, linked, f, err["rate"], err.get("rate_95"))
    recall, recall_95 = _ratio_interval(rec_units, pairs)
    return out | {"available": True, "precision": precision, "recall": recall,
                  "precision_95": precision_95, "recall_95": recall_95,
                  "units": {"clusters_with_labelled_links": prec_units[0], "ssn_values_with_pairs": rec_units[0]}}


def apply_rates(con: duckdb.DuckDBPyConnection, clusters: str, rates: dict[str, Any], params: LinkageParams, *,
                table: str = "link_input") -> dict[str, Any]:
    """The run's estimated pairwise precision and recall from held-out rates (:func:`holdout_rates`).

    ``clusters``: (source, source_record_id, cluster_id) of the run. Pairs whose records both carry an SSN are
    judged by it (their disagreements less those expected of one person's SSNs, :func:`ssn_disagreement`); the rest
    at the held-out rates (their 95 % bounds give the estimate's range). A source that records no SSN at all is
    reached by no held-out label: its links are estimated at the same rates, and the range's upper end lets them be
    error-free (partial identification: nothing measured bounds them from above).
    """
    out = {"method": "held-out SSN (ADR 0012)", "rates": rates}
    if not rates.get("available"):
        return out | {"available": False}
    n, both, both_agree = con.execute(f"""
        select count(*), count(*) filter (a.ssn is not null and b.ssn is not null),
               count(*) filter (a.ssn is not null and b.ssn is not null and {_agree('a', 'b', params)})
        from {clusters} x join {clusters} y
          on x.cluster_id = y.cluster_id and (x.source, x.source_record_id) < (y.source, y.source_record_id)
        join {table} a on a.source_dataset = x.source and a.unique_id = x.source_record_id
        join {table} b on b.source_dataset = y.source and b.unique_id = y.source_record_id""").fetchall()[0]
    ssn_pairs, ssn_together = con.execute(f"""
        select count(*), count(*) filter (x.cluster_id = y.cluster_id)
        from {table} a join {table} b
          on a.ssn = b.ssn and (a.source_dataset, a.unique_id) < (b.source_dataset, b.unique_id)
        join {clusters} x on x.source = a.source_dataset and x.source_record_id = a.unique_id
        join {clusters} y on y.source = b.source_dataset and y.source_record_id = b.unique_id""").fetchall()[0]
    # links with a record of a source that records no SSN at all: no held-out label reaches such a source, so
    # their rates are assumed, not measured (the point estimate uses the held-out rates; the range does not)
    unreached_sources = [s for s, k in con.execute(f"select source_dataset, count(ssn) from {table} group by 1 "
                                                   "order by 1").fetchall() if k == 0]
    unreached = con.execute(f"""
        select count(*) from {clusters} x join {clusters} y
          on x.cluster_id = y.cluster_id and (x.source, x.source_record_id) < (y.source, y.source_record_id)
        where x.source in (select unnest(?::varchar[])) or y.source in (select unnest(?::varchar[]))""",
                            [unreached_sources, unreached_sources]).fetchall()[0][0] if unreached_sources else 0
    other = n - both - unreached

    disagreement = rates.get("ssn_disagreement") or {}
    rate = disagreement.get("rate", 0.0)
    rate_lo, rate_hi = disagreement.get("rate_95") or (rate, rate)

    def missed_for(rate: float) -> tuple[float, float]:
        """Correct SSN-judged links, and true pairs whose SSNs disagree that the run missed, at this rate."""
        correct = _correct(both_agree, both, rate)
        # true pairs whose SSNs disagree are not among the same-SSN pairs: as many as the rate says there are,
        # less those the run linked (its SSN-judged links beyond the agreeing ones), are missed too
        return correct, max(0.0, ssn_pairs * rate / (1 - rate) - (correct - both_agree)) if rate < 1 else 0.0

    both_correct, disagreeing_missed = missed_for(rate)

    def estimate(p: float, r: float, p_unreached: float, r_unreached: float,
                 rate: float = rate) -> tuple[float | None, float | None]:
        both_correct, disagreeing_missed = missed_for(rate)
        false_links = (both - both_correct) + other * (1 - p) + unreached * (1 - p_unreached)
        correct = n - false_links
        missed = ((ssn_pairs - ssn_together) + disagreeing_missed + other * p * (1 / r - 1)
                  + unreached * p_unreached * (1 / r_unreached - 1))
        return (round(correct / n, 5) if n else None,
                round(correct / (correct + missed), 5) if correct + missed > 0 else None)

    p, r = rates["precision"], rates["recall"]
    precision, recall = estimate(p, r, p, r)
    # the range: the held-out rates' own 95 % ranges (:func:`_ratio_interval`) where the labels reach; where they
    # cannot (a source without SSNs), from the held-out rates' lower bounds to no error at all, since nothing measured here
    # says those links are worse or better than the rest (on the synthetic populations they were better: the
    # school district's records are the cleanest, and the point estimate sat 0.2-0.9 points below the true recall)
    # and the range of the rate at which one person's SSNs disagree (a higher rate: more correct SSN-judged links,
    # and more missed pairs with disagreeing SSNs)
    (p_lo, p_hi), (r_lo, r_hi) = rates["precision_95"], rates["recall_95"]
    # recall is monotone neither in the held-out precision nor in the disagreement rate: every corner is evaluated
    corners = [estimate(pp, rr, pu, ru, rt) for pp in (p_lo, p_hi) for rr in (r_lo, r_hi)
               for pu, ru in ((pp, rr), (1.0, 1.0), (p_lo, r_lo)) for rt in (rate_lo, rate_hi)]
    precs = [c[0] for c in corners if c[0] is not None]
    recs = [c[1] for c in corners if c[1] is not None]
    precision_95 = (min(precs), max(precs)) if precs else (None, None)
    recall_95 = (min(recs), max(recs)) if recs else (None, None)
    if None not in (precision, recall, *precision_95, *recall_95):
        precision_95 = (min(precision_95[0], precision), max(precision_95[1], precision))
        recall_95 = (min(recall_95[0], recall), max(recall_95[1], recall))
    return out | {"available": True, "precision": precision, "recall": recall,
                  "precision_95": precision_95, "recall_95": recall_95,
                  "linked_pairs": n, "linked_pairs_judged_by_ssn": both, "linked_pairs_ssn_disagree": both - both_agree,
                  "linked_pairs_at_held_out_rate": other + unreached,
                  "linked_pairs_with_a_source_without_ssn": unreached, "sources_without_ssn": len(unreached_sources),
                  "true_pairs_by_ssn": ssn_pairs,
                  "true_pairs_by_ssn_apart": ssn_pairs - ssn_together,
                  "true_pairs_ssn_disagree_missed": round(disagreeing_missed, 1)}


def estimate_errors(con: duckdb.DuckDBPyConnection, db_api: Any, model: dict[str, Any], params: LinkageParams, *,
                    cluster: Any, clusters: str, table: str = "link_input") -> dict[str, Any]:
    """:func:`holdout_rates` then :func:`apply_rates` on the run's ``clusters``."""
    return apply_rates(con, clusters, holdout_rates(con, db_api, model, params, cluster=cluster, table=table), params,
                       table=table)
