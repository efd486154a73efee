"""Statistical disclosure control for every file that leaves the warehouse (DESIGN.md, "Governance defaults").

A study output is released only after it passes the checks in this module. The policy itself is the
small :class:`DisclosureRules` value below; everything else applies it. The defaults are the
collaborative's: a minimum cell of 11 (so counts 1..10 are never published; 0 is), the dominance
rule n=2, k=0.90 for magnitude tables, k-anonymity with k=11 on the quasi-identifiers of record-level
files, and a list of columns that never leave the warehouse. When a file draws on several partners,
:func:`combine` takes the most restrictive value of each rule: the strictest partner wins.

The functions are pure: pandas in, pandas out, inputs never mutated. Each returns a report of what it
did made of counts, column names and rule values only, never a cell value or a record, so reports can
go into the audit log and Dagster metadata without becoming a disclosure themselves.

Everything fails closed. Input that cannot be checked safely (a missing count, a negative count, a
"total" that is not the sum of its parts, an unmapped generalisation) raises :class:`DisclosureError`
with a message that says what to fix, rather than being guessed at.

How the pieces fit a release::

    rules = combine(partner_rules)                      # strictest partner wins
    table, report = suppress_counts(counts, ["n"], rules, by=["year"])
    check = check_release(table, kind="aggregate", rules=rules, count_cols=["n"], by=["year"])
    manifest = release_manifest([path], study_id=..., request_id=..., checks={path.name: check},
                                rules=rules, now=now)
    write_manifest(out_dir / "manifest.json", manifest)
"""


from governance.disclosure.dominance import DominanceReport, check_dominance, dominance_shares
from governance.disclosure.kanon import KAnonReport, band, count_band, enforce_k_anonymity, period
from governance.disclosure.release import ReleaseCheck, check_release, release_manifest, write_manifest
from governance.disclosure.rules import (
    DEFAULT_FORBIDDEN_COLUMNS,
    DEFAULT_FORBIDDEN_PREFIXES,
    DisclosureError,
    DisclosureRules,
    combine,
)
from governance.disclosure.tables import SuppressionReport, protect_cells, suppress_counts

__all__ = [
    "DEFAULT_FORBIDDEN_COLUMNS",
    "DEFAULT_FORBIDDEN_PREFIXES",
    "DisclosureError",
    "DisclosureRules",
    "DominanceReport",
    "KAnonReport",
    "ReleaseCheck",
    "SuppressionReport",
    "band",
    "count_band",
    "check_dominance",
    "check_release",
    "combine",
    "dominance_shares",
    "enforce_k_anonymity",
    "period",
    "protect_cells",
    "release_manifest",
    "suppress_counts",
    "write_manifest",
]
