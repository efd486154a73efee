"""Study outputs in Dagster: one dynamic partition per request (study id). The assets call the same gated
exports as the CLI, so the policy decides here too; a refusal fails the run and is audited."""

from datetime import UTC, date, datetime

import dagster as dg

from governance.defaults import OUTCOME_WINDOW_DAYS
from orchestration.resources import GovernanceRegistry, VpdcHome

studies = dg.DynamicPartitionsDefinition(name="studies")


class CohortExportConfig(dg.Config):
    actor: str
    program: str = "ATV"
    period_from: str = "2021-01-01"
    period_to: str = "2026-12-31"
    window_days: int = OUTCOME_WINDOW_DAYS
    columns: list[str] = []  # empty: every column the approval allows now
    comparison_ratio: int = 0
    repin: bool = False


class StudyExtractConfig(dg.Config):
    actor: str
    columns: list[str]
    period_from: str = "2021-01-01"
    period_to: str = "2026-12-31"
    repin: bool = False


def _gated(export, spec, vpdc_home: VpdcHome, registry: GovernanceRegistry) -> dg.MaterializeResult:
    """Run a gated export; a refusal (already audited by the export) fails the run with the policy's reasons."""
    from governance.registry.policy import PolicyRefused

    home = vpdc_home.home
    try:
        result = export(spec, registry=registry.registry(), warehouse_db=home.warehouse_db, outputs_dir=home.outputs,
                        keys_dir=home.keys, now=datetime.now(UTC))
    except PolicyRefused as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(metadata={"rows": result.rows, "suppressed_rows": result.suppressed_rows,
                                          "manifest": dg.MetadataValue.path(result.manifest)})


@dg.asset(
    key=["outputs", "program_cohort"],
    deps=[dg.AssetKey(["analytics", "program_cohorts"])],
    partitions_def=studies,
    group_name="study_outputs",
    description="A de-identified program cohort for one approved request: study pseudonyms, coarsened dates, "
                "k-anonymity, release manifest. Refused unless the governance policy allows it.",
)
def program_cohort_export(context: dg.AssetExecutionContext, config: CohortExportConfig, vpdc_home: VpdcHome,
                          registry: GovernanceRegistry) -> dg.MaterializeResult:
    from governance.outputs import CohortSpec, export_cohort

    spec = CohortSpec(context.partition_key, config.actor, config.program.upper(),
                      date.fromisoformat(config.period_from), date.fromisoformat(config.period_to), config.window_days,
                      columns=tuple(config.columns), comparison_ratio=config.comparison_ratio, repin=config.repin)
    return _gated(export_cohort, spec, vpdc_home, registry)


@dg.asset(
    key=["outputs", "study_extract"],
    deps=[dg.AssetKey(["analytics", "events"])],
    partitions_def=studies,
    group_name="study_outputs",
    description="A linked study extract for one approved request: the approved columns of the cross-sector "
                "events, study pseudonyms, dates shifted per person, k-anonymity, release manifest.",
)
def study_extract(context: dg.AssetExecutionContext, config: StudyExtractConfig, vpdc_home: VpdcHome,
                  registry: GovernanceRegistry) -> dg.MaterializeResult:
    from governance.outputs import StudySpec, run_study

    spec = StudySpec(context.partition_key, config.actor, tuple(config.columns), date.fromisoformat(config.period_from),
                     date.fromisoformat(config.period_to), repin=config.repin)
    return _gated(run_study, spec, vpdc_home, registry)


class EvaluationConfig(dg.Config):
    actor: str
    program: str = "ATV"
    period_from: str = "2021-01-01"
    period_to: str = "2026-12-31"
    area: str | None = None
    area_start: str | None = None
    repin: bool = False


@dg.asset(
    key=["outputs", "evaluation"],
    deps=[dg.AssetKey(["analytics", "events"]), dg.AssetKey(["analytics", "persons"])],
    partitions_def=studies,
    group_name="study_outputs",
    description="A program evaluation for one approved request (aggregate output): matched comparison, "
                "difference-in-differences, survival, area-level impact; disclosure-checked report under "
                "reports/evaluations/. Refused unless the governance policy allows it.",
)
def program_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, vpdc_home: VpdcHome,
                       registry: GovernanceRegistry) -> dg.MaterializeResult:
    from evaluation import EvaluationSpec, run_evaluation
    from governance.registry.policy import PolicyRefused

    home = vpdc_home.home
    spec = EvaluationSpec(context.partition_key, config.actor, config.program.upper(),
                          date.fromisoformat(config.period_from), date.fromisoformat(config.period_to),
                          area=config.area, area_start=date.fromisoformat(config.area_start) if config.area_start
                          else None, repin=config.repin)
    try:
        result = run_evaluation(spec, registry=registry.registry(), warehouse_db=home.warehouse_db,
                                reports_dir=home.reports, now=datetime.now(UTC))
    except PolicyRefused as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(metadata={"estimates": len(result.estimates), "suppressed": len(result.suppressed),
                                          "report": dg.MetadataValue.path(result.html)})


cohort_export_job = dg.define_asset_job("cohort_export_job", selection=[program_cohort_export], partitions_def=studies)
study_extract_job = dg.define_asset_job("study_extract_job", selection=[study_extract], partitions_def=studies)
evaluation_job = dg.define_asset_job("evaluation_job", selection=[program_evaluation], partitions_def=studies)


def new_study_partitions(registry, known: set[str]) -> list[str]:
    """Study ids in the registry that are not yet partitions (every request, active or not: the assets
    themselves refuse what the policy does not allow, and say why)."""
    from governance.registry.queue import study_ids

    with registry.read() as s:
        return [i for i in study_ids(s) if i not in known]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds a `studies` partition for every request submitted to the governance registry.")
def study_partitions_sensor(context: dg.SensorEvaluationContext, registry: GovernanceRegistry) -> dg.SensorResult:
    new = new_study_partitions(registry.registry(), set(context.instance.get_dynamic_partitions(studies.name)))
    if not new:
        return dg.SensorResult(skip_reason="no new requests")
    return dg.SensorResult(dynamic_partitions_requests=[studies.build_add_request(new)])
