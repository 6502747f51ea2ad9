"""Simulated engagement checks the pipeline, never the customers.

A run without ``--engagement`` simulates opens, clicks and conversions from the
configured response model. Its results say how the analysis behaves, not what
customers do, so the report and the terminal give no adopt/avoid
recommendation for it. Instead they show the simulator's true effect (recorded
by the engage stage in ``engagement_report.json`` under
``model.true_effects``) beside each estimate, so a reader can see whether the
analysis recovered what the simulator put in.

This module is light (no rendering libraries): the CLI uses it after a run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo import run_folder
from cpo.reporting import formatting as fmt

SOURCE_SIMULATED = "simulated"

#: What every simulated run says instead of a recommendation.
PIPELINE_CHECK = (
    "This run checks the pipeline, not the customers: its engagement was simulated from "
    "cpo's response model, so it supports no decision about which message to send. Send "
    "for real and import the engagement (`cpo run --engagement FILE` or `cpo analyze FILE`) "
    "for a recommendation."
)


@dataclass(frozen=True)
class TruthCheck:
    """One treatment arm's estimated lift beside the simulator's true lift.

    Attributes:
        arm: Treatment arm.
        metric: The metric compared.
        estimate: Estimated absolute lift (metrics.json ``lift_absolute``).
        lower: Lower bound of the estimate's confidence interval.
        upper: Upper bound of the estimate's confidence interval.
        true_effect: The simulator's true absolute lift (rate difference).
        true_relative: The true lift relative to control's true rate.
    """

    arm: str
    metric: str
    estimate: float | None
    lower: float | None
    upper: float | None
    true_effect: float | None
    true_relative: float | None

    @property
    def covered(self) -> bool | None:
        """Whether the interval contains the true effect (None when either is missing)."""
        if self.true_effect is None or self.lower is None or self.upper is None:
            return None
        return self.lower <= self.true_effect <= self.upper


def read_true_effects(run_dir: Path | str) -> dict[str, Any] | None:
    """The simulator's ``true_effects`` from a run's engagement_report.json, if recorded."""
    path = Path(run_dir) / run_folder.ENGAGEMENT_REPORT.name
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("engagement_source") != SOURCE_SIMULATED:
        return None
    truth = (report.get("model") or {}).get("true_effects")
    return truth if isinstance(truth, dict) and truth.get("arms") else None


def truth_checks(
    metrics: dict[str, Any], true_effects: dict[str, Any] | None, metric: str
) -> list[TruthCheck]:
    """Per treatment arm of ``metric``'s lift records: estimate, interval and true effect.

    For a run of adaptive waves the estimate checked is the one the decision uses,
    the wave-stratified difference (metrics.json ``waves``), not the pooled lift.
    """
    arms = (true_effects or {}).get("arms") or {}
    stratified = _wave_stratified(metrics, metric)
    checks = []
    for record in metrics.get("lift_analysis") or []:
        if record.get("metric") != metric:
            continue
        arm = str(record.get("treatment_arm", ""))
        truth = (arms.get(arm) or {}).get(metric) or {}
        interval = (record.get("statistical_significance") or {}).get("confidence_interval") or {}
        estimate = (record.get("lift_absolute"), interval.get("lower"), interval.get("upper"))
        if arm in stratified:
            wave = stratified[arm]
            estimate = (wave.get("difference"), wave.get("ci_lower"), wave.get("ci_upper"))
        checks.append(
            TruthCheck(
                arm=arm,
                metric=metric,
                estimate=estimate[0],
                lower=estimate[1],
                upper=estimate[2],
                true_effect=truth.get("lift_absolute"),
                true_relative=truth.get("lift_relative"),
            )
        )
    return sorted(checks, key=lambda c: c.arm)


def _wave_stratified(metrics: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    """Arm -> wave-stratified comparison of ``metric`` (empty without adaptive waves)."""
    waves = metrics.get("waves") or {}
    if waves.get("metric") != metric:
        return {}
    return {str(c.get("arm")): c for c in waves.get("comparisons") or []}


def true_effect_text(check: TruthCheck) -> str:
    """``+0.60 pp (+8.1%)``: the true effect in the units of the lift tables."""
    if check.true_effect is None:
        return fmt.MISSING
    relative = f" ({fmt.rel(check.true_relative)})" if check.true_relative is not None else ""
    return fmt.pp(check.true_effect) + relative


def check_sentence(check: TruthCheck, tone: str = "") -> str:
    """One arm's estimate against the truth, in plain words."""
    label = f"{check.arm} ({tone})" if tone else check.arm
    interval = fmt.interval(check.lower, check.upper, "pp")
    text = (
        f"{label}: estimated lift {fmt.pp(check.estimate)} (CI {interval}); "
        f"the simulator's true effect is {true_effect_text(check)}"
    )
    if check.covered is None:
        return text + "."
    return text + ("; the interval contains it." if check.covered else "; the interval MISSES it.")


