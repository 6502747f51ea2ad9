"""Regression adjustment (CUPED) against statsmodels, by simulation, and on degenerate data.

Reference: the estimator is Lin (2013), "Agnostic notes on regression
adjustments to experimental data: reexamining Freedman's critique", Annals of
Applied Statistics 7(1):295–318 — OLS of ``y ~ arm * (x - x̄)`` with ``x̄`` the
pooled covariate mean and HC2 standard errors; with one covariate it is the
CUPED estimator of Deng, Xu, Kohavi and Walker (2013), "Improving the
sensitivity of online controlled experiments by utilizing pre-experiment
data", WSDM. The reference values are statsmodels' ``ols(...).fit(cov_type="HC2")``
on the same data; :mod:`cpo.experiment.cuped` computes them from per-arm sums
(two reducible passes), so agreement to 1e-8 checks that decomposition.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from cpo.experiment import cuped
from cpo.experiment.settings import SimulationSettings
from cpo.experiment.simulate import customer_baselines
from cpo.sample_data import bundled_customers

TREATMENT_TERM = "C(arm, Treatment('control'))[T.{arm}]"


def _frame(seed: int, arms: int, covariates: int, n: int = 400) -> pd.DataFrame:
    """Unbalanced arms, binary outcomes that depend on the covariates and the arm."""
    rng = np.random.default_rng(seed)
    names = ["control", *(f"treatment_{i}" for i in range(1, arms))]
    arm = rng.choice(names, size=n, p=np.linspace(2, 1, arms) / np.linspace(2, 1, arms).sum())
    x = rng.beta(2, 5, size=(n, covariates))
    effect = np.array([names.index(a) * 0.05 for a in arm])
    p = np.clip(0.1 + 0.6 * x.mean(axis=1) + effect, 0, 1)
    frame = pd.DataFrame({"arm": arm, "y": rng.random(n) < p})
    for j in range(covariates):
        frame[f"x{j + 1}"] = x[:, j]
    return frame


def _statsmodels(frame: pd.DataFrame, covariates: list[str]) -> object:
    """OLS y ~ C(arm) * (centred covariates) with HC2 standard errors."""
    data = frame.assign(y=frame["y"].astype(float))
    for name in covariates:
        data[f"{name}c"] = data[name] - data[name].mean()
    terms = " + ".join(f"{name}c" for name in covariates)
    return smf.ols(f"y ~ C(arm, Treatment('control')) * ({terms})", data).fit(cov_type="HC2")


def _cuped(frame: pd.DataFrame, covariates: list[str]) -> dict[str, cuped.AdjustedComparison]:
    arms = ["control", *sorted(a for a in frame["arm"].unique() if a != "control")]
    codes = pd.Categorical(frame["arm"], categories=arms).codes
    estimates = cuped.estimate_arms(
        frame["y"].to_numpy(dtype=float), frame[covariates].to_numpy(), codes, len(arms)
    )
    return {
        arm: cuped.compare("m", arm, estimate, estimates[0], covariates, 0.95)
        for arm, estimate in zip(arms[1:], estimates[1:], strict=True)
    }


@pytest.mark.parametrize("arms", [2, 4])
@pytest.mark.parametrize("covariates", [1, 2])
def test_adjusted_difference_and_hc2_error_equal_statsmodels(arms: int, covariates: int) -> None:
    """Coefficient and HC2 standard error of every treatment term, to 1e-8."""
    frame = _frame(seed=10 * arms + covariates, arms=arms, covariates=covariates)
    names = [f"x{j + 1}" for j in range(covariates)]
    reference = _statsmodels(frame, names)
    ours = _cuped(frame, names)
    assert len(ours) == arms - 1
    for arm, result in ours.items():
        term = TREATMENT_TERM.format(arm=arm)
        assert result.adjusted.difference == pytest.approx(reference.params[term], abs=1e-8)
        assert result.adjusted.standard_error == pytest.approx(reference.bse[term], abs=1e-8)
        assert result.adjusted.p_value == pytest.approx(reference.pvalues[term], abs=1e-8)


def test_unadjusted_error_equals_statsmodels_hc2_without_covariates() -> None:
    """The unadjusted difference is y ~ C(arm) with HC2 (Welch's standard error)."""
    frame = _frame(seed=3, arms=3, covariates=1)
    reference = smf.ols(
        "y ~ C(arm, Treatment('control'))", frame.assign(y=frame["y"].astype(float))
    ).fit(cov_type="HC2")
    for arm, result in _cuped(frame, ["x1"]).items():
        term = TREATMENT_TERM.format(arm=arm)
        assert result.unadjusted.difference == pytest.approx(reference.params[term], abs=1e-12)
        assert result.unadjusted.standard_error == pytest.approx(reference.bse[term], abs=1e-12)
        reduction = 1 - (result.adjusted.standard_error / reference.bse[term]) ** 2
        assert result.variance_reduction == pytest.approx(reduction, abs=1e-12)


def test_moments_and_meat_add_across_partitions() -> None:
    """Both passes are reducible: sums over two partitions equal the sums over the whole."""
    frame = _frame(seed=5, arms=2, covariates=2)
    y, x = frame["y"].to_numpy(dtype=float), frame[["x1", "x2"]].to_numpy()
    whole = cuped.arm_moments(y, x)
    parts = cuped.arm_moments(y[:150], x[:150]) + cuped.arm_moments(y[150:], x[150:])
    np.testing.assert_allclose(parts.sum_xx, whole.sum_xx, rtol=1e-12)
    np.testing.assert_allclose(parts.sum_xy, whole.sum_xy, rtol=1e-12)
    fit = cuped.fit_arm(whole, cuped.pooled_mean([whole]))
    meat = cuped.hc2_meat(y, x, fit)
    split = cuped.hc2_meat(y[:150], x[:150], fit) + cuped.hc2_meat(y[150:], x[150:], fit)  # type: ignore[operator]
    np.testing.assert_allclose(split, meat, rtol=1e-12)


@pytest.mark.parametrize("cuts", [[1], [150], [7, 8, 200, 399], [0, 0, 400]])
def test_exact_sums_merge_to_the_whole_arrays_floats(cuts: list[int]) -> None:
    """Moment and meat sums of any split, merged, round to the whole array's floats bit for bit."""
    frame = _frame(seed=6, arms=2, covariates=2)
    y, x = frame["y"].to_numpy(dtype=float), frame[["x1", "x2"]].to_numpy()
    whole = cuped.arm_moments(y, x)
    fit = cuped.fit_arm(whole, cuped.pooled_mean([whole]))
    parts = list(zip(np.split(y, cuts), np.split(x, cuts), strict=True))
    moments = [cuped.moment_sums(y_part, x_part) for y_part, x_part in parts]
    meats = [cuped.meat_sums(y_part, x_part, fit) for y_part, x_part in parts]
    merged = sum(moments[1:], moments[0]).moments()
    for name in ("n", "sum_y", "sum_yy", "sum_x", "sum_xx", "sum_xy"):
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    merged_meat = sum(meats[1:], meats[0]).meat()  # type: ignore[arg-type, union-attr]
    assert np.array_equal(merged_meat, cuped.hc2_meat(y, x, fit))  # type: ignore[arg-type]
    assert np.array_equal(merged_meat, merged_meat.T)


def test_moments_and_meat_equal_the_exact_rational_sums() -> None:
    """Each sum is the exact sum of the rows' terms rounded once (math.fsum)."""
    frame = _frame(seed=7, arms=2, covariates=2, n=300)
    y, x = frame["y"].to_numpy(dtype=float), frame[["x1", "x2"]].to_numpy()
    moments = cuped.arm_moments(y, x)
    assert moments.sum_xx[0, 1] == math.fsum((x[:, 0] * x[:, 1]).tolist())
    assert moments.sum_xy[1] == math.fsum((x[:, 1] * y).tolist())
    assert moments.sum_x.tolist() == [math.fsum(x[:, j].tolist()) for j in range(2)]


# --------------------------------------------------------------------------
# Simulation: width and coverage
# --------------------------------------------------------------------------


def _bundled_probabilities(column: str) -> tuple[np.ndarray, np.ndarray]:
    """The bundled customers' covariate and the simulator's baseline probability from it."""
    customers = pd.read_csv(bundled_customers())
    base = customer_baselines(customers, SimulationSettings())
    key = "base_open" if column == "historical_open_rate" else "base_click"
    return customers[column].to_numpy(dtype=float), base[key].to_numpy()


def _population_rho(x: np.ndarray, p: np.ndarray) -> float:
    """corr(y, x) for y ~ Bernoulli(p(x)), x drawn from the customers: Cov(p, x) / (σ_y σ_x)."""
    covariance = np.mean((p - p.mean()) * (x - x.mean()))
    return float(covariance / math.sqrt(p.mean() * (1 - p.mean()) * x.var()))


@pytest.mark.parametrize(
    ("column", "lift"), [("historical_open_rate", 0.10), ("historical_click_rate", 0.30)]
)
def test_interval_narrows_by_one_minus_rho_squared_and_covers(column: str, lift: float) -> None:
    """Over 500 seeds: Var(adjusted) / Var(unadjusted) ≈ 1 - ρ², and 95% intervals cover 95 ± 2%.

    Covariates are drawn from the bundled customers and outcomes from the
    simulator's response model, so ρ is the bundled run's: in the population
    0.21 for opens with historical_open_rate and 0.12 for clicks with
    historical_click_rate (one bundled run's 500 recipients gave 0.25 and 0.20).
    """
    x_all, p_all = _bundled_probabilities(column)
    rho = _population_rho(x_all, p_all)
    assert 0.1 < rho < 0.3  # as in the bundled data
    true_effect = float(np.mean(p_all * (1 + lift) - p_all))
    ratios, widths, covered = [], [], 0
    n = 4000
    for seed in range(500):
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(x_all), size=n)
        treated = np.arange(n) % 2
        p = p_all[picks] * np.where(treated == 1, 1 + lift, 1.0)
        y = (rng.random(n) < p).astype(float)
        control, treatment = cuped.estimate_arms(y, x_all[picks][:, None], treated, 2)
        result = cuped.compare("m", "t", treatment, control, [column], 0.95)
        ratios.append(result.adjusted.standard_error**2 / result.unadjusted.standard_error**2)
        widths.append(
            (result.adjusted.upper - result.adjusted.lower)  # type: ignore[operator]
            / (result.unadjusted.upper - result.unadjusted.lower)  # type: ignore[operator]
        )
        covered += result.adjusted.lower <= true_effect <= result.adjusted.upper  # type: ignore[operator]
    # Theory per arm (Var_adj = σ²(1 - ρ²) / n in each arm; equal arm sizes):
    p_t = p_all * (1 + lift)
    variances = [p_all.mean() * (1 - p_all.mean()), p_t.mean() * (1 - p_t.mean())]
    rhos = [rho, _population_rho(x_all, p_t)]
    theory = sum(v * (1 - r**2) for v, r in zip(variances, rhos, strict=True)) / sum(variances)
    assert theory == pytest.approx(1 - rho**2, abs=0.005)
    assert np.mean(ratios) == pytest.approx(theory, abs=0.002)
    assert np.mean(widths) == pytest.approx(np.sqrt(theory), abs=0.002)  # interval width
    assert np.mean(ratios) < 1 - 0.5 * rho**2  # a real reduction, not noise around 1
    assert 0.93 <= covered / 500 <= 0.97


