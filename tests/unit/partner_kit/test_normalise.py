from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from partner_kit.normalise import (
    PARTICLES,
    SUFFIXES,
    NormaliseError,
    clean_text,
    name_words,
    normalise_address,
    normalise_given,
    normalise_ssn,
    normalise_surname,
    normalise_zip,
    parse_date,
    split_formatted_name,
)

ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


@given(st.text())
def test_clean_text_output_is_upper_ascii_single_spaced(s):
    out = clean_text(s)
    assert set(out) <= ALLOWED
    assert "  " not in out and out == out.strip()


@given(st.text())
def test_clean_text_is_idempotent(s):
    assert clean_text(clean_text(s)) == clean_text(s)


@given(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=20))
@example("ẞ")  # capital sharp S: NFKD leaves it alone and it has no ASCII upper case (CI found it)
def test_clean_text_ignores_case(s):
    assert clean_text(s.lower()) == clean_text(s.upper())


def test_clean_text_ignores_case_for_every_single_code_point():
    """Exhaustive over Unicode: hypothesis samples, this closes the gap for one-character names."""
    for c in range(0x110000):
        if 0xD800 <= c < 0xE000:
            continue
        s = chr(c)
        if s.lower() == s.upper():
            continue  # uncased: nothing to compare
        assert clean_text(s.lower()) == clean_text(s.upper()), hex(c)


@pytest.mark.parametrize(
    ("a", "b"),
    [("José", "JOSE"), ("Zoë", "zoe"), ("O'Brien", "OBRIEN"), ("Nguyễn", "nguyen"), ("Müller", "MULLER"),
     ("  mary   ann ", "MaryAnn"), ("Jean-Luc", "Jean Luc"), ("Dr. John", "John")],
)
def test_normalise_given_equates_variants(a, b):
    assert normalise_given(a) == normalise_given(b)


@given(st.text())
def test_normalise_given_never_raises_and_has_no_spaces(s):
    out = normalise_given(s)
    assert out is None or (" " not in out and set(out) <= ALLOWED)


@given(st.text())
def test_normalise_surname_parts_come_from_compact(s):
    sn = normalise_surname(s)
    if sn is not None:
        assert all(p in sn.compact for p in sn.parts)
        assert sn.suffix in (None, "JR", "SR", "II", "III", "IV")


@pytest.mark.parametrize(
    ("raw", "compact", "parts", "suffix"),
    [("García López", "GARCIALOPEZ", ("GARCIA", "LOPEZ"), None),
     ("Garcia-Lopez", "GARCIALOPEZ", ("GARCIA", "LOPEZ"), None),
     ("de la Cruz", "DELACRUZ", ("CRUZ",), None),
     ("Smith Jr.", "SMITH", ("SMITH",), "JR"),
     ("Smith III", "SMITH", ("SMITH",), "III")],
)
def test_normalise_surname_examples(raw, compact, parts, suffix):
    sn = normalise_surname(raw)
    assert (sn.compact, sn.parts, sn.suffix) == (compact, parts, suffix)


@pytest.mark.parametrize("raw", ["", "   ", "NULL", "unknown", "LNU", "---"])
def test_placeholder_names_are_missing(raw):
    assert normalise_surname(raw) is None
    assert normalise_given(raw) is None


def test_split_formatted_name_keeps_suffix_with_last():
    assert split_formatted_name("SMITH JR, JOHN A") == ("SMITH JR", "JOHN", "A")
    assert split_formatted_name("GARCIA LOPEZ, MARIA") == ("GARCIA LOPEZ", "MARIA", None)
    assert split_formatted_name("") == (None, None, None)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
       st.sampled_from(["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%d-%b-%Y"]))
def test_parse_date_round_trips_every_partner_format(d, fmt):
    assert parse_date(d.strftime(fmt), fmt) == d


