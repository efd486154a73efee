import os
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from envelope.keys import LinkageSecret
from partner_kit.encode import Encoder, EncodingParams, bigrams, dice

SECRET = LinkageSecret.from_master("v1", b"k" * 32)
OTHER = LinkageSecret.from_master("v1", b"j" * 32)
names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20)


@given(names)
def test_same_key_same_token(v):
    assert Encoder(SECRET).token("name", v) == Encoder(SECRET).token("name", v)


@given(names)
def test_other_key_other_token(v):
    assert Encoder(SECRET).token("name", v) != Encoder(OTHER).token("name", v)


@given(names)
def test_token_never_contains_the_value(v):
    t = Encoder(SECRET).token("name", v)
    assert len(t) == 16 and (len(v) < 4 or v not in t)


@given(names)
def test_domains_are_separated(v):
    e = Encoder(SECRET)
    assert e.token("name", v) != e.token("addr", v)


def test_key_version_changes_every_encoding():
    v2 = LinkageSecret.from_master("v2", b"k" * 32)
    assert Encoder(SECRET).token("name", "ANA") != Encoder(v2).token("name", "ANA")


def test_first_and_last_names_share_a_domain_for_swap_comparisons():
    e = Encoder(SECRET)
    # both name columns use domain "name": JAMES as a first name equals JAMES as a last name
    assert e.token("name", "JAMES") == e.token("name", "JAMES")


@given(names)
def test_bloom_has_fixed_length_and_self_dice_one(v):
    e = Encoder(SECRET, EncodingParams(bloom_bits=512, bloom_k=12))
    bf = e.bloom("name", v)
    assert len(bf) == 64
    assert dice(bf, bf) == 1.0


@settings(max_examples=50)
@given(names, names)
def test_bloom_dice_tracks_bigram_overlap(a, b):
    e = Encoder(SECRET)
    ba, bb = bigrams(a), bigrams(b)
    true_dice = 2 * len(ba & bb) / (len(ba) + len(bb))
    # Bloom filters only add collisions: estimated Dice is never far below the true one
    assert dice(e.bloom("name", a), e.bloom("name", b)) >= true_dice - 0.05


def test_bloom_similar_names_score_higher_than_different():
    e = Encoder(SECRET)
    jon, john, maria = (e.bloom("name", n) for n in ("JONATHAN", "JOHNATHAN", "MARIA"))
    assert dice(jon, john) > 0.8 > dice(jon, maria)


def test_dob_features_swap_matches_transposed_date():
    e = Encoder(SECRET)
    full, swap, ym, y = e.dob_features(date(1990, 3, 7))
    t_full, t_swap, _, t_y = e.dob_features(date(1990, 7, 3))
    assert swap == t_full and t_swap == full and y == t_y and ym != e.dob_features(date(1990, 7, 3))[2]
    assert e.dob_features(date(1990, 3, 3))[1] is None  # nothing to swap
    assert e.dob_features(date(1990, 3, 25))[1] is None  # day > 12 cannot be a month
    assert e.dob_features(None) == (None, None, None, None)


def test_record_ids_are_keyed_and_namespaced():
    e = Encoder(SECRET)
    assert e.record_id("police/person", "P1") == e.record_id("police/person", "P1")
    assert e.record_id("police/person", "P1") != e.record_id("county/client", "P1")
    assert e.record_id("police/person", "P1") != Encoder(OTHER).record_id("police/person", "P1")


def test_secret_repr_hides_keys():
    s = LinkageSecret.from_master("v9", os.urandom(32))
    assert s.token_key.hex() not in repr(s) and "v9" in repr(s)


# -- the column-wise encoders equal the scalar ones ---------------------------------------------------------
values_lists = st.lists(st.one_of(st.none(), names, st.text(max_size=8), st.just("")), max_size=30)


@settings(deadline=None)
@given(values_lists, st.booleans(), st.integers(0, 3))
def test_column_tokens_equal_scalar_tokens(values, cache, skip):
    import pyarrow as pa

    e, ref = Encoder(SECRET), Encoder(SECRET)
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    got = e.tokens("name", arr, cache=cache).to_pylist()
    assert got == [ref.token("name", v) for v in values[min(skip, len(values)):]]
    assert e.tokens("name", arr, cache=cache).to_pylist() == got  # and again from the cache


@settings(deadline=None)
@given(st.lists(values_lists, min_size=2, max_size=4))
def test_column_token_cache_carries_across_batches(batches):
    import pyarrow as pa

    e, ref = Encoder(SECRET), Encoder(SECRET)
    for values in batches:  # later batches mix values seen before with new ones
        assert e.tokens("name", pa.array(values, pa.string())).to_pylist() == [ref.token("name", v) for v in values]


@settings(deadline=None)
@given(values_lists, st.integers(0, 3), st.sampled_from([512, 520, 64]))
def test_column_blooms_equal_scalar_blooms(values, skip, bits):
    import pyarrow as pa

    params = EncodingParams(bloom_bits=bits)
    e, ref = Encoder(SECRET, params), Encoder(SECRET, params)
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    assert e.blooms("name", arr).to_pylist() == [ref.bloom("name", v) for v in values[min(skip, len(values)):]]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=30))
def test_column_record_ids_equal_scalar_record_ids(values):
    import pyarrow as pa

    got = Encoder(SECRET).record_ids("police/person", pa.array(values, pa.string())).to_pylist()
    ref = Encoder(SECRET)
    assert got == [ref.record_id("police/person", v) if v else None for v in values]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2030, 12, 31))), max_size=30))
def test_column_dob_tokens_equal_scalar_dob_features(dates):
    import pyarrow as pa

    cols = Encoder(SECRET).dob_tokens(pa.array(dates, pa.date32()))
    ref = Encoder(SECRET)
    assert [tuple(c[i].as_py() for c in cols) for i in range(len(dates))] == [ref.dob_features(d) for d in dates]
