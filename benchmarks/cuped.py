"""Regression adjustment (CUPED): what it costs in the analyze stage, and what it buys.

Builds a synthetic four-arm experiment of N recipients whose customers have a
historical open and click rate, draws opens and clicks from those histories
(each treatment lifts clicks by 5%), then times
:func:`cpo.experiment.cuped.adjust_metrics` on every catalog metric (the
default covariates: one for open, click and click-to-open rate, two for
conversion) and the covariate join (:func:`cpo.experiment.cuped.join_covariates`),
and the exactly rounded sum its passes use (:mod:`cpo.experiment.exact_sum`)
against NumPy's sum. It prints the machine, the load average before and after,
the timings (best of ``--repeat``) and, per metric, the median variance
reduction over the treatment arms::

    python benchmarks/cuped.py                 # 100,000 recipients
    python benchmarks/cuped.py --rows 1000000

The numbers in ``docs/benchmarks.md`` ("Regression adjustment") are this
script's output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
from _machine import print_machine

from cpo.experiment import cuped, exact_sum
from cpo.experiment.analysis_settings import AnalysisSettings

ARMS = ("control", "treatment_1", "treatment_2", "treatment_3")


def synthetic(rows: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Engagement (customer_id, arm, flags) and customers (id, historical rates)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.arange(rows).astype(str))
    open_rate = rng.beta(4, 7, rows)
    click_rate = np.clip(open_rate * rng.beta(2, 8, rows), 0, 1)
    arm = rng.integers(0, len(ARMS), rows)
    opened = rng.random(rows) < open_rate
    clicked = rng.random(rows) < np.clip(click_rate * (1 + 0.05 * (arm > 0)) * 1.5, 0, 1)
    converted = clicked & (rng.random(rows) < 0.1)
    engagement = pd.DataFrame({
        "customer_id": ids, "experiment_arm": np.array(ARMS)[arm],
        "opened": opened.astype(int), "clicked": clicked.astype(int),
        "converted": converted.astype(int),
    })  # fmt: skip
    customers = pd.DataFrame(
        {"customer_id": ids, "historical_open_rate": open_rate, "historical_click_rate": click_rate}
    )
    return engagement, customers.sample(frac=1.0, random_state=seed)  # the join must reorder


def best_of(repeat: int, function, *args):  # type: ignore[no-untyped-def]
    """The fastest of ``repeat`` calls, in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    """Time the join and the adjustment; print the variance reduction per metric."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print_machine()
    print(f"load average before: {os.getloadavg()}")
    settings = AnalysisSettings()
    engagement, customers = synthetic(options.rows)
    columns = cuped.covariate_columns(settings.covariates)
    join_s, records = best_of(options.repeat, cuped.join_covariates, engagement, customers, columns)
    request = cuped.AdjustmentRequest(
        metrics=[settings.primary_metric, *settings.secondary_metrics],
        covariates=settings.covariates,
        control_arm=ARMS[0],
        treatment_arms=ARMS[1:],
        confidence=settings.confidence_level,
        alpha=settings.alpha,
    )
    adjust_s, section = best_of(options.repeat, cuped.adjust_metrics, records, request)
    print(f"rows: {options.rows:,}; arms: {len(ARMS)}; metrics: {len(request.metrics)}")
    print(f"join covariates: {join_s:.3f} s")
    print(f"adjust every metric and arm (both passes): {adjust_s:.3f} s")
    rates = np.ascontiguousarray(customers["historical_click_rate"].to_numpy(dtype=float))
    exact_s, _ = best_of(options.repeat, exact_sum.exact_sums, rates)
    numpy_s, _ = best_of(options.repeat, np.sum, rates)
    print(
        f"sum of {len(rates):,} rates: exact {exact_s * 1e3:.1f} ms, NumPy {numpy_s * 1e3:.2f} ms"
    )
    for metric in request.metrics:
        reductions = [c.variance_reduction for c in section.comparisons_of(metric)]
        shown = [r for r in reductions if r is not None]
        median = statistics.median(shown) if shown else float("nan")
        print(f"  {metric}: median variance reduction {median:.1%}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
