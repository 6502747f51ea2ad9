"""Tests for the pure statistics core, against published reference values.

Every reference value carries its source in a comment. Where a value was
recomputed (because the source prints fewer digits or because a published
figure could not be reproduced), the comment says so.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from scipy import optimize, special, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from cpo.experiment.stats import (
    SRM_MONTE_CARLO_DRAWS,
    Interval,
    benjamini_hochberg,
    cochran_mantel_haenszel,
    holm,
    lift,
    mde_for_n,
    n_for_effect,
    newcombe_difference_interval,
    power_for_n,
    prob_beat_control,
    relative_lift_interval,
    srm_check,
    two_proportion_test,
    wilson_interval,
)

Z95 = stats.norm.isf(0.025)

# Edge cases shared by every function: (x_t, n_t, x_c, n_c).
NO_CLICKS_IN_TREATMENT = (0, 100, 7, 100)
NO_OPENS_IN_CONTROL = (7, 100, 0, 100)
NO_EVENTS_ANYWHERE = (0, 100, 0, 100)
ALL_EVENTS = (100, 100, 100, 100)
EMPTY_TREATMENT = (0, 0, 7, 100)
EMPTY_CONTROL = (7, 100, 0, 0)
SINGLE_CUSTOMER_EACH = [(1, 1, 0, 1), (0, 1, 1, 1), (1, 1, 1, 1), (0, 1, 0, 1)]


def _round4(interval: Interval) -> tuple[float | None, float | None]:
    return (
        None if interval.lower is None else round(interval.lower, 4),
        None if interval.upper is None else round(interval.upper, 4),
    )


# --------------------------------------------------------------------------
# Wilson
# --------------------------------------------------------------------------


# Newcombe RG (1998a) "Two-sided confidence intervals for the single
# proportion: comparison of seven methods", Stat Med 17:857-872, Table I,
# method 3 (Wilson score, no continuity correction).
@pytest.mark.parametrize(
    ("x", "n", "expected"),
    [
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_matches_newcombe_1998a_table_i(x, n, expected):
    assert _round4(wilson_interval(x, n)) == expected


def test_wilson_all_successes_is_mirror_of_zero_successes():
    zero, full = wilson_interval(0, 10), wilson_interval(10, 10)
    assert zero.lower == 0.0 and full.upper == 1.0
    # 0/10 -> upper 0.2775 (Newcombe 1998b, Table II example (f) uses it).
    assert round(zero.upper, 4) == 0.2775
    assert full.lower == pytest.approx(1 - zero.upper, abs=1e-12)


@pytest.mark.parametrize(("x", "n"), [(0, 1), (1, 1), (3, 7), (0, 100_000), (12, 12)])
def test_wilson_agrees_with_statsmodels_and_contains_estimate(x, n):
    ci = wilson_interval(x, n, confidence=0.9)
    lo, hi = proportion_confint(x, n, alpha=0.1, method="wilson")
    assert ci.lower == pytest.approx(lo, abs=1e-12) and ci.upper == pytest.approx(hi, abs=1e-12)
    assert ci.lower <= ci.estimate <= ci.upper and ci.confidence == 0.9


@pytest.mark.parametrize(
    ("x", "n", "code"),
    [
        (0, 0, "empty"),
        (1, 0, "invalid"),
        (-1, 5, "invalid"),
        (6, 5, "invalid"),
        (1, math.nan, "invalid"),
    ],
)
def test_wilson_degenerate_inputs_return_reason(x, n, code):
    ci = wilson_interval(x, n)
    assert ci.lower is None and ci.upper is None and ci.estimate is None
    assert ci.reason.split(":")[0] == code


def test_wilson_rejects_bad_confidence_without_raising():
    assert wilson_interval(3, 10, confidence=1.0).reason.startswith("invalid")


def test_results_are_frozen():
    ci = wilson_interval(3, 10)
    with pytest.raises(FrozenInstanceError):
        ci.lower = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------
# Newcombe difference
# --------------------------------------------------------------------------


# Newcombe RG (1998b) "Interval estimation for the difference between
# independent proportions: comparison of eleven methods", Stat Med 17:873-890,
# Table II, method 10 (hybrid score, no continuity correction).
# Example (c), 6/7 vs 2/7, is recomputed: method 10's formula and statsmodels'
# "newcomb" both give 0.0582 to 0.8062. A figure of 0.0381 to 0.8329 quoted for
# (c) is reproduced neither by method 10 nor by the continuity-corrected
# method 11 (-0.0290 to 0.8423), while (a), (b) and (d)-(h) match to 4 d.p.
NEWCOMBE_TABLE_II = [
    ("a", (56, 70, 48, 80), (0.0524, 0.3339)),
    ("b", (9, 10, 3, 10), (0.1705, 0.8090)),
    ("c", (6, 7, 2, 7), (0.0582, 0.8062)),
    ("d", (5, 56, 0, 29), (-0.0381, 0.1926)),
    ("e", (0, 10, 0, 20), (-0.1611, 0.2775)),
    ("f", (0, 10, 0, 10), (-0.2775, 0.2775)),
    ("g", (10, 10, 0, 20), (0.6791, 1.0000)),
    ("h", (10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("label", "counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_matches_newcombe_1998b_table_ii(label, counts, expected):
    ci = newcombe_difference_interval(*counts)
    assert _round4(ci) == expected, label
    assert ci.reason is None and ci.lower <= ci.estimate <= ci.upper


def test_newcombe_matches_fagerland_perondi_example():
    # Fagerland, Lydersen & Laake (2017) Statistical Analysis of Contingency
    # Tables, ch. 4, Perondi et al. (2004) 7/34 vs 1/34: 0.0189 to 0.3404
    # (R package contingencytables, Newcombe_hybrid_score_CI_2x2).
    assert _round4(newcombe_difference_interval(7, 34, 1, 34)) == (0.0189, 0.3404)


@pytest.mark.parametrize(
    "counts",
    [(0, 5, 0, 7), (5, 5, 0, 7), (5, 5, 7, 7), (1, 1, 0, 1), (3, 40, 17, 23), (0, 1000, 3, 10)],
)
def test_newcombe_agrees_with_statsmodels_on_zero_and_full_cells(counts):
    lo, hi = confint_proportions_2indep(*counts, compare="diff", method="newcomb", alpha=0.1)
    ci = newcombe_difference_interval(*counts, confidence=0.9)
    assert (ci.lower, ci.upper) == pytest.approx((lo, hi), abs=1e-12)


@pytest.mark.parametrize("counts", [EMPTY_TREATMENT, EMPTY_CONTROL, (0, 0, 0, 0)])
def test_newcombe_empty_arm_has_no_bounds(counts):
    ci = newcombe_difference_interval(*counts)
    assert (ci.lower, ci.upper, ci.estimate) == (None, None, None)
    assert ci.reason.startswith("empty")


@pytest.mark.parametrize(
    "counts", [NO_CLICKS_IN_TREATMENT, NO_OPENS_IN_CONTROL, NO_EVENTS_ANYWHERE, ALL_EVENTS]
)
def test_newcombe_zero_and_full_cells_give_finite_bounds(counts):
    ci = newcombe_difference_interval(*counts)
    assert ci.reason is None and -1 <= ci.lower <= ci.estimate <= ci.upper <= 1
    assert ci.upper - ci.lower > 0


@pytest.mark.parametrize("counts", SINGLE_CUSTOMER_EACH)
def test_newcombe_single_customer_per_arm_is_wide(counts):
    ci = newcombe_difference_interval(*counts)
    # One unit per arm: each Wilson interval spans at least 0.79 of [0, 1].
    assert ci.upper - ci.lower > 1.0


# --------------------------------------------------------------------------
# Relative lift (Koopman score interval for the ratio)
# --------------------------------------------------------------------------


def test_relative_lift_matches_koopman_nam_example():
    # Koopman (1984) Biometrics 40:513-517 example, 36/40 vs 16/80; ratio
    # interval 2.940 to 7.152 as given by Nam (1995) Biometrics 51:1293-1305
    # (values recorded in statsmodels' test_proportion.py).
    ci = relative_lift_interval(36, 40, 16, 80)
    assert ci.estimate == pytest.approx(3.5)
    assert round(ci.lower + 1, 3) == 2.940 and round(ci.upper + 1, 3) == 7.152


def test_relative_lift_matches_propcis_and_fagerland_perondi():
    # R PropCIs::riskscoreci(7, 34, 1, 34, 0.95) = 1.220853 to 42.575718
    # (recorded in statsmodels' test suite); Fagerland et al. (2017) ch. 4,
    # Koopman_asymptotic_score_CI_2x2: 1.2209 to 42.5757.
    ci = relative_lift_interval(7, 34, 1, 34)
    assert ci.lower + 1 == pytest.approx(1.220853, abs=1e-6)
    assert ci.upper + 1 == pytest.approx(42.575718, abs=1e-6)


@pytest.mark.parametrize(
    "counts", [(3, 40, 17, 23), (500, 10_000, 450, 10_000), (1, 2, 1, 2), (3, 100_000, 1, 100_000)]
)
def test_relative_lift_agrees_with_statsmodels_interior_cells(counts):
    lo, hi = confint_proportions_2indep(*counts, compare="ratio", method="score", correction=False)
    ci = relative_lift_interval(*counts)
    assert ci.lower + 1 == pytest.approx(lo, rel=1e-6)
    assert ci.upper + 1 == pytest.approx(hi, rel=1e-6)


def _koopman_chi2(theta, x1, n1, x2, n2):
    """Koopman's (1984) statistic with the restricted MLE found numerically.

    Independent of the implementation: maximizes the binomial likelihood
    under p1 = theta * p2 directly instead of solving the quadratic.
    """

    def negloglik(p2):
        p1 = theta * p2
        return -(special.xlogy(x1, p1) + special.xlog1py(n1 - x1, -p1)
                 + special.xlogy(x2, p2) + special.xlog1py(n2 - x2, -p2))  # fmt: skip

    upper = min(1.0, 1.0 / theta)
    p2 = optimize.minimize_scalar(
        negloglik, bounds=(1e-12, upper - 1e-12), method="bounded", options={"xatol": 1e-14}
    ).x
    total = 0.0
    for x, n, p in ((x1, n1, theta * p2), (x2, n2, p2)):
        total += (x - n * p) ** 2 / (n * p * (1 - p))
    return total


@pytest.mark.parametrize(
    "counts",
    [(10, 10, 5, 10), (5, 10, 10, 10), (10, 10, 10, 10), (1, 1, 1, 1), (0, 10, 10, 10),
     (5, 56, 0, 29), (10, 10, 0, 10), (0, 29, 5, 56), (0, 16, 15, 72)],
)  # fmt: skip
def test_relative_lift_bounds_solve_koopman_equation_at_edges(counts):
    # statsmodels returns wrong or complex bounds when an arm has x = n, so the
    # edge cases are checked against the defining equation chi2(theta) = z^2.
    ci = relative_lift_interval(*counts)
    for bound in (ci.lower, ci.upper):
        if bound is not None and bound > -1:
            assert _koopman_chi2(bound + 1, *counts) == pytest.approx(Z95**2, rel=2e-4)


@pytest.mark.parametrize(
    "counts", [(7, 34, 1, 34), (10, 10, 5, 10), (10, 10, 10, 10), (1, 1, 1, 1), (3, 9, 2, 11)]
)
def test_relative_lift_ratio_interval_inverts_when_arms_swap(counts):
    x1, n1, x2, n2 = counts
    forward, backward = relative_lift_interval(*counts), relative_lift_interval(x2, n2, x1, n1)
    assert forward.lower + 1 == pytest.approx(1 / (backward.upper + 1), rel=1e-9)
    assert forward.upper + 1 == pytest.approx(1 / (backward.lower + 1), rel=1e-9)


def test_relative_lift_all_successes_in_both_arms():
    # 10/10 vs 10/10: the score equation has the closed form
    # 10 (1 - theta) / theta = z^2 below 1 and 10 (theta - 1) = z^2 above it.
    ci = relative_lift_interval(10, 10, 10, 10)
    assert ci.lower + 1 == pytest.approx(10 / (10 + Z95**2), rel=1e-9)
    assert ci.upper + 1 == pytest.approx(1 + Z95**2 / 10, rel=1e-9)


@pytest.mark.parametrize("counts", [NO_OPENS_IN_CONTROL, (5, 56, 0, 29), (1, 1, 0, 1)])
def test_relative_lift_control_without_events_is_unbounded_above(counts):
    ci = relative_lift_interval(*counts)
    assert ci.upper is None and ci.estimate is None
    assert ci.reason == "unbounded: control has zero events"
    assert ci.lower is not None and ci.lower > -1


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # statsmodels' inf upper
def test_relative_lift_control_without_events_lower_bound_matches_statsmodels():
    lo, _ = confint_proportions_2indep(
        5, 56, 0, 29, compare="ratio", method="score", correction=False
    )
    assert relative_lift_interval(5, 56, 0, 29).lower + 1 == pytest.approx(lo, rel=1e-6)


@pytest.mark.parametrize("counts", [NO_CLICKS_IN_TREATMENT, (0, 1, 1, 1), (0, 16, 15, 72)])
def test_relative_lift_treatment_without_events_floors_at_minus_one(counts):
    ci = relative_lift_interval(*counts)
    assert ci.lower == -1.0 and ci.estimate == -1.0 and ci.reason is None
    assert ci.upper > -1


@pytest.mark.parametrize("counts", [NO_CLICKS_IN_TREATMENT, (0, 16, 15, 72), (0, 29, 5, 56)])
def test_relative_lift_treatment_without_events_upper_matches_statsmodels(counts):
    _, hi = confint_proportions_2indep(*counts, compare="ratio", method="score", correction=False)
    assert relative_lift_interval(*counts).upper + 1 == pytest.approx(hi, rel=1e-6)


@pytest.mark.parametrize(
    ("counts", "code"),
    [(NO_EVENTS_ANYWHERE, "undefined"), ((0, 1, 0, 1), "undefined"),
     (EMPTY_TREATMENT, "empty"), (EMPTY_CONTROL, "empty"), ((3, 2, 1, 5), "invalid")],
)  # fmt: skip
def test_relative_lift_degenerate_cases_have_reasons(counts, code):
    ci = relative_lift_interval(*counts)
    assert (ci.lower, ci.upper) == (None, None) and ci.reason.startswith(code)


def test_relative_lift_single_customer_both_converted():
    ci = relative_lift_interval(1, 1, 1, 1)
    assert ci.estimate == 0.0 and ci.lower < 0 < ci.upper and ci.reason is None


# --------------------------------------------------------------------------
# Two-proportion test
# --------------------------------------------------------------------------


def test_fisher_tea_tasting():
    # Fisher (1935) The Design of Experiments, lady tasting tea [[3,1],[1,3]];
    # R fisher.test(matrix(c(3,1,1,3),2)) two-sided p = 0.4857.
    result = two_proportion_test(3, 4, 1, 4)
    assert result.test == "fisher-exact" and round(result.p_value, 4) == 0.4857
    assert result.min_expected == 2.0


def test_fisher_with_a_zero_cell_matches_fagerland():
    # Fagerland et al. (2017) ch. 4, Ritland et al. (2007) CHRNA4/XFS table
    # [[0,16],[15,57]]: Fisher exact test P = 0.06287 (contingencytables tests).
    result = two_proportion_test(0, 16, 15, 72)
    assert result.test == "fisher-exact" and round(result.p_value, 5) == 0.06287


def test_chi_square_matches_closed_form_pearson_for_aspirin_trial():
    # Physicians' Health Study (aspirin vs placebo, myocardial infarction),
    # Agresti, An Introduction to Categorical Data Analysis (2007) Table 2.3:
    # placebo 189/11034, aspirin 104/11037. Pearson X^2 = 25.01; the value
    # below is the defining closed form N(ad - bc)^2 / (n1 n2 m1 m2), which is
    # what R's prop.test(c(189, 104), c(11034, 11037), correct = FALSE) reports.
    a, b, c, d = 189, 11034 - 189, 104, 11037 - 104
    n = a + b + c + d
    x2 = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    result = two_proportion_test(189, 11034, 104, 11037)
    assert result.test == "chi-square" and round(result.statistic, 2) == 25.01
    assert result.statistic == pytest.approx(x2, rel=1e-12)
    assert result.p_value == pytest.approx(stats.chi2.sf(x2, 1), rel=1e-9)


def test_switches_to_fisher_when_an_expected_cell_is_below_five():
    # Perondi 7/34 vs 1/34: smallest expected cell is exactly 4.
    result = two_proportion_test(7, 34, 1, 34)
    assert result.test == "fisher-exact" and result.min_expected == pytest.approx(4.0)
    assert result.statistic is None and 0.05 < result.p_value < 0.06


@pytest.mark.parametrize(
    ("counts", "code"),
    [(EMPTY_TREATMENT, "empty"), (EMPTY_CONTROL, "empty"), ((0, 0, 0, 0), "empty"),
     (NO_EVENTS_ANYWHERE, "degenerate"), (ALL_EVENTS, "degenerate"), ((0, 1, 0, 1), "degenerate"),
     ((1, 1, 1, 1), "degenerate"), ((2, 1, 0, 1), "invalid")],
)  # fmt: skip
def test_two_proportion_test_never_returns_a_silent_p_of_one(counts, code):
    result = two_proportion_test(*counts)
    assert result.p_value is None and result.test is None and result.reason.startswith(code)


@pytest.mark.parametrize("counts", [NO_CLICKS_IN_TREATMENT, NO_OPENS_IN_CONTROL])
def test_two_proportion_test_zero_events_in_one_arm_is_testable(counts):
    result = two_proportion_test(*counts)
    # 0/100 vs 7/100: expected event cells are 3.5 -> Fisher. With equal arms
    # the hypergeometric is symmetric, so p = 2 P(all 7 events in one arm).
    p = stats.hypergeom(200, 7, 100).pmf(0) * 2
    assert result.test == "fisher-exact" and result.p_value == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("counts", [(1, 1, 0, 1), (0, 1, 1, 1)])
def test_single_customer_per_arm_gives_exact_p_of_one(counts):
    # The only two tables with one event are equally likely: p = 1 exactly,
    # and it is a computed Fisher p-value, not a default.
    result = two_proportion_test(*counts)
    assert result.test == "fisher-exact" and result.p_value == 1.0 and result.reason is None


# --------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------

P_FIVE = [0.01, 0.02, 0.03, 0.04, 0.05]


def test_holm_small_example():
    # Holm (1979) Scand J Stat 6:65-70, by definition (equivalently R
    # p.adjust(c(.01,.02,.03,.04,.05), "holm")): sorted p times (5, 4, 3, 2, 1)
    # = .05 .08 .09 .08 .05, made monotone by a running maximum.
    assert holm(P_FIVE) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])


def test_bh_small_example():
    # BH by definition (equivalently R p.adjust(..., "BH")): p_(i) * 5 / i = .05.
    assert benjamini_hochberg(P_FIVE) == pytest.approx([0.05] * 5)


# Benjamini & Hochberg (1995) JRSS B 57:289-300, worked example (Neuhaus et al.
# 1992 thrombolysis trial in myocardial infarction): 15 p-values; at q = 0.05
# the BH procedure rejects the four smallest while Bonferroni rejects three.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
           0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]  # fmt: skip


def test_bh_rejects_four_in_the_benjamini_hochberg_example():
    adjusted = benjamini_hochberg(BH_1995)
    assert sum(p <= 0.05 for p in adjusted) == 4
    assert adjusted[3] == pytest.approx(0.0095 * 15 / 4)


def test_holm_rejects_three_in_the_benjamini_hochberg_example():
    # Holm: 0.0095 * 12 = 0.114 > 0.05 stops at the fourth hypothesis.
    assert sum(p <= 0.05 for p in holm(BH_1995)) == 3


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_adjustment_skips_none_and_uses_present_family_size(adjust):
    with_gaps = adjust([0.01, None, 0.03, float("nan"), 0.02])
    assert with_gaps[1] is None and with_gaps[3] is None
    present = adjust([0.01, 0.03, 0.02])
    assert [with_gaps[0], with_gaps[2], with_gaps[4]] == pytest.approx(present)


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_adjustment_of_nothing(adjust):
    assert adjust([]) == [] and adjust([None, None]) == [None, None]


def test_holm_matches_statsmodels_multipletests():
    # The step-down is computed directly; statsmodels multipletests(method="holm")
    # is the reference implementation (ties and values that cap at 1 included).
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(5)
    for size in (1, 2, 3, 7, 40):
        p = rng.uniform(0, 0.6, size) ** 2
        p[: size // 3] = p[0]  # ties
        assert holm(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_holm_single_p_value_is_unchanged():
    assert holm([0.03]) == [pytest.approx(0.03)]


# --------------------------------------------------------------------------
# Cochran-Mantel-Haenszel
# --------------------------------------------------------------------------

# Agresti (2013) Categorical Data Analysis, 3rd ed., p. 226: multi-centre
# clinical trial (Beitler & Landis 1985), eight centres, (drug x/n, control x/n).
AGRESTI_CENTRES = [(11, 36, 10, 37), (16, 20, 22, 32), (14, 19, 7, 19), (2, 16, 1, 17),
                   (6, 17, 0, 12), (1, 11, 0, 10), (1, 5, 1, 9), (4, 6, 6, 7)]  # fmt: skip


def test_cmh_matches_agresti_multicentre_trial():
    # Agresti (2013) p. 226-231: CMH = 6.38 (df 1, P = 0.012); Mantel-Haenszel
    # risk difference 0.130 with Sato SE 0.050. The 95% interval
    # 0.0313 to 0.2284 is R cardx::ci_prop_diff_mh_strata (Sato variance).
    result = cochran_mantel_haenszel(AGRESTI_CENTRES)
    assert round(result.statistic, 2) == 6.38 and round(result.p_value, 3) == 0.012
    assert round(result.risk_difference, 3) == 0.130
    assert (round(result.lower, 4), round(result.upper, 4)) == (0.0313, 0.2284)
    se = (result.upper - result.lower) / (2 * Z95)
    assert round(se, 3) == 0.050
    assert (result.strata_used, result.strata_dropped, result.reason) == (8, 0, None)


def test_cmh_matches_fagerland_doll_hill():
    # Fagerland et al. (2017) ch. 10, Doll & Hill (1950) smoking and lung
    # cancer, stratified by sex: CMH T0 = 24.920 and Mantel-Haenszel risk
    # difference 0.3294 (R package contingencytables, tests/testthat/test-ch10.R).
    result = cochran_mantel_haenszel([(647, 1269, 2, 29), (41, 69, 19, 51)])
    assert round(result.statistic, 3) == 24.920
    assert round(result.risk_difference, 4) == 0.3294


def test_cmh_keeps_strata_without_variation_like_r():
    # R ?mantelhaen.test "Penicillin and Rabbits" (Agresti 1990, pp. 231-237): two of
    # five strata have no variation (0/6 vs 0/5 and 2/2 vs 5/5). R reports
    # Mantel-Haenszel X-squared = 3.9286 (with continuity correction), i.e.
    # (|S| - 0.5)^2 / V; our uncorrected statistic must be S^2 / V for the same
    # S = sum(a - E[a]) and V = sum n_t n_c m_1 m_0 / (N^2 (N - 1)).
    rabbits = [(0, 6, 0, 5), (3, 6, 0, 6), (6, 6, 2, 6), (5, 6, 6, 6), (2, 2, 5, 5)]
    s = v = 0.0
    for a, n_t, c, n_c in rabbits:
        total, events = n_t + n_c, a + c
        s += a - n_t * events / total
        v += n_t * n_c * events * (total - events) / (total**2 * (total - 1))
    assert round((abs(s) - 0.5) ** 2 / v, 4) == 3.9286
    result = cochran_mantel_haenszel(rabbits)
    assert result.statistic == pytest.approx(s**2 / v, rel=1e-12) and result.strata_used == 5
    with_strata_dropped = cochran_mantel_haenszel(rabbits[1:4])
    assert result.statistic == pytest.approx(with_strata_dropped.statistic, rel=1e-12)


def test_cmh_drops_and_counts_strata_with_an_empty_arm():
    with_empty = [*AGRESTI_CENTRES, (0, 0, 3, 9), (4, 7, 0, 0), (0, 0, 0, 0)]
    result = cochran_mantel_haenszel(with_empty)
    reference = cochran_mantel_haenszel(AGRESTI_CENTRES)
    assert (result.strata_used, result.strata_dropped) == (8, 3)
    assert result.p_value == pytest.approx(reference.p_value, rel=1e-12)
    assert result.risk_difference == pytest.approx(reference.risk_difference, rel=1e-12)


@pytest.mark.parametrize(
    ("strata", "code"),
    [([], "empty"), ([EMPTY_TREATMENT, EMPTY_CONTROL], "empty"),
     ([NO_EVENTS_ANYWHERE, (0, 5, 0, 9)], "degenerate"), ([ALL_EVENTS], "degenerate"),
     ([(0, 1, 0, 1)], "degenerate"), ([(5, 4, 1, 4)], "invalid"), ([(1, 2, 3)], "invalid")],
)  # fmt: skip
def test_cmh_degenerate_inputs_have_no_p_value(strata, code):
    result = cochran_mantel_haenszel(strata)
    assert result.p_value is None and result.reason.startswith(code)


def test_cmh_no_events_reports_zero_difference_without_interval():
    result = cochran_mantel_haenszel([NO_EVENTS_ANYWHERE])
    assert result.risk_difference == 0.0 and result.lower is None and result.upper is None


@pytest.mark.parametrize(
    "strata", [[NO_CLICKS_IN_TREATMENT], [NO_OPENS_IN_CONTROL], SINGLE_CUSTOMER_EACH[:2]]
)
def test_cmh_zero_event_arms_and_single_customers_are_computed(strata):
    result = cochran_mantel_haenszel(strata)
    assert result.p_value is not None and 0 < result.p_value <= 1
    assert result.lower <= result.risk_difference <= result.upper


def test_cmh_single_stratum_equals_pearson_times_n_minus_one_over_n():
    # With one stratum the CMH statistic is (N - 1)/N times Pearson's X^2 (the
    # hypergeometric variance divides by N - 1): a check that no continuity
    # correction is applied.
    counts = (189, 11034, 104, 11037)
    n = counts[1] + counts[3]
    cmh = cochran_mantel_haenszel([counts]).statistic
    assert cmh == pytest.approx(two_proportion_test(*counts).statistic * (n - 1) / n, rel=1e-12)


# --------------------------------------------------------------------------
# Sample-ratio mismatch
# --------------------------------------------------------------------------


def test_srm_kohavi_example():
    # Kohavi, Tang & Xu (2020) Trustworthy Online Controlled Experiments,
    # ch. 21 (sample ratio mismatch; see also Fabijan et al. 2019, KDD,
    # "Diagnosing Sample Ratio Mismatch"): 821,588 vs 815,482 users at 50/50
    # gives p = 1.8e-6.
    result = srm_check([821_588, 815_482], [0.5, 0.5])
    assert result.method == "chi-square" and result.mismatch is True
    assert f"{result.p_value:.1e}" == "1.8e-06"
    assert result.expected == (818_535.0, 818_535.0)


def test_srm_chi_square_matches_fagerland_snp_example():
    # Fagerland et al. (2017) ch. 3, SNP rs6498169 genotypes (276, 380, 118)
    # against (0.402, 0.479, 0.119): Pearson T = 11.481, P = 0.00321.
    result = srm_check([276, 380, 118], [0.402, 0.479, 0.119])
    assert result.method == "chi-square"
    assert round(result.statistic, 3) == 11.481 and round(result.p_value, 5) == 0.00321
    assert result.mismatch is False  # 0.00321 > alpha = 0.001


def test_srm_exact_multinomial_matches_fagerland_subset():
    # Fagerland et al. (2017) ch. 3, 10-patient subset (6, 1, 3): exact
    # multinomial test P = 0.04792 (expected counts 4.02, 4.79, 1.19 < 5).
    result = srm_check([6, 1, 3], [0.402, 0.479, 0.119])
    assert result.method == "exact-multinomial" and round(result.p_value, 5) == 0.04792


def test_srm_exact_two_arms_agrees_with_binomial_enumeration():
    # Two arms, 4 units, 50/50: every split is as or more extreme than (3, 1)
    # except (2, 2), so p = 1 - C(4,2)/16 = 10/16.
    result = srm_check([3, 1], [0.5, 0.5])
    assert result.method == "exact-multinomial" and result.p_value == pytest.approx(10 / 16)


def test_srm_monte_carlo_is_seeded_and_deterministic():
    observed, shares = [990, 10, 0, 0], [0.997, 0.001, 0.001, 0.001]
    first, second = srm_check(observed, shares), srm_check(observed, shares)
    assert first.method == "monte-carlo-multinomial" and first == second
    # X^2 = 83 on 3 df is far in the tail: no draw is as extreme.
    assert first.p_value == pytest.approx(1 / (SRM_MONTE_CARLO_DRAWS + 1))
    assert first.mismatch is True


def test_srm_monte_carlo_matches_exact_where_both_are_possible(monkeypatch):
    import cpo.experiment.stats as module

    exact = srm_check([6, 1, 3], [0.402, 0.479, 0.119]).p_value
    monkeypatch.setattr(module, "SRM_EXACT_ENUMERATION_LIMIT", 0)
    approx = srm_check([6, 1, 3], [0.402, 0.479, 0.119])
    assert approx.method == "monte-carlo-multinomial"
    assert approx.p_value == pytest.approx(exact, abs=0.003)


@pytest.mark.parametrize(
    ("observed", "shares"),
    [([1000, 0], [0.5, 0.5]), ([40, 40, 0], [1, 1, 1]), ([10, 0], [0.5, 0.5])],
)
def test_srm_empty_arm_with_enough_expected_is_always_flagged(observed, shares):
    result = srm_check(observed, shares)
    assert result.mismatch is True and result.reason.startswith("empty-arm")


def test_srm_empty_arm_flag_does_not_depend_on_alpha():
    # 0 of 10 with 5 expected: p = 2/1024 > 0.001, flagged by the empty-arm rule.
    result = srm_check([10, 0], [0.5, 0.5], alpha=1e-6)
    assert result.p_value > 1e-6 and result.mismatch is True


def test_srm_empty_arm_with_little_expected_is_left_to_the_test():
    result = srm_check([3, 0], [0.5, 0.5])
    assert result.reason is None and result.mismatch is False


def test_srm_units_in_a_zero_share_arm_are_impossible():
    result = srm_check([50, 50, 1], [0.5, 0.5, 0.0])
    assert result.mismatch is True and result.p_value is None
    assert result.reason.startswith("impossible")


def test_srm_zero_share_arm_without_units_is_ignored():
    assert srm_check([50, 50, 0], [0.5, 0.5, 0.0]).p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("observed", "shares", "code"),
    [([0, 0], [0.5, 0.5], "empty"), ([5, 5], [1.0, 0.0, 0.0], "invalid"),
     ([5], [1.0], "invalid"), ([5, -1], [0.5, 0.5], "invalid"), ([5, 5], [0.0, 0.0], "invalid"),
     ([5, 0], [1.0, 0.0], "degenerate"), ([2.5, 3], [0.5, 0.5], "invalid")],
)  # fmt: skip
def test_srm_degenerate_inputs_have_reasons(observed, shares, code):
    result = srm_check(observed, shares)
    assert result.p_value is None and result.reason.startswith(code)


def test_srm_single_unit_per_arm_is_balanced():
    result = srm_check([1, 1], [0.5, 0.5])
    assert result.method == "exact-multinomial" and result.p_value == pytest.approx(1.0)
    assert result.mismatch is False


def test_srm_normalises_shares():
    assert srm_check([30, 70], [3, 7]).p_value == pytest.approx(1.0)


# --------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------


def test_n_for_effect_matches_r_power_prop_test():
    # R ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90)
    # => n = 76.7 (R solves with uniroot; the closed form gives 76.7069).
    result = n_for_effect(0.5, 0.25, alpha=0.05, power=0.9)
    assert round(result.n_per_arm, 1) == 76.7 and result.n_per_arm_ceil == 77


@pytest.mark.parametrize(
    ("baseline", "effect", "alpha", "power", "expected"),
    [
        # R ?power.prop.test: p1 = .5, p2 = .501, sig.level = .001, power = .9
        # => n = 10451937.
        (0.5, 0.001, 0.001, 0.9, 10_451_937),
        # R ?power.prop.test: p1 = .90, p2 = 1.0, power = .8 => n = 73.37.
        (0.9, 0.1, 0.05, 0.8, 73.37),
    ],
)
def test_n_for_effect_other_r_examples(baseline, effect, alpha, power, expected):
    result = n_for_effect(baseline, effect, alpha=alpha, power=power)
    assert result.n_per_arm == pytest.approx(expected, abs=0.5 if expected > 1000 else 0.005)


def test_mde_for_n_matches_r_power_prop_test():
    # R ?power.prop.test: power.prop.test(n = 50, p1 = .5, power = .90) => p2 = 0.8026.
    result = mde_for_n(50, 0.5, alpha=0.05, power=0.9)
    assert round(result.target_rate, 4) == 0.8026
    assert result.mde_absolute == pytest.approx(result.target_rate - 0.5)
    assert result.mde_relative == pytest.approx(result.mde_absolute / 0.5)


def test_mde_and_n_are_inverse():
    mde = mde_for_n(1234, 0.03, alpha=0.05, power=0.8).mde_absolute
    assert n_for_effect(0.03, mde, alpha=0.05, power=0.8).n_per_arm == pytest.approx(1234, rel=1e-8)


def test_bonferroni_adjustment_uses_alpha_over_comparisons():
    three = n_for_effect(0.1, 0.02, alpha=0.05, power=0.8, n_comparisons=3)
    direct = n_for_effect(0.1, 0.02, alpha=0.05 / 3, power=0.8)
    assert three.alpha_per_comparison == pytest.approx(0.05 / 3)
    assert three.n_per_arm == pytest.approx(direct.n_per_arm)
    assert mde_for_n(500, 0.1, n_comparisons=3).mde_absolute > mde_for_n(500, 0.1).mde_absolute


def test_mde_unreachable_is_reported():
    # R ?power.prop.test: power.prop.test(n = 30, p1 = 0.90, power = 0.8) warns
    # that no p2 in [p1, 1] achieves the power.
    result = mde_for_n(30, 0.9, alpha=0.05, power=0.8)
    assert result.mde_absolute is None and result.reason.startswith("unreachable")


@pytest.mark.parametrize("baseline", [0.0, 1.0, -0.1, 1.5])
def test_power_with_degenerate_baseline_returns_reason(baseline):
    assert mde_for_n(100, baseline).reason.startswith("invalid")
    assert n_for_effect(baseline, 0.01).n_per_arm is None


@pytest.mark.parametrize("n", [0, -5])
def test_mde_for_empty_arms_returns_reason(n):
    result = mde_for_n(n, 0.1)
    assert result.mde_absolute is None and result.reason.startswith("invalid")


@pytest.mark.parametrize(
    ("effect", "alpha", "power", "k"),
    [(0.0, 0.05, 0.8, 1), (0.95, 0.05, 0.8, 1), (0.01, 0.0, 0.8, 1), (0.01, 0.05, 1.0, 1),
     (0.01, 0.05, 0.8, 0), (0.01, 0.05, 0.8, 1.5)],
)  # fmt: skip
def test_n_for_effect_invalid_inputs_return_reason(effect, alpha, power, k):
    result = n_for_effect(0.1, effect, alpha=alpha, power=power, n_comparisons=k)
    assert result.n_per_arm is None and result.reason.startswith("invalid")


def test_power_for_n_matches_r_power_prop_test():
    # R ?power.prop.test: power.prop.test(n = 50, p1 = .50, p2 = .75) => power = 0.7401659.
    result = power_for_n(50, 0.5, 0.25)
    assert result.power == pytest.approx(0.7401659, abs=1e-6)
    assert result.reason is None and result.alpha_per_comparison == 0.05


def test_power_for_n_inverts_n_for_effect_and_mde():
    # At the n that n_for_effect returns, the power is the target power (same formula).
    n = n_for_effect(0.04, 0.01, alpha=0.05, power=0.8, n_comparisons=3).n_per_arm
    assert power_for_n(n, 0.04, 0.01, alpha=0.05, n_comparisons=3).power == pytest.approx(0.8)
    mde = mde_for_n(777, 0.2, power=0.9).mde_absolute
    assert power_for_n(777, 0.2, mde).power == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("n", "baseline", "effect"), [(0, 0.1, 0.01), (100, 0.0, 0.01), (100, 0.9, 0.2)]
)
def test_power_for_n_invalid_inputs_return_reason(n, baseline, effect):
    result = power_for_n(n, baseline, effect)
    assert result.power is None and result.reason.startswith("invalid")


def test_n_for_negative_effect_is_symmetric_in_arm_labels():
    # R's formula depends on |p1 - p2| and is symmetric in (p1, p2).
    down = n_for_effect(0.5, -0.25, power=0.9).n_per_arm
    up = n_for_effect(0.25, 0.25, power=0.9).n_per_arm
    assert down == pytest.approx(up)


# --------------------------------------------------------------------------
# Bayesian
# --------------------------------------------------------------------------


def _evan_miller(a_t, b_t, a_c, b_c):
    """P(p_t > p_c) for integer a_t, closed form from Evan Miller (2015),
    "Formulas for Bayesian A/B Testing" (evanmiller.org/bayesian-ab-testing.html)."""
    total = 0.0
    for i in range(int(a_t)):
        total += math.exp(
            special.betaln(a_c + i, b_c + b_t)
            - math.log(b_t + i)
            - special.betaln(1 + i, b_t)
            - special.betaln(a_c, b_c)
        )
    return total


@pytest.mark.parametrize(
    "counts",
    [(3, 10, 1, 10), (0, 5, 0, 5), (5, 5, 0, 5), (12, 40, 20, 45), (1, 1, 0, 1), (0, 1, 1, 1)],
)
def test_prob_beat_control_matches_evan_miller_closed_form(counts):
    x_t, n_t, x_c, n_c = counts
    expected = _evan_miller(1 + x_t, 1 + n_t - x_t, 1 + x_c, 1 + n_c - x_c)
    assert prob_beat_control(*counts).prob_beat_control == pytest.approx(expected, abs=1e-9)


def test_prob_beat_control_is_exact_and_quiet_when_one_arm_is_almost_surely_ahead():
    # 122/140 vs 106/160: P(beat) = 0.99999; no warning reaches the user.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = prob_beat_control(122, 140, 106, 160)
    expected = _evan_miller(1 + 122, 1 + 140 - 122, 1 + 106, 1 + 160 - 106)
    assert result.prob_beat_control == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("counts", [(10, 100, 10, 100), (0, 100, 0, 100), ALL_EVENTS, (1, 1, 1, 1)])
def test_prob_beat_control_symmetric_data_is_one_half(counts):
    result = prob_beat_control(*counts)
    assert result.prob_beat_control == pytest.approx(0.5, abs=1e-9)
    assert result.expected_loss_treatment == pytest.approx(result.expected_loss_control, abs=1e-12)


def test_prob_beat_control_single_customer_each_closed_form():
    # 1/1 vs 0/1 with a uniform prior: Beta(2,1) vs Beta(1,2), so
    # P = integral_0^1 2x (1 - (1-x)^2) dx = 4/3 - 1/2 = 5/6.
    assert prob_beat_control(1, 1, 0, 1).prob_beat_control == pytest.approx(5 / 6, abs=1e-12)


def test_expected_loss_closed_form_for_single_customers_without_clicks():
    # 0/1 vs 0/1 with a uniform prior: both posteriors Beta(1, 2), F(t) = 2t - t^2.
    # For iid X, Y: E|X - Y| = 2 * integral F (1 - F) dt = 2 * 2/15 (Gini mean
    # difference), so each one-sided expected loss is 2/15.
    result = prob_beat_control(0, 1, 0, 1)
    assert result.expected_loss_treatment == pytest.approx(2 / 15, abs=1e-10)
    assert result.expected_loss_control == pytest.approx(2 / 15, abs=1e-10)


def test_expected_loss_closed_form_for_uniform_priors_via_prior_only():
    # A prior of Beta(1, 1) updated by 1/2 in both arms gives Beta(2, 2) twice;
    # E|X - Y| = 2 * integral F(1 - F) with F = 3t^2 - 2t^3, which is 2 * 9/70,
    # so each one-sided expected loss is 9/70.
    result = prob_beat_control(1, 2, 1, 2)
    assert result.expected_loss_treatment == pytest.approx(9 / 70, abs=1e-10)


@pytest.mark.parametrize(
    "counts",
    [(100_000, 10_000_000, 101_000, 10_000_000), (5, 1000, 50, 100_000), (0, 10, 500, 1000)],
)
def test_bayes_large_and_lopsided_counts_agree_with_seeded_monte_carlo(counts):
    x_t, n_t, x_c, n_c = counts
    rng = np.random.default_rng(7)
    draws_t = rng.beta(1 + x_t, 1 + n_t - x_t, 2_000_000)
    draws_c = rng.beta(1 + x_c, 1 + n_c - x_c, 2_000_000)
    result = prob_beat_control(*counts)
    assert result.prob_beat_control == pytest.approx(np.mean(draws_t > draws_c), abs=2e-3)
    loss_t = np.mean(np.maximum(draws_c - draws_t, 0))
    assert result.expected_loss_treatment == pytest.approx(loss_t, rel=0.02, abs=1e-8)


def test_bayes_is_deterministic_and_respects_the_prior():
    first = prob_beat_control(3, 10, 1, 10, prior=(2, 8))
    assert first == prob_beat_control(3, 10, 1, 10, prior=(2, 8))
    assert first.prior == (2.0, 8.0)
    expected = _evan_miller(2 + 3, 8 + 7, 2 + 1, 8 + 9)
    assert first.prob_beat_control == pytest.approx(expected, abs=1e-9)


def test_bayes_zero_event_arms_mirror_each_other():
    no_clicks = prob_beat_control(*NO_CLICKS_IN_TREATMENT)
    no_opens = prob_beat_control(*NO_OPENS_IN_CONTROL)
    assert no_clicks.prob_beat_control < 0.01
    assert no_opens.prob_beat_control == pytest.approx(1 - no_clicks.prob_beat_control, abs=1e-9)
    assert no_clicks.expected_loss_treatment == pytest.approx(no_opens.expected_loss_control)


@pytest.mark.parametrize(
    ("counts", "prior", "code"),
    [(EMPTY_TREATMENT, (1, 1), "empty"), (EMPTY_CONTROL, (1, 1), "empty"),
     ((0, 0, 0, 0), (1, 1), "empty"), ((3, 2, 0, 2), (1, 1), "invalid"),
     ((1, 2, 1, 2), (0, 1), "invalid")],
)  # fmt: skip
def test_bayes_degenerate_inputs_have_reasons(counts, prior, code):
    result = prob_beat_control(*counts, prior=prior)
    assert result.prob_beat_control is None and result.reason.startswith(code)


# --------------------------------------------------------------------------
# Lift
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("treatment", "control", "absolute", "percent"),
    [(0.12, 0.10, 0.02, 20.0), (0.05, 0.10, -0.05, -50.0), (0.0, 0.1, -0.1, -100.0),
     (0.1, 0.0, 0.1, None), (0.0, 0.0, 0.0, None)],
)  # fmt: skip
def test_lift(treatment, control, absolute, percent):
    result = lift(treatment, control)
    absolute_out, percent_out = result  # unpacks as a pair
    assert absolute_out == pytest.approx(absolute)
    assert percent_out == (None if percent is None else pytest.approx(percent))
    assert result.absolute == absolute_out


# --------------------------------------------------------------------------
# Bayesian: accuracy against a high-precision (mpmath) reference
# --------------------------------------------------------------------------
# P(X > Y) for X ~ Beta(a, b), Y ~ Beta(c, d) with integer a: Evan Miller,
# "Formulas for Bayesian A/B Testing" (2015, evanmiller.org/bayesian-ab-testing.html),
#     P = sum_{i<a} B(c + i, d + b) / ((b + i) B(1 + i, b) B(c, d)),
# evaluated here at 40 significant digits. Which arm is summed follows from
# P(X > Y) = 1 - P(Y > X) = P(1 - Y > 1 - X), choosing the smallest integer
# first parameter. Expected losses: E[max(p_c - p_t, 0)] =
# m_c P(p_c' > p_t) - m_t P(p_c > p_t'), m the posterior means and ' the
# posterior with alpha + 1 (Chris Stucchio, "Bayesian A/B Testing at VWO",
# 2015, section 5; E[p 1{A}] = m P'(A) by size-biasing the Beta density).
mpmath = pytest.importorskip("mpmath")


def _mp_miller(a, b, c, d):
    """Evan Miller's sum for integer ``a`` at 40 digits."""
    with mpmath.workdps(40):
        norm = mpmath.beta(c, d)
        return mpmath.fsum(
            mpmath.beta(c + i, d + b) / ((b + i) * mpmath.beta(1 + i, b) * norm)
            for i in range(int(a))
        )


