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


def _random_tables(count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """(x1, n1, x2, n2) with sizes from 10 to 10^7 and rates near and far apart."""
    rng = np.random.default_rng(seed)
    tables = []
    for _ in range(count):
        n1, n2 = (int(v) for v in 10 ** rng.uniform(1, 7, 2))
        rate = rng.uniform(0.001, 0.999)
        other = min(max(rate * rng.lognormal(0, 0.1), 0.0), 1.0)
        tables.append((int(rng.binomial(n1, rate)), n1, int(rng.binomial(n2, other)), n2))
    return tables


def test_chi_square_of_a_two_by_two_table_is_scipy_bit_for_bit():
    small = [(x1, n1, x2, n2) for n1 in (10, 23, 60) for n2 in (12, 41)
             for x1 in range(n1 + 1) for x2 in range(0, n2 + 1, 2)]  # fmt: skip
    tested = 0
    for x1, n1, x2, n2 in small + _random_tables(3_000, seed=11):
        result = stats.two_proportion_test(x1, n1, x2, n2)
        if result.test != "chi-square":
            continue
        table = np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=float)
        expected = scipy_stats.chi2_contingency(table, correction=False)
        assert (result.statistic, result.p_value) == (expected.statistic, expected.pvalue)
        tested += 1
    assert tested > 3_000


def test_cmh_statistic_is_statsmodels_bit_for_bit():
    from statsmodels.stats.contingency_tables import StratifiedTable

    rng = np.random.default_rng(12)
    tables = _random_tables(4_000, seed=12)
    for start in range(0, len(tables), 8):
        strata = tables[start : start + int(rng.integers(1, 9))]
        cube = np.stack([[[a, n - a], [c, m - c]] for a, n, c, m in strata], axis=2)
        cube = cube.astype(float)
        if np.all(cube[:, 0, :].sum(0) * cube[:, 1, :].sum(0) == 0):
            continue  # no variation: the caller reports it as degenerate
        expected = StratifiedTable(cube).test_null_odds(correction=False)
        found = stats._mantel_haenszel_statistic(cube)
        assert found == (float(expected.statistic), float(expected.pvalue))


def test_benjamini_hochberg_is_statsmodels_bit_for_bit():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(13)
    for size in [1, 2, 3, 5, 12, 48, 200] * 30:
        values = rng.uniform(0, 1, size) ** rng.uniform(1, 8)
        if rng.random() < 0.3:
            values[rng.integers(0, size, size // 2 + 1)] = values[0]  # ties
        expected = multipletests(values, method="fdr_bh")[1]
        assert stats._benjamini_hochberg_step_up(values).tolist() == expected.tolist()


def test_srm_p_value_is_scipy_chi2_sf_bit_for_bit():
    rng = np.random.default_rng(14)
    for arms in (2, 3, 4, 7):
        for _ in range(200):
            observed = rng.integers(50, 10**6, arms)
            probs = np.full(arms, 1.0 / arms)
            method, p_value, statistic = stats._srm_test(observed, probs)
            assert method == "chi-square"
            assert p_value == float(scipy_stats.chi2.sf(statistic, df=arms - 1))


def _fisher_tables() -> list[tuple[int, int, int, int]]:
    """Every 2x2 table with up to 6 units per row, and random ones up to 2,000 units per row."""
    small = list(itertools.product(range(7), repeat=4))
    rng = np.random.default_rng(11)
    rows = rng.integers(1, 2_000, size=(1_500, 2))
    rates = rng.uniform(0.0, 0.02, size=(1_500, 2))
    events = rng.binomial(rows, rates)
    large = [
        (int(e1), int(n1 - e1), int(e2), int(n2 - e2))
        for (e1, e2), (n1, n2) in zip(events, rows, strict=True)
    ]
    return small + large


def test_fisher_exact_is_scipy_bit_for_bit():
    # scipy.stats.fisher_exact's two-sided p on ~3,900 tables: zero cells, zero margins,
    # symmetric tables (the mode's own p) and sparse rates where the test is used.
    for a, b, c, d in _fisher_tables():
        expected = float(scipy_stats.fisher_exact([[a, b], [c, d]]).pvalue)
        assert stats.fisher_exact_two_sided(a, b, c, d) == min(expected, 1.0), (a, b, c, d)


def test_fisher_exact_matches_published_values():
    # R fisher.test(matrix(c(3,1,1,3),2)) (Fisher's tea tasting): p = 0.4857;
    # Agresti (2002) Table 3.8 also lists 0.486.
    assert round(stats.fisher_exact_two_sided(3, 1, 1, 3), 4) == 0.4857
    # Fagerland et al. (2017) ch. 4, [[0,16],[15,57]]: P = 0.06287.
    assert round(stats.fisher_exact_two_sided(0, 16, 15, 57), 5) == 0.06287
