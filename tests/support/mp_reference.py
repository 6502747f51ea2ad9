"""High-precision references for the Bayesian statistics, computed with mpmath."""

from __future__ import annotations

from collections.abc import Sequence


def mp_prob_best(
    params: Sequence[tuple[float, float]], *, digits: int, spreads: Sequence[int]
) -> list[object]:
    """P(arm i has the highest rate) = ∫ f_i ∏_{j≠i} F_j, by mpmath's quadrature.

    Args:
        params: Each arm's Beta posterior (a, b).
        digits: mpmath's working precision.
        spreads: The quadrature's breakpoints, in posterior standard deviations
            around each arm's mean (clipped to [0, 1]).
    """
    import mpmath

    with mpmath.workdps(digits):
        points = {mpmath.mpf(0), mpmath.mpf(1)}
        for a, b in params:
            mean = mpmath.mpf(a) / (a + b)
            sd = mpmath.sqrt(mean * (1 - mean) / (a + b + 1))
            points |= {min(1, max(0, mean + k * sd)) for k in spreads}
        chances = []
        for i, (a, b) in enumerate(params):

            def integrand(x, i=i, a=a, b=b):
                value = x ** (a - 1) * (1 - x) ** (b - 1) / mpmath.beta(a, b)
                for j, (c, d) in enumerate(params):
                    if j != i:
                        value *= mpmath.betainc(c, d, 0, x, regularized=True)
                return value

            chances.append(mpmath.quad(integrand, sorted(points)))
        return chances