def test_parse_date_errors_name_the_rule_not_the_value():
    with pytest.raises(NormaliseError) as exc:
        parse_date("13/45/1990", "%m/%d/%Y")
    assert exc.value.rule == "date_format" and "13/45" not in str(exc.value)
    with pytest.raises(NormaliseError) as exc:
        parse_date("2030-01-01", "%Y-%m-%d", latest=date(2026, 1, 1))
    assert exc.value.rule == "date_range"
    assert parse_date("  ", "%Y-%m-%d") is None


@given(st.text())
def test_normalise_ssn_is_nine_digits_or_none(s):
    out = normalise_ssn(s)
    assert out is None or (len(out) == 9 and out.isdigit())


@pytest.mark.parametrize("bad", ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000",
                                 "123456789", "12345", ""])
def test_impossible_ssns_are_missing(bad):
    assert normalise_ssn(bad) is None


def test_ssn_formats_agree():
    assert normalise_ssn("234-56-7890") == normalise_ssn("234567890") == "234567890"


@given(st.text())
def test_normalise_zip_is_five_digits_or_none(s):
    out = normalise_zip(s)
    assert out is None or (len(out) == 5 and out.isdigit())


def test_normalise_address_standardises():
    assert normalise_address("1200 North Tryon Street Apt 4") == normalise_address("1200 N. Tryon St.") == "1200 N TRYON ST"
    assert normalise_address("  ") is None


@pytest.mark.parametrize(("written", "standard"), [
    ("1 Lambrigg Sitreet", "1 LAMBRIGG ST"),        # one letter inserted
    ("3 Partridge Stret", "3 PARTRIDGE ST"),        # one deleted
    ("33 Benson Drescent", "33 BENSON CRES"),       # one replaced
    ("14 Pandanus Tsreet", "14 PANDANUS ST"),       # two swapped
    ("9 Genoa S treet", "9 GENOA ST"),              # a space inside the type
    ("16 Howie Co urt", "16 HOWIE CT"),
    ("5 Sherlockstreet", "5 SHERLOCK ST"),          # glued to the name
    ("41 Disneycourt", "41 DISNEY CT"),
    ("42 Denovan Circuit", "42 DENOVAN CCT"),       # AS/NZS 4819 types
    ("26 Wybalena Grove", "26 WYBALENA GRV"),
    ("100 Main Stret North", "100 MAIN ST N"),      # the type before a trailing direction
])
def test_a_mistyped_split_or_glued_street_type_is_the_type(written, standard):
    assert normalise_address(written) == standard


@pytest.mark.parametrize("address", [
    "10 BROADWAY",        # no type: nothing to correct
    "12 E ST",            # a type already
    "7 PEACHTREE",        # a name two edits or more from every type
    "12 ST REET",         # joining would leave no street name: left as written
    "HWY 49",             # a number last
    "WALKERCRESCENT",     # a glued type with no house or name before it
    "4 X",
])
def test_an_address_without_a_type_to_correct_is_unchanged(address):
    assert normalise_address(address) == address


def test_two_addresses_differing_only_in_the_type_typo_agree_and_others_stay_apart():
    assert normalise_address("8 Conlon Cresent") == normalise_address("8 CONLON CRESCENT")
    assert normalise_address("8 Conlon Crescent") != normalise_address("8 Conlan Crescent")
    assert normalise_address("8 Conlon Crescent") != normalise_address("8 Conlon Circuit")


