"""Quantiles from two order statistics equal ``numpy.quantile`` on all the values.

The Spark engine resolves quantile thresholds from the order statistics
:func:`cpo.compute.quantiles.needed_ranks` names; this pins that the result is
the same float NumPy gives for every method the config allows (NumPy's private
helpers are used, so a NumPy change fails here first).
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from cpo.compute.quantiles import needed_ranks, quantile_from_ranks
from cpo.segmentation.settings import QuantileMethod

LEVELS = (0.0, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 0.99, 1.0)


@pytest.mark.parametrize("method", get_args(QuantileMethod))
@pytest.mark.parametrize("count", [1, 2, 3, 7, 10, 101, 1000])
def test_quantile_from_ranks_is_numpys_quantile(method: str, count: int) -> None:
    rng = np.random.default_rng(count)
    for decimals in (0, 2, 6):  # ties (rounded values) and distinct values
        values = np.round(rng.lognormal(3, 1, size=count), decimals)
        ordered = np.sort(values)
        for level in (*LEVELS, float(rng.random())):
            ranks = needed_ranks(count, level, method)
            assert all(0 <= rank < count for rank in ranks)
            found = quantile_from_ranks(count, level, method, {r: ordered[r] for r in ranks})
            assert found == float(np.quantile(values, level, method=method)), (level, decimals)
