"""Power calculations for planning: the library behind ``cpo power``.

Both directions use :mod:`cpo.experiment.stats` (R's ``power.prop.test``,
two-sided two-sample test of proportions, alpha divided by the number of
treatment comparisons):

* :func:`plan_mde`: the minimum detectable upward effect for ``n`` per arm;
* :func:`plan_sample_size`: ``n`` per arm to detect a given effect.

Both take the variance reduction ``R`` that regression adjustment (CUPED,
:mod:`cpo.experiment.cuped`) is expected to give, e.g. ``rho²`` for a
covariate whose correlation with the outcome is ``rho``: removing the share
``R`` of the variance is worth ``1 / (1 - R)`` times the units, so the MDE is
computed at ``n / (1 - R)`` and the sample size is ``(1 - R)`` times the
unadjusted one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any

from cpo.experiment import stats


def plan_sample_size(
    baseline: float,
    effect: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    comparisons: int = 1,
    variance_reduction: float = 0.0,
) -> dict[str, Any]:
    """Units per arm to detect ``effect`` over ``baseline``.

    Args:
        baseline: Control rate.
        effect: Target effect, absolute (0.25 = +25 points) or, with
            ``relative``, relative to the baseline (0.10 = +10%).
        relative: Read ``effect`` as relative.
        alpha: Family-wise two-sided significance level.
        power: Target power.
        comparisons: Treatment-vs-control comparisons (Bonferroni).
        variance_reduction: Expected CUPED variance reduction ``R`` in [0, 1).

    Returns:
        A JSON-ready dict: the inputs, ``n_per_arm`` (fractional, as R prints
        it; times ``1 - R``), ``n_per_arm_ceil``, ``n_per_arm_unadjusted`` and
        ``reason`` (None when solved).
    """
    absolute = effect * baseline if relative else effect
    result = stats.n_for_effect(baseline, absolute, alpha, power, comparisons)
    unadjusted = result.n_per_arm
    if unadjusted is not None and variance_reduction:
        n = unadjusted * (1 - variance_reduction)
        result = replace(result, n_per_arm=n, n_per_arm_ceil=math.ceil(n))
    return {
        "calculation": "sample_size",
        **asdict(result),
        "n_per_arm_unadjusted": unadjusted,
        "variance_reduction": variance_reduction,
        "target_rate": baseline + absolute,
        "effect_relative": absolute / baseline if baseline else None,
        "alpha": alpha,
        "comparisons": comparisons,
        "method": "R power.prop.test (two-sided), alpha / comparisons",
    }


def plan_mde(
    baseline: float,
    n_per_arm: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    comparisons: int = 1,
    variance_reduction: float = 0.0,
) -> dict[str, Any]:
    """Minimum detectable upward effect for ``n_per_arm`` units per arm.

    With ``variance_reduction`` R (CUPED), the MDE of ``n_per_arm / (1 - R)`` units.

    Returns:
        A JSON-ready dict: the inputs, ``mde_absolute``, ``mde_relative``,
        ``target_rate``, ``n_effective``, the unadjusted ``mde_absolute_unadjusted``
        and ``mde_relative_unadjusted``, and ``reason`` (None when solved).
    """
    effective = n_per_arm / (1 - variance_reduction)
    result = stats.mde_for_n(effective, baseline, alpha, power, comparisons)
    unadjusted = stats.mde_for_n(n_per_arm, baseline, alpha, power, comparisons)
    return {
        "calculation": "mde",
        **asdict(result),
        "n_per_arm": n_per_arm,
        "n_effective": effective,
        "variance_reduction": variance_reduction,
        "mde_absolute_unadjusted": unadjusted.mde_absolute,
        "mde_relative_unadjusted": unadjusted.mde_relative,
        "alpha": alpha,
        "comparisons": comparisons,
        "method": "R power.prop.test (two-sided), alpha / comparisons",
    }