def test_strong_covariate_reduces_variance_by_rho_squared() -> None:
    """With ρ = 0.8 the interval's width shrinks to about sqrt(1 - 0.64) = 0.6 of the unadjusted."""
    ratios = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=2000)
        treated = rng.integers(0, 2, size=2000)
        y = 0.8 * x + 0.6 * rng.normal(size=2000) + 0.1 * treated
        control, treatment = cuped.estimate_arms(y, x[:, None], treated, 2)
        result = cuped.compare("m", "t", treatment, control, ["x"], 0.95)
        ratios.append(result.adjusted.standard_error / result.unadjusted.standard_error)
    assert np.mean(ratios) == pytest.approx(0.6, abs=0.01)


# --------------------------------------------------------------------------
# Degenerate data
# --------------------------------------------------------------------------


def _records(arms: list[str], opened: list[int], covariate: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment_arm": arms,
            "opened": opened,
            "clicked": [0] * len(arms),
            "converted": [0] * len(arms),
            "historical_open_rate": covariate,
        }
    )


def _request(treatments: tuple[str, ...] = ("treatment_1",)) -> cuped.AdjustmentRequest:
    return cuped.AdjustmentRequest(
        metrics=["open_rate"],
        covariates={"open_rate": ["historical_open_rate"]},
        control_arm="control",
        treatment_arms=treatments,
        confidence=0.95,
        alpha=0.05,
    )


