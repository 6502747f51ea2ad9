"""Regression adjustment (CUPED): treatment-versus-control differences adjusted for covariates.

The estimator is Lin's (2013) fully interacted regression
``y ~ arm * (x - x̄)`` with HC2 standard errors, where ``x`` are
pre-experiment covariates (e.g. a customer's historical click rate) and
``x̄`` their pooled mean over every analysed recipient. With one covariate it
equals the CUPED estimator of Deng, Xu, Kohavi and Walker (2013) up to the
per-arm slope. References: Lin, W. (2013) "Agnostic notes on regression
adjustments to experimental data: reexamining Freedman's critique", Annals of
Applied Statistics 7(1):295–318; Deng, A., Xu, Y., Kohavi, R., Walker, T.
(2013) "Improving the sensitivity of online controlled experiments by
utilizing pre-experiment data", WSDM.

The fully interacted regression is the same as one regression per arm on the
covariates centred at the *pooled* mean: the arm's intercept is its adjusted
mean, and the HC2 covariance of the joint model is block-diagonal by arm. So
the computation needs only two reducible passes per arm (what a SQL or Spark
engine can do with two aggregations):

1. :func:`arm_moments`: ``n``, the sums of ``y``, ``y²``, ``x``, ``x x'`` and
   ``x y`` (they add across partitions); the pooled mean and each arm's
   coefficients follow (:func:`fit_arm`);
2. :func:`hc2_meat`: ``Σ e_i² / (1 - h_ii) z_i z_i'`` with ``z_i = (1, x_i - x̄)``,
   the residual ``e_i`` and the leverage ``h_ii`` from the arm's own fit.

The adjusted difference of a treatment is the difference of the two arms'
intercepts; its variance is the sum of their HC2 intercept variances.
:func:`adjust_metrics` applies this to every metric and treatment arm of an
experiment (joined to the customers by :func:`join_covariates`) and returns
the :class:`RegressionAdjustment` record that ``metrics.json`` holds
(``regression_adjustment``). For planning, :func:`expected_reductions`
estimates the variance reduction to expect from the customers alone (used by
the design's minimum detectable effect).

Degenerate data never raises: an arm with too few recipients, a covariate
that does not vary (singular regression) or a recipient with leverage 1
gives a result with ``None`` values and a ``reason``; the unadjusted result
stands. Missing covariate values are replaced by the pooled mean of the
observed values and an indicator column ``<covariate>_missing`` is added to
the regression (the recipient is kept; the covariate is pre-treatment, so the
estimate stays unbiased).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from cpo.experiment import catalog
from cpo.experiment import stats as cpo_stats
from cpo.experiment.exact_sum import ExactSums, exact_sum, exact_sums

VarianceReduction = Literal["none", "cuped"]
NONE: VarianceReduction = "none"
CUPED: VarianceReduction = "cuped"
METHOD = (
    "Lin (2013) regression y ~ arm * (x - pooled mean of x), HC2 standard errors; "
    "two-sided normal test; CUPED (Deng et al. 2013)"
)
RELATIVE_METHOD = "adjusted difference / control's adjusted mean, delta method"
#: Reciprocal condition number below which a regression is treated as singular.
_SINGULAR = 1e-10
#: ``1 - h_ii`` below which a recipient's leverage is treated as 1 (HC2 undefined).
_FULL_LEVERAGE = 1e-10
JsonDict = dict[str, Any]


# --------------------------------------------------------------------------
# Pass 1: moments per arm, pooled mean, per-arm fit
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmMoments:
    """Reducible sums of one arm (pass 1); two partitions' moments add.

    Attributes:
        n: Recipients.
        sum_y: Σ y.
        sum_yy: Σ y².
        sum_x: Σ x (length k).
        sum_xx: Σ x x' (k × k).
        sum_xy: Σ x y (length k).
    """

    n: int
    sum_y: float
    sum_yy: float
    sum_x: np.ndarray
    sum_xx: np.ndarray
    sum_xy: np.ndarray

    def __add__(self, other: ArmMoments) -> ArmMoments:
        """The moments of the union of two disjoint sets of recipients."""
        return ArmMoments(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_yy + other.sum_yy,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.sum_xy + other.sum_xy,
        )


@dataclass(frozen=True)
class MomentSums:
    """An arm's pass-1 sums kept exactly (:mod:`cpo.experiment.exact_sum`); ``+`` merges.

    Partial sums of any split of the rows merge to the same exact sums, so
    :meth:`moments` gives the same floats on every engine.

    Attributes:
        covariates: Covariates ``k``.
        sums: Rows of :func:`_moment_terms`: y, y², x_j, x_i x_j (i <= j), x_j y.
    """

    covariates: int
    sums: ExactSums

    def __add__(self, other: MomentSums) -> MomentSums:
        """The sums of the union of two disjoint sets of recipients."""
        return MomentSums(self.covariates, self.sums + other.sums)

    def moments(self) -> ArmMoments:
        """The sums, each rounded once, as :class:`ArmMoments`."""
        k = self.covariates
        values = self.sums.values()
        sum_xx = np.zeros((k, k))
        rows, cols = np.triu_indices(k)
        sum_xx[rows, cols] = values[2 + k : 2 + k + len(rows)]
        sum_xx[cols, rows] = sum_xx[rows, cols]
        return ArmMoments(
            n=self.sums.count,
            sum_y=float(values[0]),
            sum_yy=float(values[1]),
            sum_x=values[2 : 2 + k],
            sum_xx=sum_xx,
            sum_xy=values[2 + k + len(rows) :],
        )


def moment_sums(y: np.ndarray, x: np.ndarray) -> MomentSums:
    """Pass 1 over one arm's rows, exactly (see :class:`MomentSums`).

    Args:
        y: Outcomes, shape (n,).
        x: Covariates, shape (n, k), no missing values.
    """
    y = np.asarray(y, dtype=float)
    x = _as_matrix(x)
    return MomentSums(x.shape[1], exact_sums(_moment_terms(y, x)))


def _moment_terms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The per-row terms of pass 1, one row each, by elementwise products (same on any engine)."""
    k = x.shape[1]
    pairs = [(int(i), int(j)) for i, j in zip(*np.triu_indices(k), strict=True)]
    terms = np.empty((2 + 2 * k + len(pairs), len(y)))
    terms[0] = y
    np.multiply(y, y, out=terms[1])
    terms[2 : 2 + k] = x.T
    for row, (left, right) in enumerate(pairs, start=2 + k):
        np.multiply(x[:, left], x[:, right], out=terms[row])
    for column in range(k):
        np.multiply(x[:, column], y, out=terms[2 + k + len(pairs) + column])
    return terms


