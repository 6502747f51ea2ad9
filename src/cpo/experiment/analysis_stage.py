"""The ``analyze`` stage of ``cpo run``: engagement + the design -> metrics.json, moderators.json.

Reads ``engagement.csv`` (streamed into sufficient statistics) or, after an
import of counts per arm, ``engagement_counts.csv`` (the counts are the
sufficient statistics),
``experiment_design.json`` (expected shares, tones, planned power),
``engagement_report.json`` (the import's or simulation's warnings, carried into
the metrics) and ``assignments.csv`` (how many recipients each arm was assigned,
to show how many were analysed). Writes ``metrics.json``
(:class:`~cpo.experiment.results.MetricsDocument`) and ``moderators.json``
(:class:`~cpo.experiment.moderators.ModeratorsDocument`: which customer
attributes moderate the lift, computed once here and read by every report),
logs the analysis to ``logs/experiment.log`` and returns a short summary of the
primary metric for the manifest's ``analysis`` record.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from cpo.compute import engine_for
from cpo.compute.work import AdjustRequest
from cpo.errors import CpoError, StageError
from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.analysis import analyze_document
from cpo.experiment.cuped import (
    RegressionAdjustment,
    request_for,
    unavailable,
)
from cpo.experiment.engagement import LAYOUT_COUNTS, counts_statistics
from cpo.experiment.metrics import plan_from_config
from cpo.experiment.moderators import (
    ATTRIBUTE_COLUMNS,
    ModeratorsDocument,
    read_customer_attributes,
    run_moderators,
    write_moderators,
)
from cpo.experiment.next_test import plan_next_test
from cpo.experiment.results import Coverage, MetricsDocument
from cpo.experiment.sequential import (
    Monitoring,
    read_monitoring,
    record_look,
    sequential_summary,
    write_monitoring,
)
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.experiment.wave_analysis import defer_to_waves, run_design, run_waves
from cpo.run_folder import (
    ASSIGNMENTS,
    ASSIGNMENTS_DATASET,
    ENGAGEMENT,
    ENGAGEMENT_COUNTS,
    ENGAGEMENT_DATASET,
    ENGAGEMENT_REPORT,
    EXPERIMENT_DESIGN,
    METRICS,
    MODERATORS,
    MONITORING,
    find_engagement,
    read_assignments,
    read_engagement,
)
from cpo.run_inputs import (
    customer_copy_current,
    load_run_customers,
    recorded_customers_path,
    valid_customer_copy,
)
from cpo.runfiles import read_columns, read_csv, read_json, write_json
from cpo.stage_api import RunContext, StageBase, StageOutcome

CHANNEL = "experiment"
#: engagement.csv columns the moderator analysis reads (no other column is loaded).
_ENGAGEMENT_COLUMNS = ("customer_id", "experiment_arm", "opened", "clicked", "converted")
#: Of those, the columns read as text (the rest are typed by the reader).
_ENGAGEMENT_TEXT = ("customer_id", "experiment_arm")


class AnalyzeStage(StageBase):
    """Analyse the experiment; write metrics.json and moderators.json."""

    name = "analyze"
    description = "Analysing the experiment"
    outputs = (METRICS.name, MODERATORS.name, MONITORING.name)

    def outputs_written(self, ctx: RunContext) -> bool:
        """metrics.json and moderators.json, and monitoring.json when monitoring is on."""
        needed = [METRICS, MODERATORS] + ([MONITORING] if _sequential(ctx) else [])
        return all(artifact.path(ctx.run_dir).is_file() for artifact in needed)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Engagement, design, engagement report, assignments and the customer file."""
        names = (
            ENGAGEMENT,
            ENGAGEMENT_DATASET,
            EXPERIMENT_DESIGN,
            ENGAGEMENT_REPORT,
            ASSIGNMENTS,
            ASSIGNMENTS_DATASET,
            ENGAGEMENT_COUNTS,
        )
        return [*(artifact.path(ctx.run_dir) for artifact in names), recorded_customers_path(ctx)]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Aggregate, analyse, write both documents; log and summarize the result."""
        engagement = find_engagement(ctx.run_dir)
        if engagement is None:
            raise StageError(
                self.name,
                f"{ENGAGEMENT.path(ctx.run_dir)}: not found (nor {ENGAGEMENT_DATASET.name})",
                hint="the engage stage writes it",
            )
        report = _read_optional(ENGAGEMENT_REPORT.path(ctx.run_dir)) or {}
        rows = EngagementRows(ctx.run_dir, engagement)
        metrics = self._metrics(ctx, rows, report)
        history = self._look(ctx, metrics)
        if history is not None:
            metrics = replace(metrics, sequential=history)
        write_json(METRICS.path(ctx.run_dir), metrics.to_dict())
        if history is not None:
            write_monitoring(ctx.run_dir, history)
        moderators = self._moderators(ctx, metrics, report, rows)
        write_moderators(MODERATORS.path(ctx.run_dir), moderators)
        summary = summarize(metrics)
        self._log(ctx, metrics, summary, moderators)
        return StageOutcome(
            summary=summary_line(summary), facts=summary, records={"analysis": summary}
        )

    def _metrics(
        self, ctx: RunContext, rows: EngagementRows, report: dict[str, Any]
    ) -> MetricsDocument:
        """The analysis, with the assigned-versus-analysed coverage when assignments exist."""
        engagement = rows.path
        design = run_design(ctx.run_dir, _read_optional(EXPERIMENT_DESIGN.path(ctx.run_dir)))
        statistics = self._statistics(ctx, engagement, report)
        carried = [{**w, "source": "engagement"} for w in report.get("warnings", [])]
        metrics = analyze_document(
            statistics,
            plan_from_config(ctx.config, design=design),
            engagement_source=report.get("engagement_source"),
            extra_warnings=carried,
        )
        metrics = replace(
            metrics,
            next_test=plan_next_test(metrics.to_dict(), design or {}),
            regression_adjustment=regression_adjustment(ctx, report, metrics, rows),
        )
        waves = run_waves(ctx.run_dir, engagement, report, metrics)
        if waves is not None:
            adjustment = defer_to_waves(metrics.regression_adjustment)
            metrics = replace(metrics, waves=waves, regression_adjustment=adjustment)
        assigned = _assigned_per_arm(ctx.run_dir)
        if assigned is None:
            return metrics
        return replace(metrics, coverage=_coverage(assigned, metrics))

    def _look(self, ctx: RunContext, metrics: MetricsDocument) -> Monitoring | None:
        """The look history with this analysis added (None when monitoring is off)."""
        if not _sequential(ctx):
            return None
        return record_look(
            read_monitoring(ctx.run_dir),
            metrics,
            tau=ctx.config.experiment.analysis.sequential_tau,
            source=str(MONITORING.path(ctx.run_dir)),
        )

    def _statistics(
        self, ctx: RunContext, engagement: Path, report: dict[str, Any]
    ) -> SufficientStatistics:
        """From engagement_counts.csv after a counts import, else reduced by the engine."""
        if report.get("layout") != LAYOUT_COUNTS:
            return engine_for(ctx.config.experiment.compute).engagement_statistics(ctx.run_dir)
        counts = ctx.path(report.get("counts_file") or ENGAGEMENT_COUNTS.name)
        if not counts.is_file():
            raise StageError(
                self.name,
                f"{counts}: not found, but {ENGAGEMENT_REPORT.name} says the engagement was "
                "imported as counts",
                hint=f"import the counts again: `cpo run --resume {ctx.run_dir} --engagement FILE`",
            )
        table = read_csv(counts, dtype={"experiment_arm": str, "segment": str})
        return counts_statistics(table)

    def _moderators(
        self,
        ctx: RunContext,
        metrics: MetricsDocument,
        report: dict[str, Any],
        rows: EngagementRows,
    ) -> ModeratorsDocument:
        """Moderator analysis of the primary metric on engagement joined with the customers."""
        engagement, customers, note = pd.DataFrame(), None, None
        found = None
        if report.get("layout") == LAYOUT_COUNTS:
            note = (
                f"the engagement was imported as counts per arm ({ENGAGEMENT_COUNTS.name}); "
                "moderators need per-recipient engagement"
            )
        else:
            # the local engine reads the rows here; another may keep them where they are
            found = engine_for(ctx.config.experiment.compute).analysis_rows(rows.frame)
            note = None if found is not None else _ROWS_ELSEWHERE
        if note is None:
            customers = valid_customer_copy(ctx, ATTRIBUTE_COLUMNS)
            if customers is None:
                recorded = (ctx.manifest.get("inputs") or {}).get("customers")
                customers, note = read_customer_attributes(recorded)
        if note is None and found is not None:
            engagement = found
        return run_moderators(
            engagement,
            customers,
            metric=metrics.primary_metric,
            confidence=metrics.confidence_level,
            alpha=metrics.alpha,
            seed=ctx.seed,
            unavailable=note,
        )

    def _log(
        self,
        ctx: RunContext,
        metrics: MetricsDocument,
        summary: dict[str, Any],
        moderators: ModeratorsDocument,
    ) -> None:
        """One analysis event, one moderators event, one warning event per analysis warning."""
        ctx.log.info(
            self.name,
            "analysis",
            channel=CHANNEL,
            recipients=metrics.total_customers,
            engagement_source=metrics.engagement_source,
            primary_metric=summary["primary_metric"],
            results=summary["results"],
            srm_mismatch=summary["srm_mismatch"],
        )
        top = moderators.result.ranking[0].attribute if moderators.result else None
        ctx.log.info(
            self.name,
            "moderators",
            channel=CHANNEL,
            computed=moderators.computed,
            top_attribute=top,
            note=moderators.note,
        )
        for warning in metrics.warnings:
            if warning.scope.get("source") == "engagement":
                continue  # the engage stage logged it already
            ctx.log.warning(self.name, warning.code, channel=CHANNEL, message=warning.message)


def _sequential(ctx: RunContext) -> bool:
    """Whether the run's analysis monitors with always-valid inference."""
    return bool(ctx.config.experiment.analysis.sequential)


