"""Treatment-versus-control comparisons: lift records, multiplicity, CMH, Bayes.

These functions turn counts into the JSON-ready records of ``metrics.json``
(see :mod:`cpo.experiment.analysis` for the whole document). The statistics
themselves come from :mod:`cpo.experiment.stats`; this module decides which
counts go in, how undefined results are reported (``None`` with a reason,
never a silent default) and how p-values are adjusted for multiplicity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from cpo.experiment import catalog, stats
from cpo.experiment.analysis_settings import AnalysisSettings

HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini-hochberg"
#: Grid points per arm of the probability-of-being-best integral.
PROB_BEST_POINTS = 1024
RISK_DIFFERENCE_METHOD = "mantel-haenszel risk difference, sato variance"

Counts = Mapping[str, int]


def metric_counts(metric: str) -> tuple[str, str]:
    """``(numerator count, denominator count)`` of a catalog metric."""
    found = catalog.metric(metric)
    return found.numerator, found.denominator


def metric_definitions() -> dict[str, tuple[str, str]]:
    """Every catalog metric -> ``(numerator count, denominator count)``, in catalog order."""
    return {name: metric_counts(name) for name in catalog.metric_names()}


def rate(counts: Counts, metric: str) -> float | None:
    """The metric's rate for one arm, or None when its denominator is 0."""
    numerator, denominator = metric_counts(metric)
    return counts[numerator] / counts[denominator] if counts[denominator] else None


def interval_record(interval: stats.Interval, scale: float = 1.0) -> dict[str, Any]:
    """``{lower, upper, method, reason}`` of an interval, optionally rescaled."""
    return {
        "lower": None if interval.lower is None else interval.lower * scale,
        "upper": None if interval.upper is None else interval.upper * scale,
        "method": interval.method,
        "reason": interval.reason,
    }


def rate_intervals(counts: Counts, settings: AnalysisSettings) -> dict[str, dict[str, Any]]:
    """Wilson interval of every metric of one arm."""
    intervals = {}
    for metric, (numerator, denominator) in metric_definitions().items():
        found = stats.wilson_interval(
            counts[numerator], counts[denominator], settings.confidence_level
        )
        if counts[denominator] == 0:
            found = stats.Interval(
                None,
                None,
                "wilson",
                None,
                settings.confidence_level,
                f"empty: no recipients in the denominator ({denominator} = 0)",
            )
        intervals[metric] = interval_record(found)
    return intervals


# --------------------------------------------------------------------------
# One comparison
# --------------------------------------------------------------------------