def arm_moments(y: np.ndarray, x: np.ndarray) -> ArmMoments:
    """Pass 1 over one arm's rows: :func:`moment_sums`, rounded.

    Args:
        y: Outcomes, shape (n,).
        x: Covariates, shape (n, k), no missing values.
    """
    return moment_sums(y, x).moments()


def _as_matrix(x: np.ndarray) -> np.ndarray:
    """Covariates as an (n, k) float matrix (a vector is one covariate)."""
    x = np.asarray(x, dtype=float)
    return x[:, None] if x.ndim == 1 else x


def pooled_mean(moments: Sequence[ArmMoments]) -> np.ndarray:
    """The covariates' mean over every arm's recipients (the centring point)."""
    total = sum(m.n for m in moments)
    if total == 0:
        raise ValueError("no recipients")
    return np.sum([m.sum_x for m in moments], axis=0) / total


@dataclass(frozen=True)
class ArmFit:
    """One arm's regression of ``y`` on ``(1, x - center)``.

    Attributes:
        center: The pooled covariate mean the covariates are centred at.
        coefficients: Intercept (the adjusted mean) then one slope per covariate;
            None when the fit is undefined.
        inverse_gram: ``(Z'Z)⁻¹``; None when the fit is undefined.
        reason: Why the fit is undefined, else None.
    """

    center: np.ndarray
    coefficients: np.ndarray | None
    inverse_gram: np.ndarray | None
    reason: str | None = None