def _mp_greater(a, b, c, d):
    """High-precision P(Beta(a, b) > Beta(c, d)) for integer parameters."""
    options = [
        (a, lambda: _mp_miller(a, b, c, d)),
        (c, lambda: 1 - _mp_miller(c, d, a, b)),
        (d, lambda: _mp_miller(d, c, b, a)),
        (b, lambda: 1 - _mp_miller(b, a, d, c)),
    ]
    return min(options, key=lambda option: option[0])[1]()


def _mp_quad_greater(a, b, c, d):
    """High-precision P(Beta(a, b) > Beta(c, d)) by mpmath quadrature (any parameters).

    ``int_0^1 f_Y(y) (1 - I_y(a, b)) dy`` split at both posteriors' bulk.
    """
    with mpmath.workdps(25):
        a, b, c, d = (mpmath.mpf(v) for v in (a, b, c, d))
        log_norm = mpmath.log(mpmath.beta(c, d))

        def integrand(y):
            density = mpmath.exp((c - 1) * mpmath.log(y) + (d - 1) * mpmath.log1p(-y) - log_norm)
            return density * mpmath.betainc(b, a, 0, 1 - y, regularized=True)

        points = {mpmath.mpf(0), mpmath.mpf(1)}
        for p, q in ((a, b), (c, d)):
            mean = p / (p + q)
            sd = mpmath.sqrt(mean * (1 - mean) / (p + q + 1))
            points |= {min(1, max(0, mean + k * sd)) for k in (-30, -8, -3, 0, 3, 8, 30)}
        return mpmath.quad(integrand, sorted(points))