def compare(
    metric: str,
    treatment_arm: str,
    treatment: Counts,
    control: Counts,
    settings: AnalysisSettings,
    bayesian: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lift record of one treatment arm against control on one metric.

    ``bayesian`` is the arm's record from :func:`bayes_records` when the
    caller computed every arm's at once (else it is computed here).

    ``lift_absolute`` and the ``confidence_interval`` (Newcombe) are in rate
    units; ``lift_percent`` and the ``relative_confidence_interval`` (Koopman
    score interval of the ratio) are in percent. The p-value is adjusted
    later (see :func:`adjust`), so ``p_value_adjusted``, ``adjustment`` and
    ``significant`` start empty.
    """
    numerator, denominator = metric_counts(metric)
    x_t, n_t = treatment[numerator], treatment[denominator]
    x_c, n_c = control[numerator], control[denominator]
    rate_t, rate_c = rate(treatment, metric), rate(control, metric)
    lift_absolute = lift_percent = None
    if rate_t is not None and rate_c is not None:
        lift_absolute, lift_percent = stats.lift(rate_t, rate_c)
    confidence = settings.confidence_level
    test = stats.two_proportion_test(x_t, n_t, x_c, n_c)
    return {
        "treatment_arm": treatment_arm,
        "metric": metric,
        "control_value": rate_c,
        "treatment_value": rate_t,
        "lift_absolute": lift_absolute,
        "lift_percent": lift_percent,
        "counts": {
            "treatment": {"events": x_t, "trials": n_t},
            "control": {"events": x_c, "trials": n_c},
        },
        "statistical_significance": {
            "test": test.test,
            "p_value": test.p_value,
            "p_value_adjusted": None,
            "adjustment": None,
            "family_size": None,
            "significant": None,
            "alpha": settings.alpha,
            "statistic": test.statistic,
            "min_expected_cell": test.min_expected,
            "reason": test.reason,
            "confidence_interval": interval_record(
                stats.newcombe_difference_interval(x_t, n_t, x_c, n_c, confidence)
            ),
            "relative_confidence_interval": interval_record(
                stats.relative_lift_interval(x_t, n_t, x_c, n_c, confidence), scale=100.0
            ),
        },
        "bayesian": bayesian
        if bayesian is not None
        else bayes_record(x_t, n_t, x_c, n_c, settings),
    }


def bayes_record(
    x_t: int, n_t: int, x_c: int, n_c: int, settings: AnalysisSettings
) -> dict[str, Any]:
    """Beta-Binomial probability to beat control and expected loss of shipping."""
    return _bayes_dict(stats.prob_beat_control(x_t, n_t, x_c, n_c, settings.bayesian_prior))


def bayes_records(
    metric: str, treatments: Sequence[Counts], control: Counts, settings: AnalysisSettings
) -> list[dict[str, Any]]:
    """:func:`bayes_record` of every treatment arm on one metric, in one vectorized call."""
    numerator, denominator = metric_counts(metric)
    results = stats.prob_beat_control_arms(
        [(t[numerator], t[denominator]) for t in treatments],
        control[numerator],
        control[denominator],
        settings.bayesian_prior,
    )
    return [_bayes_dict(result) for result in results]


def _bayes_dict(result: stats.BayesResult) -> dict[str, Any]:
    """The ``bayesian`` block of a lift record."""
    return {
        "prob_beat_control": result.prob_beat_control,
        "expected_loss": result.expected_loss_treatment,
        "expected_loss_control": result.expected_loss_control,
        "prob_best": None,
        "prior": list(result.prior),
        "reason": result.reason,
    }


# --------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------


def adjust(records: Sequence[dict[str, Any]], method: str, alpha: float) -> None:
    """Adjust the p-values of one family of records in place.

    Records without a p-value keep ``p_value_adjusted`` None and do not count
    in the family size. ``significant`` is ``adjusted p < alpha``; None when
    there is no p-value.

    Args:
        records: Lift (or stratified) records, each with a ``statistical_significance``
            dict, or the significance dicts themselves.
        method: :data:`HOLM` or :data:`BENJAMINI_HOCHBERG`.
        alpha: Significance level.
    """
    blocks = [r.get("statistical_significance", r) for r in records]
    raw = [b["p_value"] for b in blocks]
    adjusted = stats.holm(raw) if method == HOLM else stats.benjamini_hochberg(raw)
    family = sum(p is not None for p in raw)
    for block, value in zip(blocks, adjusted, strict=True):
        block["p_value_adjusted"] = value
        block["adjustment"] = method
        block["family_size"] = family
        block["significant"] = None if value is None else bool(value < alpha)


# --------------------------------------------------------------------------
# Probability of being best (deterministic numerical integration)
# --------------------------------------------------------------------------


def prob_best(
    counts: Mapping[str, Counts], metric: str, settings: AnalysisSettings
) -> dict[str, float | None]:
    """Posterior probability that each arm has the highest rate.

    With Beta(prior) posteriors, ``P(arm i best) = ∫ ∏_{j≠i} F_j(x) dF_i(x)``.
    The integral is a Riemann–Stieltjes sum on a grid that puts
    :data:`PROB_BEST_POINTS` points across each arm's posterior (from its
    1e-12 to its 1 - 1e-12 quantile): the mass ``F_i`` gives each cell times
    the other arms' CDFs at the cell's midpoint. Only CDFs are evaluated, so
    it holds for any counts and priors; it agrees with the exact two-arm
    integral to about 1e-5. Deterministic: no Monte Carlo, so no seed is
    needed. Arms without a denominator get None.
    """
    numerator, denominator = metric_counts(metric)
    usable = [arm for arm, c in counts.items() if c[denominator] > 0]
    result: dict[str, float | None] = dict.fromkeys(counts)
    if len(usable) <= 1:
        # One arm with data is best with certainty; the grid sum would give 1 - ulp.
        result.update(dict.fromkeys(usable, 1.0))
        return result
    a0, b0 = settings.bayesian_prior
    params = [
        (a0 + counts[arm][numerator], b0 + counts[arm][denominator] - counts[arm][numerator])
        for arm in usable
    ]
    grid = _posterior_grid(params)
    middles = (grid[:-1] + grid[1:]) / 2.0
    at_middles = np.array([special.betainc(a, b, middles) for a, b in params])
    for i, (a, b) in enumerate(params):
        mass = np.diff(special.betainc(a, b, grid))
        others = np.prod(np.delete(at_middles, i, axis=0), axis=0)
        result[usable[i]] = float(min(1.0, max(0.0, np.dot(mass, others))))
    return result


def _posterior_grid(params: Sequence[tuple[float, float]]) -> np.ndarray:
    """Sorted points on [0, 1], dense across each Beta posterior's bulk."""
    parts = [np.array([0.0, 1.0])]
    for a, b in params:
        low, high = special.betaincinv(a, b, [1e-12, 1.0 - 1e-12])
        parts.append(np.linspace(low, high, PROB_BEST_POINTS))
    return np.unique(np.concatenate(parts))


# --------------------------------------------------------------------------
# Stratified estimate (segments as strata)
# --------------------------------------------------------------------------


def stratified_record(
    metric: str,
    treatment_arm: str,
    strata: Sequence[tuple[Counts, Counts]],
    settings: AnalysisSettings,
) -> dict[str, Any]:
    """CMH test and Mantel–Haenszel risk difference of one arm on one metric.

    Args:
        metric: The metric.
        treatment_arm: The arm compared with control.
        strata: ``(treatment counts, control counts)`` per segment.
        settings: Confidence level and alpha.
    """
    numerator, denominator = metric_counts(metric)
    tables = [(t[numerator], t[denominator], c[numerator], c[denominator]) for t, c in strata]
    result = stats.cochran_mantel_haenszel(tables, settings.confidence_level)
    interval_reason = None
    if result.lower is None:
        interval_reason = result.reason or "undefined: no interval for these counts"
    return {
        "treatment_arm": treatment_arm,
        "metric": metric,
        "strata": "segment",
        "strata_used": result.strata_used,
        "strata_dropped": result.strata_dropped,
        "test": None if result.p_value is None else "cochran-mantel-haenszel",
        "statistic": result.statistic,
        "p_value": result.p_value,
        "p_value_adjusted": None,
        "adjustment": None,
        "family_size": None,
        "significant": None,
        "alpha": settings.alpha,
        "risk_difference": result.risk_difference,
        "confidence_interval": {
            "lower": result.lower,
            "upper": result.upper,
            "method": RISK_DIFFERENCE_METHOD,
            "reason": interval_reason,
        },
        "reason": result.reason,
        "method": result.method,
    }