def regression_adjustment(
    ctx: RunContext, report: dict[str, Any], metrics: MetricsDocument, rows: EngagementRows
) -> RegressionAdjustment:
    """Every comparison adjusted for the customers' pre-experiment covariates (CUPED).

    engagement.csv (its flag columns) is joined by customer_id to the covariate
    columns of the run's customers. Engagement imported as counts has no
    per-recipient rows, so nothing can be adjusted: the section says why.
    """
    settings = ctx.config.experiment.analysis
    if report.get("layout") == LAYOUT_COUNTS:
        reason = (
            f"the engagement was imported as counts per arm ({ENGAGEMENT_COUNTS.name}); "
            "regression adjustment needs per-recipient engagement joined to the customers"
        )
        return unavailable(settings.variance_reduction, reason, metrics.primary_metric)
    request = AdjustRequest(
        run_dir=ctx.run_dir,
        adjustment=request_for(metrics.to_dict(), settings.covariates, settings.variance_reduction),
        rows=rows.frame,
        customers=lambda columns: load_run_customers(ctx, columns),
        customer_copy_current=customer_copy_current(ctx),
    )
    try:
        return engine_for(ctx.config.experiment.compute).adjust_for_covariates(request)
    except CpoError as error:
        reason = f"the customer data could not be read again ({type(error).__name__})"
        return unavailable(settings.variance_reduction, reason, metrics.primary_metric)


