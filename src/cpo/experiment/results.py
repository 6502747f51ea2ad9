"""Frozen result records of the experiment analysis: what ``metrics.json`` holds.

The analysis (:mod:`cpo.experiment.analysis`) builds a :class:`MetricsDocument`
from sufficient statistics; ``metrics.json`` is its :meth:`MetricsDocument.to_dict`.
:func:`read_metrics` turns the file back into the same records, so a reader
(the report, a notebook, another tool) gets typed fields instead of nested
dicts. ``to_dict`` after ``from_dict`` gives back the same JSON, key order
included.

Shape (schema in ``docs/statistics.md``):

* :class:`MetricsDocument` — header (experiment, metrics, alpha, source), then
  the sections below, then ``warnings`` and (in a run) ``coverage``.
* :class:`ArmSummary` per arm: counts, rates and their :class:`Interval`.
* :class:`Comparison` per treatment arm and metric: lift, :class:`Significance`
  (test, adjusted p-value, intervals) and :class:`BayesianComparison`.
* :class:`BayesianResult`: probability of being best per metric and arm.
* :class:`StratifiedComparison`: the CMH estimate with segments as strata.
* :class:`SegmentResult` per segment (exploratory): arms and comparisons.
* :class:`SampleRatioCheck` overall and per segment.
* :class:`PowerResult` with :class:`MetricPower` and :class:`ArmPower`.
* :class:`AnalysisWarning` and :class:`Coverage`.
* :class:`AnalysisSummary` (:meth:`MetricsDocument.summary`): the primary
  metric's :class:`PrimaryResult` per treatment arm, for the run manifest.

Values that are undefined for the counts are ``None`` with a ``reason``,
never NaN: :func:`json_safe` is applied when a document is serialized.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.experiment.cuped import AdjustedComparison, RegressionAdjustment
from cpo.experiment.next_test import NextTest
from cpo.experiment.sequential import Monitoring
from cpo.experiment.wave_analysis import WaveAnalysis
from cpo.run_folder import METRICS, read_versioned

#: Layout version of metrics.json written by this module.
SCHEMA_VERSION = METRICS.schema_version

JsonDict = dict[str, Any]


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def json_safe(value: Any) -> Any:
    """Replace NaN/infinity by None and NumPy scalars by Python numbers, recursively."""
    # Exact built-in types first: a document holds thousands of them (subclasses,
    # NumPy scalars and other mappings take the general checks below).
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind in _PLAIN_TYPES:
        return value
    if kind is dict:
        return {str(k): json_safe(v) for k, v in value.items()}
    if kind is list:
        return [json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------
# Arms
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A confidence interval, or why it is undefined.

    Attributes:
        lower: Lower bound (None when undefined or unbounded).
        upper: Upper bound (None when undefined or unbounded).
        method: How it was computed, e.g. ``"wilson"``.
        reason: Why a bound is missing, else None.
    """

    lower: float | None
    upper: float | None
    method: str | None
    reason: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interval:
        """The record of a ``{lower, upper, method, reason}`` dict."""
        return cls(data["lower"], data["upper"], data["method"], data["reason"])

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "lower": self.lower,
            "upper": self.upper,
            "method": self.method,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ArmSummary:
    """One arm's counts, rates and rate intervals.

    Attributes:
        arm_name: The arm, e.g. ``"control"`` or ``"treatment_1"``.
        tone: The arm's tone (``"control"`` for control), None when unknown.
        sample_size: Recipients analysed (``counts["sent"]``).
        counts: Sufficient statistics: ``sent``, ``opened``, ``clicked``, ``converted``.
        metrics: Metric -> rate (None when its denominator is 0).
        intervals: Metric -> interval of the rate.
    """

    arm_name: str
    tone: str | None
    sample_size: int
    counts: Mapping[str, int]
    metrics: Mapping[str, float | None]
    intervals: Mapping[str, Interval]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmSummary:
        """The record of one entry of ``arms``."""
        return cls(
            arm_name=data["arm_name"],
            tone=data["tone"],
            sample_size=data["sample_size"],
            counts=dict(data["counts"]),
            metrics=dict(data["metrics"]),
            intervals={k: Interval.from_dict(v) for k, v in data["intervals"].items()},
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "arm_name": self.arm_name,
            "tone": self.tone,
            "sample_size": self.sample_size,
            "counts": dict(self.counts),
            "metrics": dict(self.metrics),
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
        }


