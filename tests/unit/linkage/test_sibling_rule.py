"""The same-birthday sibling rule (ADR 0012) on real kit encodings, evaluated by DuckDB as the run evaluates it."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envelope.keys import LinkageSecret
from linkage.model import BLOOMS, COLUMNS, LinkageParams, filter_columns_sql, sibling_rule
from partner_kit import Encoder
from partner_kit.normalise import name_words

ENC = Encoder(LinkageSecret.from_master("v1", b"s" * 32))
BASE = {"first": "MARIA", "last": "NGUYEN", "middle_init": "T", "dob": date(2011, 5, 14), "sex": "F",
        "ssn": "231458796", "addr": "12 ELM ST", "zip": "28208"}


def _row(features: dict, rid: str) -> dict:
    # scheme 3: the whole-name filter holds the words of both names (no middle name in these records)
    features = {"name_words": name_words(features.get("first"), None, features.get("last"))} | features
    enc = ENC.encode_record(features, rid)
    row = {short: enc[col] for col, short in COLUMNS.items()}
    row["dob_k"] = enc["enc_dob_full"]
    for col, short in BLOOMS.items():
        row[short] = enc[col]
    return row


def held_apart(a: dict, b: dict, params: LinkageParams = LinkageParams()) -> bool:
    con = duckdb.connect()
    cols = list(_row(BASE, "A" * 20))
    for alias, features, rid in (("l", a, "A" * 20), ("r", b, "B" * 20)):
        row = _row(features, rid)
        select = ", ".join(f"?::{'BLOB' if c in BLOOMS.values() else 'VARCHAR'} as {c}" for c in cols)
        con.execute(f"create table raw_{alias} as select {select}", [row[c] for c in cols])
        # the filters as the linkage input holds them (linkage.model.prepare_inputs)
        made = ", ".join(filter_columns_sql(c, c) if c in BLOOMS.values() else c for c in cols)
        con.execute(f"create table {alias} as select {made} from raw_{alias}")
    return con.execute(f"select {sibling_rule(params)} from l, r").fetchall()[0][0]


def test_twins_without_an_agreeing_ssn_or_middle_initial_are_held_apart():
    twin = BASE | {"first": "DANIEL", "sex": "M", "middle_init": "J", "ssn": "987654321"}
    assert held_apart(BASE, twin)
    # missing SSN and middle initial: nothing personal agrees beyond the household
    assert held_apart(BASE | {"ssn": None, "middle_init": None}, twin | {"ssn": None, "middle_init": None})


@pytest.mark.parametrize("change", [
    {"ssn": "231458796"},            # the same SSN: one person under a nickname
    {"ssn": "231458769"},            # one SSN typo (a transposition) apart
    {"middle_init": "T"},            # the same middle initial
    {"first": "MARIA"},              # the same first name
    {"first": "MARIAH"},             # a typo-sized difference (Dice band)
    {"first": "NGUYEN", "last": "MARIA"},  # first and last swapped
    {"first": "NGUYEN", "last": "MARIAH"},  # swapped and a typo besides: only the whole name sees one name (scheme 3)
    {"dob": date(2011, 5, 15)},      # another birthday: not a same-birthday pair
    {"first": None},                 # no first name to compare
])
def test_evidence_of_one_person_keeps_the_link(change):
    other = BASE | {"first": "ROSA", "middle_init": "Q", "ssn": "555443333"} | change
    assert not held_apart(BASE, other), change


def test_a_name_and_its_nickname_are_not_twins():
    """Scheme 8 (ADR 0019): one birthday, a first name and a formal name of it by the kit's nickname table (the
    package, the kit's Spanish supplement) keep their link; twins' names do not."""
    for a, b in (("WILLIAM", "BILL"), ("GUADALUPE", "LUPE"), ("MARIA", "MARI")):
        x = BASE | {"first": a, "ssn": None, "middle_init": None}
        y = BASE | {"first": b, "ssn": None, "middle_init": None}
        assert not held_apart(x, y), (a, b)
        assert not held_apart(x | {"sex": None}, y)  # a sex unknown on one side does not part them
    assert held_apart(BASE | {"first": "WILLIAM", "ssn": None}, BASE | {"first": "DANIEL", "ssn": None, "middle_init": "Q"})


@pytest.mark.parametrize("a,b,sexes", [
    ("ROBERT", "WILLIAM", ("M", "M")),  # two formal names that share a nickname (BILL): brothers' names
    ("LINDA", "ROSA", ("F", "F")),      # share ROSALINDA
    ("TERRY", "THERESA", ("M", "F")),   # a name and a formal name of it by the table, but a brother and a sister
])
def test_names_the_table_relates_only_loosely_are_still_twins(a, b, sexes):
    """ADR 0019 amendment (review): the table lists pairs both ways and through shared nicknames, so "related" takes
    in distinct common names; only a name and a formal name of it, of sexes that do not differ, keeps a link."""
    x = BASE | {"first": a, "sex": sexes[0], "ssn": None, "middle_init": None}
    y = BASE | {"first": b, "sex": sexes[1], "ssn": None, "middle_init": None}
    assert held_apart(x, y), (a, b)
    if sexes[0] != sexes[1]:  # the same two names of one sex: one person (THERESA called TERRY)
        assert not held_apart(x | {"sex": sexes[1]}, y), (a, b)


def test_a_swap_with_a_typo_is_not_held_apart_even_without_the_whole_name_filter():
    """Scheme 3's case: swapped fields and a typo. Scheme 10 (ADR 0022) holds apart only records whose first names
    compare (one surname initial), so the swap is kept without ``enc_nw_bf`` too; scheme 9 held it apart."""
    other = BASE | {"first": "NGUYEN", "last": "MARIAH", "middle_init": "Q", "ssn": "555443333"}
    assert not held_apart(BASE | {"name_words": None}, other | {"name_words": None})
    assert not held_apart(BASE, other)


def test_only_first_names_that_compare_are_twins_names():
    """Scheme 10 salts first names by the date and the surname's initial: where the surnames' initials differ the
    first names do not compare (their filters share no mask), so a woman's records before and after marriage to a
    surname of another initial (one first name, or a first name the rule would read as another) are not twins. Twins
    share a surname, so their first names compare wherever they live."""
    bare = {"ssn": None, "middle_init": None}
    married = BASE | bare | {"last": "OKAFOR", "addr": "9 OAK AVE", "zip": "28277"}
    assert not held_apart(BASE | bare, married)
    assert not held_apart(BASE | bare, married | {"first": "ROSA"})  # two surnames' initials: the model weighs it
    twin = BASE | bare | {"first": "DANIEL", "sex": "M"}  # D, not M: the surnames' own tokens differ
    assert held_apart(BASE | bare, twin)
    assert held_apart(BASE | bare, twin | {"first": "MIGUEL"})
    assert held_apart(BASE | bare, twin | {"zip": "28277", "addr": "9 OAK AVE"})  # twins living apart
    # a surname changed to one of the same initial: the first names compare, and differ: twins' names
    assert held_apart(BASE | bare, BASE | bare | {"first": "ROSA", "last": "NASH"})


def test_run_clustering_drops_held_apart_edges_unless_switched_off():
    from dataclasses import replace

    from linkage.run import strong_edges

    con = duckdb.connect()
    cols = list(_row(BASE, "A" * 20))
    twin = BASE | {"first": "DANIEL", "middle_init": "J", "ssn": "987654321"}
    rows = [("s1", "a", BASE), ("s2", "b", twin), ("s2", "c", BASE | {"ssn": None})]
    for i, (src, uid, features) in enumerate(rows):
        row = _row(features, chr(65 + i) * 20)
        select = ", ".join(f"?::{'BLOB' if c in BLOOMS.values() else 'VARCHAR'} as {c}" for c in cols)
        made = ", ".join(filter_columns_sql(c, c) if c in BLOOMS.values() else c for c in cols)
        verb = "create table link_input as" if i == 0 else "insert into link_input"
        con.execute(f"{verb} select ?::VARCHAR source_dataset, ?::VARCHAR unique_id, {made} from (select {select})",
                    [src, uid, *(row[c] for c in cols)])
    con.execute("create table edges as select * from (values ('s1:a', 's2:b', 0.999), ('s1:a', 's2:c', 0.999), "
                "('s2:b', 's2:c', 0.95), ('s1:a', 's2:c', 0.2)) t(node_id_l, node_id_r, match_probability)")
    assert strong_edges(con, "edges", "kept", LinkageParams()) == 2
    assert con.execute("select node_id_l, node_id_r from kept").fetchall() == [("s1:a", "s2:c")]
    off = replace(LinkageParams(), separate_same_birthday_siblings=False)
    assert strong_edges(con, "edges", "kept", off) == 0
    assert con.execute("select count(*) from kept").fetchall()[0][0] == 3


NAMES = st.sampled_from(["MARIA", "ROSA", "DANIEL", "JOSE", "ANH", "LINH", "KEISHA", "TYRONE", "EMMA", "OLIVIA"])


@settings(max_examples=40, deadline=None)
@given(a=NAMES, b=NAMES, same_ssn=st.booleans(), same_mi=st.booleans())
def test_rule_is_symmetric_and_never_separates_agreeing_identifiers(a, b, same_ssn, same_mi):
    left = BASE | {"first": a}
    right = BASE | {"first": b, "ssn": BASE["ssn"] if same_ssn else "900112222",
                    "middle_init": BASE["middle_init"] if same_mi else "Z"}
    apart = held_apart(left, right)
    assert apart == held_apart(right, left)
    if a == b or same_ssn or same_mi:
        assert not apart
