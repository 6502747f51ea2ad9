"""The NumPy logistic regression against statsmodels' binomial GLM (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from cpo.experiment.logit import PerfectPrediction, fit_logit


def _data(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A design with an intercept, k standardized columns and a treatment interaction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k))
    treated = rng.integers(0, 2, size=n).astype(float)
    x = np.column_stack([np.ones(n), treated, z, z * treated[:, None]])
    beta = rng.normal(scale=0.5, size=x.shape[1])
    beta[0] = -2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ beta)))).astype(float)
    return y, x


@pytest.mark.parametrize(("seed", "n", "k"), [(1, 300, 1), (2, 2_000, 3), (3, 20_000, 5)])
def test_estimates_and_standard_errors_equal_statsmodels(seed: int, n: int, k: int) -> None:
    y, x = _data(seed, n, k)
    reference = sm.GLM(y, x, family=sm.families.Binomial()).fit(maxiter=100)
    fit = fit_logit(y, x)
    assert fit.converged
    np.testing.assert_allclose(fit.params, reference.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.bse, reference.bse, rtol=1e-9)
    np.testing.assert_allclose(fit.cov, reference.cov_params(), rtol=1e-9, atol=1e-15)


def test_a_known_textbook_fit() -> None:
    """Dobson & Barnett (2008), table 7.2 beetle mortality, logit model: b0 = -60.72, b1 = 34.27."""
    dose = np.array([1.6907, 1.7242, 1.7552, 1.7842, 1.8113, 1.8369, 1.8610, 1.8839])
    killed = np.array([6, 13, 18, 28, 52, 53, 61, 60])
    total = np.array([59, 60, 62, 56, 63, 59, 62, 60])
    y = np.concatenate(
        [np.r_[np.ones(k), np.zeros(t - k)] for k, t in zip(killed, total, strict=True)]
    )
    x = np.column_stack([np.ones(len(y)), np.repeat(dose, total)])
    fit = fit_logit(y, x)
    assert fit.params == pytest.approx([-60.72, 34.27], abs=0.01)
    assert fit.bse == pytest.approx([5.18, 2.91], abs=0.01)


def test_perfect_prediction_is_raised() -> None:
    x = np.column_stack([np.ones(40), np.r_[np.zeros(20), np.ones(20)]])
    y = np.r_[np.zeros(20), np.ones(20)]
    with pytest.raises(PerfectPrediction):
        fit_logit(y, x)


def test_a_fit_that_runs_out_of_iterations_says_so() -> None:
    y, x = _data(4, 500, 2)
    fit = fit_logit(y, x, max_iterations=1)
    assert not fit.converged
    assert fit.iterations == 1
