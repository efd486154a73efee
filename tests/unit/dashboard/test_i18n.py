"""Every word the dashboard shows has a Spanish translation: the messages of its code and templates, and the equity
metadata of the indicators mart that the methodology page shows (a change to the dbt docs without a translation
fails here). Numbers and dates follow each language."""

from __future__ import annotations

from datetime import date

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dashboard.i18n import LANGUAGES, LOCALE_DIR, Formats
from dashboard.site import EQUITY_KEYS
from governance.catalog import catalogue


def _catalog(lang: str):
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def test_every_message_and_every_shown_equity_text_has_a_translation_in_every_language():
    ids = {m[2] for m in extract_from_dir(str(LOCALE_DIR.parent), method_map=[
        ("**.py", "python"), ("templates/**.html", "jinja2")], keywords={"_": None, "N_": None})}
    equity = catalogue()["community_violence_indicators"]
    ids |= {equity["indicator"].equity[k] for k in EQUITY_KEYS}
    ids.add(equity["geography_level"].equity["known_biases"])
    assert len(ids) > 120
    for lang in LANGUAGES:
        if lang == "en":
            continue
        cat = _catalog(lang)
        missing = sorted(i for i in ids if isinstance(i, str) and not (cat.get(i) and cat.get(i).string))
        assert missing == [], f"{lang}: {len(missing)} message(s) without a translation, e.g. {missing[:3]}"


def test_placeholders_survive_translation():
    import re

    for lang in LANGUAGES:
        if lang == "en":
            continue
        for m in _catalog(lang):
            if m.id and m.string:
                assert set(re.findall(r"%\(\w+\)s", m.id)) == set(re.findall(r"%\(\w+\)s", m.string)), m.id


def test_dates_and_numbers_follow_the_language():
    en, es = Formats("en"), Formats("es")
    assert en.month(date(2025, 3, 1)) == "March 2025" and es.month(date(2025, 3, 1)) == "marzo de 2025"
    assert en.day(date(2025, 3, 31)) == "March 31, 2025" and es.day(date(2025, 3, 31)) == "31 de marzo de 2025"
    assert en.rate(1234.56) == "1,234.6" and en.int(20000) == "20,000"
    assert es.rate(1234.56) == "1.234,6" and es.int(20000) == "20.000" and es.ratio(2.5) == "2,50"
