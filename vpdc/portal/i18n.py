"""English and Spanish: gettext catalogues (``locale/<lang>/LC_MESSAGES/messages.po``), compiled in memory
when first used (no binary .mo file in the repository). Extract with ``pybabel extract -F babel.cfg``."""

from __future__ import annotations

import gettext
from pathlib import Path

__all__ = ["CHECK_WORDS", "LANGUAGES", "LOCALE_DIR", "pick_language", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: language code -> its own name (what the switch shows)
LANGUAGES = {"en": "English", "es": "Español"}


def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en" or lang not in LANGUAGES:
        return gettext.NullTranslations()
    from dashboard.i18n import load_catalogue

    return load_catalogue(LOCALE_DIR, lang)


def pick_language(cookie: str | None, accept: str | None) -> str:
    """The reader's choice (the ``lang`` cookie the switch sets), else the browser's first known language."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marked for extraction, translated when shown
    return message


#: Words the pages translate at run time (roles, output levels, sign-in methods, decisions, kinds, navigation,
#: equity metadata keys): marked here so that extraction finds them.
DYNAMIC = [
    N_("analyst"), N_("steward"), N_("community_reviewer"), N_("evaluator"), N_("engineer"), N_("administrator"),
    N_("aggregate"), N_("cohort"), N_("linked_extract"), N_("summary"), N_("study"),
    N_("password+totp"), N_("oidc"), N_("email-link"), N_("demo-as"), N_("none"),
    N_("approve"), N_("approve_with_conditions"), N_("deny"),
    N_("Review queue"), N_("Audit chain"), N_("My requests"), N_("New request"), N_("My outputs"),
    N_("Quarantine and runs"), N_("Users"), N_("Agreements"), N_("Browse the data"),
    N_("events"), N_("persons"), N_("program_cohorts"),
    N_("collection_method"), N_("population"), N_("known_biases"), N_("suppression"),
]

#: Output checking's states and decisions (governance.outputs.checking) in words, translated when shown.
CHECK_WORDS = {"awaiting": N_("awaiting its checkers"), "approved": N_("approved by its checkers"),
               "changes": N_("changes asked"), "rejected": N_("rejected"), "approve": N_("approved"),
               "reject": N_("rejected")}
