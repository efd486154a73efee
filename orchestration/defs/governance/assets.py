"""Study outputs in Dagster: one dynamic partition per request (study id). The asset calls the same gated
export as the CLI, so the policy decides here too; a refusal fails the run and is audited."""

from datetime import UTC, date, datetime

import dagster as dg

from orchestration.resources import VpdcHome

studies = dg.DynamicPartitionsDefinition(name="studies")


class CohortExportConfig(dg.Config):
    actor: str
    program: str = "ATV"
    period_from: str = "2021-01-01"
    period_to: str = "2026-12-31"
    window_days: int = 365


@dg.asset(
    key=["outputs", "program_cohort"],
    deps=[dg.AssetKey(["analytics", "program_cohorts"])],
    partitions_def=studies,
    group_name="study_outputs",
    description="A de-identified program cohort for one approved request: study pseudonyms, coarsened dates, "
                "k-anonymity, release manifest. Refused unless the governance policy allows it.",
)
def program_cohort_export(context: dg.AssetExecutionContext, config: CohortExportConfig,
                          vpdc_home: VpdcHome) -> dg.MaterializeResult:
    from governance.exports import CohortSpec, export_cohort
    from governance.registry.policy import PolicyRefused
    from vpdc.governance_cli import registry_for

    home = vpdc_home.home
    spec = CohortSpec(context.partition_key, config.actor, config.program.upper(),
                      date.fromisoformat(config.period_from), date.fromisoformat(config.period_to), config.window_days)
    try:
        result = export_cohort(spec, registry=registry_for(home), warehouse_db=home.warehouse_db,
                               outputs_dir=home.outputs, keys_dir=home.keys, now=datetime.now(UTC))
    except PolicyRefused as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(metadata={"rows": result.rows, "suppressed_rows": result.suppressed_rows,
                                          "manifest": dg.MetadataValue.path(result.manifest)})


cohort_export_job = dg.define_asset_job("cohort_export_job", selection=[program_cohort_export], partitions_def=studies)
