"""The final analysis of adaptive waves: wave-stratified lifts and the holdout's incremental lift.

Adaptive waves change the arm shares from wave to wave, and the shares of a
later wave depend on the responses of earlier ones. Pooling every wave's
recipients per arm is then biased whenever rates drift between waves (an arm
that got more of a high-rate wave looks better than it is). Each wave on its
own is a randomized experiment with fixed shares, so its treatment-minus-control
difference is unbiased; :func:`cpo.experiment.waves.stratified_difference`
combines them with weights fixed before any wave was sent (the wave sizes).
The decision on the primary metric uses this estimate (Holm-adjusted across
treatment arms, as the one-wave analysis); ``metrics.json`` keeps the pooled
per-arm view beside it.

The holdout (never mailed, the same share in every wave) gives the incremental
lift of the whole program: the conversion rate of every mailed customer minus
the holdout's, stratified by wave the same way. Conversion is the one outcome a
customer who got no email still has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cpo.experiment import catalog
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM
from cpo.experiment.stats import holm
from cpo.experiment.waves import WAVE_COLUMN, pooled_difference, stratified_difference

if TYPE_CHECKING:  # results imports this module
    import pandas as pd

    from cpo.experiment.cuped import RegressionAdjustment
    from cpo.experiment.results import MetricsDocument

#: The per-recipient outcome columns of engagement.csv.
_FLAGS = ("opened", "clicked", "converted")
METHOD = (
    "per-wave treatment minus control, combined with fixed weights proportional to wave "
    "size (variance = sum of squared weights x per-wave variances); pooling waves would be "
    "biased because the arm shares change between waves"
)


@dataclass(frozen=True)
class WaveComparison:
    """One treatment arm against control on the primary metric, stratified by wave.

    Attributes:
        arm: The treatment arm.
        difference: Stratified difference of the rates (None when not computable).
        relative_lift: Difference over the stratified control rate.
        ci_lower: Lower bound of the interval of the difference.
        ci_upper: Upper bound.
        p_value: Two-sided p-value.
        p_value_adjusted: Holm-adjusted across the treatment arms.
        significant: ``p_value_adjusted < alpha``.
        pooled_difference: The naive difference of rates pooled over waves (for comparison).
        reason: Why a value is missing.
    """

    arm: str
    difference: float | None
    relative_lift: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    p_value_adjusted: float | None
    significant: bool | None
    pooled_difference: float | None
    reason: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaveComparison:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            arm=str(data["arm"]),
            difference=data.get("difference"),
            relative_lift=data.get("relative_lift"),
            ci_lower=data.get("ci_lower"),
            ci_upper=data.get("ci_upper"),
            p_value=data.get("p_value"),
            p_value_adjusted=data.get("p_value_adjusted"),
            significant=data.get("significant"),
            pooled_difference=data.get("pooled_difference"),
            reason=data.get("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class HoldoutLift:
    """The program's incremental lift: every mailed customer against the holdout.

    Attributes:
        metric: ``conversion_rate``.
        mailed_rate: Conversion rate of the mailed customers (pooled).
        holdout_rate: Conversion rate of the holdout (pooled).
        difference: Stratified mailed-minus-holdout difference.
        relative_lift: Difference over the stratified holdout rate.
        ci_lower: Lower bound of the interval of the difference.
        ci_upper: Upper bound.
        p_value: Two-sided p-value.
        mailed: Mailed customers.
        holdout: Holdout customers.
        engagement_source: Where the holdout's conversions came from.
        reason: Why a value is missing.
    """

    metric: str
    mailed_rate: float | None
    holdout_rate: float | None
    difference: float | None
    relative_lift: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    mailed: int
    holdout: int
    engagement_source: str | None
    reason: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HoldoutLift:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            metric=str(data["metric"]),
            mailed_rate=data.get("mailed_rate"),
            holdout_rate=data.get("holdout_rate"),
            difference=data.get("difference"),
            relative_lift=data.get("relative_lift"),
            ci_lower=data.get("ci_lower"),
            ci_upper=data.get("ci_upper"),
            p_value=data.get("p_value"),
            mailed=int(data["mailed"]),
            holdout=int(data["holdout"]),
            engagement_source=data.get("engagement_source"),
            reason=data.get("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class WaveAnalysis:
    """The ``waves`` section of ``metrics.json`` (only for runs of more than one wave).

    Attributes:
        count: Number of waves.
        metric: The primary metric.
        method: How the estimate is formed, in words.
        weights: Wave (as text) -> weight.
        comparisons: One per treatment arm, in arm order.
        holdout: The program's incremental lift (None without a holdout).
    """

    count: int
    metric: str
    method: str
    weights: dict[str, float]
    comparisons: tuple[WaveComparison, ...]
    holdout: HoldoutLift | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaveAnalysis:
        """Rebuild from :meth:`to_dict`."""
        holdout = data.get("holdout")
        return cls(
            count=int(data["count"]),
            metric=str(data["metric"]),
            method=str(data["method"]),
            weights=dict(data["weights"]),
            comparisons=tuple(WaveComparison.from_dict(c) for c in data["comparisons"]),
            holdout=None if holdout is None else HoldoutLift.from_dict(holdout),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "count": self.count,
            "metric": self.metric,
            "method": self.method,
            "weights": self.weights,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "holdout": None if self.holdout is None else self.holdout.to_dict(),
        }


def analyze_waves(
    assignments: Path,
    engagement: Path,
    report: Mapping[str, Any],
    metric: str,
    arms: list[str],
    alpha: float,
    confidence: float,
) -> WaveAnalysis | None:
    """The wave-stratified analysis of a run, or None when its assignments have no waves.

    Args:
        assignments: The run's assignments.csv (with the ``wave`` column).
        engagement: The run's engagement.csv.
        report: engagement_report.json (its ``holdout`` record).
        metric: The primary metric.
        arms: Arms in order, control first.
        alpha: Significance level of the decision.
        confidence: Interval level.
    """
    from cpo.runfiles import read_csv

    header = read_csv(assignments, nrows=0).columns
    if WAVE_COLUMN not in header:
        return None
    waves = read_csv(
        assignments,
        usecols=["customer_id", "experiment_arm", WAVE_COLUMN],
        dtype=str,
        engine="pyarrow",
    ).astype({WAVE_COLUMN: int})
    flags = read_csv(
        engagement,
        usecols=["customer_id", "experiment_arm", *_FLAGS],
        dtype={"customer_id": str, "experiment_arm": str},
        engine="pyarrow",
    )
    frame = flags.merge(waves[["customer_id", WAVE_COLUMN]], on="customer_id", how="inner")
    count = int(waves[WAVE_COLUMN].max())
    sizes = np.bincount(waves[WAVE_COLUMN].to_numpy(), minlength=count + 1)[1:]
    table = _per_wave(frame, catalog.metric(metric), count)
    comparisons = _comparisons(table, arms, sizes, alpha, confidence)
    holdout = _holdout(frame, waves, report, sizes, confidence)
    weights = sizes / sizes.sum()
    return WaveAnalysis(
        count=count,
        metric=metric,
        method=METHOD,
        weights={str(k + 1): float(w) for k, w in enumerate(weights)},
        comparisons=tuple(comparisons),
        holdout=holdout,
    )


def _per_wave(frame: pd.DataFrame, definition: catalog.Metric, count: int) -> dict[str, np.ndarray]:
    """Arm -> array (waves, 2) of the metric's events and denominator per wave."""
    among = definition.among
    rows = frame if among is None else frame.loc[frame[among].astype(int) == 1]
    grouped = rows.groupby(["experiment_arm", WAVE_COLUMN])[definition.outcome]
    events, sizes = grouped.sum(), grouped.size()
    table: dict[str, np.ndarray] = {}
    for arm in rows["experiment_arm"].unique():
        counts = np.zeros((count, 2))
        for wave in range(1, count + 1):
            counts[wave - 1] = (events.get((arm, wave), 0), sizes.get((arm, wave), 0))
        table[str(arm)] = counts
    return table


