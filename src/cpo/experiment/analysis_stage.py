"""The ``analyze`` stage of ``cpo run``: engagement.csv + the design -> metrics.json.

Reads ``engagement.csv`` (streamed into sufficient statistics) or, after an
import of counts per arm, ``engagement_counts.csv`` (the counts are the
sufficient statistics),
``experiment_design.json`` (expected shares, tones, planned power),
``engagement_report.json`` (the import's or simulation's warnings, carried into
the metrics) and ``assignments.csv`` (how many recipients each arm was assigned,
to show how many were analysed). Writes ``metrics.json``, logs the analysis to
``logs/experiment.log`` and records a short summary of the primary metric in the
manifest under ``analysis``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpo.errors import StageError
from cpo.experiment.aggregate import SufficientStatistics, aggregate_file
from cpo.experiment.analysis import analyze
from cpo.experiment.engagement import ENGAGEMENT_COUNTS_FILE, LAYOUT_COUNTS, counts_statistics
from cpo.experiment.metrics import plan_from_config
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.runfiles import read_csv, read_json, write_json
from cpo.stage_api import RunContext, StageBase, StageOutcome

METRICS_FILE = "metrics.json"
ENGAGEMENT_FILE = "engagement.csv"
DESIGN_FILE = "experiment_design.json"
ASSIGNMENTS_FILE = "assignments.csv"
ENGAGEMENT_REPORT_FILE = "engagement_report.json"
CHANNEL = "experiment"


class AnalyzeStage(StageBase):
    """Analyse the experiment and write metrics.json."""

    name = "analyze"
    description = "Analysing the experiment"
    outputs = (METRICS_FILE,)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Engagement, design, engagement report and assignments."""
        names = (ENGAGEMENT_FILE, DESIGN_FILE, ENGAGEMENT_REPORT_FILE, ASSIGNMENTS_FILE)
        return [ctx.path(name) for name in (*names, ENGAGEMENT_COUNTS_FILE)]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Aggregate, analyse, write metrics.json; log and summarize the result."""
        engagement = ctx.path(ENGAGEMENT_FILE)
        if not engagement.is_file():
            raise StageError(
                self.name, f"{engagement}: not found", hint="the engage stage writes it"
            )
        design = _read_optional(ctx.path(DESIGN_FILE))
        report = _read_optional(ctx.path(ENGAGEMENT_REPORT_FILE)) or {}
        statistics = self._statistics(ctx, engagement, report)
        assigned = _assigned_per_arm(ctx.path(ASSIGNMENTS_FILE))
        carried = [{**w, "source": "engagement"} for w in report.get("warnings", [])]
        metrics = analyze(
            statistics,
            plan_from_config(ctx.config, design=design),
            engagement_source=report.get("engagement_source"),
            extra_warnings=carried,
        )
        if assigned is not None:
            metrics["coverage"] = _coverage(assigned, metrics)
        write_json(ctx.path(METRICS_FILE), metrics)
        summary = summarize(metrics)
        self._log(ctx, metrics, summary)
        ctx.manifest["analysis"] = summary
        return StageOutcome(summary=summary_line(summary), facts=summary)

    def _statistics(
        self, ctx: RunContext, engagement: Path, report: dict[str, Any]
    ) -> SufficientStatistics:
        """From engagement_counts.csv after a counts import, else streamed from engagement.csv."""
        if report.get("layout") != LAYOUT_COUNTS:
            return aggregate_file(engagement)
        counts = ctx.path(report.get("counts_file") or ENGAGEMENT_COUNTS_FILE)
        if not counts.is_file():
            raise StageError(
                self.name,
                f"{counts}: not found, but engagement_report.json says the engagement was "
                "imported as counts",
                hint=f"import the counts again: `cpo run --resume {ctx.run_dir} --engagement FILE`",
            )
        table = read_csv(counts, dtype={"experiment_arm": str, "segment": str})
        return counts_statistics(table)

    def _log(self, ctx: RunContext, metrics: dict[str, Any], summary: dict[str, Any]) -> None:
        """One analysis event plus one warning event per analysis warning (no PII)."""
        ctx.log.info(
            self.name,
            "analysis",
            channel=CHANNEL,
            recipients=metrics["total_customers"],
            engagement_source=metrics["engagement_source"],
            primary_metric=summary["primary_metric"],
            results=summary["results"],
            srm_mismatch=summary["srm_mismatch"],
        )
        for warning in metrics["warnings"]:
            if warning.get("source") == "engagement":
                continue  # the engage stage logged it already
            ctx.log.warning(self.name, warning["code"], channel=CHANNEL, message=warning["message"])


def _read_optional(path: Path) -> dict[str, Any] | None:
    """A JSON artifact, or None when the file does not exist."""
    return read_json(path) if path.is_file() else None


def _assigned_per_arm(path: Path) -> dict[str, int] | None:
    """Customers assigned to each arm (holdout excluded), or None without the file."""
    if not path.is_file():
        return None
    arms = read_csv(path, usecols=["experiment_arm"], dtype=str, keep_default_na=False)
    counts = arms["experiment_arm"].value_counts()
    return {str(arm): int(n) for arm, n in sorted(counts.items()) if arm != HOLDOUT_ARM}


def _coverage(assigned: dict[str, int], metrics: dict[str, Any]) -> dict[str, Any]:
    """Assigned versus analysed recipients per arm."""
    arms = list(dict.fromkeys([*metrics["arms"], *assigned]))
    analysed = {arm: metrics["arms"].get(arm, {}).get("sample_size", 0) for arm in arms}
    return {
        "assigned": {arm: assigned.get(arm, 0) for arm in arms},
        "analysed": analysed,
        "share_analysed": {
            arm: (analysed[arm] / assigned[arm] if assigned.get(arm) else None) for arm in arms
        },
    }


def summarize(metrics: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``analysis`` record: the primary metric's result per treatment arm."""
    primary = metrics["primary_metric"]
    results = []
    for record in metrics["lift_analysis"]:
        if record["metric"] != primary:
            continue
        significance = record["statistical_significance"]
        interval = significance["confidence_interval"]
        results.append(
            {
                "arm": record["treatment_arm"],
                "tone": metrics["arms"].get(record["treatment_arm"], {}).get("tone"),
                "lift_absolute": record["lift_absolute"],
                "lift_percent": record["lift_percent"],
                "ci_lower": interval["lower"],
                "ci_upper": interval["upper"],
                "p_value_adjusted": significance["p_value_adjusted"],
                "significant": significance["significant"],
            }
        )
    codes = sorted({w["code"] for w in metrics["warnings"]})
    return {
        "primary_metric": primary,
        "engagement_source": metrics["engagement_source"],
        "recipients": metrics["total_customers"],
        "results": results,
        "srm_mismatch": metrics["srm"]["mismatch"],
        "warnings": codes,
    }


def summary_line(summary: dict[str, Any]) -> str:
    """One line for the terminal, e.g. ``click_rate: treatment_1 +12.0% (adj. p 0.03) ...``."""
    parts = []
    for result in summary["results"]:
        lift = result["lift_percent"]
        p = result["p_value_adjusted"]
        parts.append(
            f"{result['arm']} {'n/a' if lift is None else f'{lift:+.1f}%'}"
            f" (adj. p {'n/a' if p is None else f'{p:.3g}'}"
            f"{', significant' if result['significant'] else ''})"
        )
    text = f"{summary['primary_metric']}: " + ("; ".join(parts) or "no treatment arm")
    if summary["srm_mismatch"]:
        text += "; SAMPLE-RATIO MISMATCH"
    if summary["engagement_source"] == "simulated":
        text += " [SIMULATED]"
    return text