def centered_gram(m: ArmMoments, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Z'Z, Z'y)`` with ``Z = (1, x - center)``, from the moments alone."""
    shifted_x = m.sum_x - m.n * center
    xx = (
        m.sum_xx
        - np.outer(m.sum_x, center)
        - np.outer(center, m.sum_x)
        + m.n * np.outer(center, center)
    )
    gram = np.block(
        [[np.array([[m.n]], dtype=float), shifted_x[None, :]], [shifted_x[:, None], xx]]
    )
    zy = np.concatenate([[m.sum_y], m.sum_xy - center * m.sum_y])
    return gram, zy


def fit_arm(m: ArmMoments, center: np.ndarray) -> ArmFit:
    """The arm's least-squares fit; undefined (with a reason) when it cannot be estimated.

    HC2 needs every leverage below 1, so an arm needs more recipients than
    regression terms (``k + 1``) and covariates that vary within it.
    """
    terms = len(center) + 1
    if m.n <= terms:
        return ArmFit(
            center,
            None,
            None,
            f"{m.n} recipient(s); the regression needs more than {terms} (one per term)",
        )
    singular = _singular(m)
    if singular:
        return ArmFit(center, None, None, singular)
    gram, zy = centered_gram(m, center)
    inverse = np.linalg.inv(gram)
    return ArmFit(center, inverse @ zy, inverse)


def _singular(m: ArmMoments) -> str | None:
    """Why the arm's covariates cannot be regressed on (constant or collinear), else None.

    Judged on the arm's own covariance matrix, relative to the covariates'
    magnitude, so rounding in a constant column does not pass for variation.
    """
    if not len(m.sum_x):
        return None
    mean = m.sum_x / m.n
    covariance = m.sum_xx / m.n - np.outer(mean, mean)
    spread = np.diag(covariance)
    magnitude = np.maximum(np.diag(m.sum_xx) / m.n, np.finfo(float).tiny)
    if np.any(spread <= _SINGULAR * magnitude):
        return "a covariate does not vary (singular regression)"
    correlation = covariance / np.sqrt(np.outer(spread, spread))
    if 1 / np.linalg.cond(correlation) < _SINGULAR:
        return "the covariates are collinear (singular regression)"
    return None


# --------------------------------------------------------------------------
# Pass 2: the HC2 meat per arm, the arm's estimate
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeatSums:
    """An arm's HC2 meat ``Σ w_i z_i z_i'`` kept exactly; ``+`` merges.

    Attributes:
        terms: Regression terms ``k + 1`` (intercept first).
        sums: Rows of ``w z_a z_b`` for ``a <= b`` (:func:`numpy.triu_indices` order).
    """

    terms: int
    sums: ExactSums

    def __add__(self, other: MeatSums) -> MeatSums:
        """The meat of the union of two disjoint sets of recipients."""
        return MeatSums(self.terms, self.sums + other.sums)

    def meat(self) -> np.ndarray:
        """The sums, each rounded once, as the symmetric ``(k + 1) × (k + 1)`` matrix."""
        meat = np.zeros((self.terms, self.terms))
        rows, cols = np.triu_indices(self.terms)
        meat[rows, cols] = self.sums.values()
        meat[cols, rows] = meat[rows, cols]
        return meat


def hc2_meat(y: np.ndarray, x: np.ndarray, fit: ArmFit) -> np.ndarray | None:
    """Pass 2 over one arm's rows: ``Σ e_i² / (1 - h_ii) z_i z_i'`` (reducible: sums).

    Returns None when a recipient has leverage 1 (HC2 is undefined).
    """
    sums = meat_sums(y, x, fit)
    return None if sums is None else sums.meat()


def meat_sums(y: np.ndarray, x: np.ndarray, fit: ArmFit) -> MeatSums | None:
    """:func:`hc2_meat` kept exactly (see :class:`MeatSums`); None when HC2 is undefined.

    Every per-row quantity is an elementwise operation in a fixed order (no
    matrix product, whose kernels may round rows differently by position), so
    a row gives the same terms in any partition.
    """
    if fit.coefficients is None or fit.inverse_gram is None:
        return None
    y = np.asarray(y, dtype=float)
    z = [np.ones(len(y)), *(_as_matrix(x) - fit.center).T]
    residuals = y - fit.coefficients[0]
    for j in range(1, len(z)):
        residuals -= fit.coefficients[j] * z[j]
    complement = 1.0 - _leverages(z, fit.inverse_gram)
    if np.any(complement < _FULL_LEVERAGE):
        return None
    weights = residuals * residuals / complement
    weighted = [weights * z_a for z_a in z]
    rows, cols = np.triu_indices(len(z))
    terms = np.empty((len(rows), len(y)))
    for row, (a, b) in enumerate(zip(rows, cols, strict=True)):
        np.multiply(weighted[a], z[b], out=terms[row])
    return MeatSums(len(z), exact_sums(terms))


def _leverages(z: Sequence[np.ndarray], inverse_gram: np.ndarray) -> np.ndarray:
    """``h_ii = z_i' (Z'Z)⁻¹ z_i`` per row, summed term by term in a fixed order."""
    leverage = np.zeros(len(z[0]))
    for a, z_a in enumerate(z):
        projected = np.full(len(z_a), inverse_gram[a, 0])
        for b in range(1, len(z)):
            projected += inverse_gram[a, b] * z[b]
        leverage += projected * z_a
    return leverage


@dataclass(frozen=True)
class ArmEstimate:
    """One arm's unadjusted and adjusted mean with their HC2 variances.

    Attributes:
        n: Recipients.
        mean: Unadjusted mean of ``y``.
        variance: HC2 variance of the unadjusted mean (``s² / n``); None for n < 2.
        adjusted_mean: Intercept of the arm's regression at the pooled covariate mean.
        adjusted_variance: Its HC2 variance.
        reason: Why the adjusted values are None, else None.
    """

    n: int
    mean: float | None
    variance: float | None
    adjusted_mean: float | None
    adjusted_variance: float | None
    reason: str | None = None


def estimate_arm(m: ArmMoments, fit: ArmFit, meat: np.ndarray | None) -> ArmEstimate:
    """The arm's estimates from its moments (pass 1), fit and meat (pass 2)."""
    mean = m.sum_y / m.n if m.n else None
    variance = None
    if m.n >= 2 and mean is not None:
        # HC2 of y ~ arm: h_ii = 1/n, so Σ e² / (1 - 1/n) / n² = s² / n.
        variance = max(m.sum_yy - m.n * mean**2, 0.0) / (m.n * (m.n - 1))
    if fit.coefficients is None or fit.inverse_gram is None or meat is None:
        reason = fit.reason or "a recipient has leverage 1 (HC2 undefined)"
        return ArmEstimate(m.n, mean, variance, None, None, reason)
    covariance = fit.inverse_gram @ meat @ fit.inverse_gram
    return ArmEstimate(m.n, mean, variance, float(fit.coefficients[0]), float(covariance[0, 0]))


