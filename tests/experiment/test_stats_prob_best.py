"""P(arm is best) by Gauss–Legendre quadrature, against 50-digit references.

``P(X_i = max_j X_j) = ∫ f_i(x) ∏_{j≠i} F_j(x) dx`` for independent Beta posteriors.
The references are exact, evaluated with mpmath at 50 digits:

- integer parameters where each other arm has a small alpha or beta (zero or
  few events, all-success arms, any number of units): the regularized
  incomplete beta of integer parameters is a binomial tail (DLMF 8.17.5;
  Abramowitz & Stegun 26.5.24),
  ``I_x(a, b) = 1 - Σ_{m<a} C(n, m) x^m (1-x)^{n-m} = Σ_{m<b} C(n, m) (1-x)^m x^{n-m}``
  with ``n = a + b - 1``, so the integrand expands into terms ``c x^p (1-x)^q``
  and the integral is ``Σ c B(a_i + p, b_i + q) / B(a_i, b_i)`` (Euler's beta integral);
- identical arms: ``1/k`` by symmetry;
- small counts and fractional priors: mpmath's tanh-sinh quadrature of the same
  integral with mpmath's incomplete beta.
"""

from __future__ import annotations

import numpy as np
import pytest
from mp_reference import mp_prob_best

from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.comparisons import prob_best, prob_best_of_posteriors
from cpo.experiment.stats import prob_beat_control

mpmath = pytest.importorskip("mpmath")

DIGITS = 50
TOLERANCE = 1e-7


def _cdf_terms(a: int, b: int) -> list[tuple[object, int, int]]:
    """``I_x(a, b)`` as terms ``(c, p, q)`` of ``c x^p (1-x)^q``, the shorter binomial sum."""
    n = a + b - 1
    if a <= b:
        terms = [(mpmath.mpf(1), 0, 0)]
        terms += [(-mpmath.binomial(n, m), m, n - m) for m in range(a)]
        return terms
    return [(mpmath.binomial(n, m), n - m, m) for m in range(b)]


def exact_prob_best(params: list[tuple[int, int]]) -> list[object]:
    """P(arm i best) for integer Beta parameters, expanded exactly (see the module docstring)."""
    with mpmath.workdps(DIGITS):
        chances = []
        for i, (a, b) in enumerate(params):
            product: dict[tuple[int, int], object] = {(0, 0): mpmath.mpf(1)}
            for j, (c, d) in enumerate(params):
                if j == i:
                    continue
                combined: dict[tuple[int, int], object] = {}
                for (p, q), coef in product.items():
                    for term, tp, tq in _cdf_terms(c, d):
                        key = (p + tp, q + tq)
                        combined[key] = combined.get(key, 0) + coef * term
                product = combined
            log_norm = mpmath.log(mpmath.beta(a, b))
            chances.append(
                mpmath.fsum(
                    coef * mpmath.exp(mpmath.log(mpmath.beta(a + p, b + q)) - log_norm)
                    for (p, q), coef in product.items()
                )
            )
        return chances


def quad_prob_best(params: list[tuple[float, float]]) -> list[object]:
    """The same integral by mpmath quadrature with mpmath's incomplete beta (small counts)."""
    return mp_prob_best(params, digits=DIGITS, spreads=(-6, 0, 6))


def _params(arms: list[tuple[int, int]], prior: tuple[int, int] = (1, 1)) -> list[tuple[int, int]]:
    """(events, units) per arm -> posterior (alpha, beta)."""
    return [(prior[0] + x, prior[1] + n - x) for x, n in arms]


M = 1_000_000
# (events, units) per arm: near-certain cases at 10^6 units, all-success and
# all-failure arms, rare events, 2 to 8 arms.
EXPANDABLE = [
    [(0, M), (M, M)],
    [(0, M), (0, 10)],
    [(0, M), (1, M), (5, M)],
    [(0, M), (0, 500_000), (0, 2 * M), (3, M)],
    [(M, M), (M - 1, M), (M - 4, M)],
    [(M, M), (10, 10), (9, 9)],
    [(9, 9), (33, 120), (0, 9), (120, 120)],
    [(800, 800), (4924, 5000)],
    [(2, M), (0, M), (4, M), (1, M), (3, M), (0, 300_000), (2, 700_000), (1, 10)],
    [(12, 100), (18, 100), (9, 80)],
    [(3, 20), (4, 25), (3, 22), (0, 30), (5, 30)],
    [(0, 3), (3, 3), (0, 200), (200, 200)],
]


@pytest.mark.parametrize("arms", EXPANDABLE, ids=lambda arms: f"{len(arms)}-arms")
@pytest.mark.parametrize("prior", [(1, 1), (2, 3)])
def test_within_1e_7_of_the_exact_binomial_expansion(arms, prior):
    params = _params(arms, prior)
    a, b = (np.array(column, dtype=float) for column in zip(*params, strict=True))
    got = prob_best_of_posteriors(a, b)
    for value, reference in zip(got, exact_prob_best(params), strict=True):
        assert abs(value - float(reference)) < TOLERANCE


@pytest.mark.parametrize("units", [10, 5_000, M])
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_identical_arms_each_have_one_in_k(units, k):
    a = np.full(k, 1.0 + units // 3)
    b = np.full(k, 1.0 + units - units // 3)
    assert prob_best_of_posteriors(a, b) == pytest.approx(np.full(k, 1.0 / k), abs=TOLERANCE)


@pytest.mark.parametrize(
    ("params"),
    [
        [(0.5, 10.5), (0.5, 3.5), (2.5, 8.5)],  # Jeffreys prior, zero events: unbounded densities
        [(10.5, 0.5), (6.5, 0.5), (3.5, 4.5)],  # Jeffreys prior, all successes
        [(1.5, 2.5), (2.5, 1.5), (0.7, 0.9)],
    ],
)
def test_fractional_parameters_within_1e_7_of_mpmath_quadrature(params):
    a, b = (np.array(column, dtype=float) for column in zip(*params, strict=True))
    got = prob_best_of_posteriors(a, b)
    for value, reference in zip(got, quad_prob_best(params), strict=True):
        assert abs(value - float(reference)) < TOLERANCE


@pytest.mark.parametrize(
    ("treatment", "control"),
    [
        ((333_333, M), (332_900, M)),
        ((16_000, 815_482), (16_400, 821_588)),
        ((75, 1000), (50, 1000)),
    ],
)
def test_two_arms_at_scale_match_the_exact_sums_of_prob_beat_control(treatment, control):
    # P(best) of two arms is P(beat control), which stats computes by exact finite
    # sums (checked against mpmath in test_bayes_arms.py).
    counts = {
        "control": {"sent": control[1], "clicked": control[0]},
        "t": {"sent": treatment[1], "clicked": treatment[0]},
    }
    settings = AnalysisSettings()
    best = prob_best(counts, "click_rate", settings)
    exact = prob_beat_control(*treatment, *control).prob_beat_control
    assert best["t"] == pytest.approx(exact, abs=TOLERANCE)
    assert best["control"] == pytest.approx(1.0 - exact, abs=TOLERANCE)