def _mp_bayes(x_t, n_t, x_c, n_c, prior, greater):
    """(P(p_t > p_c), loss of shipping treatment, loss of keeping control) at high precision."""
    a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
    a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
    mean_t = mpmath.mpf(a_t) / (a_t + b_t)
    mean_c = mpmath.mpf(a_c) / (a_c + b_c)
    p_beat = greater(a_t, b_t, a_c, b_c)
    loss_t = mean_c * greater(a_c + 1, b_c, a_t, b_t) - mean_t * greater(a_c, b_c, a_t + 1, b_t)
    return p_beat, loss_t, loss_t + mean_t - mean_c


# (x_t, n_t, x_c, n_c): three tail cases (the former quad integral was off by up
# to 4.6e-6 there), all-success and all-failure arms, zero-event arms, 10^6 units.
INTEGER_PRIOR_GRID = [
    (9, 9, 33, 120),
    (800, 800, 4924, 5000),
    (8, 9, 171, 800),
    (50, 50, 50, 50),
    (50, 50, 0, 50),
    (0, 200, 0, 3),
    (0, 40, 6, 40),
    (0, 1, 0, 1),
    (1_000_000, 1_000_000, 999_990, 1_000_000),
    (0, 1_000_000, 12, 1_000_000),
    (1_000_000, 1_000_000, 3, 3),
    (3120, 1_000_000, 3000, 1_000_000),
    (7, 1_000_000, 0, 1_000_000),
]


