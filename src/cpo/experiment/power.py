"""Power calculations for planning: the library behind ``cpo power``.

Both directions use :mod:`cpo.experiment.stats` (R's ``power.prop.test``,
two-sided two-sample test of proportions, alpha divided by the number of
treatment comparisons):

* :func:`plan_mde`: the minimum detectable upward effect for ``n`` per arm;
* :func:`plan_sample_size`: ``n`` per arm to detect a given effect.
"""

from __future__ import annotations

from dataclasses import asdict
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

    Returns:
        A JSON-ready dict: the inputs, ``n_per_arm`` (fractional, as R prints
        it), ``n_per_arm_ceil`` and ``reason`` (None when solved).
    """
    absolute = effect * baseline if relative else effect
    result = stats.n_for_effect(baseline, absolute, alpha, power, comparisons)
    return {
        "calculation": "sample_size",
        **asdict(result),
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
) -> dict[str, Any]:
    """Minimum detectable upward effect for ``n_per_arm`` units per arm.

    Returns:
        A JSON-ready dict: the inputs, ``mde_absolute``, ``mde_relative``,
        ``target_rate`` and ``reason`` (None when solved).
    """
    result = stats.mde_for_n(n_per_arm, baseline, alpha, power, comparisons)
    return {
        "calculation": "mde",
        **asdict(result),
        "alpha": alpha,
        "comparisons": comparisons,
        "method": "R power.prop.test (two-sided), alpha / comparisons",
    }
