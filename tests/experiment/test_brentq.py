"""cpo.experiment.brentq against scipy.optimize.brentq (the reference): the same floats."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from scipy import optimize

from cpo.experiment import stats
from cpo.experiment.brentq import brentq

Function = Callable[[float], float]

# Smooth, flat, steep, kinked, discontinuous and huge/tiny-valued functions.
FUNCTIONS: dict[str, tuple[Function, float, float]] = {
    "square minus one": (lambda x: x * x - 1.0, 0.0, 3.0),
    "cubic": (lambda x: x**3 - 2.0 * x - 5.0, 2.0, 3.0),
    "cosine minus x": (lambda x: math.cos(x) - x, 0.0, 1.0),
    "exp minus 2": (lambda x: math.exp(x) - 2.0, -5.0, 5.0),
    "flat near the root": (lambda x: (x - 0.3) ** 9, 0.0, 1.0),
    "steep": (lambda x: math.tanh(200.0 * (x - 0.123456789)), -1.0, 1.0),
    "kink": (lambda x: abs(x - 0.2) - 0.1 if x > 0.2 else -0.05, 0.0, 1.0),
    "step": (lambda x: 1.0 if x > 0.7071 else -1.0, 0.0, 1.0),
    "tiny values": (lambda x: 1e-300 * (x - 0.5), 0.0, 1.0),
    "huge values": (lambda x: 1e300 * (x - 0.25), 0.0, 1.0),
    "log": (lambda x: math.log(x) - 1.0, 0.5, 10.0),
    "root at an end": (lambda x: x - 2.0, 0.0, 2.0),
    "root at the start": (lambda x: x, 0.0, 2.0),
    "decreasing": (lambda x: 0.5 - math.erf(x), -3.0, 3.0),
    "near zero root": (lambda x: x + 1e-15, -1.0, 1.0),
    "reversed bracket": (lambda x: x * x - 2.0, 3.0, 0.0),
}
TOLERANCES = [(2e-12, 4 * 2.220446049250313e-16), (1e-12, 1e-12), (1e-3, 1e-6), (5e-324, 1e-15)]


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize(("xtol", "rtol"), TOLERANCES)
def test_same_root_as_scipy(name: str, xtol: float, rtol: float) -> None:
    f, a, b = FUNCTIONS[name]
    expected = _outcome(optimize.brentq, f, a, b, xtol=xtol, rtol=rtol)
    assert _outcome(brentq, f, a, b, xtol=xtol, rtol=rtol) == expected


def _outcome(solver: Callable[..., float], *args: object, **options: float) -> str:
    """The root as hex, or the exception type and message (e.g. no convergence)."""
    try:
        return float(solver(*args, **options)).hex()
    except (ValueError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"


def test_same_roots_on_random_polynomials_and_brackets() -> None:
    generator = random.Random(12)
    compared = 0
    for _ in range(3000):
        coefficients = [generator.uniform(-10, 10) for _ in range(generator.randint(2, 6))]

        def f(x: float, c: list[float] = coefficients) -> float:
            return sum(value * x**power for power, value in enumerate(c))

        a, b = sorted(generator.uniform(-5, 5) for _ in range(2))
        if f(a) * f(b) >= 0:
            continue
        xtol, rtol = generator.choice(TOLERANCES)
        expected = optimize.brentq(f, a, b, xtol=xtol, rtol=rtol)
        assert brentq(f, a, b, xtol=xtol, rtol=rtol).hex() == float(expected).hex()
        compared += 1
    assert compared > 1000


def test_same_roots_on_koopman_and_power_functions() -> None:
    # The two functions cpo solves: the Koopman score statistic and the power shortfall.
    generator = random.Random(3)
    compared = 0
    for _ in range(300):
        n1, n2 = generator.randint(1, 10**6), generator.randint(1, 10**6)
        x1, x2 = generator.randint(0, n1), generator.randint(0, n2)
        target = generator.uniform(-3, 3)

        def g(t: float, cells: tuple[int, ...] = (x1, n1, x2, n2), z: float = target) -> float:
            return stats._koopman_z(math.exp(t), *cells) - z

        lo, hi = -1.0, 1.0
        while g(lo) * g(hi) > 0 and hi < 40:
            lo, hi = lo * 2, hi * 2
        if g(lo) * g(hi) >= 0:
            continue
        expected = optimize.brentq(g, lo, hi, xtol=1e-12, rtol=1e-12)
        assert brentq(g, lo, hi, xtol=1e-12, rtol=1e-12).hex() == float(expected).hex()
        compared += 1
    assert compared > 200


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            (lambda x: x * x + 1.0, 0.0, 1.0, {}),
            ValueError,
            "f(a) and f(b) must have different signs",
        ),
        ((lambda x: x - 0.5, 0.0, 1.0, {"xtol": 0.0}), ValueError, "xtol too small (0 <= 0)"),
        ((lambda x: x - 0.5, 0.0, 1.0, {"rtol": 1e-17}), ValueError, "rtol too small"),
        ((lambda x: math.nan, 0.0, 1.0, {}), ValueError, "The function value at x=0.0 is NaN"),
        (
            (lambda x: (x - 0.3) ** 9, 0.0, 1.0, {"maxiter": 2}),
            RuntimeError,
            "Failed to converge after 2",
        ),
    ],
)
def test_errors_as_scipy(arguments: tuple, error: type[Exception], message: str) -> None:
    f, a, b, options = arguments
    with pytest.raises(error) as expected:
        optimize.brentq(f, a, b, **options)
    with pytest.raises(error) as got:
        brentq(f, a, b, **options)
    assert message in str(expected.value)
    assert str(got.value) == str(expected.value)