def coverage_sentence(checks: list[TruthCheck], confidence: float) -> str | None:
    """``2 of 3 interval(s) contain ...`` (None when nothing can be compared).

    Args:
        checks: The arms' checks.
        confidence: The intervals' level (metrics.json ``confidence_level``).
    """
    judged = [c for c in checks if c.covered is not None]
    if not judged:
        return None
    hits = sum(1 for c in judged if c.covered)
    shared = (
        " Every comparison shares the control arm, so one unusual control draw moves them "
        "all together (see the control line)."
        if len(judged) - hits > 1
        else ""
    )
    return (
        f"{hits} of {len(judged)} interval(s) contain the simulator's true effect; "
        f"{fmt.pct(confidence, 0)} intervals miss it about {fmt.pct(1 - confidence, 0)} of the "
        "time by chance, more often means the pipeline or the analysis is wrong." + shared
    )


def control_sentence(
    metrics: dict[str, Any], true_effects: dict[str, Any] | None, metric: str
) -> str | None:
    """The control arm's observed rate against the simulator's, with how unusual the draw is.

    The probability is the two-sided exact binomial test of the control's count at
    the simulator's expected rate (None when either is missing). Every lift shares the
    control, so a low or high control draw shifts every estimate the same way.
    """
    from cpo.experiment import catalog

    truth = ((true_effects or {}).get("control") or {}).get(metric)
    control = (metrics.get("arms") or {}).get(str(metrics.get("control_arm", "control"))) or {}
    definition = catalog.metric(metric) if metric in catalog.metric_names() else None
    counts = control.get("counts") or {}
    events = counts.get(definition.numerator) if definition else None
    trials = counts.get(definition.denominator) if definition else None
    if truth is None or not trials or events is None or not 0 < truth < 1:
        return None
    chance = binomial_two_sided_p(int(events), int(trials), float(truth))
    return (
        f"control: observed {fmt.metric_label(metric).lower()} {fmt.pct(events / trials)} "
        f"({events} of {trials}) against the simulator's {fmt.pct(truth)}; a draw at least this "
        f"far off happens {fmt.pct(chance)} of the time (exact binomial test)."
    )


def binomial_two_sided_p(events: int, trials: int, rate: float) -> float:
    """Two-sided exact binomial p-value: P(a count no more likely than ``events``).

    The sum of the probabilities of every count whose probability is at most
    the observed one's (times 1 + 1e-7, as R's ``binom.test`` and SciPy's
    ``binomtest`` do), over the whole binomial(trials, rate) distribution,
    computed in one vectorized pass (log-probabilities by cumulative sums), so
    the report needs no SciPy.
    """
    import numpy as np

    if events == trials * rate:
        return 1.0
    counts = np.arange(trials + 1, dtype=float)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log((trials - counts[1:] + 1) / counts[1:]))))
    log_pmf = log_choose + counts * math.log(rate) + (trials - counts) * math.log1p(-rate)
    pmf = np.exp(log_pmf)
    observed = pmf[events] * (1 + 1e-7)
    return float(min(1.0, pmf[pmf <= observed].sum()))


def terminal_lines(run_dir: Path | str) -> list[str]:
    """What the CLI prints after a simulated run (nothing for imported engagement)."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / run_folder.METRICS.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if str(metrics.get("engagement_source", "")).lower() != SOURCE_SIMULATED:
        return []
    metric = str(metrics.get("primary_metric", ""))
    truth = read_true_effects(run_dir)
    checks = truth_checks(metrics, truth, metric)
    tones = {arm: (record or {}).get("tone", "") for arm, record in metrics["arms"].items()}
    lines = [f"SIMULATED engagement. {PIPELINE_CHECK}"]
    if checks:
        lines.append(f"{fmt.metric_label(metric)}, estimate against the simulator's truth:")
        lines += [f"  {check_sentence(c, tones.get(c.arm, ''))}" for c in checks]
        control = control_sentence(metrics, truth, metric)
        if control:
            lines.append(f"  {control}")
        level = metrics.get("confidence_level")
        coverage = coverage_sentence(checks, float(level)) if level is not None else None
        if coverage:
            lines.append(f"  {coverage}")
    return lines
