"""Where things live under ``VPDC_HOME`` (DESIGN.md, "Working directory").

Every path is derived from one root passed in explicitly, so tests use ``tmp_path`` and nothing
reads the environment at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    """``VPDC_HOME`` from the environment, else ``./var``."""
    return Path(os.environ.get("VPDC_HOME", "var")).resolve()


@dataclass(frozen=True)
class Home:
    """The working directory layout. Nothing here creates files except :meth:`ensure`."""

    root: Path

    @classmethod
    def from_env(cls) -> "Home":
        return cls(default_home())

    @property
    def keys(self) -> Path:
        return self.root / "keys"

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
    def dagster(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> "Home":
        for p in (self.keys, self.landing(), self.quarantine, self.archive, self.reports, self.outputs):
            p.mkdir(parents=True, exist_ok=True)
        return self
