"""How many customers the next test needs: computed once, by the analysis.

When a campaign ends without a clear winner, the report tells the marketer how
large the next test must be to detect the lift seen (or, when none can be used,
the lift that was planned). That is a statistic, so it is computed here, with
the run's own significance level and power, and recorded in ``metrics.json``
(``next_test``); the report only presents it.

The effect is the largest observed absolute lift of the primary metric when it
is positive and leaves room below 100%; otherwise the design's planned relative
lift on the baseline. The baseline is the observed control rate, else the
power record's baseline (the analysis's, then the design's) when the control
rate is 0, 1 or missing. Sample size: R's ``power.prop.test`` via
:func:`cpo.experiment.stats.n_for_effect`, with alpha split over the primary
metric's comparisons (Bonferroni).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

Basis = Literal["observed", "planned"]
ComparisonT = TypeVar("ComparisonT", bound=Mapping[str, Any])


@dataclass(frozen=True)
class NextTest:
    """Recipients per arm for the next test of the primary metric.

    Attributes:
        metric: The primary metric.
        treatment_arm: The arm with the largest observed lift (the one to retest).
        baseline: Control rate the size is computed for.
        effect: Absolute lift to detect.
        basis: ``observed`` (this run's lift) or ``planned`` (the design's).
        planned_relative_lift: The design's expected relative lift (``planned`` basis).
        alpha: Two-sided significance level before the split.
        power: Target power.
        comparisons: Treatment-versus-control comparisons alpha is split over.
        n_per_arm: Recipients per arm (rounded up).
        total: ``n_per_arm`` times the arms (treatments plus control).
    """

    metric: str
    treatment_arm: str
    baseline: float
    effect: float
    basis: Basis
    planned_relative_lift: float | None
    alpha: float
    power: float
    comparisons: int
    n_per_arm: int
    total: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NextTest:
        """The record of ``metrics.json``'s ``next_test``."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def best_comparison(records: Sequence[ComparisonT]) -> ComparisonT | None:
    """The comparison with the largest absolute lift (ties: the later arm name).

    Also the report's "best arm", so the arm it names and the next test's agree.
    """
    usable = [r for r in records if r.get("lift_absolute") is not None]
    if not usable:
        return None
    return max(usable, key=lambda r: (r["lift_absolute"], r.get("treatment_arm", "")))


def _baseline(
    best: Mapping[str, Any], metric: str, powers: list[Mapping[str, Any] | None]
) -> float | None:
    """The observed control rate, else the first power record's baseline; None if unusable."""
    candidates = [best.get("control_value")]
    for power in powers:
        record = ((power or {}).get("metrics") or {}).get(metric)
        if isinstance(record, Mapping) and "mde_absolute" in record:
            candidates.append(record.get("baseline"))
            break
    for value in candidates:
        if value is not None and 0 < value < 1:
            return float(value)
    return None


def _effect(
    best: Mapping[str, Any], baseline: float, planned: float | None
) -> tuple[float, Basis] | None:
    """The lift to detect and where it comes from; None when neither is usable."""
    observed = best.get("lift_absolute")
    if observed is not None and 0 < observed < 1 - baseline:
        return float(observed), "observed"
    if planned:
        return baseline * float(planned), "planned"
    return None


def plan_next_test(metrics: Mapping[str, Any], design: Mapping[str, Any]) -> NextTest | None:
    """The next test's size for the primary metric of a metrics document.

    Args:
        metrics: The metrics document (``MetricsDocument.to_dict()``).
        design: ``experiment_design.json`` (its ``power`` record); may be empty.

    Returns:
        None when nothing is comparable, no baseline or effect is usable, or the
        size cannot be computed.
    """
    metric = metrics.get("primary_metric")
    records = [r for r in metrics.get("lift_analysis") or [] if r.get("metric") == metric]
    best = best_comparison(records)
    design_power = design.get("power") or {}
    power = design_power.get("power")
    if power is None:
        power = (metrics.get("power") or {}).get("power")
    alpha = metrics.get("alpha")
    if best is None or metric is None or alpha is None or power is None:
        return None
    baseline = _baseline(best, metric, [metrics.get("power"), design_power])
    planned = design_power.get("expected_relative_lift")
    found = None if baseline is None else _effect(best, baseline, planned)
    if baseline is None or found is None:
        return None
    effect, basis = found
    from cpo.experiment import stats  # SciPy: only the analysis computes, readers do not

    comparisons = max(1, len(records))
    size = stats.n_for_effect(
        baseline, effect, alpha=float(alpha), power=float(power), n_comparisons=comparisons
    )
    if size.n_per_arm_ceil is None:
        return None
    return NextTest(
        metric=str(metric),
        treatment_arm=str(best.get("treatment_arm", "")),
        baseline=baseline,
        effect=effect,
        basis=basis,
        planned_relative_lift=None if planned is None else float(planned),
        alpha=float(alpha),
        power=float(power),
        comparisons=comparisons,
        n_per_arm=int(size.n_per_arm_ceil),
        total=int(size.n_per_arm_ceil) * (comparisons + 1),
    )
