"""The disclosure rules: the value applied to one release, and how partners' rules combine (the strictest wins).

The default values live in :mod:`governance.defaults` (written once; dbt receives them as vars); the columns
that never leave the warehouse are listed here. A partner's own stricter rule comes from the registry."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from governance.defaults import DOMINANCE_K, DOMINANCE_N, K_ANONYMITY, MIN_CELL

#: Columns that identify a person directly or link back to partner records. Compared after lower-casing
#: and turning spaces and hyphens into underscores, so "Date of Birth" and "date-of-birth" both match.
DEFAULT_FORBIDDEN_COLUMNS: frozenset[str] = frozenset({
    # warehouse and partner record keys: they join a released row back to the linked data
    "person_key", "person_record_id", "source_record_id",
    # identifiers the partner kit encodes (partner_kit.extract.IDENTIFIER_ROLES) and their usual spellings
    "name", "first_name", "middle_name", "last_name", "suffix", "formatted_name", "full_name",
    "given_name", "family_name", "surname", "maiden_name", "alias",
    "dob", "date_of_birth", "birth_date", "birthdate",
    "ssn", "ssn_last4", "social_security_number",
    "address", "street_address", "address_line1", "address_line2",
    "phone", "phone_number", "email", "email_address",
})

#: Column-name prefixes that never leave the warehouse: ``enc_`` marks linkage-zone encodings.
DEFAULT_FORBIDDEN_PREFIXES: frozenset[str] = frozenset({"enc_"})


class DisclosureError(ValueError):
    """Input cannot be checked safely, or a release is refused. The message says what to fix."""


def _normalise_column_name(name: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class DisclosureRules:
    """The disclosure policy applied to one release. Defaults are the collaborative's (DESIGN.md).

    Attributes:
        min_cell: smallest publishable non-zero count. Counts ``1 .. min_cell - 1`` are suppressed;
            a true zero is publishable (it discloses no one).
        dominance_n, dominance_k: a magnitude cell fails when its ``dominance_n`` largest contributors
            hold at least ``dominance_k`` of the cell total (a contributor could subtract themselves
            and learn the others' value).
        k_anonymity: every combination of quasi-identifier values in a record-level file must be
            shared by at least this many records.
        forbidden_columns, forbidden_prefixes: column names (normalised, see
            :data:`DEFAULT_FORBIDDEN_COLUMNS`) that fail any release outright.

    Example:
        >>> DisclosureRules().min_cell
        11
        >>> combine([DisclosureRules(), DisclosureRules(min_cell=20)]).min_cell
        20
    """

    min_cell: int = MIN_CELL
    dominance_n: int = DOMINANCE_N
    dominance_k: float = DOMINANCE_K
    k_anonymity: int = K_ANONYMITY
    forbidden_columns: frozenset[str] = DEFAULT_FORBIDDEN_COLUMNS
    forbidden_prefixes: frozenset[str] = DEFAULT_FORBIDDEN_PREFIXES

    def __post_init__(self) -> None:
        def whole(name: str, value: object, low: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DisclosureError(f"DisclosureRules.{name} must be a whole number >= {low}")

        whole("min_cell", self.min_cell, 1)
        whole("dominance_n", self.dominance_n, 1)
        whole("k_anonymity", self.k_anonymity, 1)
        if not (isinstance(self.dominance_k, (int, float)) and 0 < float(self.dominance_k) <= 1):
            raise DisclosureError("DisclosureRules.dominance_k must be a share in (0, 1]")
        # Normalise so that comparisons and combine() are spelling-insensitive.
        object.__setattr__(self, "dominance_k", float(self.dominance_k))
        object.__setattr__(self, "forbidden_columns",
                           frozenset(_normalise_column_name(c) for c in self.forbidden_columns))
        object.__setattr__(self, "forbidden_prefixes",
                           frozenset(_normalise_column_name(p) for p in self.forbidden_prefixes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for manifests and audit events (sets become sorted lists)."""
        return {
            "min_cell": self.min_cell,
            "dominance_n": self.dominance_n,
            "dominance_k": self.dominance_k,
            "k_anonymity": self.k_anonymity,
            "forbidden_columns": sorted(self.forbidden_columns),
            "forbidden_prefixes": sorted(self.forbidden_prefixes),
        }

    def forbids(self, column: object) -> bool:
        """True when ``column`` may never appear in a released file."""
        name = _normalise_column_name(column)
        return name in self.forbidden_columns or any(name.startswith(p) for p in self.forbidden_prefixes)


def combine(rules: Iterable[DisclosureRules]) -> DisclosureRules:
    """The most restrictive combination of several partners' rules: the strictest partner wins.

    Each rule is tightened independently: the largest ``min_cell``, ``k_anonymity`` and
    ``dominance_n``, the smallest ``dominance_k``, and the union of forbidden columns and prefixes.
    The result can be stricter than any single input (n from one partner, k from another), which is
    the safe direction.

    Raises:
        DisclosureError: when no rules are given. An empty list almost always means the partners of
            a request were not resolved; pass ``DisclosureRules()`` explicitly for the defaults.
    """
    items = list(rules)
    if not items:
        raise DisclosureError("combine() got no rules: pass each partner's DisclosureRules "
                              "(or DisclosureRules() for the collaborative defaults)")
    return DisclosureRules(
        min_cell=max(r.min_cell for r in items),
        dominance_n=max(r.dominance_n for r in items),
        dominance_k=min(r.dominance_k for r in items),
        k_anonymity=max(r.k_anonymity for r in items),
        forbidden_columns=frozenset().union(*(r.forbidden_columns for r in items)),
        forbidden_prefixes=frozenset().union(*(r.forbidden_prefixes for r in items)),
    )