#: Why the moderator analysis is skipped when the engine keeps the rows where they are.
_ROWS_ELSEWHERE = (
    "the per-recipient engagement stays in the compute engine (compute.engine: spark); "
    "the moderator analysis needs it in this process and was not run"
)


class EngagementRows:
    """The run's per-recipient engagement rows, read (by Arrow) at most once per analysis.

    The regression adjustment and the moderator analysis both need the rows
    with their customer ids (with the local engine); the sufficient statistics
    are reduced from the file separately (bounded memory, and all a counts
    import has).

    Args:
        run_dir: The run folder.
        path: engagement.csv or its dataset (the one the run has).
    """

    def __init__(self, run_dir: Path, path: Path) -> None:
        self.run_dir = run_dir
        self.path = path
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        """``customer_id`` and ``experiment_arm`` as text, the outcome flags as numbers."""
        if self._frame is None:
            self._frame = read_engagement(self.run_dir, _ENGAGEMENT_COLUMNS, text=_ENGAGEMENT_TEXT)
        return self._frame


def _read_optional(path: Path) -> dict[str, Any] | None:
    """A JSON artifact, or None when the file does not exist."""
    return read_json(path) if path.is_file() else None


def _assigned_per_arm(run_dir: Path) -> dict[str, int] | None:
    """Customers assigned to each arm (holdout excluded), or None without the assignments."""
    path = ASSIGNMENTS.path(run_dir)
    if path.is_file():
        arms = read_columns(path, ["experiment_arm"], text=["experiment_arm"])
    elif ASSIGNMENTS_DATASET.path(run_dir).is_dir():  # written by the Spark engine
        arms = read_assignments(run_dir, ["experiment_arm"])
    else:
        return None
    counts = arms["experiment_arm"].value_counts()
    return {str(arm): int(n) for arm, n in sorted(counts.items()) if arm != HOLDOUT_ARM}