def _comparisons(
    table: Mapping[str, np.ndarray],
    arms: list[str],
    sizes: np.ndarray,
    alpha: float,
    confidence: float,
) -> list[WaveComparison]:
    """Each treatment arm against control, Holm-adjusted together."""
    empty = np.zeros((len(sizes), 2))
    control = table.get(CONTROL_ARM, empty)
    treatments = [arm for arm in arms if arm != CONTROL_ARM]
    estimates = [
        stratified_difference(table.get(a, empty), control, sizes, confidence) for a in treatments
    ]
    adjusted = holm([e.p_value for e in estimates])
    return [
        WaveComparison(
            arm=arm,
            difference=e.difference,
            relative_lift=e.relative,
            ci_lower=e.ci_lower,
            ci_upper=e.ci_upper,
            p_value=e.p_value,
            p_value_adjusted=p,
            significant=None if p is None else p < alpha,
            pooled_difference=pooled_difference(table.get(arm, empty), control),
            reason=e.reason,
        )
        for arm, e, p in zip(treatments, estimates, adjusted, strict=True)
    ]


def _holdout(
    frame: pd.DataFrame,
    waves: pd.DataFrame,
    report: Mapping[str, Any],
    sizes: np.ndarray,
    confidence: float,
) -> HoldoutLift | None:
    """Every mailed customer's conversions against the holdout's, stratified by wave."""
    held = int((waves["experiment_arm"] == HOLDOUT_ARM).sum())
    record = report.get("holdout") or {}
    by_wave = record.get("by_wave") or {}
    if held == 0:
        return None
    count = len(sizes)
    holdout = np.array(
        [
            [by_wave.get(str(k), {}).get(key, 0) for key in ("converted", "customers")]
            for k in range(1, count + 1)
        ],
        dtype=float,
    )
    grouped = frame.groupby(WAVE_COLUMN)["converted"]
    mailed = np.array(
        [[grouped.sum().get(k, 0), grouped.size().get(k, 0)] for k in range(1, count + 1)],
        dtype=float,
    )
    estimate = stratified_difference(mailed, holdout, sizes, confidence)
    reason = estimate.reason
    if not by_wave:
        reason = "the holdout's conversions are not known (no holdout record in the engagement)"
    pooled = mailed.sum(axis=0), holdout.sum(axis=0)
    return HoldoutLift(
        metric="conversion_rate",
        mailed_rate=float(pooled[0][0] / pooled[0][1]) if pooled[0][1] else None,
        holdout_rate=float(pooled[1][0] / pooled[1][1]) if pooled[1][1] else None,
        difference=estimate.difference,
        relative_lift=estimate.relative,
        ci_lower=estimate.ci_lower,
        ci_upper=estimate.ci_upper,
        p_value=estimate.p_value,
        mailed=int(pooled[0][1]),
        holdout=held,
        engagement_source=record.get("engagement_source"),
        reason=reason,
    )


