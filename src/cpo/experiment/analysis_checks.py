"""Checks of the analysis: sample-ratio mismatch and the power of the observed sample.

Both sections of ``metrics.json`` are computed from counts and the analysis
plan (see :class:`cpo.experiment.analysis.AnalysisPlan`); both append
``{code, message}`` warnings for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cpo.experiment import stats
from cpo.experiment.comparisons import metric_counts, rate
from cpo.experiment.settings import CONTROL_ARM

if TYPE_CHECKING:
    from cpo.experiment.analysis import AnalysisPlan

POWER_METHOD = (
    "R power.prop.test (two-sided, two-sample); alpha divided by the number of treatment arms "
    "(Bonferroni); unequal arms as the harmonic mean of their denominators"
)


def make_warning(code: str, message: str, **scope: Any) -> dict[str, Any]:
    """A warning record: ``code``, ``message`` and optional scope (arm, metric, segment)."""
    return {"code": code, "message": message, **{k: v for k, v in scope.items() if v is not None}}


# --------------------------------------------------------------------------
# Sample-ratio mismatch
# --------------------------------------------------------------------------


def srm_section(
    observed: Mapping[str, int],
    by_segment: Mapping[str, Mapping[str, int]],
    plan: AnalysisPlan,
    warnings: list[dict[str, Any]],
) -> dict[str, Any]:
    """The SRM check overall and per segment against the planned shares.

    Args:
        observed: Recipients per arm over all segments.
        by_segment: Segment -> recipients per arm (the arms planned or seen there).
        plan: Expected shares (design, configured allocation, or equal).
        warnings: Receives ``srm`` / ``srm_skipped`` warnings.

    Returns:
        The overall record plus ``by_segment`` records.
    """
    overall_shares = _overall_shares(observed, plan)
    section = _srm_record(observed, overall_shares, plan, plan.expected_from)
    _srm_warning(section, None, warnings)
    section["by_segment"] = {}
    for segment, counts in by_segment.items():
        planned = plan.segment_shares.get(segment)
        source = plan.expected_from
        if planned is None:
            planned = overall_shares
            if plan.segment_shares:
                source = "overall shares (segment not in the design)"
        shares = {arm: float(planned.get(arm, 0.0)) for arm in counts}
        record = _srm_record(counts, shares, plan, source)
        _srm_warning(record, segment, warnings)
        section["by_segment"][segment] = record
    return section


def _overall_shares(observed: Mapping[str, int], plan: AnalysisPlan) -> dict[str, float]:
    """Planned share per arm: the plan's (unplanned arms get 0), else equal."""
    if plan.allocation:
        return {arm: float(plan.allocation.get(arm, 0.0)) for arm in observed}
    return {arm: 1.0 / len(observed) for arm in observed}


def _srm_record(
    observed: Mapping[str, int],
    shares: Mapping[str, float],
    plan: AnalysisPlan,
    source: str,
) -> dict[str, Any]:
    """Run :func:`stats.srm_check` and label its result by arm."""
    arms = list(observed)
    result = stats.srm_check(
        [observed[a] for a in arms], [shares[a] for a in arms], plan.settings.srm_alpha
    )
    total_share = sum(shares.values())
    return {
        "method": result.method,
        "p_value": result.p_value,
        "statistic": result.statistic,
        "alpha": result.alpha,
        "mismatch": result.mismatch,
        "reason": result.reason,
        "expected": dict(zip(arms, result.expected, strict=True)) if result.expected else {},
        "observed": dict(observed),
        "expected_shares": {
            a: (shares[a] / total_share if total_share > 0 else None) for a in arms
        },
        "expected_from": source,
    }


def _srm_warning(record: dict[str, Any], segment: str | None, warnings: list[dict]) -> None:
    """An ``srm`` warning for a mismatch; ``srm_skipped`` when the overall check could not run."""
    where = f"segment '{segment}'" if segment else "overall"
    if record["mismatch"]:
        p = record["p_value"]
        detail = f"p = {p:.3g} < {record['alpha']:g}" if p is not None else "no test"
        observed = ", ".join(f"{a} {n}" for a, n in record["observed"].items())
        expected = ", ".join(f"{a} {e:.1f}" for a, e in record["expected"].items())
        warnings.append(
            make_warning(
                "srm",
                f"sample-ratio mismatch ({where}): observed {observed}; expected {expected} "
                f"({detail}{'; ' + record['reason'] if record['reason'] else ''}). "
                "Assignment or delivery is broken somewhere; do not trust the lifts until "
                "it is explained",
                segment=segment,
            )
        )
    elif record["mismatch"] is None and segment is None:
        warnings.append(
            make_warning(
                "srm_skipped",
                f"the sample-ratio check could not run: {record['reason']}",
            )
        )


# --------------------------------------------------------------------------
# Power of the observed sample
# --------------------------------------------------------------------------