@pytest.mark.parametrize("prior", [(1, 1), (2, 8)])
@pytest.mark.parametrize("counts", INTEGER_PRIOR_GRID)
def test_bayes_matches_high_precision_reference_with_integer_priors(counts, prior):
    expected = _mp_bayes(*counts, prior, _mp_greater)
    result = prob_beat_control(*counts, prior=prior)
    got = (result.prob_beat_control, result.expected_loss_treatment, result.expected_loss_control)
    for value, reference in zip(got, expected, strict=True):
        assert value == pytest.approx(float(reference), abs=1e-7)


def test_bayes_tail_cases_of_issue_12_are_accurate_in_the_tail():
    # 1 - P is ~7e-6 here; the quad version was off by a factor of 3.
    for counts in [(9, 9, 33, 120), (800, 800, 4924, 5000), (8, 9, 171, 800)]:
        tail = 1 - _mp_bayes(*counts, (1, 1), _mp_greater)[0]
        got = 1 - prob_beat_control(*counts).prob_beat_control
        assert got == pytest.approx(float(tail), rel=1e-6)


# Non-integer priors (Jeffreys, a fractional prior) take the general path with
# a numerical remainder; the reference is mpmath quadrature.
@pytest.mark.parametrize(
    ("counts", "prior"),
    [((9, 9, 33, 120), (0.5, 0.5)), ((0, 30, 4, 30), (0.5, 0.5)), ((25, 25, 25, 25), (0.3, 1.7)),
     ((3, 40, 1, 12), (1.5, 2.5)), ((0, 5, 0, 5), (0.5, 0.5))],
)  # fmt: skip
def test_bayes_matches_high_precision_reference_with_fractional_priors(counts, prior):
    expected = _mp_bayes(*counts, prior, _mp_quad_greater)
    result = prob_beat_control(*counts, prior=prior)
    got = (result.prob_beat_control, result.expected_loss_treatment, result.expected_loss_control)
    for value, reference in zip(got, expected, strict=True):
        assert value == pytest.approx(float(reference), abs=1e-7)