def wave_expected_shares(design: dict[str, Any], assignments: Path) -> dict[str, Any]:
    """The design with the expected arm shares the waves actually dealt (for the SRM check).

    Adaptive waves move the arm shares away from the design's, by plan; the
    sample-ratio check must compare the analysed recipients with what the waves
    assigned, overall and per segment, not with the design's first allocation.
    """
    from cpo.runfiles import read_csv

    frame = read_csv(
        assignments, usecols=["segment", "experiment_arm"], dtype=str, engine="pyarrow"
    )
    mailed = frame.loc[frame["experiment_arm"] != HOLDOUT_ARM]
    arms = [arm["name"] for arm in design.get("arms", [])]

    def shares(rows: pd.DataFrame) -> dict[str, float]:
        counts = rows["experiment_arm"].value_counts()
        total = int(counts.sum())
        return {arm: (int(counts.get(arm, 0)) / total if total else 0.0) for arm in arms}

    by_segment = {str(name): shares(rows) for name, rows in mailed.groupby("segment")}
    segments = [
        {**plan, "expected_shares": by_segment.get(plan["segment"], plan.get("expected_shares"))}
        for plan in design.get("segments", [])
    ]
    return {**design, "expected_shares": shares(mailed), "segments": segments}


def run_waves(
    run_dir: Path, engagement: Path, report: Mapping[str, Any], metrics: MetricsDocument
) -> WaveAnalysis | None:
    """The ``waves`` section of a run's metrics (None unless the run has adaptive waves)."""
    from cpo.run_folder import ASSIGNMENTS, read_waves

    if read_waves(run_dir) is None:
        return None
    return analyze_waves(
        ASSIGNMENTS.path(run_dir),
        engagement,
        report,
        metrics.primary_metric,
        list(metrics.arms),
        metrics.alpha,
        metrics.confidence_level,
    )


def run_design(run_dir: Path, design: dict[str, Any] | None) -> dict[str, Any] | None:
    """The design the analysis checks the sample ratio against (the waves' shares if any)."""
    from cpo.run_folder import ASSIGNMENTS, read_waves

    if design is None or read_waves(run_dir) is None:
        return design
    return wave_expected_shares(design, ASSIGNMENTS.path(run_dir))


def defer_to_waves(adjustment: RegressionAdjustment | None) -> RegressionAdjustment | None:
    """The CUPED section of a run of adaptive waves: shown, but not the decision.

    The regression-adjusted estimates pool the waves like the unadjusted ones,
    so with adaptive waves the decision uses the wave-stratified estimate.
    """
    if adjustment is None or not adjustment.used_for_decision:
        return adjustment
    return replace(
        adjustment,
        used_for_decision=False,
        decision="The primary decision uses the wave-stratified estimate (adaptive waves): "
        "these adjusted estimates pool waves whose arm shares differed.",
    )
