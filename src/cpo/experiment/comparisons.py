"""Treatment-versus-control comparisons: lift records, multiplicity, CMH, Bayes.

These functions turn counts into the JSON-ready records of ``metrics.json``
(see :mod:`cpo.experiment.analysis` for the whole document). The statistics
themselves come from :mod:`cpo.experiment.stats`; this module decides which
counts go in, how undefined results are reported (``None`` with a reason,
never a silent default) and how p-values are adjusted for multiplicity.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from cpo.experiment import catalog, stats
from cpo.experiment.analysis_settings import AnalysisSettings

HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini-hochberg"
#: Gauss–Legendre nodes per panel of the probability-of-being-best integral.
PROB_BEST_POINTS = 8
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
# Probability of being best (deterministic Gauss–Legendre quadrature)
# --------------------------------------------------------------------------


def prob_best(
    counts: Mapping[str, Counts], metric: str, settings: AnalysisSettings
) -> dict[str, float | None]:
    """Posterior probability that each arm has the highest rate.

    With Beta(prior) posteriors, ``P(arm i best) = ∫ f_i(x) ∏_{j≠i} F_j(x) dx``
    (f density, F CDF). The integral is computed by composite Gauss–Legendre
    quadrature (:func:`prob_best_of_posteriors`): deterministic, no Monte Carlo,
    so no seed is needed; within 1e-7 of a 50-digit reference on near-certain
    cases (tests/experiment/test_stats_prob_best.py). Arms without a
    denominator get None.
    """
    numerator, denominator = metric_counts(metric)
    usable = [arm for arm, c in counts.items() if c[denominator] > 0]
    result: dict[str, float | None] = dict.fromkeys(counts)
    if len(usable) <= 1:
        # One arm with data is best with certainty.
        result.update(dict.fromkeys(usable, 1.0))
        return result
    a0, b0 = settings.bayesian_prior
    a = np.array([a0 + counts[arm][numerator] for arm in usable], dtype=float)
    b = np.array(
        [b0 + counts[arm][denominator] - counts[arm][numerator] for arm in usable], dtype=float
    )
    chances = prob_best_of_posteriors(a, b)
    result.update(zip(usable, (float(min(1.0, max(0.0, p))) for p in chances), strict=True))
    return result


#: Cumulative probabilities (and their mirror images 1 - p) of every posterior
#: at which the quadrature's panels break: log-spaced in the tails, where a
#: near-certain posterior (e.g. Beta(1, 10^6)) is exponential-shaped.
PROB_BEST_BREAKS = (1e-15, 1e-8, 1e-4, 0.05, 0.5)
#: x-ratio of the geometric panels near an end where a density is unbounded (a < 1 or b < 1).
_SINGULAR_RATIO = 4.0


def prob_best_of_posteriors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``P(X_i = max_j X_j)`` for independent ``X_j ~ Beta(a_j, b_j)``, all arms at once.

    ``∫ f_i(x) ∏_{j≠i} F_j(x) dx`` by composite Gauss–Legendre quadrature with
    :data:`PROB_BEST_POINTS` nodes per panel. The panels break at every
    posterior's quantiles :data:`PROB_BEST_BREAKS` (and geometrically near an
    end where a density is unbounded), so each panel spans a smooth piece of
    every posterior. Above 1/2 the nodes are held as ``y = 1 - x``, so that
    posteriors crowded against 1 (all-success arms) are resolved as finely as
    those against 0. Outside its 1e-15 and 1 - 1e-15 quantiles a posterior's
    density counts as 0 and its CDF as 0 or 1 (an error of at most 2e-15).

    Args:
        a: Posterior alpha of each arm (> 0).
        b: Posterior beta of each arm (> 0).

    Returns:
        One probability per arm.
    """
    breaks = np.array(PROB_BEST_BREAKS)
    near_zero = special.betaincinv(a[:, None], b[:, None], breaks)  # quantiles, as x
    near_one = special.betaincinv(b[:, None], a[:, None], breaks)  # upper quantiles, as 1 - x
    low, high = near_zero[:, 0], near_one[:, 0]  # the support's ends
    lower_nodes, lower_weights = _gauss_legendre(_half_edges(near_zero, near_one, a))
    upper_nodes, upper_weights = _gauss_legendre(_half_edges(near_one, near_zero, b))
    log_norm = special.betaln(a, b)
    lower = _posterior_on(lower_nodes, a, b, low, high, log_norm)
    upper = _posterior_on(upper_nodes, b, a, high, low, log_norm)
    cdf = np.concatenate([lower[0], 1.0 - upper[0]], axis=1)
    density = np.concatenate([lower[1], upper[1]], axis=1)
    weights = np.concatenate([lower_weights, upper_weights])
    chances = np.empty(len(a))
    for arm in range(len(a)):
        others = np.prod(np.delete(cdf, arm, axis=0), axis=0)
        chances[arm] = np.dot(weights, density[arm] * others)
    return chances