_STREET_LIKE = st.builds(
    lambda number, name, type_, direction: " ".join(w for w in (number, name, type_, direction) if w),
    st.sampled_from(["", "1", "200", "7B"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ ", min_size=1, max_size=14),
    st.one_of(st.sampled_from(["STREET", "ST", "CRESCENT", "CIRCUIT", "PLACE", "ROAD", "WAY", ""]),
              st.text(alphabet="ACDEINRSTUZ ", max_size=9)),
    st.sampled_from(["", "N", "SOUTH", "NW"]))


@given(_STREET_LIKE)
def test_street_type_correction_is_idempotent_and_keeps_the_house_number(address):
    once = normalise_address(address)
    assert once is None or normalise_address(once) == once
    numbers = [w for w in address.split() if any(c.isdigit() for c in w)]
    assert once is None or [w for w in once.split() if any(c.isdigit() for c in w)] == numbers


@settings(deadline=None)  # the first call compiles the regexes
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)), st.text(),
                          st.sampled_from(["1200 North Tryon Street Apt 4", "9 Elm St. #3", "55 Beatties Ford Road",
                                           "12 Avenue Rd", "Calle José 5", "North  South Street", "STR AV",
                                           "9 Genoa S treet", "5 Sherlockstreet", "1 Lambrigg Sitreet N"])),
                max_size=40))
def test_vectorised_address_normaliser_agrees_with_the_scalar_one(values):
    import pyarrow as pa

    from partner_kit.normalise import normalise_address_array

    assert normalise_address_array(pa.array(values, pa.string())).to_pylist() == [normalise_address(v) for v in values]


# -- column-wise normalisers equal the scalar ones, value for value ---------------------------------------
digitish = st.text(alphabet="0123456789- ()/٣", max_size=14)


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), digitish,
                          st.sampled_from(["234-56-7890", "000-12-3456", "666123456", "912345678", "123-45-6789",
                                           "234-00-7890", "234-56-0000", " 234 56 7890 "])), max_size=40))
def test_vectorised_ssn_normaliser_agrees_with_the_scalar_one(values):
    import pyarrow as pa

    from partner_kit.normalise import normalise_ssn_array

    assert normalise_ssn_array(pa.array(values, pa.string())).to_pylist() == [normalise_ssn(v) for v in values]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), digitish,
                          st.sampled_from(["28206", "28206-1234", "00000", "00000-1234", "2820", "282061"])),
                max_size=40))
def test_vectorised_zip_normaliser_agrees_with_the_scalar_one(values):
    import pyarrow as pa

    from partner_kit.normalise import normalise_zip_array

    assert normalise_zip_array(pa.array(values, pa.string())).to_pylist() == [normalise_zip(v) for v in values]


DATE_FORMATS = ["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%d-%b-%Y", "%Y-%m-%d %H:%M"]


def _date_value(fmt):
    shaped = {"%Y-%m-%d": r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", "%Y%m%d": r"\A[0-9]{8}\Z",
              "%m/%d/%Y": r"\A[0-9]{2}/[0-9]{2}/[0-9]{4}\Z", "%d-%b-%Y": r"\A[0-9]{2}-[A-Za-z]{3}-[0-9]{4}\Z",
              "%Y-%m-%d %H:%M": r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}\Z"}[fmt]
    return st.one_of(
        st.none(), st.text(max_size=14), st.from_regex(shaped),
        st.dates(min_value=date(1800, 1, 1), max_value=date(2100, 12, 31)).map(lambda d: d.strftime(fmt)),
        st.dates(min_value=date(1890, 1, 1), max_value=date(2030, 12, 31)).map(
            lambda d: f" {d.strftime(fmt).lower()}\t"),
        st.sampled_from(["2020-02-30", "20200230", "02/30/2020", "30-FEB-2020", "0000-01-01", "00000101",
                         "2021-02-29", "1990-3-7", "１９９０-03-07", "31-Jun-2001"]))


@settings(deadline=None)
@given(st.sampled_from(DATE_FORMATS).flatmap(lambda f: st.tuples(st.just(f), st.lists(_date_value(f), max_size=30))))
def test_vectorised_date_parser_agrees_with_the_scalar_one(case):
    """Same date, or the same error (rule and message), for every value, in every partner format."""
    import pyarrow as pa

    from partner_kit.normalise import parse_date_array

    fmt, values = case
    latest = date(2026, 11, 21)
    dates, errors = parse_date_array(pa.array(values, pa.string()), fmt, latest=latest)
    got = [(errors[i].rule, str(errors[i])) if i in errors else d for i, d in enumerate(dates.to_pylist())]
    expected = []
    for v in values:
        try:
            expected.append(parse_date(v, fmt, latest=latest))
        except NormaliseError as exc:
            expected.append((exc.rule, str(exc)))
    assert got == expected


