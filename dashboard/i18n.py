"""The dashboard's languages: gettext catalogues (``locale/<lang>/LC_MESSAGES/messages.po``, compiled in memory, no
binary .mo in the repository) and number and date formats per language (Babel's CLDR data).

Adding a language: a catalogue under ``locale/<code>/``, a line in :data:`LANGUAGES`, and a d3 locale for the
charts (``dashboard.charts.D3_LOCALE``). Extract the messages with
``pybabel extract -F dashboard/babel.cfg -k N_ -o dashboard/locale/messages.pot dashboard``.
"""

from __future__ import annotations

import gettext
import io
from datetime import date
from functools import cache
from pathlib import Path

__all__ = ["LANGUAGES", "LOCALE_DIR", "N_", "Formats", "load_catalogue", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: language code -> (its own name, the CLDR locale its numbers and dates follow): "1,234.5" and "March 2025" in
#: English, "1.234,5", "20.000" and "marzo de 2025" in Spanish (CLDR's general Spanish).
LANGUAGES: dict[str, tuple[str, str]] = {"en": ("English", "en_US"), "es": ("Español", "es")}


def N_(message: str) -> str:  # noqa: N802 - gettext convention: marked for extraction, translated when shown
    return message


@cache
def load_catalogue(locale_dir: Path, lang: str) -> gettext.NullTranslations:
    """The gettext catalogue ``<locale_dir>/<lang>/LC_MESSAGES/messages.po``, compiled in memory (the portal's
    catalogues load the same way)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with (Path(locale_dir) / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en" or lang not in LANGUAGES:
        return gettext.NullTranslations()
    return load_catalogue(LOCALE_DIR, lang)


class Formats:
    """Numbers, rates, percentages and dates in one language."""

    def __init__(self, lang: str):
        self.lang = lang
        self.locale = LANGUAGES[lang][1]
        self._ = translations(lang).gettext

    def int(self, n) -> str:
        from babel.numbers import format_decimal

        return "" if n is None else format_decimal(int(n), locale=self.locale)

    def rate(self, x) -> str:
        from babel.numbers import format_decimal

        return "" if x is None else format_decimal(round(float(x), 1), format="#,##0.0", locale=self.locale)

    def ratio(self, x) -> str:
        from babel.numbers import format_decimal

        return "" if x is None else format_decimal(float(x), format="#,##0.00", locale=self.locale)

    def percent(self, x) -> str:
        from babel.numbers import format_percent

        return "" if x is None else format_percent(float(x), format="+#,##0%;-#,##0%", locale=self.locale)

    def month(self, d: date) -> str:
        from babel.dates import format_skeleton

        return format_skeleton("yMMMM", d, locale=self.locale)

    def day(self, d: date) -> str:
        from babel.dates import format_date

        return format_date(d, "long", locale=self.locale)
