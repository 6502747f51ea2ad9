"""Logistic regression by iteratively reweighted least squares, in NumPy.

The moderator analysis fits one binomial GLM with a logit link per run. This
module fits it with the algorithm statsmodels' ``GLM(..., Binomial()).fit()``
uses (IRLS from ``mu = (y + 1/2) / 2``, the same convergence rule on the
deviance and the same perfect-prediction check), without importing statsmodels
(about 1.5 s of start-up). The tests check parameters and standard errors
against statsmodels on random and planted data.

Reference: McCullagh & Nelder (1989), *Generalized Linear Models*, 2nd ed.,
section 2.5 (the IRLS algorithm); the inverse Fisher information is the
covariance of the estimates (scale 1 for the binomial family).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Absolute tolerance on the change in deviance between iterations (statsmodels' default).
DEVIANCE_TOLERANCE = 1e-8
_EPS = np.finfo(float).eps


class PerfectPrediction(ValueError):
    """The fitted probabilities equal the outcomes: an estimate is not identified."""


@dataclass(frozen=True)
class LogitFit:
    """A fitted logistic regression.

    Attributes:
        params: Coefficients, one per design column.
        cov: Their covariance (the inverse Fisher information).
        converged: Whether the deviance settled within ``max_iterations``.
        iterations: IRLS iterations run.
    """

    params: np.ndarray
    cov: np.ndarray
    converged: bool
    iterations: int

    @property
    def bse(self) -> np.ndarray:
        """Standard errors of the coefficients."""
        return np.sqrt(np.diag(self.cov))


def fit_logit(y: np.ndarray, x: np.ndarray, *, max_iterations: int = 100) -> LogitFit:
    """Maximum-likelihood logistic regression of 0/1 ``y`` on the columns of ``x``.

    Args:
        y: Outcomes, 0 or 1, one per row.
        x: The design matrix (rows × parameters), intercept included by the caller.
        max_iterations: IRLS iterations before giving up (``converged`` False).

    Returns:
        The estimates and their covariance.

    Raises:
        PerfectPrediction: The fitted probabilities reproduce ``y`` exactly.
        numpy.linalg.LinAlgError: The weighted design is singular.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    deviances = [np.inf, _deviance(y, mu)]
    params = np.zeros(x.shape[1])
    weights = mu * (1 - mu)
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        weights = mu * (1 - mu)
        working = eta + (y - mu) / weights
        params = _weighted_least_squares(working, x, weights)
        eta = x @ params
        mu = _clip(1 / (1 + np.exp(-eta)))
        if np.allclose(mu - y, 0):
            raise PerfectPrediction("perfect separation or prediction detected")
        deviances.append(_deviance(y, mu))
        if abs(deviances[-2] - deviances[-1]) <= DEVIANCE_TOLERANCE:
            return LogitFit(params, _covariance(x, weights), True, iterations)
    return LogitFit(params, _covariance(x, weights), False, iterations)


def _weighted_least_squares(z: np.ndarray, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Coefficients of the weighted least-squares fit of ``z`` on ``x`` (normal equations).

    ``X'WX`` is a p × p matrix however many rows there are; solving it is
    several times faster than a least-squares SVD of the n × p design, and the
    designs here (standardized attributes, dummies) are well conditioned.
    """
    weighted = x * weights[:, None]
    return np.linalg.solve(weighted.T @ x, weighted.T @ z)


def _covariance(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Inverse Fisher information ``(X' W X)^-1`` with the last iteration's weights.

    As statsmodels does: the weights of the final least-squares step, whose
    change from the fitted probabilities' is below the convergence tolerance.
    """
    return np.linalg.inv((x * weights[:, None]).T @ x)


def _clip(mu: np.ndarray) -> np.ndarray:
    """Keep probabilities strictly inside (0, 1), as statsmodels' logit link does."""
    return np.clip(mu, _EPS, 1 - _EPS)


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Binomial deviance of 0/1 outcomes at probabilities ``mu``."""
    return float(-2 * np.sum(y * np.log(mu) + (1 - y) * np.log1p(-mu)))