@given(st.lists(st.one_of(st.none(), st.text(max_size=30), st.text(alphabet=" ,AB.-\t", max_size=12),
                          st.sampled_from(["SMITH JR, JOHN A", "GARCIA LOPEZ, MARIA", "John Smith", ", ANA",
                                           "SMITH,", "  ", "Cher", "DE LA  CRUZ ,  ANA  MARIA  B ", "A,B,C",
                                           " Mary  Ann   Smith "])), max_size=30))
def test_vectorised_formatted_name_split_agrees_with_the_scalar_one(values):
    import pyarrow as pa

    from partner_kit.normalise import split_formatted_name_array

    last, first, middle = split_formatted_name_array(pa.array(values, pa.string()))
    got = list(zip(last.to_pylist(), first.to_pylist(), middle.to_pylist(), strict=True))
    assert got == [split_formatted_name(v) for v in values]


one_word = st.one_of(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
                     st.sampled_from(["DR", "Mr", "jr", "II", "De", "st", "Unknown", "NFN", "x", "Y", "Null", "van",
                                      "Prof", "Senior", "iv", "NA"]))


@given(one_word)
def test_name_fast_paths_equal_the_general_normalisers(s):
    from partner_kit.normalise import _normalise_given, _normalise_surname

    assert normalise_given(s) == _normalise_given(s)
    assert normalise_surname(s) == _normalise_surname(s)
    assert name_words(s) == name_words(s, None)  # one field of one word: the fast path; two fields: the general one


name_parts = st.one_of(st.none(), st.text(max_size=25),
                       st.lists(st.sampled_from(["Anh", "Thi", "Nguyen", "van", "de la", "Jr", "Dr.", "José", "O'Brien",
                                                 "Mary-Ann", "X", "3rd", "NULL"]), max_size=4).map(" ".join))


@given(name_parts, name_parts, name_parts)
def test_name_words_are_order_free_sorted_unique_words_of_letters(a, b, c):
    out = name_words(a, b, c)
    assert out == name_words(c, a, b) == name_words(b, c, a) == name_words(f"{a or ''} {b or ''}", None, c)
    if out is not None:
        ws = out.split(" ")
        assert ws == sorted(set(ws)) and all(len(w) > 1 and w.isalpha() and w.isupper() and w.isascii() for w in ws)
        assert name_words(out) == out  # idempotent


@given(name_parts, name_parts, name_parts)
def test_name_words_hold_every_word_of_the_normalised_names(a, b, c):
    """A one-word given name of two letters or more the field normaliser keeps, the whole name keeps; and every
    word of the whole name is a word of one of the fields."""
    out = set((name_words(a, b, c) or "").split())
    for part in (a, b):
        given_name = normalise_given(part)
        if given_name and len(given_name) > 1 and given_name.isalpha() and len(clean_text(part).split()) == 1 \
                and given_name not in PARTICLES and given_name not in SUFFIXES:
            assert given_name in out
    assert out <= {w for p in (a, b, c) for w in clean_text(p).split()}


@pytest.mark.parametrize("parts, words", [
    (("Nguyen", "Van Anh", "Thi"), "ANH NGUYEN THI"),
    (("Dr. Mary-Ann", None, "de la Cruz Jr."), "ANN CRUZ MARY"),
    (("José", "", "O'Brien"), "JOSE OBRIEN"),
    (("X", "NULL", "3rd"), None),
])
def test_name_words_examples(parts, words):
    assert name_words(*parts) == words