def test_constant_covariate_falls_back_with_a_reason() -> None:
    """A covariate that does not vary makes the regression singular: no adjusted estimate."""
    records = _records(["control", "treatment_1"] * 20, [0, 1, 1, 0] * 10, [0.3] * 40)
    section = cuped.adjust_metrics(records, _request())
    (result,) = section.comparisons
    assert result.adjusted.difference is None
    assert "singular" in str(result.adjusted.reason)
    assert result.unadjusted.difference == pytest.approx(0.0)
    assert section.used_for_decision is False
    assert "unadjusted" in section.decision


@pytest.mark.parametrize("size", [0, 1])
def test_arm_with_zero_or_one_recipient_has_no_adjusted_estimate(size: int) -> None:
    """An arm too small for its own regression gives None and says how many it had."""
    arms = ["control"] * 30 + ["treatment_1"] * size
    rng = np.random.default_rng(1)
    records = _records(arms, list(rng.integers(0, 2, len(arms))), list(rng.random(len(arms))))
    (result,) = cuped.adjust_metrics(records, _request()).comparisons
    assert result.adjusted.difference is None
    assert f"treatment: {size} recipient(s)" in str(result.adjusted.reason)
    assert result.n_treatment == size


def test_all_zero_outcomes_give_no_p_value() -> None:
    """No opens anywhere: the difference is 0 with standard error 0, and no test."""
    rng = np.random.default_rng(2)
    records = _records(["control", "treatment_1"] * 25, [0] * 50, list(rng.random(50)))
    (result,) = cuped.adjust_metrics(records, _request()).comparisons
    assert result.adjusted.difference == 0.0
    assert result.adjusted.p_value is None
    assert "does not vary" in str(result.adjusted.reason)
    assert result.variance_reduction is None
    assert result.relative_lift is None