def _coverage(assigned: dict[str, int], metrics: MetricsDocument) -> Coverage:
    """Assigned versus analysed recipients per arm."""
    arms = list(dict.fromkeys([*metrics.arms, *assigned]))
    analysed = {arm: metrics.arms[arm].sample_size if arm in metrics.arms else 0 for arm in arms}
    return Coverage(
        assigned={arm: assigned.get(arm, 0) for arm in arms},
        analysed=analysed,
        share_analysed={
            arm: (analysed[arm] / assigned[arm] if assigned.get(arm) else None) for arm in arms
        },
    )


def summarize(metrics: MetricsDocument) -> dict[str, Any]:
    """The manifest's ``analysis`` record: the primary metric's result per treatment arm."""
    summary = metrics.summary().to_dict()
    if metrics.sequential is not None:
        summary["sequential"] = sequential_summary(metrics.sequential, metrics.primary_metric)
    return summary


def _result_text(result: dict[str, Any]) -> str:
    """``treatment_1 +12.0% (adj. p 0.03, significant)``."""
    lift = result["lift_percent"]
    p = result["p_value_adjusted"]
    return (
        f"{result['arm']} {'n/a' if lift is None else f'{lift:+.1f}%'}"
        f" (adj. p {'n/a' if p is None else f'{p:.3g}'}"
        f"{', significant' if result['significant'] else ''})"
    )


#: How the summary line names each estimate a primary result can carry.
_ESTIMATE_LABELS = {
    "cuped": "CUPED-adjusted",
    "wave_stratified": "wave-stratified",
    "unadjusted": "unadjusted",
}


def _estimate_label(result: dict[str, Any]) -> str:
    """``CUPED-adjusted``, ``wave-stratified`` or ``unadjusted`` (also for older records)."""
    return _ESTIMATE_LABELS.get(str(result.get("estimate")), "unadjusted")


def _estimate_note(summary: dict[str, Any]) -> str:
    """Which estimate the line shows, and the other one beside it (``pooled``/``CUPED``)."""
    results, other = summary["results"], summary.get("other_results") or []
    if not results or not other:
        return ""
    shown, label = _estimate_label(results[0]), _estimate_label(other[0])
    if shown == "wave-stratified" and label == "unadjusted":
        label = "pooled over waves"
    return f" [{shown}; {label}: " + "; ".join(_result_text(r) for r in other) + "]"


def summary_line(summary: dict[str, Any]) -> str:
    """One line for the terminal, e.g. ``click_rate: treatment_1 +12.0% (adj. p 0.03) ...``."""
    parts = [_result_text(result) for result in summary["results"]]
    text = f"{summary['primary_metric']}: " + ("; ".join(parts) or "no treatment arm")
    text += _estimate_note(summary)
    if summary.get("sequential"):
        text += "; " + sequential_line(summary["sequential"])
    if summary["srm_mismatch"]:
        text += "; SAMPLE-RATIO MISMATCH"
    if summary["engagement_source"] == "simulated":
        text += " [SIMULATED]"
    return text


def sequential_line(record: dict[str, Any]) -> str:
    """``always-valid (look 3): treatment_1 p 0.04, significant; ...`` for the terminal."""
    parts = []
    for result in record["results"]:
        p = result["p_value_adjusted"]
        parts.append(
            f"{result['arm']} p {'n/a' if p is None else f'{p:.3g}'}"
            f"{', significant' if result['significant'] else ''}"
        )
    return f"always-valid (look {record['look']}): " + ("; ".join(parts) or "no treatment arm")
