"""The zone boundary's labels: keyed, the same in Python and in DuckDB, and never the value they stand for."""

import hashlib
import hmac

import duckdb
import pytest

from landing.boundary import ZoneBoundary

KEY = bytes(range(32))


def test_sql_labels_equal_the_python_ones():
    b = ZoneBoundary(KEY)
    rid, rid_params = b.record_label_sql("s", "r")
    pk, pk_params = b.person_key_sql("k")
    src, src_params = b.source_label_sql("s")
    with duckdb.connect() as con:
        con.execute("create table t as select * from (values ('police', 'abc', 'pk_1'), ('county', 'é/ü', 'pk_2')) "
                    "v(s, r, k)")
        got = con.execute(f"select s, r, k, {rid}, {pk}, {src} from t order by s",
                          rid_params | pk_params | src_params).fetchall()
    for s, r, k, rid_v, pk_v, src_v in got:
        assert rid_v == b.record_label(s, r) and pk_v == b.person_key(k) and src_v == b.source_label(s)


def test_labels_are_hmac_sha256_under_a_derived_key_and_reveal_nothing():
    b = ZoneBoundary(KEY)
    label = b.source_label("police")
    assert label.startswith("s_") and "police" not in label and len(label) == 2 + ZoneBoundary.SOURCE_HEX
    # not a plain hash of the name, and not an HMAC under the master key itself (per-purpose keys)
    assert label[2:] not in (hashlib.sha256(b"source/police").hexdigest()[:16],
                             hmac.new(KEY, b"source/police", hashlib.sha256).hexdigest()[:16])
    other = ZoneBoundary(bytes(32))
    assert other.source_label("police") != label and other.person_key("pk_1") != b.person_key("pk_1")
    assert b.extract_label("police", "persons") != b.extract_label("county", "persons")
    assert "keys=<redacted>" in repr(b)


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        ZoneBoundary(b"short")
