"""The statistics core's shortcuts give scipy's and statsmodels' answers bit for bit.

stats.py computes the Wilson interval and the normal quantiles itself (to
skip hundreds of milliseconds of argument handling per analysis); the
results must be the very same floats, or published metrics would change.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from cpo.experiment import stats

COUNTS = [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (12, 500), (499, 500), (1, 10**6),
          (333_333, 10**6), (2.0, 9.0), (4.5, 11.0), (10**7 - 1, 10**7)]  # fmt: skip
CONFIDENCES = [0.8, 0.9, 0.95, 0.99, 0.999, 1 - 1e-9]


@pytest.mark.parametrize(("counts", "confidence"), list(itertools.product(COUNTS, CONFIDENCES)))
def test_wilson_bounds_are_statsmodels_bit_for_bit(counts, confidence):
    successes, n = counts
    expected = proportion_confint(successes, n, alpha=1.0 - confidence, method="wilson")
    assert stats._wilson_confint(successes, n, confidence) == expected


def test_normal_quantile_is_scipy_bit_for_bit():
    grid = np.concatenate([np.logspace(-300, -1e-9, 3_000), np.linspace(1e-6, 1 - 1e-6, 3_000)])
    for q in grid:
        assert stats._normal_isf(q) == float(scipy_stats.norm.isf(q))


@pytest.mark.parametrize(
    ("n", "baseline", "effect", "alpha", "comparisons"),
    [(100, 0.1, 0.05, 0.05, 1), (2_500, 0.03, 0.005, 0.05, 3), (40, 0.5, -0.2, 0.01, 2)],
)
def test_power_functions_match_the_scipy_formulas(n, baseline, effect, alpha, comparisons):
    a = alpha / comparisons
    p2 = baseline + effect
    z = scipy_stats.norm.isf(a / 2.0)
    pooled = (baseline + p2) * (1.0 - (baseline + p2) / 2.0)
    spread = math.sqrt(baseline * (1.0 - baseline) + p2 * (1.0 - p2))
    expected = float(
        scipy_stats.norm.cdf((math.sqrt(n) * abs(baseline - p2) - z * math.sqrt(pooled)) / spread)
    )
    assert stats.power_for_n(n, baseline, effect, alpha, comparisons).power == expected
    spread2 = baseline * (1.0 - baseline) + p2 * (1.0 - p2)
    root = (z * math.sqrt(pooled) + scipy_stats.norm.ppf(0.8) * math.sqrt(spread2)) / abs(effect)
    assert stats.n_for_effect(baseline, effect, alpha, 0.8, comparisons).n_per_arm == float(root**2)
