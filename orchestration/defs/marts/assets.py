"""The dbt models of the analytics zone as Dagster assets (staging -> intermediate -> marts), plus the data dictionary.

dbt sources carry ``meta.dagster.asset_key`` = the ingestion / linkage asset keys, so landing -> mart is one graph.
dbt tests become asset checks. A fresh clone has no ``target/manifest.json``: it is built here (``dbt parse``)
before ``@dbt_assets`` reads it, so loading the code location never fails for want of it.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project, manifest_is_stale, prepare_manifest
from orchestration.defs.marts.dictionary import write_data_dictionary
from orchestration.resources import VpdcHome

if manifest_is_stale():  # a fresh clone, or models edited since the last parse
    prepare_manifest()


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
    """The dbt command of the asset: build = seeds, models, snapshots and every test (tests gate downstream models)."""
    return ["build"]


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=MartsTranslator(),
            pool="duckdb_writer", name="analytics_dbt")
def analytics_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(dbt_build_args(), context=context).stream()


@dg.asset(key=["reports", "data_dictionary"], deps=[analytics_dbt], group_name="marts",
          description="Data dictionary of the analytics zone (dbt docs, equity meta per mart column), one HTML file.")
def data_dictionary(vpdc_home: VpdcHome) -> dg.MaterializeResult:
    path = write_data_dictionary(vpdc_home.home.root)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size})


marts_job = dg.define_asset_job("marts_job", selection=dg.AssetSelection.groups("marts"),
                                description="Build the analytics zone with dbt (tests included) and its data dictionary.")
