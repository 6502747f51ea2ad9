"""CUPED's Spark passes give the local estimates bit for bit, however the rows are batched.

The passes of :mod:`cpo.compute.spark.aggregate` run here without Spark: a
stand-in frame feeds pandas batches to the same ``mapInPandas`` functions and
returns their pickled partial sums, which the driver code merges as it does
on Spark. The estimates must equal :func:`cpo.experiment.cuped.adjust_metrics`
on the whole frame exactly (no tolerance), for any split into batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cpo.compute.spark import aggregate
from cpo.experiment import cuped

ARMS = ("control", "treatment_1", "treatment_2")
COVARIATES = {
    "open_rate": ["historical_open_rate"],
    "click_rate": ["historical_click_rate", "tenure"],
    "click_to_open_rate": ["historical_click_rate"],
    "conversion_rate": ["historical_click_rate", "historical_open_rate"],
}


class _Batches:
    """A stand-in for a Spark frame: ``mapInPandas`` over fixed pandas batches, one per call."""

    def __init__(self, frame: pd.DataFrame, cuts: list[int]) -> None:
        self.columns = list(frame.columns)
        self.batches = [frame.iloc[start:end] for start, end in _bounds(cuts, len(frame))]

    def mapInPandas(self, mapper: Callable[..., Iterator[pd.DataFrame]], schema: str) -> Any:
        """The mapper's output rows of every batch, as ``collect()`` gives them."""
        assert schema == "sums binary"
        rows = [row for b in self.batches for out in mapper(iter([b])) for row in _rows(out)]
        return _Collected(rows)


class _Collected:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def collect(self) -> list[dict[str, Any]]:
        return self.rows


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def _bounds(cuts: list[int], n: int) -> list[tuple[int, int]]:
    edges = [0, *sorted(cuts), n]
    return list(itertools.pairwise(edges))


def _records(n: int, seed: int) -> pd.DataFrame:
    """Recipients with flags and covariates (some missing, one integer-valued)."""
    rng = np.random.default_rng(seed)
    open_rate = rng.beta(4, 7, n)
    click_rate = np.clip(open_rate * rng.beta(2, 8, n), 0, 1)
    arm = rng.integers(0, len(ARMS), n)
    opened = rng.random(n) < open_rate + 0.02 * arm
    clicked = opened & (rng.random(n) < 3 * click_rate)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "experiment_arm": np.array(ARMS)[arm],
            "opened": opened.astype(int),
            "clicked": clicked.astype(int),
            "converted": (clicked & (rng.random(n) < 0.2)).astype(int),
            "historical_open_rate": np.where(rng.random(n) < 0.1, np.nan, open_rate),
            "historical_click_rate": click_rate * 1e3 / 7,
            "tenure": rng.integers(0, 3000, n).astype(float),
        }
    )
    return frame


def _request() -> cuped.AdjustmentRequest:
    return cuped.AdjustmentRequest(
        metrics=list(COVARIATES),
        covariates=COVARIATES,
        control_arm=ARMS[0],
        treatment_arms=ARMS[1:],
        confidence=0.95,
        alpha=0.05,
    )


def _on_batches(records: pd.DataFrame, cuts: list[int]) -> dict[str, Any]:
    """The regression adjustment the Spark passes compute on these batches."""
    request = _request()
    passes = aggregate._Passes(_Batches(records, cuts), request)
    present = {c for c in cuped.covariate_columns(request.covariates) if c in records}
    return cuped.adjust_with(passes.estimate, present, request).to_dict()


@pytest.mark.parametrize("seed", [1, 2])
def test_any_batches_give_the_whole_arrays_estimates_bit_for_bit(seed: int) -> None:
    records = _records(3000, seed)
    local = cuped.adjust_metrics(records, _request()).to_dict()
    adjusted = [c["adjusted"]["difference"] for c in local["comparisons"]]
    assert len(adjusted) == 8 and all(d is not None for d in adjusted)
    names = {name for c in local["comparisons"] for name in c["covariates"]}
    assert "historical_open_rate_missing" in names
    rng = np.random.default_rng(seed)
    splits = [[], [1], [1500], [0, 0, 17, 2999], sorted(rng.integers(0, 3000, 40).tolist())]
    for cuts in splits:
        assert _on_batches(records, cuts) == local, f"batches cut at {cuts}"


def test_a_batch_without_an_arm_or_a_known_value_still_merges() -> None:
    """Batches holding one arm only, or no known covariate value, merge to the same estimates."""
    records = _records(1200, 3).sort_values("experiment_arm", kind="stable")
    records = records.reset_index(drop=True)
    records.loc[:99, "historical_open_rate"] = np.nan
    local = cuped.adjust_metrics(records, _request()).to_dict()
    assert _on_batches(records, [100, 400, 800]) == local
