"""The dbt models of the analytics zone as Dagster assets (staging -> intermediate -> marts), plus the data dictionary.

dbt sources carry ``meta.dagster.asset_key`` = the ingestion / linkage asset keys, so landing -> mart is one graph.
dbt tests become asset checks. The assets are built when the code location loads (this file's
``@dg.definitions``), not when it is imported: the manifest they read lives under ``VPDC_HOME/dbt/target`` and
is prepared (``dbt parse``) only if it is missing or older than the project.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_executable, dbt_project
from orchestration.defs.marts.dictionary import write_data_dictionary
from orchestration.resources import GovernanceRegistry, VpdcHome
from workspace import Home


class MartsTranslator(DagsterDbtTranslator):
    """dbt models and seeds under ``analytics/``, all in group ``marts``; sources keep their meta asset keys."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        key = super().get_asset_key(dbt_resource_props)
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey(["analytics", *key.path])
        return key

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "marts"


def dbt_build_args() -> list[str]:
    """The dbt command of the asset: build = seeds, models, snapshots and every test (tests gate downstream
    models), with the governance defaults as vars."""
    import json

    from governance.defaults import dbt_vars

    return ["build", "--vars", json.dumps(dbt_vars())]


def build_marts(home_root: Path) -> dg.Definitions:
    """The marts' assets, checks, job and dbt resource for the home whose manifest they read."""
    project = dbt_project(home_root)

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=MartsTranslator(),
                pool="duckdb_writer", name="analytics_dbt")
    def analytics_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, vpdc_home: VpdcHome):
        runs = vpdc_home.home.root / "dbt" / "runs"
        yield from dbt.cli(dbt_build_args(), context=context,
                           target_path=runs / f"{context.run.run_id[:8]}").stream()

    @dg.asset(key=["reports", "data_dictionary"], deps=[analytics_dbt], group_name="marts",
              description="Data dictionary of the analytics zone (dbt docs, equity meta per mart column), one HTML file.")
    def data_dictionary(vpdc_home: VpdcHome) -> dg.MaterializeResult:
        path = write_data_dictionary(vpdc_home.home.root)
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                              "bytes": path.stat().st_size})

    @dg.asset(key=["dashboard", "site"], deps=[dg.AssetKey(["analytics", "community_violence_indicators"])],
              group_name="marts", description="The public Community Violence Data Dashboard: a static site (English "
              "and Spanish) from the published indicators only, in VPDC_HOME/dashboard/. Not built when a test of the "
              "indicators mart fails (the dbt step fails first), and the build re-checks the suppression itself.")
    def dashboard_site(vpdc_home: VpdcHome) -> dg.MaterializeResult:
        from dashboard import build_dashboard

        home = vpdc_home.home
        built = build_dashboard(home.warehouse_db, home.dashboard)
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(built.out_dir / "index.html")), "pages": len(built.pages),
            "bytes": built.bytes, "figures": built.figures, "cells_shown": built.cells_shown,
            "cells_suppressed": built.cells_suppressed, "data_through": built.data_through.isoformat()})

    @dg.asset(key=["analyst", "browse_views"],
              deps=[dg.AssetKey(["analytics", m]) for m in ("events", "persons", "program_cohorts")],
              group_name="marts", pool="duckdb_writer",
              description="The analysts' views of the marts (VPDC_HOME/analyst/browse.duckdb): no person identifier, "
                          "months and bands instead of dates and ages, k-anonymous on their quasi-identifiers "
                          "(the strictest partner's k, counted in persons). Replaced whole; audited.")
    def browse_views(vpdc_home: VpdcHome, registry: GovernanceRegistry) -> dg.MaterializeResult:
        from datetime import UTC, datetime

        from governance.outputs.browse import browse_rules, build_browse_views

        home, reg = vpdc_home.home, registry.registry()
        built = build_browse_views(home.warehouse_db, home.analyst_browse_db, rules=browse_rules(reg),
                                   now=datetime.now(UTC), registry=reg)
        meta: dict[str, Any] = {"path": dg.MetadataValue.path(built.path)}
        for name, v in built.views.items():
            meta |= {f"{name}_rows": v["records_out"], f"{name}_suppressed": v["records_suppressed"],
                     f"{name}_smallest_class": v["smallest_class"]}
        return dg.MaterializeResult(metadata=meta)

    marts_job = dg.define_asset_job("marts_job", selection=dg.AssetSelection.groups("marts"),
                                    description="Build the analytics zone with dbt (tests included), its data "
                                                "dictionary, the public dashboard and the analysts' views.")
    return dg.Definitions(assets=[analytics_dbt, data_dictionary, dashboard_site, browse_views], jobs=[marts_job],
                          resources={"dbt": DbtCliResource(project_dir=project, dbt_executable=str(dbt_executable()))})


@dg.definitions
def defs() -> dg.Definitions:
    return build_marts(Home.from_env().root)