def _posterior_on(
    t: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    log_norm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """CDF and density of each Beta(a_i, b_i) at ``t`` (< 1/2), 0 outside [low_i, 1 - high_i].

    One row per arm. Called with the parameters swapped for the upper half,
    where ``t = 1 - x``: Beta(b, a) at ``1 - x`` has the same density, and its
    CDF is ``1 - F(x)``.
    """
    a, b, low, high, log_norm = (v[:, None] for v in (a, b, low, high, log_norm))
    inside = (t >= low) & (t <= 1.0 - high)
    arm, node = np.nonzero(inside)
    x = t[node]
    cdf = (t > 1.0 - high).astype(float)
    cdf[inside] = special.betainc(a[arm, 0], b[arm, 0], x)
    density = np.zeros(inside.shape)
    shape_a, shape_b = a[arm, 0] - 1.0, b[arm, 0] - 1.0
    density[inside] = np.exp(
        special.xlogy(shape_a, x) + special.xlog1py(shape_b, -x) - log_norm[arm, 0]
    )
    return cdf, density


def _half_edges(near: np.ndarray, far: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Panel edges on [0, 1/2]: every posterior's break quantiles that fall there.

    ``near`` holds the quantiles measured from this end (``x``), ``far`` those
    measured from the other (``1 - x``, the mirror image's), so every edge is
    computed where it is precise; ``a`` is each posterior's parameter at this
    end (its density is unbounded there when ``a < 1``). For the upper half the
    caller passes ``far``, ``near`` and the betas (edges in ``1 - x``).
    """
    parts = [near.ravel(), 1.0 - far.ravel(), np.array([0.5])]
    for arm in np.flatnonzero(a < 1.0):
        # Up to the median: a panel with a wider x-ratio would start too close to the pole.
        parts.append(_geometric(near[arm, 0], min(near[arm, -1], 0.5)))
    edges = np.unique(np.concatenate(parts))
    return edges[edges <= 0.5]


def _geometric(start: float, stop: float) -> np.ndarray:
    """Points from ``start`` to ``stop`` (both > 0) in steps of :data:`_SINGULAR_RATIO`."""
    if not 0.0 < start < stop:
        return np.array([])
    count = int(np.ceil(np.log(stop / start) / np.log(_SINGULAR_RATIO))) + 1
    return np.geomspace(start, stop, max(count, 2))


@functools.cache
def _legendre_rule() -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [-1, 1] (:data:`PROB_BEST_POINTS` of them)."""
    nodes, weights = np.polynomial.legendre.leggauss(PROB_BEST_POINTS)
    return nodes, weights


def _gauss_legendre(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the composite rule on the panels between ``edges`` (sorted)."""
    unit_nodes, unit_weights = _legendre_rule()
    middle = (edges[:-1] + edges[1:]) / 2.0
    half = (edges[1:] - edges[:-1]) / 2.0
    nodes = (middle[:, None] + half[:, None] * unit_nodes).ravel()
    return nodes, (half[:, None] * unit_weights).ravel()


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
