"""Study pseudonyms, date shifts and study-key destruction."""

import os
import re
import stat
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.disclosure import DisclosureRules, check_release
from governance.pseudonyms import (
    StudyKeyError,
    StudyKeyStore,
    coarsen_dates,
    date_shift_days,
    pseudonymise,
    pseudonymise_frame,
    shift_dates,
    study_key,
)

MASTER = bytes(range(32))
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PEOPLE = [f"PK{i:06d}" for i in range(300)]


# -- study keys ----------------------------------------------------------------------------------


def test_study_key_is_deterministic_and_32_bytes():
    assert study_key(MASTER, "ATV-1") == study_key(MASTER, "ATV-1")
    assert len(study_key(MASTER, "ATV-1")) == 32


@pytest.mark.parametrize("other", [
    {"study_id": "ATV-2"},
    {"version": 2},
    {"master_secret": bytes(32)},
    {"salt": b"s" * 32},
])
def test_study_key_changes_with_study_version_master_and_salt(other):
    base = {"master_secret": MASTER, "study_id": "ATV-1", "version": 1}
    assert study_key(**(base | other)) != study_key(**base)


@pytest.mark.parametrize("study_id", ["", "../etc", "a/b", "x" * 65, "-lead", "sp ace"])
def test_study_ids_that_could_escape_or_confuse_are_refused(study_id):
    with pytest.raises(StudyKeyError):
        study_key(MASTER, study_id)


def test_short_master_secret_is_refused():
    with pytest.raises(StudyKeyError, match="keys init"):
        study_key(b"short", "ATV-1")


# -- pseudonyms ----------------------------------------------------------------------------------


def test_pseudonyms_are_stable_within_a_study_and_well_formed():
    key = study_key(MASTER, "ATV-1")
    first, again = pseudonymise(PEOPLE, key), pseudonymise(list(reversed(PEOPLE)), key)
    assert first == list(reversed(again))
    assert len(set(first)) == len(PEOPLE)
    assert all(re.fullmatch(r"S-[A-Z2-7]{16}", p) for p in first)


def test_pseudonyms_are_unlinkable_across_studies():
    a = pseudonymise(PEOPLE, study_key(MASTER, "ATV-1"))
    b = pseudonymise(PEOPLE, study_key(MASTER, "ATV-2"))
    assert not set(a) & set(b)
    assert not any(pk[2:] in p for pk, p in zip(PEOPLE, a))  # nothing of the person key shows through


@pytest.mark.parametrize("bad", [[None], [""], [123]])
def test_missing_person_keys_are_refused(bad):
    with pytest.raises(ValueError):
        pseudonymise(bad, study_key(MASTER, "ATV-1"))


def test_short_keys_are_refused():
    with pytest.raises(StudyKeyError):
        pseudonymise(["PK1"], b"too short")


def test_pseudonymise_frame_replaces_person_key_and_passes_the_gate():
    df = pd.DataFrame({"person_key": ["PK1", "PK2"] * 11, "age_band": ["20-29"] * 22})
    out = pseudonymise_frame(df, study_key(MASTER, "ATV-1"))
    assert list(out.columns) == ["study_pseudonym", "age_band"] and "person_key" in df.columns
    assert out["study_pseudonym"].nunique() == 2
    assert not check_release(df, kind="record", rules=DisclosureRules(), quasi_identifiers=["age_band"]).passed
    assert check_release(out, kind="record", rules=DisclosureRules(), quasi_identifiers=["age_band"]).passed


# -- dates ---------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(1, 365))
def test_date_shift_is_deterministic_nonzero_and_bounded(pseudonym, max_days):
    key = study_key(MASTER, "ATV-1")
    shift = date_shift_days(pseudonym, key, max_days)
    assert shift == date_shift_days(pseudonym, key, max_days)
    assert 1 <= abs(shift) <= max_days


def test_date_shifts_cover_both_directions_and_differ_between_studies():
    p = pseudonymise(PEOPLE, study_key(MASTER, "ATV-1"))
    shifts_1 = [date_shift_days(x, study_key(MASTER, "ATV-1")) for x in p]
    shifts_2 = [date_shift_days(x, study_key(MASTER, "ATV-2")) for x in p]
    assert min(shifts_1) < 0 < max(shifts_1) and len(set(shifts_1)) > 40
    assert shifts_1 != shifts_2