def test_missing_covariate_values_are_imputed_and_flagged() -> None:
    """NaN covariates: pooled mean of the observed values plus a missing indicator (statsmodels)."""
    frame = _frame(seed=8, arms=2, covariates=1, n=300)
    frame.loc[frame.index % 7 == 0, "x1"] = np.nan
    records = pd.DataFrame(
        {
            "experiment_arm": frame["arm"],
            "opened": frame["y"].astype(int),
            "clicked": 0,
            "converted": 0,
            "historical_open_rate": frame["x1"],
        }
    )
    (result,) = cuped.adjust_metrics(records, _request()).comparisons
    assert result.covariates == ("historical_open_rate", "historical_open_rate_missing")
    imputed = frame.assign(
        x1=frame["x1"].fillna(frame["x1"].mean()), x1_missing=frame["x1"].isna().astype(float)
    )
    reference = _statsmodels(imputed, ["x1", "x1_missing"])
    term = TREATMENT_TERM.format(arm="treatment_1")
    assert result.adjusted.difference == pytest.approx(reference.params[term], abs=1e-8)
    assert result.adjusted.standard_error == pytest.approx(reference.bse[term], abs=1e-8)


def test_rate_among_openers_is_adjusted_on_openers_only() -> None:
    """click_to_open_rate: the regression runs on openers (a click without an open is an open)."""
    rng = np.random.default_rng(4)
    n = 600
    records = pd.DataFrame(
        {
            "experiment_arm": rng.choice(["control", "treatment_1"], n),
            "opened": rng.integers(0, 2, n),
            "clicked": rng.integers(0, 2, n),
            "converted": 0,
            "historical_click_rate": rng.random(n),
        }
    )
    request = cuped.AdjustmentRequest(
        metrics=["click_to_open_rate"],
        covariates={"click_to_open_rate": ["historical_click_rate"]},
        control_arm="control",
        treatment_arms=("treatment_1",),
        confidence=0.95,
        alpha=0.05,
    )
    (result,) = cuped.adjust_metrics(records, request).comparisons
    openers = records[(records["opened"] == 1) | (records["clicked"] == 1)]
    frame = pd.DataFrame(
        {
            "arm": openers["experiment_arm"],
            "y": openers["clicked"],
            "x1": openers["historical_click_rate"],
        }
    )
    reference = _statsmodels(frame, ["x1"])
    term = TREATMENT_TERM.format(arm="treatment_1")
    assert result.n_control + result.n_treatment == len(openers)
    assert result.adjusted.difference == pytest.approx(reference.params[term], abs=1e-8)
    assert result.adjusted.standard_error == pytest.approx(reference.bse[term], abs=1e-8)