def test_bayes_fractional_prior_at_a_million_units_is_continuous_in_the_prior():
    # No affordable mpmath reference at 10^6 units with fractional parameters;
    # the fractional-prior result (here by quadrature, ~10^6 terms) must agree
    # with the exact integer-prior sums as the prior moves by 1e-6 (the answer
    # is smooth in the prior).
    counts = (3120, 1_000_000, 3000, 1_000_000)
    near = prob_beat_control(*counts, prior=(1 + 1e-6, 1 + 1e-6))
    exact = _mp_bayes(*counts, (1, 1), _mp_greater)
    assert near.prob_beat_control == pytest.approx(float(exact[0]), abs=1e-7)
    assert near.expected_loss_treatment == pytest.approx(float(exact[1]), abs=1e-7)


@pytest.mark.parametrize("counts", INTEGER_PRIOR_GRID)
def test_bayes_quadrature_fallback_matches_high_precision_reference(counts, monkeypatch):
    # Above EXACT_SUM_MAX_TERMS terms (e.g. 10^6 units at a 50% rate) the sums
    # give way to composite Gauss-Legendre; with the limit at 0 every
    # probability with parameters >= 1 takes that path, on the same grid.
    from cpo.experiment import stats as stats_module

    calls = []
    original = stats_module._prob_greater_by_quadrature

    def spy(*parameters):
        calls.append(parameters)
        return original(*parameters)

    monkeypatch.setattr(stats_module, "EXACT_SUM_MAX_TERMS", 0)
    monkeypatch.setattr(stats_module, "_prob_greater_by_quadrature", spy)
    expected = _mp_bayes(*counts, (1, 1), _mp_greater)
    result = prob_beat_control(*counts)
    got = (result.prob_beat_control, result.expected_loss_treatment, result.expected_loss_control)
    assert len(calls) == 3
    for value, reference in zip(got, expected, strict=True):
        assert value == pytest.approx(float(reference), abs=1e-7)


def test_bayes_large_balanced_counts_use_quadrature_and_agree_with_the_sums(monkeypatch):
    # 10^6 units at ~50%: ~500,000 terms per sum, so the quadrature is used;
    # the exact sums (forced) agree to 1e-7.
    from cpo.experiment import stats as stats_module

    counts = (500_000, 1_000_000, 501_000, 1_000_000)
    calls = []
    original = stats_module._prob_greater_by_quadrature
    monkeypatch.setattr(
        stats_module,
        "_prob_greater_by_quadrature",
        lambda *parameters: calls.append(parameters) or original(*parameters),
    )
    fast = prob_beat_control(*counts)
    assert len(calls) == 3
    monkeypatch.setattr(stats_module, "EXACT_SUM_MAX_TERMS", 10**9)
    summed = prob_beat_control(*counts)
    assert len(calls) == 3
    assert fast.prob_beat_control == pytest.approx(summed.prob_beat_control, abs=1e-7)
    assert fast.expected_loss_treatment == pytest.approx(summed.expected_loss_treatment, abs=1e-7)