def estimate_arms(
    y: np.ndarray, x: np.ndarray, arm_codes: np.ndarray, arms: int
) -> list[ArmEstimate]:
    """Both passes over per-recipient arrays: one :class:`ArmEstimate` per arm code.

    Args:
        y: Outcomes, shape (n,).
        x: Covariates, shape (n, k), no missing values.
        arm_codes: Arm index per row, 0 .. arms - 1.
        arms: Number of arms (arms without rows get n = 0).
    """
    x = _as_matrix(x)
    rows = [np.flatnonzero(arm_codes == code) for code in range(arms)]
    moments = [arm_moments(y[r], x[r]) for r in rows]
    if sum(m.n for m in moments) == 0:
        return [ArmEstimate(0, None, None, None, None, "no recipients") for _ in rows]
    center = pooled_mean(moments)
    estimates = []
    for m, r in zip(moments, rows, strict=True):
        fit = fit_arm(m, center)
        estimates.append(estimate_arm(m, fit, hc2_meat(y[r], x[r], fit)))
    return estimates


# --------------------------------------------------------------------------
# Treatment versus control
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A difference with its standard error, interval and two-sided normal p-value.

    Attributes:
        difference: Treatment minus control (outcome units, e.g. a rate).
        standard_error: HC2 standard error.
        lower: Lower bound of the interval.
        upper: Upper bound of the interval.
        p_value: Two-sided p-value of a normal test of no difference.
        reason: Why values are None, else None.
    """

    difference: float | None
    standard_error: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    reason: str | None = None

    @classmethod
    def of(cls, difference: float, variance: float, z: float) -> Estimate:
        """The estimate of a difference with a known variance (``z`` = the interval's quantile)."""
        se = math.sqrt(variance)
        if se == 0:
            return cls(
                difference,
                0.0,
                difference,
                difference,
                None,
                "standard error is 0: the outcome does not vary in either arm",
            )
        p = float(2 * special.ndtr(-abs(difference) / se))
        return cls(difference, se, difference - z * se, difference + z * se, p)

    @classmethod
    def undefined(cls, reason: str) -> Estimate:
        """No estimate, and why."""
        return cls(None, None, None, None, None, reason)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """The record of its JSON form."""
        return cls(**{name: data[name] for name in _ESTIMATE_FIELDS})

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {name: getattr(self, name) for name in _ESTIMATE_FIELDS}


_ESTIMATE_FIELDS = ("difference", "standard_error", "lower", "upper", "p_value", "reason")


@dataclass(frozen=True)
class AdjustedComparison:
    """One treatment arm against control on one metric: unadjusted and CUPED-adjusted.

    Attributes:
        metric: The metric.
        treatment_arm: The treatment arm.
        covariates: The regression's covariates (with ``_missing`` indicators).
        n_control: Control recipients in the regression.
        n_treatment: Treatment recipients in the regression.
        control_adjusted_mean: Control's mean at the pooled covariate mean.
        treatment_adjusted_mean: The treatment's mean at the pooled covariate mean.
        unadjusted: Difference of means, HC2 (Welch) standard error.
        adjusted: Difference of adjusted means, HC2 standard error.
        relative_lift: Adjusted difference / control's adjusted mean (0.1 = +10%).
        relative_lower: Lower bound of its delta-method interval.
        relative_upper: Upper bound of its delta-method interval.
        variance_reduction: ``1 - Var(adjusted) / Var(unadjusted)`` of the difference.
        p_value_adjusted: The adjusted estimate's p-value, Holm (primary metric)
            or Benjamini-Hochberg (secondary) across the same family as the
            unadjusted comparisons.
        significant: ``p_value_adjusted < alpha`` (None without a p-value).
    """

    metric: str
    treatment_arm: str
    covariates: tuple[str, ...]
    n_control: int
    n_treatment: int
    control_adjusted_mean: float | None
    treatment_adjusted_mean: float | None
    unadjusted: Estimate
    adjusted: Estimate
    relative_lift: float | None
    relative_lower: float | None
    relative_upper: float | None
    variance_reduction: float | None
    p_value_adjusted: float | None = None
    significant: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdjustedComparison:
        """The record of its JSON form."""
        values = {name: data[name] for name in _COMPARISON_SCALARS}
        return cls(
            **values,
            covariates=tuple(data["covariates"]),
            unadjusted=Estimate.from_dict(data["unadjusted"]),
            adjusted=Estimate.from_dict(data["adjusted"]),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        data: JsonDict = {name: getattr(self, name) for name in _COMPARISON_SCALARS[:2]}
        data["covariates"] = list(self.covariates)
        data.update({name: getattr(self, name) for name in _COMPARISON_SCALARS[2:6]})
        data["unadjusted"] = self.unadjusted.to_dict()
        data["adjusted"] = self.adjusted.to_dict()
        data.update({name: getattr(self, name) for name in _COMPARISON_SCALARS[6:]})
        return data


_COMPARISON_SCALARS = (
    "metric",
    "treatment_arm",
    "n_control",
    "n_treatment",
    "control_adjusted_mean",
    "treatment_adjusted_mean",
    "relative_lift",
    "relative_lower",
    "relative_upper",
    "variance_reduction",
    "p_value_adjusted",
    "significant",
)


def compare(
    metric: str,
    arm: str,
    treatment: ArmEstimate,
    control: ArmEstimate,
    covariates: Sequence[str],
    confidence: float,
) -> AdjustedComparison:
    """Treatment against control: both differences, the relative lift, the variance reduction."""
    z = float(special.ndtri(0.5 + confidence / 2))
    unadjusted = _difference(treatment.mean, treatment.variance, control.mean, control.variance, z)
    adjusted = _difference(
        treatment.adjusted_mean,
        treatment.adjusted_variance,
        control.adjusted_mean,
        control.adjusted_variance,
        z,
    )
    if adjusted.difference is None:
        reasons = [
            f"{name}: {e.reason}"
            for name, e in (("treatment", treatment), ("control", control))
            if e.reason
        ]
        adjusted = Estimate.undefined("; ".join(reasons) or str(adjusted.reason))
    relative = _relative(treatment, control, z)
    return AdjustedComparison(
        metric=metric,
        treatment_arm=arm,
        covariates=tuple(covariates),
        n_control=control.n,
        n_treatment=treatment.n,
        control_adjusted_mean=control.adjusted_mean,
        treatment_adjusted_mean=treatment.adjusted_mean,
        unadjusted=unadjusted,
        adjusted=adjusted,
        relative_lift=relative[0],
        relative_lower=relative[1],
        relative_upper=relative[2],
        variance_reduction=_reduction(unadjusted, adjusted),
    )


def _difference(
    mean_t: float | None, var_t: float | None, mean_c: float | None, var_c: float | None, z: float
) -> Estimate:
    """The difference of two independent means."""
    if mean_t is None or mean_c is None or var_t is None or var_c is None:
        return Estimate.undefined("an arm has fewer than 2 recipients")
    return Estimate.of(mean_t - mean_c, var_t + var_c, z)


def _relative(
    treatment: ArmEstimate, control: ArmEstimate, z: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift ``μ_t / μ_c - 1`` and its delta-method interval.

    ``Var(μ_t / μ_c) ≈ V_t / μ_c² + μ_t² V_c / μ_c⁴`` (independent arms).
    """
    mu_t, mu_c = treatment.adjusted_mean, control.adjusted_mean
    v_t, v_c = treatment.adjusted_variance, control.adjusted_variance
    if mu_t is None or mu_c is None or v_t is None or v_c is None or mu_c <= 0:
        return None, None, None
    lift = mu_t / mu_c - 1
    se = math.sqrt(v_t / mu_c**2 + mu_t**2 * v_c / mu_c**4)
    return lift, lift - z * se, lift + z * se


def _reduction(unadjusted: Estimate, adjusted: Estimate) -> float | None:
    """``1 - Var(adjusted) / Var(unadjusted)``; None when either is undefined or 0."""
    if not unadjusted.standard_error or adjusted.standard_error is None:
        return None
    return 1 - (adjusted.standard_error / unadjusted.standard_error) ** 2


# --------------------------------------------------------------------------
# Every metric of an experiment
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionAdjustment:
    """The ``regression_adjustment`` section of ``metrics.json``.

    Attributes:
        setting: ``analysis.variance_reduction`` (``cuped`` or ``none``).
        used_for_decision: Whether the primary metric's decision uses the
            adjusted estimates (``cuped`` and every primary comparison adjusted).
        method: How the estimates were computed.
        relative_method: How the relative lift and its interval are defined.
        missing_values: How missing covariate values are handled.
        covariates: Metric -> covariates configured (those found in the data).
        comparisons: One record per metric and treatment arm (primary metric first).
        reason: Why there are no adjusted estimates at all, else None.
        decision: A sentence saying which estimate the primary decision uses.
        notes: Configured covariates the customer data lacks, one line per metric.
    """

    setting: str
    used_for_decision: bool
    method: str
    relative_method: str
    missing_values: str
    covariates: Mapping[str, tuple[str, ...]]
    comparisons: tuple[AdjustedComparison, ...]
    reason: str | None
    decision: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def comparisons_of(self, metric: str) -> list[AdjustedComparison]:
        """The comparisons of one metric, in arm order."""
        return [c for c in self.comparisons if c.metric == metric]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionAdjustment:
        """The record of its JSON form."""
        return cls(
            setting=data["setting"],
            used_for_decision=data["used_for_decision"],
            method=data["method"],
            relative_method=data["relative_method"],
            missing_values=data["missing_values"],
            covariates={k: tuple(v) for k, v in data["covariates"].items()},
            comparisons=tuple(AdjustedComparison.from_dict(c) for c in data["comparisons"]),
            reason=data["reason"],
            decision=data["decision"],
            notes=tuple(data.get("notes", ())),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "setting": self.setting,
            "used_for_decision": self.used_for_decision,
            "decision": self.decision,
            "method": self.method,
            "relative_method": self.relative_method,
            "missing_values": self.missing_values,
            "covariates": {k: list(v) for k, v in self.covariates.items()},
            "reason": self.reason,
            "notes": list(self.notes),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


MISSING_VALUES = (
    "a missing covariate value (or a recipient not in the customer data) is replaced by the "
    "pooled mean of the observed values and flagged in an added indicator covariate "
    "'<covariate>_missing'; the recipient is kept"
)


def unavailable(setting: str, reason: str, primary_metric: str) -> RegressionAdjustment:
    """The section when nothing could be adjusted (e.g. engagement imported as counts)."""
    return RegressionAdjustment(
        setting=setting,
        used_for_decision=False,
        method=METHOD,
        relative_method=RELATIVE_METHOD,
        missing_values=MISSING_VALUES,
        covariates={},
        comparisons=(),
        reason=reason,
        decision=_decision_text(False, setting, primary_metric, reason),
    )


def _decision_text(used: bool, setting: str, primary_metric: str, reason: str | None) -> str:
    """Which estimate the primary decision uses, and why."""
    if used:
        return (
            f"The decision on {primary_metric} uses the CUPED-adjusted estimates "
            "(analysis.variance_reduction: cuped)."
        )
    if setting == NONE:
        return (
            f"The decision on {primary_metric} uses the unadjusted estimates "
            "(analysis.variance_reduction: none); the adjusted ones are shown for comparison."
        )
    return (
        f"The decision on {primary_metric} uses the unadjusted estimates: "
        f"{reason or 'not every primary comparison could be adjusted'}."
    )


@dataclass(frozen=True)
class AdjustmentRequest:
    """What :func:`adjust_metrics` computes.

    Attributes:
        metrics: Primary metric first, then the secondary ones.
        covariates: Metric -> customer columns to adjust for.
        control_arm: The control arm's name.
        treatment_arms: Treatment arms, in report order.
        confidence: Interval level.
        alpha: Significance level (Holm for the primary metric, BH for the others).
        setting: ``analysis.variance_reduction``.
    """

    metrics: Sequence[str]
    covariates: Mapping[str, Sequence[str]]
    control_arm: str
    treatment_arms: Sequence[str]
    confidence: float
    alpha: float
    setting: str = CUPED


def request_for(
    document: Mapping[str, Any], covariates: Mapping[str, Sequence[str]], setting: str
) -> AdjustmentRequest:
    """The request that adjusts every comparison of a metrics document (its dict form).

    Args:
        document: ``metrics.json`` content (metrics, control arm, arms, levels).
        covariates: ``analysis.covariates``.
        setting: ``analysis.variance_reduction``.
    """
    control = str(document["control_arm"])
    return AdjustmentRequest(
        metrics=[document["primary_metric"], *document["secondary_metrics"]],
        covariates=covariates,
        control_arm=control,
        treatment_arms=[arm for arm in document["arms"] if arm != control],
        confidence=float(document["confidence_level"]),
        alpha=float(document["alpha"]),
        setting=setting,
    )


def covariate_columns(covariates: Mapping[str, Sequence[str]]) -> list[str]:
    """Every customer column that some metric is adjusted for, sorted."""
    return sorted({column for columns in covariates.values() for column in columns})


def adjust_metrics(records: pd.DataFrame, request: AdjustmentRequest) -> RegressionAdjustment:
    """CUPED-adjusted comparisons of every metric and treatment arm.

    Args:
        records: One row per recipient: ``experiment_arm``, the outcome flags
            (``opened``, ``clicked``, ``converted``) and the covariate columns
            (NaN where unknown). Rows of other arms (e.g. a holdout) are ignored.
        request: Metrics, covariates, arms and levels.
    """
    columns = RecipientColumns.of(records, request)
    arms = 1 + len(request.treatment_arms)

    def estimate(metric: str, covariates: Sequence[str]) -> tuple[list[ArmEstimate], list[str]]:
        y, rows = columns.outcome(metric)
        x, names = covariate_matrix(columns.covariates, covariates, rows)
        return estimate_arms(y, x, columns.codes[rows], arms), names

    return adjust_with(estimate, set(columns.covariates), request)


#: Estimates every arm (by arm code: control first) of one metric on the named
#: covariates; returns the estimates and the covariate names of the regression.
ArmEstimator = Callable[[str, Sequence[str]], tuple[list[ArmEstimate], list[str]]]


def adjust_with(
    estimate: ArmEstimator, present: Collection[str], request: AdjustmentRequest
) -> RegressionAdjustment:
    """:func:`adjust_metrics` with the per-arm estimates made by ``estimate``.

    For an engine that makes the two reducible passes where the records are
    (Spark): ``present`` names the covariate columns the customer data has.
    """
    primary = request.metrics[0]
    used: dict[str, tuple[str, ...]] = {}
    comparisons: list[AdjustedComparison] = []
    notes: list[str] = []
    for metric in request.metrics:
        wanted = list(request.covariates.get(metric, ()))
        found = [c for c in wanted if c in present]
        if wanted and len(found) < len(wanted):
            absent = ", ".join(c for c in wanted if c not in found)
            notes.append(f"{metric}: covariate(s) {absent} not in the customer data")
        if not found:
            continue
        used[metric] = tuple(found)
        comparisons += _metric_comparisons(estimate, metric, found, request)
    _adjust_p_values(comparisons, primary, request.alpha)
    primary_done = [c for c in comparisons if c.metric == primary]
    complete = bool(primary_done) and all(c.adjusted.difference is not None for c in primary_done)
    reason = None if comparisons else "no metric has covariates in the customer data"
    why = reason or (None if complete else "not every primary comparison could be adjusted")
    chosen = request.setting == CUPED and complete
    return RegressionAdjustment(
        setting=request.setting,
        used_for_decision=chosen,
        method=METHOD,
        relative_method=RELATIVE_METHOD,
        missing_values=MISSING_VALUES,
        covariates=used,
        comparisons=tuple(comparisons),
        reason=reason,
        decision=_decision_text(chosen, request.setting, primary, why),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class RecipientColumns:
    """The per-recipient arrays every metric's regression reads, converted once.

    Attributes:
        codes: Arm index per row (0 = control, -1 = not analysed, e.g. holdout).
        flags: ``opened`` (a click counts as an open), ``clicked``, ``converted``.
        covariates: Covariate column -> float values (NaN where missing).
    """

    codes: np.ndarray
    flags: Mapping[str, np.ndarray]
    covariates: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, records: pd.DataFrame, request: AdjustmentRequest) -> RecipientColumns:
        """Arm codes, flags and the requested covariates of ``records``."""
        arms = [request.control_arm, *request.treatment_arms]
        codes = pd.Categorical(records["experiment_arm"], categories=arms).codes
        flags = {
            name: _flag(records[name])
            for name in ("opened", "clicked", "converted")
            if name in records
        }
        if "opened" in flags and "clicked" in flags:
            flags["opened"] = flags["opened"] | flags["clicked"]
        wanted = {c for columns in request.covariates.values() for c in columns}
        covariates = {
            name: pd.to_numeric(records[name], errors="coerce").to_numpy(dtype=float)
            for name in sorted(wanted)
            if name in records.columns
        }
        return cls(np.asarray(codes), flags, covariates)

    def outcome(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The metric's 0/1 outcome on the analysed rows it is measured among, and those rows."""
        definition = catalog.metric(metric)
        analysed = self.codes >= 0
        if definition.among:
            analysed &= self.flags[definition.among]
        rows = np.flatnonzero(analysed)
        return self.flags[definition.outcome][rows].astype(float), rows


def _metric_comparisons(
    estimate: ArmEstimator, metric: str, covariates: Sequence[str], request: AdjustmentRequest
) -> list[AdjustedComparison]:
    """Every treatment arm against control on one metric."""
    estimates, names = estimate(metric, covariates)
    if not names:  # every covariate value missing: an intercept-only fit adjusts nothing
        missing = "every covariate value is missing"
        estimates = [
            replace(e, adjusted_mean=None, adjusted_variance=None, reason=missing)
            for e in estimates
        ]
    return [
        compare(metric, arm, estimate, estimates[0], names, request.confidence)
        for arm, estimate in zip(request.treatment_arms, estimates[1:], strict=True)
    ]


def join_covariates(
    engagement: pd.DataFrame, customers: pd.DataFrame, columns: Sequence[str]
) -> pd.DataFrame:
    """Per-recipient engagement with the customers' covariate columns, joined by ``customer_id``.

    A hash join (:mod:`cpo.idjoin`, no per-row
    Python); a repeated customer id uses its first row. Recipients without a
    customer record get NaN, handled as missing values. Columns the customer
    data lacks are left out (:func:`adjust_metrics` notes them).
    """
    from cpo.idjoin import row_positions

    present = [c for c in dict.fromkeys(columns) if c in customers.columns and c != "customer_id"]
    position = row_positions(engagement["customer_id"], customers["customer_id"])
    found = position >= 0
    joined = {}
    for name in present:
        values = pd.to_numeric(customers[name], errors="coerce").to_numpy(dtype=float)
        joined[name] = np.where(found, values[np.maximum(position, 0)], np.nan)
    return engagement.reset_index(drop=True).assign(**joined)


def _flag(values: pd.Series) -> np.ndarray:
    """A validated 0/1 or true/false column as booleans (text as ``cpo analyze`` accepts it)."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.hasnans:
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=0.0) == 1
    text = values.astype("string").str.strip().str.lower()
    return text.isin({"1", "1.0", "true", "t", "yes", "y"}).to_numpy(dtype=bool)


def covariate_matrix(
    covariates: Mapping[str, np.ndarray], names: Sequence[str], rows: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """The covariates of ``rows``, missing values imputed and flagged (see the module docstring)."""
    columns, used = [], []
    for name in names:
        values = covariates[name][rows]
        missing = ~np.isfinite(values)
        if missing.all():
            continue
        columns.append(np.where(missing, known_mean(values[~missing]), values))
        used.append(name)
        if missing.any():
            columns.append(missing.astype(float))
            used.append(f"{name}_missing")
    if not columns:
        return np.zeros((len(rows), 0)), used
    return np.column_stack(columns), used


def known_mean(values: np.ndarray) -> float:
    """The mean of known covariate values: their exactly rounded sum / their count.

    The Spark engine merges :func:`exact_sum` of its partitions and divides the
    same way, so both engines impute the same value.
    """
    return exact_sum(values).value() / len(values)


def _adjust_p_values(comparisons: list[AdjustedComparison], primary: str, alpha: float) -> None:
    """Holm across the primary metric's arms, BH across the secondary comparisons (in place)."""
    for family, method in (
        ([i for i, c in enumerate(comparisons) if c.metric == primary], cpo_stats.holm),
        (
            [i for i, c in enumerate(comparisons) if c.metric != primary],
            cpo_stats.benjamini_hochberg,
        ),
    ):
        adjusted = method([comparisons[i].adjusted.p_value for i in family])
        for i, value in zip(family, adjusted, strict=True):
            significant = None if value is None else bool(value < alpha)
            comparisons[i] = _with_p(comparisons[i], value, significant)


def _with_p(
    record: AdjustedComparison, p: float | None, significant: bool | None
) -> AdjustedComparison:
    """The record with its multiplicity-adjusted p-value."""
    return replace(record, p_value_adjusted=p, significant=significant)


# --------------------------------------------------------------------------
# Planning: the variance reduction to expect
# --------------------------------------------------------------------------

EXPECTED_METHOD = (
    "rho^2 = Var(x) / (mean(x) (1 - mean(x))) for the metric's own history column x over the "
    "customers: the squared correlation between a 0/1 outcome and x if each customer's "
    "historical rate were their expected rate (an upper bound: histories of few emails are "
    "noisier and correlate less); the minimum detectable effect uses n / (1 - rho^2)"
)


def expected_reduction(customers: pd.DataFrame, metric: str, covariates: Sequence[str]) -> JsonDict:
    """The variance reduction CUPED can be expected to give on ``metric``, before the test.

    Only a metric measured over every recipient whose outcome has a history
    column (open rate: ``historical_open_rate``; click rate:
    ``historical_click_rate``) among its covariates has an estimate; others
    get 0 and a reason (nothing predicts them as directly).

    Returns:
        ``{covariate, rho, variance_reduction, method, reason}``.
    """
    definition = catalog.metric(metric)
    column = catalog.COUNTS[definition.numerator].history_column
    none: JsonDict = {"covariate": None, "rho": None, "variance_reduction": 0.0}
    if definition.denominator != "sent" or column is None or column not in covariates:
        reason = "no covariate is this metric's own pre-experiment history"
        return {**none, "method": EXPECTED_METHOD, "reason": reason}
    if column in customers.columns:
        x = pd.to_numeric(customers[column], errors="coerce").to_numpy(dtype=float)
    else:
        x = np.array([])
    x = x[np.isfinite(x)]
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2 or not 0 < mean < 1:
        reason = f"{column}: too few values in the customer data, or its mean is not a rate"
        return {**none, "covariate": column, "method": EXPECTED_METHOD, "reason": reason}
    r2 = min(float(x.var()) / (mean * (1 - mean)), 0.99)
    return {
        "covariate": column,
        "rho": math.sqrt(r2),
        "variance_reduction": r2,
        "method": EXPECTED_METHOD,
        "reason": None,
    }


def expected_reductions(
    customers: pd.DataFrame, covariates: Mapping[str, Sequence[str]]
) -> dict[str, JsonDict]:
    """:func:`expected_reduction` of every catalog metric."""
    return {
        metric: expected_reduction(customers, metric, covariates.get(metric, ()))
        for metric in catalog.metric_names()
    }