def test_relative_lift_interval_is_the_delta_method() -> None:
    """μ_t/μ_c - 1 with Var ≈ V_t/μ_c² + μ_t² V_c/μ_c⁴, checked against a direct computation."""
    treatment = cuped.ArmEstimate(100, 0.3, 0.001, 0.33, 0.0009)
    control = cuped.ArmEstimate(100, 0.25, 0.001, 0.24, 0.0008)
    result = cuped.compare("m", "t", treatment, control, ["x"], 0.95)
    se = math.sqrt(0.0009 / 0.24**2 + 0.33**2 * 0.0008 / 0.24**4)
    assert result.relative_lift == pytest.approx(0.33 / 0.24 - 1)
    assert result.relative_lower == pytest.approx(0.33 / 0.24 - 1 - 1.959963984540054 * se)
    assert result.relative_upper == pytest.approx(0.33 / 0.24 - 1 + 1.959963984540054 * se)


def test_section_round_trips_and_adjusts_p_values_by_family() -> None:
    """to_dict/from_dict give the same record; the primary family is Holm-adjusted."""
    rng = np.random.default_rng(6)
    n = 900
    records = pd.DataFrame(
        {
            "experiment_arm": rng.choice(["control", "treatment_1", "treatment_2"], n),
            "opened": rng.integers(0, 2, n),
            "clicked": 0,
            "converted": 0,
            "historical_open_rate": rng.random(n),
        }
    )
    section = cuped.adjust_metrics(records, _request(("treatment_1", "treatment_2")))
    again = cuped.RegressionAdjustment.from_dict(section.to_dict())
    assert again == section
    raw = [c.adjusted.p_value for c in section.comparisons]
    expected = sorted(raw)  # Holm with two: min(1, 2 p_(1)), max(that, p_(2))
    first = min(1.0, 2 * expected[0])  # type: ignore[operator]
    adjusted = sorted(c.p_value_adjusted for c in section.comparisons)  # type: ignore[type-var]
    assert adjusted[0] == pytest.approx(first)
    assert adjusted[1] == pytest.approx(max(first, expected[1]))  # type: ignore[type-var]