def test_shift_dates_preserves_intervals_within_a_person():
    key = study_key(MASTER, "ATV-1")
    df = pd.DataFrame({
        "study_pseudonym": ["S-A", "S-A", "S-A", "S-B", "S-B"],
        "event": pd.to_datetime(["2025-01-01", "2025-01-31", "2025-06-30", "2025-01-01", None]),
        "referral": [date(2024, 12, 1), date(2025, 2, 2), None, date(2025, 3, 3), date(2025, 3, 4)],
    })
    before = df.copy()
    out = shift_dates(df, ["event", "referral"], "study_pseudonym", key)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    a = out[out.study_pseudonym == "S-A"]
    assert (a["event"].diff().dropna() == df.loc[:2, "event"].diff().dropna().to_numpy()).all()
    assert (out["event"] - df["event"]).dropna().dt.days.tolist() == [date_shift_days("S-A", key)] * 3 + \
        [date_shift_days("S-B", key)]
    assert out.loc[4, "event"] is pd.NaT and out.loc[2, "referral"] is None
    assert pd.api.types.is_datetime64_any_dtype(out["event"]) and isinstance(out.loc[0, "referral"], date)
    assert (out.loc[1, "referral"] - out.loc[0, "referral"]).days == (date(2025, 2, 2) - date(2024, 12, 1)).days


def test_shift_dates_refuses_rows_without_a_person():
    df = pd.DataFrame({"p": ["S-A", None], "d": pd.to_datetime(["2025-01-01", "2025-01-02"])})
    with pytest.raises(ValueError, match="missing pseudonyms"):
        shift_dates(df, ["d"], "p", study_key(MASTER, "ATV-1"))


@pytest.mark.parametrize("to,expected", [
    ("month", ["2025-02", "2024-12", None]),
    ("quarter", ["2025Q1", "2024Q4", None]),
    ("year", ["2025", "2024", None]),
])
def test_coarsen_dates(to, expected):
    df = pd.DataFrame({"d": pd.to_datetime(["2025-02-14", "2024-12-31", None])})
    assert coarsen_dates(df, ["d"], to)["d"].tolist() == expected


def test_coarsen_dates_refuses_an_unknown_period():
    with pytest.raises(ValueError):
        coarsen_dates(pd.DataFrame({"d": []}), ["d"], "week")  # type: ignore[arg-type]


# -- the key store and destruction -----------------------------------------------------------------


def test_store_writes_0600_keys_and_reads_them_back(tmp_path):
    store = StudyKeyStore(tmp_path / "studies")
    key = store.create("ATV-1", MASTER)
    path = tmp_path / "studies" / "ATV-1.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get("ATV-1") == key == store.get_or_create("ATV-1", MASTER)
    # A random salt: the stored key cannot be re-derived from the master secret alone.
    assert key != study_key(MASTER, "ATV-1")


def test_store_refuses_to_replace_a_key(tmp_path):
    store = StudyKeyStore(tmp_path)
    store.create("ATV-1", MASTER)
    with pytest.raises(StudyKeyError, match="already has a key"):
        store.create("ATV-1", MASTER)


def test_store_refuses_a_group_readable_key(tmp_path):
    store = StudyKeyStore(tmp_path)
    store.create("ATV-1", MASTER)
    os.chmod(tmp_path / "ATV-1.key", 0o640)
    with pytest.raises(StudyKeyError, match="chmod 600"):
        store.get("ATV-1")


def test_destroying_a_study_key_makes_its_pseudonyms_unlinkable(tmp_path):
    store = StudyKeyStore(tmp_path)
    key = store.create("ATV-1", MASTER)
    released = pseudonymise(PEOPLE, key)

    record = store.destroy("ATV-1", now=NOW)

    assert not (tmp_path / "ATV-1.key").exists() and list(tmp_path.iterdir()) == []
    assert (record.study_id, record.file, record.bytes_overwritten) == ("ATV-1", "ATV-1.key", 32)
    assert record.destroyed_at == NOW.isoformat() and len(record.key_id) == 16
    text = repr(record) + str(record.to_dict())
    assert key.hex() not in text and repr(key) not in text
    with pytest.raises(StudyKeyError, match="destroyed"):
        store.get("ATV-1")
    with pytest.raises(StudyKeyError, match="already destroyed"):
        store.destroy("ATV-1", now=NOW)
    # Neither a new key for the same study nor the master secret alone reproduces the old pseudonyms.
    again = pseudonymise(PEOPLE, store.create("ATV-1", MASTER))
    derived = pseudonymise(PEOPLE, study_key(MASTER, "ATV-1"))
    assert not set(released) & (set(again) | set(derived))


def test_destroy_needs_an_aware_clock(tmp_path):
    store = StudyKeyStore(tmp_path)
    store.create("ATV-1", MASTER)
    with pytest.raises(StudyKeyError, match="timezone-aware"):
        store.destroy("ATV-1", now=datetime(2026, 11, 21))
    assert store.exists("ATV-1")
