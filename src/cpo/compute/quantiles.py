"""Exact quantiles from a few order statistics, computed as ``numpy.quantile`` does.

``numpy.quantile(values, q, method=m)`` reads at most two order statistics of
the sorted values: the ones at the floor and the ceiling of a virtual index
that depends only on the count ``n``, ``q`` and the method. An engine that
cannot hold every value in memory (Spark) asks for those order statistics
alone (:func:`needed_ranks`), then :func:`quantile_from_ranks` combines them
with NumPy's own index, gamma and interpolation functions, so the result is
the same float ``numpy.quantile`` returns on all the values.

NumPy keeps these functions private; ``tests/compute/test_quantiles.py``
compares the result with ``numpy.quantile`` for every method, so a NumPy
release that changes them fails a test instead of changing a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib import _function_base_impl

_impl: Any = _function_base_impl  # private: see the module docstring


def _virtual_index(count: int, level: float, method: str) -> Any:
    """NumPy's virtual index of ``level`` among ``count`` sorted values."""
    props = _impl._QuantileMethods[method]
    return np.asanyarray(props["get_virtual_index"](count, np.asanyarray(level)))


def _is_direct(index: Any, method: str) -> bool:
    """True when NumPy takes one order statistic without interpolating."""
    props = _impl._QuantileMethods[method]
    integral = np.issubdtype(index.dtype, np.integer)
    return props["fix_gamma"] is None or (method == "linear" and integral)


def _neighbours(index: Any, count: int) -> tuple[int, int]:
    """The two ranks NumPy interpolates between (clipped to the sample)."""
    value = float(index)
    if value >= count - 1:
        return count - 1, count - 1
    if value < 0:
        return 0, 0
    low = int(np.floor(value))
    return low, low + 1


def needed_ranks(count: int, level: float, method: str) -> tuple[int, ...]:
    """The 0-based ranks (in ascending order) whose values the quantile needs."""
    index = _virtual_index(count, level, method)
    if _is_direct(index, method):
        return (int(index),)
    low, high = _neighbours(index, count)
    return (low,) if low == high else (low, high)


def quantile_from_ranks(
    count: int, level: float, method: str, values: Mapping[int, float]
) -> float:
    """``numpy.quantile`` of ``count`` values from the order statistics at :func:`needed_ranks`.

    Args:
        count: How many (non-missing) values there are.
        level: The quantile level in [0, 1].
        method: A ``numpy.quantile`` method.
        values: Rank -> value, for every rank :func:`needed_ranks` returned.
    """
    index = _virtual_index(count, level, method)
    if _is_direct(index, method):
        return float(values[int(index)])
    low, high = _neighbours(index, count)
    props = _impl._QuantileMethods[method]
    gamma = _impl._get_gamma(index, np.asanyarray(np.floor(index)), props)
    below = np.asanyarray(values[low], dtype=np.float64)
    above = np.asanyarray(values[high], dtype=np.float64)
    return float(_impl._lerp(below, above, np.asanyarray(gamma, dtype=np.float64)))