# --------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventCounts:
    """Events and trials of one side of a comparison (e.g. clicks of sends)."""

    events: int
    trials: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventCounts:
        """The record of ``{events, trials}``."""
        return cls(data["events"], data["trials"])

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {"events": self.events, "trials": self.trials}


@dataclass(frozen=True)
class Significance:
    """Frequentist result of one comparison, adjusted for multiplicity.

    Attributes:
        test: ``"chi-square"``, ``"fisher-exact"`` or None when no test ran.
        p_value: Unadjusted two-sided p-value.
        p_value_adjusted: Holm (primary) or Benjamini-Hochberg adjusted p-value.
        adjustment: The adjustment method.
        family_size: Comparisons with a p-value in the adjusted family.
        significant: ``p_value_adjusted < alpha`` (None without a p-value).
        alpha: Significance level.
        statistic: Test statistic (None for Fisher's exact test).
        min_expected_cell: Smallest expected cell of the 2x2 table.
        reason: Why there is no p-value, else None.
        confidence_interval: Newcombe interval of the difference (rate units).
        relative_confidence_interval: Score interval of the relative lift (percent).
    """

    test: str | None
    p_value: float | None
    p_value_adjusted: float | None
    adjustment: str | None
    family_size: int | None
    significant: bool | None
    alpha: float
    statistic: float | None
    min_expected_cell: float | None
    reason: str | None
    confidence_interval: Interval
    relative_confidence_interval: Interval

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Significance:
        """The record of a ``statistical_significance`` dict."""
        return cls(
            test=data["test"],
            p_value=data["p_value"],
            p_value_adjusted=data["p_value_adjusted"],
            adjustment=data["adjustment"],
            family_size=data["family_size"],
            significant=data["significant"],
            alpha=data["alpha"],
            statistic=data["statistic"],
            min_expected_cell=data["min_expected_cell"],
            reason=data["reason"],
            confidence_interval=Interval.from_dict(data["confidence_interval"]),
            relative_confidence_interval=Interval.from_dict(data["relative_confidence_interval"]),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "test": self.test,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "adjustment": self.adjustment,
            "family_size": self.family_size,
            "significant": self.significant,
            "alpha": self.alpha,
            "statistic": self.statistic,
            "min_expected_cell": self.min_expected_cell,
            "reason": self.reason,
            "confidence_interval": self.confidence_interval.to_dict(),
            "relative_confidence_interval": self.relative_confidence_interval.to_dict(),
        }