def power_section(
    overall: Mapping[str, Mapping[str, int]],
    plan: AnalysisPlan,
    warnings: list[dict[str, Any]],
) -> dict[str, Any]:
    """MDE and achieved power per metric for the observed arm sizes.

    The achieved power is the power to detect the planned relative lift
    (``expected_relative_lift``), not the observed one ("observed power" only
    restates the p-value). A metric is underpowered when that power is below
    the target power, i.e. when its MDE exceeds the planned lift.

    Args:
        overall: Counts per arm.
        plan: Settings, planned lift and the design's power section.
        warnings: Receives ``underpowered`` warnings.
    """
    settings = plan.settings
    treatments = [a for a in overall if a != CONTROL_ARM and overall[a]["sent"] > 0]
    comparisons = max(1, len(treatments))
    metrics = {}
    for metric in plan.metrics:
        baseline, source = _baseline(overall.get(CONTROL_ARM), metric, plan)
        by_arm = {
            arm: _arm_power(overall, arm, metric, baseline, comparisons, plan) for arm in treatments
        }
        metrics[metric] = _metric_power(baseline, source, by_arm)
    _power_warnings(metrics, plan, warnings)
    return {
        "method": POWER_METHOD,
        "alpha": settings.alpha,
        "power": settings.power,
        "n_comparisons": comparisons,
        "alpha_per_comparison": settings.alpha / comparisons,
        "adjustment": "bonferroni",
        "expected_relative_lift": plan.expected_relative_lift,
        "metrics": metrics,
        "design": plan.design_power,
    }


def _baseline(
    control: Mapping[str, int] | None, metric: str, plan: AnalysisPlan
) -> tuple[float | None, str | None]:
    """The observed control rate when it is strictly inside (0, 1), else the design's."""
    observed = rate(control, metric) if control else None
    if observed is not None and 0.0 < observed < 1.0:
        return observed, "observed control rate"
    planned = ((plan.design_power or {}).get("metrics") or {}).get(metric, {}).get("baseline")
    if planned is not None:
        return float(planned), "design baseline (observed control rate is 0, 1 or undefined)"
    return None, None


def _arm_power(
    overall: Mapping[str, Mapping[str, int]],
    arm: str,
    metric: str,
    baseline: float | None,
    comparisons: int,
    plan: AnalysisPlan,
) -> dict[str, Any]:
    """MDE and power of one treatment-vs-control comparison."""
    _, denominator = metric_counts(metric)
    n_control = overall.get(CONTROL_ARM, {}).get(denominator, 0)
    n_treatment = overall[arm][denominator]
    n = 2.0 / (1.0 / n_control + 1.0 / n_treatment) if n_control and n_treatment else 0.0
    record: dict[str, Any] = {
        "n_per_arm": n,
        "mde_absolute": None,
        "mde_relative": None,
        "achieved_power": None,
        "underpowered": None,
        "reason": None,
    }
    if baseline is None:
        record["reason"] = "undefined: no baseline rate (control has no recipients or no events)"
        return record
    if n <= 0:
        record["reason"] = f"empty: control or {arm} has no {denominator} recipients"
        return record
    settings = plan.settings
    mde = stats.mde_for_n(n, baseline, settings.alpha, settings.power, comparisons)
    achieved = stats.power_for_n(
        n, baseline, baseline * plan.expected_relative_lift, settings.alpha, comparisons
    )
    record.update(
        mde_absolute=mde.mde_absolute,
        mde_relative=mde.mde_relative,
        achieved_power=achieved.power,
        underpowered=None if achieved.power is None else achieved.power < settings.power,
        reason=mde.reason or achieved.reason,
    )
    if mde.mde_absolute is None and achieved.power is None:
        record["underpowered"] = True if (mde.reason or "").startswith("unreachable") else None
    return record


def _metric_power(
    baseline: float | None, source: str | None, by_arm: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Summarize a metric by its least powered comparison."""
    computed = [r for r in by_arm.values() if r["achieved_power"] is not None]
    worst = min(computed, key=lambda r: r["achieved_power"]) if computed else None
    flags = [r["underpowered"] for r in by_arm.values() if r["underpowered"] is not None]
    reasons = sorted({r["reason"] for r in by_arm.values() if r["reason"]})
    return {
        "baseline": baseline,
        "baseline_source": source,
        "n_per_arm": min((r["n_per_arm"] for r in by_arm.values()), default=0.0),
        "mde_absolute": worst["mde_absolute"] if worst else None,
        "mde_relative": worst["mde_relative"] if worst else None,
        "achieved_power": worst["achieved_power"] if worst else None,
        "underpowered": any(flags) if flags else None,
        "reason": "; ".join(reasons)
        or (None if by_arm else "empty: no treatment arm has recipients"),
        "by_arm": by_arm,
    }


def _power_warnings(
    metrics: Mapping[str, dict[str, Any]], plan: AnalysisPlan, warnings: list[dict[str, Any]]
) -> None:
    """``underpowered`` warnings: one for the primary metric, one for all secondary ones."""
    primary = plan.settings.primary_metric
    lift = plan.expected_relative_lift
    closing = ". A non-significant result is inconclusive, not evidence that there is no effect"
    record = metrics.get(primary)
    if record and record["underpowered"]:
        text = f"{primary} (primary metric) is underpowered: with about "
        text += f"{record['n_per_arm']:.0f} per arm"
        if record["achieved_power"] is not None:
            text += (
                f", the power to detect a {lift:.0%} relative lift is "
                f"{record['achieved_power']:.0%} (target {plan.settings.power:.0%})"
            )
        text += f"; {_mde_text(record)}"
        warnings.append(make_warning("underpowered", text + closing, metric=primary))
    weak = [m for m, r in metrics.items() if m != primary and r["underpowered"]]
    if weak:
        details = ", ".join(f"{m} ({_mde_text(metrics[m])})" for m in weak)
        warnings.append(
            make_warning(
                "underpowered",
                f"secondary metric(s) underpowered for a {lift:.0%} relative lift at power "
                f"{plan.settings.power:.0%}: {details}" + closing,
                metrics=weak,
            )
        )


def _mde_text(record: Mapping[str, Any]) -> str:
    mde = record["mde_relative"]
    if mde is None:
        return "no rate up to 1 reaches the target power"
    return f"smallest detectable lift {mde:.1%} relative"
