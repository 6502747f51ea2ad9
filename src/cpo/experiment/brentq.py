"""Brent's root finder, the same floats as ``scipy.optimize.brentq`` without importing SciPy.

``scipy.optimize`` costs about 0.3 CPU s to import (its docstring processing), more than
the Koopman intervals and the power calculation that need one root each. This is the
algorithm of SciPy's ``scipy/optimize/Zeros/brentq.c`` (Charles Harris) step by step in
Python floats, which are C doubles: every operation is the same IEEE 754 operation in the
same order, so the iterates, and the root, are bit for bit those of SciPy (tested against
``scipy.optimize.brentq`` on many functions and brackets). The argument checks and
messages are those of ``scipy.optimize.brentq`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

#: SciPy's smallest accepted ``rtol`` (``4 * np.finfo(float).eps``) and its defaults.
MIN_RTOL = 4 * 2.220446049250313e-16
DEFAULT_XTOL = 2e-12
DEFAULT_MAXITER = 100


@dataclass
class _Bracket:
    """The solver's state: current estimate, previous one, the other end of the bracket.

    ``step`` is the last step taken and ``previous_step`` the one before it (SciPy's
    ``scur`` and ``spre``).
    """

    current: float
    f_current: float
    previous: float
    f_previous: float
    block: float = 0.0
    f_block: float = 0.0
    step: float = 0.0
    previous_step: float = 0.0


def brentq(
    f: Callable[[float], float],
    a: float,
    b: float,
    xtol: float = DEFAULT_XTOL,
    rtol: float = MIN_RTOL,
    maxiter: int = DEFAULT_MAXITER,
) -> float:
    """A root of ``f`` in ``[a, b]``, exactly as ``scipy.optimize.brentq(f, a, b, ...)``.

    Args:
        f: Continuous function with ``f(a)`` and ``f(b)`` of opposite signs.
        a: One end of the bracket.
        b: The other end.
        xtol: Absolute tolerance (> 0).
        rtol: Relative tolerance (at least :data:`MIN_RTOL`).
        maxiter: Most iterations before giving up.

    Returns:
        The root's estimate (a float equal to SciPy's).

    Raises:
        ValueError: a tolerance is out of range, ``f(a)`` and ``f(b)`` have the
            same sign, or ``f`` returns NaN.
        RuntimeError: no convergence within ``maxiter`` iterations.
    """
    if xtol <= 0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < MIN_RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {MIN_RTOL:g})")
    if maxiter < 0:
        raise ValueError("maxiter must be >= 0")
    a, b = float(a), float(b)
    state = _Bracket(current=b, f_current=math.nan, previous=a, f_previous=_value(f, a))
    state.f_current = _value(f, b)
    if state.f_previous * state.f_current > 0:
        raise ValueError("f(a) and f(b) must have different signs")
    if state.f_previous == 0:
        return a
    if state.f_current == 0:
        return b
    for _ in range(maxiter):
        if _step(state, xtol, rtol):
            return state.current
        state.f_current = _value(f, state.current)
    raise RuntimeError(f"Failed to converge after {maxiter} iterations.")


def _value(f: Callable[[float], float], x: float) -> float:
    """``f(x)`` as a float; NaN is an error, as in SciPy."""
    fx = float(f(x))
    if math.isnan(fx):
        raise ValueError(f"The function value at x={x} is NaN; solver cannot continue.")
    return fx


def _step(state: _Bracket, xtol: float, rtol: float) -> bool:
    """One iteration: True when converged, else move ``current`` (its value is then stale)."""
    s = state
    if s.f_previous != 0 and s.f_current != 0 and _sign(s.f_previous) != _sign(s.f_current):
        # The root is between previous and current: previous becomes the bracket's end.
        s.block, s.f_block = s.previous, s.f_previous
        s.previous_step = s.step = s.current - s.previous
    if abs(s.f_block) < abs(s.f_current):
        # Keep the best estimate in current.
        s.previous, s.current, s.block = s.current, s.block, s.current
        s.f_previous, s.f_current, s.f_block = s.f_current, s.f_block, s.f_current
    delta = (xtol + rtol * abs(s.current)) / 2
    bisection = (s.block - s.current) / 2
    if s.f_current == 0 or abs(bisection) < delta:
        return True
    s.previous_step, s.step = _next_steps(s, delta, bisection)
    s.previous, s.f_previous = s.current, s.f_current
    if abs(s.step) > delta:
        s.current += s.step
    else:
        s.current += delta if bisection > 0 else -delta
    return False


def _next_steps(s: _Bracket, delta: float, bisection: float) -> tuple[float, float]:
    """(previous step, step): an interpolation when it is short enough, else bisection."""
    if not (abs(s.previous_step) > delta and abs(s.f_current) < abs(s.f_previous)):
        return bisection, bisection
    if s.previous == s.block:  # linear interpolation (secant)
        trial = -s.f_current * (s.current - s.previous) / (s.f_current - s.f_previous)
    else:  # inverse quadratic extrapolation
        d_previous = (s.f_previous - s.f_current) / (s.previous - s.current)
        d_block = (s.f_block - s.f_current) / (s.block - s.current)
        trial = (
            -s.f_current
            * (s.f_block * d_block - s.f_previous * d_previous)
            / (d_block * d_previous * (s.f_block - s.f_previous))
        )
    limit = abs(s.previous_step)
    other = 3 * abs(bisection) - delta
    # C's MIN(a, b) macro: a when a < b, else b (NaN-safe in the same way).
    if 2 * abs(trial) < (limit if limit < other else other):
        return s.step, trial
    return bisection, bisection


def _sign(value: float) -> bool:
    """C's ``signbit``: True for negative numbers and -0.0."""
    return math.copysign(1.0, value) < 0
