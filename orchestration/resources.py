"""Resources, declared once, configured from the environment (``VPDC_HOME``) at run time, not import time."""


from pathlib import Path

import dagster as dg

from envelope.keys import WarehouseKeyRing
from workspace import Home


class VpdcHome(dg.ConfigurableResource):
    """The working directory: landing zone, quarantine, archive, reports (DESIGN.md layout).

    Every asset that opens it first checks that nothing there is open to other accounts (zone files 0600, folders
    0700: ``workspace.permissions``), as every ``vpdc`` command does: a run started from the Dagster UI refuses an
    exposed home too, naming the paths and the command that fixes them.
    """

    root: str

    @property
    def home(self) -> Home:
        from workspace.permissions import check_home

        root = Path(self.root).resolve()
        check_home(root)
        return Home(root)


class WarehouseKeys(dg.ConfigurableResource):
    """The warehouse's keys: transport private key and the registered partner public keys.

    Never the linkage secret: the key ring refuses a keys folder that holds one.
    """

    keys_dir: str

    def keyring(self) -> WarehouseKeyRing:
        return WarehouseKeyRing(Path(self.keys_dir))


class DuckDBFile(dg.ConfigurableResource):
    """One DuckDB file of a zone. DuckDB allows one writer per file: writing assets use a pool of 1."""

    home: str
    file: str

    @property
    def path(self) -> Path:
        return Path(self.home).resolve() / self.file


class GovernanceRegistry(dg.ConfigurableResource):
    """The governance registry: SQLite under VPDC_HOME unless ``url`` (or VPDC_REGISTRY_URL) names another.

    Every gate and every landing-zone outcome is audited in its hash chain.
    """

    home: str
    url: str = ""

    def registry(self):
        from governance.registry.db import registry_for

        return registry_for(Path(self.home).resolve(), self.url or None)

    def audit_ingest(self, outcome, now) -> None:
        """Append a landing-zone outcome (counts and names only) to the audit chain."""
        from governance.registry.workflow import record_ingest

        record_ingest(self.registry(), outcome.as_dict(), now)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    home = dg.EnvVar("VPDC_HOME")
    return {
        "vpdc_home": VpdcHome(root=home),
        "keyring": WarehouseKeys(keys_dir=dg.EnvVar("VPDC_KEYS_DIR")),
        "linkage_db": DuckDBFile(home=home, file="linkage.duckdb"),
        "warehouse_db": DuckDBFile(home=home, file="warehouse.duckdb"),
        "registry": GovernanceRegistry(home=home),
    }