@dataclass(frozen=True)
class BayesianComparison:
    """Beta-binomial readout of one treatment arm against control.

    Attributes:
        prob_beat_control: Posterior probability that the arm's rate is higher.
        expected_loss: Expected rate lost by shipping the arm if control is better.
        expected_loss_control: Expected rate lost by keeping control.
        prob_best: Probability that the arm is best among all arms.
        prior: The Beta prior ``(alpha, beta)``.
        reason: Why a value is missing, else None.
    """

    prob_beat_control: float | None
    expected_loss: float | None
    expected_loss_control: float | None
    prob_best: float | None
    prior: tuple[float, ...]
    reason: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BayesianComparison:
        """The record of a comparison's ``bayesian`` dict."""
        return cls(
            prob_beat_control=data["prob_beat_control"],
            expected_loss=data["expected_loss"],
            expected_loss_control=data["expected_loss_control"],
            prob_best=data["prob_best"],
            prior=tuple(data["prior"]),
            reason=data["reason"],
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "prob_beat_control": self.prob_beat_control,
            "expected_loss": self.expected_loss,
            "expected_loss_control": self.expected_loss_control,
            "prob_best": self.prob_best,
            "prior": list(self.prior),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Comparison:
    """One treatment arm against control on one metric.

    Attributes:
        treatment_arm: The treatment arm.
        metric: The metric compared.
        control_value: Control's rate.
        treatment_value: The arm's rate.
        lift_absolute: Difference of the rates (rate units).
        lift_percent: Relative lift in percent (None when control's rate is 0).
        treatment: Events and trials of the arm.
        control: Events and trials of control.
        significance: Test, adjusted p-value and intervals.
        bayesian: Posterior readout.
        exploratory: True for secondary metrics and segment comparisons.
    """

    treatment_arm: str
    metric: str
    control_value: float | None
    treatment_value: float | None
    lift_absolute: float | None
    lift_percent: float | None
    treatment: EventCounts
    control: EventCounts
    significance: Significance
    bayesian: BayesianComparison
    exploratory: bool

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """The record of one ``lift_analysis`` entry."""
        return cls(
            treatment_arm=data["treatment_arm"],
            metric=data["metric"],
            control_value=data["control_value"],
            treatment_value=data["treatment_value"],
            lift_absolute=data["lift_absolute"],
            lift_percent=data["lift_percent"],
            treatment=EventCounts.from_dict(data["counts"]["treatment"]),
            control=EventCounts.from_dict(data["counts"]["control"]),
            significance=Significance.from_dict(data["statistical_significance"]),
            bayesian=BayesianComparison.from_dict(data["bayesian"]),
            exploratory=data["exploratory"],
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "treatment_arm": self.treatment_arm,
            "metric": self.metric,
            "control_value": self.control_value,
            "treatment_value": self.treatment_value,
            "lift_absolute": self.lift_absolute,
            "lift_percent": self.lift_percent,
            "counts": {"treatment": self.treatment.to_dict(), "control": self.control.to_dict()},
            "statistical_significance": self.significance.to_dict(),
            "bayesian": self.bayesian.to_dict(),
            "exploratory": self.exploratory,
        }


@dataclass(frozen=True)
class BayesianResult:
    """Probability of being best, per metric and arm.

    Attributes:
        method: How the posteriors were integrated.
        prior: The Beta prior ``(alpha, beta)``.
        integration_points: Gauss-Legendre nodes per panel of the P(best) quadrature.
        prob_best: Metric -> arm -> probability of being best.
    """

    method: str
    prior: tuple[float, ...]
    integration_points: int
    prob_best: Mapping[str, Mapping[str, float | None]]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BayesianResult:
        """The record of the ``bayesian`` section."""
        return cls(
            method=data["method"],
            prior=tuple(data["prior"]),
            integration_points=data["integration_points"],
            prob_best={metric: dict(arms) for metric, arms in data["prob_best"].items()},
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "method": self.method,
            "prior": list(self.prior),
            "integration_points": self.integration_points,
            "prob_best": {metric: dict(arms) for metric, arms in self.prob_best.items()},
        }


@dataclass(frozen=True)
class StratifiedComparison:
    """Cochran-Mantel-Haenszel test and Mantel-Haenszel risk difference, segments as strata.

    Attributes:
        treatment_arm: The treatment arm.
        metric: The metric.
        strata: What the strata are (``"segment"``).
        strata_used: Strata that contributed.
        strata_dropped: Strata without both arms.
        test: ``"cochran-mantel-haenszel"``, or None when no test ran.
        statistic: CMH statistic.
        p_value: Unadjusted p-value.
        p_value_adjusted: Adjusted as the overall comparisons are.
        adjustment: The adjustment method.
        family_size: Comparisons in the adjusted family.
        significant: ``p_value_adjusted < alpha``.
        alpha: Significance level.
        risk_difference: Pooled difference of the rates.
        confidence_interval: Interval of the risk difference.
        reason: Why a value is missing, else None.
        method: The methods used, in words.
        exploratory: True for secondary metrics.
    """

    treatment_arm: str
    metric: str
    strata: str
    strata_used: int
    strata_dropped: int
    test: str | None
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None
    adjustment: str | None
    family_size: int | None
    significant: bool | None
    alpha: float
    risk_difference: float | None
    confidence_interval: Interval
    reason: str | None
    method: str | None
    exploratory: bool

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StratifiedComparison:
        """The record of one ``stratified.<metric>.<arm>`` entry."""
        values = {name: data[name] for name in _STRATIFIED_FIELDS}
        return cls(**values, confidence_interval=Interval.from_dict(data["confidence_interval"]))

    def to_dict(self) -> JsonDict:
        """The JSON form (``confidence_interval`` after ``risk_difference``)."""
        document: JsonDict = {}
        for name in _STRATIFIED_ORDER:
            value = getattr(self, name)
            document[name] = value.to_dict() if isinstance(value, Interval) else value
        return document


_STRATIFIED_ORDER = (
    "treatment_arm",
    "metric",
    "strata",
    "strata_used",
    "strata_dropped",
    "test",
    "statistic",
    "p_value",
    "p_value_adjusted",
    "adjustment",
    "family_size",
    "significant",
    "alpha",
    "risk_difference",
    "confidence_interval",
    "reason",
    "method",
    "exploratory",
)
_STRATIFIED_FIELDS = tuple(name for name in _STRATIFIED_ORDER if name != "confidence_interval")


@dataclass(frozen=True)
class SegmentResult:
    """One segment's arms and comparisons (exploratory).

    Attributes:
        segment: Segment name.
        exploratory: Always True: segment results are not confirmatory.
        sample_size: Recipients in the segment.
        best_performing_arm: Arm with the highest primary rate (None when no rate).
        best_performing_metric: The primary metric.
        lift_percent: That arm's relative lift over control (0 for control).
        arms: Arm -> summary within the segment.
        lift_analysis: Comparisons within the segment.
    """

    segment: str
    exploratory: bool
    sample_size: int
    best_performing_arm: str | None
    best_performing_metric: str
    lift_percent: float | None
    arms: Mapping[str, ArmSummary]
    lift_analysis: tuple[Comparison, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentResult:
        """The record of one ``segment_breakdown`` entry."""
        return cls(
            segment=data["segment"],
            exploratory=data["exploratory"],
            sample_size=data["sample_size"],
            best_performing_arm=data["best_performing_arm"],
            best_performing_metric=data["best_performing_metric"],
            lift_percent=data["lift_percent"],
            arms={k: ArmSummary.from_dict(v) for k, v in data["arms"].items()},
            lift_analysis=tuple(Comparison.from_dict(r) for r in data["lift_analysis"]),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "segment": self.segment,
            "exploratory": self.exploratory,
            "sample_size": self.sample_size,
            "best_performing_arm": self.best_performing_arm,
            "best_performing_metric": self.best_performing_metric,
            "lift_percent": self.lift_percent,
            "arms": {k: v.to_dict() for k, v in self.arms.items()},
            "lift_analysis": [r.to_dict() for r in self.lift_analysis],
        }


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRatioCheck:
    """The sample-ratio check: observed recipients per arm against the planned shares.

    Attributes:
        method: The test (``"chi-square"`` or an exact multinomial test).
        p_value: P-value of the test (None when it could not run).
        statistic: Test statistic.
        alpha: Level below which a mismatch is flagged.
        mismatch: True when the split differs from the plan (None when the
            check could not run).
        reason: Why the test did not run, else None.
        expected: Arm -> expected recipients.
        observed: Arm -> observed recipients.
        expected_shares: Arm -> planned share.
        expected_from: Where the shares come from.
        by_segment: Segment -> the same check within the segment (overall record only).
    """

    method: str | None
    p_value: float | None
    statistic: float | None
    alpha: float
    mismatch: bool | None
    reason: str | None
    expected: Mapping[str, float]
    observed: Mapping[str, int]
    expected_shares: Mapping[str, float | None]
    expected_from: str
    by_segment: Mapping[str, SampleRatioCheck] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRatioCheck:
        """The record of the ``srm`` section (or one of its ``by_segment`` entries)."""
        segments = data.get("by_segment")
        return cls(
            method=data["method"],
            p_value=data["p_value"],
            statistic=data["statistic"],
            alpha=data["alpha"],
            mismatch=data["mismatch"],
            reason=data["reason"],
            expected=dict(data["expected"]),
            observed=dict(data["observed"]),
            expected_shares=dict(data["expected_shares"]),
            expected_from=data["expected_from"],
            by_segment=None
            if segments is None
            else {k: cls.from_dict(v) for k, v in segments.items()},
        )

    def to_dict(self) -> JsonDict:
        """The JSON form (``by_segment`` only when present)."""
        document: JsonDict = {
            "method": self.method,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "alpha": self.alpha,
            "mismatch": self.mismatch,
            "reason": self.reason,
            "expected": dict(self.expected),
            "observed": dict(self.observed),
            "expected_shares": dict(self.expected_shares),
            "expected_from": self.expected_from,
        }
        if self.by_segment is not None:
            document["by_segment"] = {k: v.to_dict() for k, v in self.by_segment.items()}
        return document


@dataclass(frozen=True)
class ArmPower:
    """Minimum detectable effect and achieved power of one comparison with control.

    Attributes:
        n_per_arm: Effective recipients per arm (harmonic mean of the two arms).
        mde_absolute: Smallest detectable difference (rate units).
        mde_relative: The same relative to the baseline.
        achieved_power: Power to detect the planned relative lift.
        underpowered: ``achieved_power`` below the target power.
        reason: Why a value is missing, else None.
    """

    n_per_arm: float
    mde_absolute: float | None
    mde_relative: float | None
    achieved_power: float | None
    underpowered: bool | None
    reason: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmPower:
        """The record of one ``power.metrics.<metric>.by_arm`` entry."""
        return cls(
            n_per_arm=data["n_per_arm"],
            mde_absolute=data["mde_absolute"],
            mde_relative=data["mde_relative"],
            achieved_power=data["achieved_power"],
            underpowered=data["underpowered"],
            reason=data["reason"],
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "n_per_arm": self.n_per_arm,
            "mde_absolute": self.mde_absolute,
            "mde_relative": self.mde_relative,
            "achieved_power": self.achieved_power,
            "underpowered": self.underpowered,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MetricPower:
    """One metric's power, summarized by its least powered comparison.

    Attributes:
        baseline: Baseline rate used.
        baseline_source: Where it comes from (observed control rate or the design).
        n_per_arm: Smallest effective recipients per arm.
        mde_absolute: MDE of the least powered comparison.
        mde_relative: The same relative to the baseline.
        achieved_power: Power of the least powered comparison.
        underpowered: True when any comparison is underpowered.
        reason: Why values are missing, else None.
        by_arm: Treatment arm -> its comparison's power.
    """

    baseline: float | None
    baseline_source: str | None
    n_per_arm: float
    mde_absolute: float | None
    mde_relative: float | None
    achieved_power: float | None
    underpowered: bool | None
    reason: str | None
    by_arm: Mapping[str, ArmPower]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricPower:
        """The record of one ``power.metrics`` entry."""
        return cls(
            baseline=data["baseline"],
            baseline_source=data["baseline_source"],
            n_per_arm=data["n_per_arm"],
            mde_absolute=data["mde_absolute"],
            mde_relative=data["mde_relative"],
            achieved_power=data["achieved_power"],
            underpowered=data["underpowered"],
            reason=data["reason"],
            by_arm={k: ArmPower.from_dict(v) for k, v in data["by_arm"].items()},
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "baseline": self.baseline,
            "baseline_source": self.baseline_source,
            "n_per_arm": self.n_per_arm,
            "mde_absolute": self.mde_absolute,
            "mde_relative": self.mde_relative,
            "achieved_power": self.achieved_power,
            "underpowered": self.underpowered,
            "reason": self.reason,
            "by_arm": {k: v.to_dict() for k, v in self.by_arm.items()},
        }


@dataclass(frozen=True)
class PowerResult:
    """Power of the observed sample, per metric.

    Attributes:
        method: The power calculation, in words.
        alpha: Family significance level.
        power: Target power.
        n_comparisons: Treatment arms compared with control.
        alpha_per_comparison: Bonferroni-split alpha.
        adjustment: ``"bonferroni"``.
        expected_relative_lift: The lift the experiment was planned to detect.
        metrics: Metric -> its power.
        design: The design's power section as planned (experiment_design.json),
            copied unchanged for comparison; None without a design.
    """

    method: str
    alpha: float
    power: float
    n_comparisons: int
    alpha_per_comparison: float
    adjustment: str
    expected_relative_lift: float
    metrics: Mapping[str, MetricPower]
    design: Mapping[str, Any] | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerResult:
        """The record of the ``power`` section."""
        return cls(
            method=data["method"],
            alpha=data["alpha"],
            power=data["power"],
            n_comparisons=data["n_comparisons"],
            alpha_per_comparison=data["alpha_per_comparison"],
            adjustment=data["adjustment"],
            expected_relative_lift=data["expected_relative_lift"],
            metrics={k: MetricPower.from_dict(v) for k, v in data["metrics"].items()},
            design=data["design"],
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "method": self.method,
            "alpha": self.alpha,
            "power": self.power,
            "n_comparisons": self.n_comparisons,
            "alpha_per_comparison": self.alpha_per_comparison,
            "adjustment": self.adjustment,
            "expected_relative_lift": self.expected_relative_lift,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "design": self.design,
        }


@dataclass(frozen=True)
class AnalysisWarning:
    """A finding a reader must see, e.g. ``srm`` or ``underpowered``.

    Attributes:
        code: Stable code, e.g. ``"simulated_data"``.
        message: The finding in words.
        scope: What it concerns (``arm``, ``metric``, ``segment``, ``source``, ...),
            written as keys next to ``code`` and ``message``.
    """

    code: str
    message: str
    scope: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisWarning:
        """The record of one ``warnings`` entry."""
        scope = {k: v for k, v in data.items() if k not in ("code", "message")}
        return cls(data["code"], data["message"], scope)

    def to_dict(self) -> JsonDict:
        """The JSON form: ``code``, ``message``, then the scope keys."""
        return {"code": self.code, "message": self.message, **self.scope}


@dataclass(frozen=True)
class Coverage:
    """Assigned against analysed recipients per arm (written by a run's analyze stage).

    Attributes:
        assigned: Arm -> customers assigned (holdout excluded).
        analysed: Arm -> recipients in the analysis.
        share_analysed: Arm -> analysed / assigned (None when none were assigned).
    """

    assigned: Mapping[str, int]
    analysed: Mapping[str, int]
    share_analysed: Mapping[str, float | None]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Coverage:
        """The record of the ``coverage`` section."""
        return cls(dict(data["assigned"]), dict(data["analysed"]), dict(data["share_analysed"]))

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "assigned": dict(self.assigned),
            "analysed": dict(self.analysed),
            "share_analysed": dict(self.share_analysed),
        }


@dataclass(frozen=True)
class PrimaryResult:
    """One treatment arm's result on the primary metric: what a decision is based on.

    Attributes:
        arm: The treatment arm.
        tone: Its tone.
        lift_absolute: Difference of the rates.
        lift_percent: Relative lift in percent.
        ci_lower: Lower bound of the difference's interval.
        ci_upper: Upper bound of the difference's interval.
        p_value_adjusted: Holm-adjusted p-value.
        significant: ``p_value_adjusted < alpha``.
        estimate: ``unadjusted`` or ``cuped`` (regression-adjusted, see
            :mod:`cpo.experiment.cuped`): which estimate these numbers are;
            ``wave_stratified`` for adaptive waves (:mod:`cpo.experiment.wave_analysis`).
    """

    arm: str
    tone: str | None
    lift_absolute: float | None
    lift_percent: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value_adjusted: float | None
    significant: bool | None
    estimate: str = "unadjusted"

    @classmethod
    def adjusted(cls, record: AdjustedComparison, tone: str | None) -> PrimaryResult:
        """The primary result of a CUPED-adjusted comparison."""
        lift = record.relative_lift
        return cls(
            arm=record.treatment_arm,
            tone=tone,
            lift_absolute=record.adjusted.difference,
            lift_percent=None if lift is None else 100 * lift,
            ci_lower=record.adjusted.lower,
            ci_upper=record.adjusted.upper,
            p_value_adjusted=record.p_value_adjusted,
            significant=record.significant,
            estimate="cuped",
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "arm": self.arm,
            "tone": self.tone,
            "lift_absolute": self.lift_absolute,
            "lift_percent": self.lift_percent,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "p_value_adjusted": self.p_value_adjusted,
            "significant": self.significant,
            "estimate": self.estimate,
        }


@dataclass(frozen=True)
class AnalysisSummary:
    """The short readout of an analysis (the manifest's ``analysis`` record).

    Attributes:
        primary_metric: The confirmatory metric.
        engagement_source: Where the engagement came from.
        recipients: Recipients analysed.
        results: The primary metric's result per treatment arm: the estimate the
            decision uses (``estimate`` says which).
        srm_mismatch: The sample-ratio check failed (None when it could not run).
        warnings: Codes of the document's warnings, sorted.
        other_results: The other estimate per arm, for comparison (CUPED-adjusted
            when the decision is unadjusted and the reverse; empty without one).
    """

    primary_metric: str
    engagement_source: str
    recipients: int
    results: tuple[PrimaryResult, ...]
    srm_mismatch: bool | None
    warnings: tuple[str, ...]
    other_results: tuple[PrimaryResult, ...] = ()

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "primary_metric": self.primary_metric,
            "engagement_source": self.engagement_source,
            "recipients": self.recipients,
            "results": [r.to_dict() for r in self.results],
            "srm_mismatch": self.srm_mismatch,
            "warnings": list(self.warnings),
            "other_results": [r.to_dict() for r in self.other_results],
        }


# --------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsDocument:
    """The whole analysis: the content of ``metrics.json``.

    Attributes:
        experiment_id: Stable experiment identifier.
        experiment_name: The campaign name.
        computed_at: When the analysis ran (UTC, ISO 8601).
        engagement_source: ``simulated``, ``imported``, ``mixed`` or ``unspecified``.
        primary_metric: The confirmatory metric.
        secondary_metrics: Exploratory metrics.
        alpha: Significance level.
        confidence_level: Level of every interval.
        control_arm: The control arm's name.
        total_customers: Recipients analysed (holdout excluded).
        arms: Arm -> summary, control first.
        lift_analysis: Overall comparisons, primary metric first.
        bayesian: Probability of being best.
        stratified: Metric -> arm -> CMH estimate.
        segment_breakdown: Per-segment results.
        srm: The sample-ratio check.
        power: Power of the observed sample.
        warnings: Findings to read before the numbers.
        coverage: Assigned versus analysed recipients (a run's analysis only).
        next_test: Recipients the next test needs (a run's analysis only; None when
            nothing is comparable).
        sequential: Always-valid p-values and confidence sequences with the look
            history (only with ``analysis.sequential: true``).
        regression_adjustment: Every comparison adjusted for pre-experiment covariates
            (CUPED) beside the unadjusted one, and which the decision uses (None in
            documents written before it existed).
        waves: The wave-stratified estimates and the holdout's incremental lift of
            a run of adaptive waves (None for one wave); the decision uses them.
        schema_version: Layout version of the document.
    """

    experiment_id: str
    experiment_name: str
    computed_at: str
    engagement_source: str
    primary_metric: str
    secondary_metrics: tuple[str, ...]
    alpha: float
    confidence_level: float
    control_arm: str
    total_customers: int
    arms: Mapping[str, ArmSummary]
    lift_analysis: tuple[Comparison, ...]
    bayesian: BayesianResult
    stratified: Mapping[str, Mapping[str, StratifiedComparison]]
    segment_breakdown: tuple[SegmentResult, ...]
    srm: SampleRatioCheck
    power: PowerResult
    warnings: tuple[AnalysisWarning, ...]
    coverage: Coverage | None = None
    next_test: NextTest | None = None
    sequential: Monitoring | None = None
    regression_adjustment: RegressionAdjustment | None = None
    waves: WaveAnalysis | None = None
    schema_version: int = SCHEMA_VERSION

    def comparisons(self, metric: str) -> list[Comparison]:
        """The overall comparisons of one metric, in arm order."""
        return [record for record in self.lift_analysis if record.metric == metric]

    def decision_adjustments(self) -> dict[str, AdjustedComparison]:
        """Treatment arm -> the CUPED comparison the primary decision uses (empty: unadjusted)."""
        section = self.regression_adjustment
        if section is None or not section.used_for_decision:
            return {}
        return {c.treatment_arm: c for c in section.comparisons_of(self.primary_metric)}

    def _cuped_results(self) -> list[PrimaryResult]:
        """The primary metric's CUPED-adjusted result per treatment arm (empty without them)."""
        section = self.regression_adjustment
        if section is None:
            return []
        results = []
        for record in section.comparisons_of(self.primary_metric):
            arm = self.arms.get(record.treatment_arm)
            results.append(PrimaryResult.adjusted(record, arm.tone if arm else None))
        return results

    def _wave_results(self) -> list[PrimaryResult]:
        """The primary metric's wave-stratified result per treatment arm (adaptive waves)."""
        section = self.waves
        if section is None:
            return []
        results = []
        for record in section.comparisons:
            arm = self.arms.get(record.arm)
            lift = record.relative_lift
            results.append(
                PrimaryResult(
                    arm=record.arm,
                    tone=arm.tone if arm else None,
                    lift_absolute=record.difference,
                    lift_percent=None if lift is None else 100 * lift,
                    ci_lower=record.ci_lower,
                    ci_upper=record.ci_upper,
                    p_value_adjusted=record.p_value_adjusted,
                    significant=record.significant,
                    estimate="wave_stratified",
                )
            )
        return results

    def summary(self) -> AnalysisSummary:
        """The primary metric's result per treatment arm (the manifest's ``analysis`` record)."""
        unadjusted = []
        for record in self.comparisons(self.primary_metric):
            arm = self.arms.get(record.treatment_arm)
            interval = record.significance.confidence_interval
            unadjusted.append(
                PrimaryResult(
                    arm=record.treatment_arm,
                    tone=arm.tone if arm else None,
                    lift_absolute=record.lift_absolute,
                    lift_percent=record.lift_percent,
                    ci_lower=interval.lower,
                    ci_upper=interval.upper,
                    p_value_adjusted=record.significance.p_value_adjusted,
                    significant=record.significance.significant,
                )
            )
        cuped = self._cuped_results()
        used = bool(self.decision_adjustments())
        results, other = (cuped, unadjusted) if used else (unadjusted, cuped)
        if self.waves is not None:  # pooled estimates are biased across adaptive waves
            results, other = self._wave_results(), unadjusted
        return AnalysisSummary(
            primary_metric=self.primary_metric,
            engagement_source=self.engagement_source,
            recipients=self.total_customers,
            results=tuple(results),
            srm_mismatch=self.srm.mismatch,
            warnings=tuple(sorted({w.code for w in self.warnings})),
            other_results=tuple(other),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsDocument:
        """The records of a metrics dict (as :meth:`to_dict` or ``metrics.json`` holds it).

        Raises:
            KeyError: a key of the schema is missing.
        """
        coverage = data.get("coverage")
        next_test = data.get("next_test")
        adjustment = data.get("regression_adjustment")
        sequential = data.get("sequential")
        waves = data.get("waves")
        return cls(
            schema_version=data["schema_version"],
            **{name: data[name] for name in _HEADER},
            secondary_metrics=tuple(data["secondary_metrics"]),
            arms={k: ArmSummary.from_dict(v) for k, v in data["arms"].items()},
            lift_analysis=tuple(Comparison.from_dict(r) for r in data["lift_analysis"]),
            bayesian=BayesianResult.from_dict(data["bayesian"]),
            stratified={
                metric: {arm: StratifiedComparison.from_dict(r) for arm, r in arms.items()}
                for metric, arms in data["stratified"].items()
            },
            segment_breakdown=tuple(SegmentResult.from_dict(s) for s in data["segment_breakdown"]),
            srm=SampleRatioCheck.from_dict(data["srm"]),
            power=PowerResult.from_dict(data["power"]),
            warnings=tuple(AnalysisWarning.from_dict(w) for w in data["warnings"]),
            coverage=None if coverage is None else Coverage.from_dict(coverage),
            next_test=None if next_test is None else NextTest.from_dict(next_test),
            regression_adjustment=(
                None if adjustment is None else RegressionAdjustment.from_dict(adjustment)
            ),
            sequential=None if sequential is None else Monitoring.from_dict(sequential),
            waves=None if waves is None else WaveAnalysis.from_dict(waves),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form, JSON-safe (no NaN, no NumPy scalars), in schema order."""
        document: JsonDict = {"schema_version": self.schema_version}
        for name in _HEADER[:5]:
            document[name] = getattr(self, name)
        document["secondary_metrics"] = list(self.secondary_metrics)
        for name in _HEADER[5:]:
            document[name] = getattr(self, name)
        document.update(
            arms={k: v.to_dict() for k, v in self.arms.items()},
            lift_analysis=[r.to_dict() for r in self.lift_analysis],
            bayesian=self.bayesian.to_dict(),
            stratified={
                metric: {arm: r.to_dict() for arm, r in arms.items()}
                for metric, arms in self.stratified.items()
            },
            segment_breakdown=[s.to_dict() for s in self.segment_breakdown],
            srm=self.srm.to_dict(),
            power=self.power.to_dict(),
            warnings=[w.to_dict() for w in self.warnings],
        )
        if self.coverage is not None:
            document["coverage"] = self.coverage.to_dict()
        if self.next_test is not None:
            document["next_test"] = self.next_test.to_dict()
        if self.regression_adjustment is not None:
            document["regression_adjustment"] = self.regression_adjustment.to_dict()
        if self.sequential is not None:
            document["sequential"] = self.sequential.to_dict()
        if self.waves is not None:
            document["waves"] = self.waves.to_dict()
        return json_safe(document)

    @classmethod
    def from_json(cls, path: Path | str) -> MetricsDocument:
        """Read ``metrics.json``; see :func:`read_metrics`."""
        return read_metrics(path)


_HEADER = (
    "experiment_id",
    "experiment_name",
    "computed_at",
    "engagement_source",
    "primary_metric",
    "alpha",
    "confidence_level",
    "control_arm",
    "total_customers",
)


def read_metrics(path: Path | str) -> MetricsDocument:
    """Read a ``metrics.json`` into its records.

    Args:
        path: The file (a run folder's ``metrics.json`` or ``cpo analyze --out``).

    Raises:
        DataValidationError: the file is missing, not JSON, of a newer schema
            version, or lacks a key of the schema.
    """
    return read_versioned(
        path,
        METRICS,
        MetricsDocument.from_dict,
        missing_hint="run `cpo run` or `cpo analyze` to write it",
        invalid_hint="analyse the run again with `cpo analyze` or `cpo run --resume`",
    )
