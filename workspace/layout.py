"""Where things live under ``VPDC_HOME`` (DESIGN.md, "Working directory").

Every path is derived from one root passed in explicitly, so tests use ``tmp_path`` and nothing
reads the environment at import time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    """``VPDC_HOME`` from the environment, else ``./var``."""
    return Path(os.environ.get("VPDC_HOME", "var")).resolve()


_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def is_period(text: str) -> bool:
    """True for an extract period ``YYYY-MM`` (month 01-12)."""
    return isinstance(text, str) and bool(_PERIOD.match(text))


@dataclass(frozen=True)
class PartnerSite:
    """A partner's own working folder, where the kit runs (in the demo: ``VPDC_HOME/partners/<partner>``).

    ``<period>/`` native extracts (with identifiers: they never leave the site), ``encoded/<period>/`` the
    kit's payloads and rejects files, ``keys/`` the site's keys, ``profiles/`` profiles the partner wrote
    itself, ``outbox/`` envelopes ready to send, ``reference/`` public reference files (address points).
    """

    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def reference(self) -> Path:
        """Public reference files the kit reads (the county's address points, for residence tracts)."""
        return self.root / "reference"

    def extracts(self, period: str) -> Path:
        return self.root / period

    def encoded(self, period: str | None = None) -> Path:
        return self.root / "encoded" if period is None else self.root / "encoded" / period

    def periods(self) -> list[str]:
        """Periods with native extracts, oldest first."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_period(p.name)) \
            if self.root.is_dir() else []

    def encoded_periods(self) -> list[str]:
        d = self.encoded()
        return sorted(p.name for p in d.iterdir() if p.is_dir() and is_period(p.name)) if d.is_dir() else []


@dataclass(frozen=True)
class Home:
    """The working directory layout. Nothing here creates files except :meth:`ensure`."""

    root: Path

    @classmethod
    def from_env(cls) -> "Home":
        return cls(default_home())

    @property
    def keys(self) -> Path:
        """The warehouse's keys (transport key pair, registered partner keys, study keys). Never the linkage secret."""
        return self.root / "keys"

    @property
    def checkpoints(self) -> Path:
        """Signed checkpoints of the audit chain (``vpdc audit checkpoint``): stewards keep this folder, or a copy
        of it, outside the registry; ``signers/`` holds the public keys of the stewards who sign them."""
        return self.root / "checkpoints"

    def steward_keys(self, user: str) -> Path:
        """A steward's own keys (their checkpoint signing key); in production on the steward's own machine."""
        return self.root / "stewards" / user / "keys"

    @property
    def linkage_keys(self) -> Path:
        """The linkage zone's own keys (its archive key pair, ADR 0010); never the warehouse's, never the linkage
        secret (a separate site in production)."""
        return self.root / "linkage-keys"

    @property
    def custodian(self) -> Path:
        """The key custodian's site: the linkage secret versions (a separate site in production)."""
        return self.root / "custodian"

    def partner_site(self, partner: str) -> PartnerSite:
        """A partner's site (stands in for the agency's own machine in the demo)."""
        return PartnerSite(self.root / "partners" / partner)

    def partner_keys(self, partner: str) -> Path:
        """A partner site's own keys: its signing key, the linkage secret, the warehouse's public key."""
        return self.partner_site(partner).keys

    def partner_raw(self, partner: str) -> Path:
        """Synthetic raw extracts with PII: stands in for the agency's own systems."""
        return self.root / "partners" / partner

    def partner_out(self, partner: str) -> Path:
        """Encoded extracts, still inside the partner zone, before they are sealed."""
        return self.root / "partners" / partner / "encoded"

    def landing(self, partner: str | None = None) -> Path:
        return self.root / "landing" if partner is None else self.root / "landing" / partner

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def linkage_db(self) -> Path:
        return self.root / "linkage.duckdb"

    @property
    def warehouse_db(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.db"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def dashboard(self) -> Path:
        """The public Community Violence Data Dashboard (a static site built from published cells only)."""
        return self.root / "dashboard"

    @property
    def analyst_browse_db(self) -> Path:
        """The analysts' k-anonymous views of the marts (``governance.outputs.browse``), outside the warehouse."""
        return self.root / "analyst" / "browse.duckdb"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> "Home":
        for p in (self.keys, self.landing(), self.quarantine, self.archive, self.reports, self.outputs):
            p.mkdir(parents=True, exist_ok=True)
        return self
