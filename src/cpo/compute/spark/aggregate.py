"""The analyze stage's reductions on Spark: sufficient statistics and CUPED's two passes.

**Sufficient statistics.** Spark reads the engagement (the run's dataset, or
engagement.csv) and counts per (arm, segment) what
:func:`cpo.experiment.aggregate.aggregate_file` counts: recipients, opens (a
click counts as an open), clicks, conversions and clicks without an open,
after the same checks (a blank arm or segment, a flag that is not 0/1). Only
the counts reach the driver, as
:meth:`~cpo.experiment.aggregate.SufficientStatistics.from_counts`.

**Regression adjustment (CUPED).** The engagement is joined by Spark to the
covariate columns of the run's customer copy, and
:func:`cpo.experiment.cuped.adjust_with` gets its per-arm estimates from three
passes, each one ``mapInPandas`` whose partitions return small sums for every
metric at once:

1. per metric and covariate, the count and exact sum of the known values (the
   pooled mean that replaces a missing value, as
   :func:`cpo.experiment.cuped.covariate_matrix` does);
2. per metric and arm, :func:`cpo.experiment.cuped.moment_sums` (they merge);
3. per metric and arm, :func:`cpo.experiment.cuped.meat_sums` with the arm's
   fit from the merged moments (they merge).

The partitions run the local code on their rows and return exact sums
(:mod:`cpo.experiment.exact_sum`), merged on the driver and rounded once, so
the estimates are the local engine's to the bit, however Spark splits the
rows into partitions and batches.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cpo.errors import DataValidationError
from cpo.experiment import cuped
from cpo.experiment.aggregate import (
    ARM_COLUMN,
    DEFAULT_SEGMENT,
    FLAG_COLUMNS,
    SEGMENT_COLUMN,
    SOURCE_COLUMN,
    SufficientStatistics,
)
from cpo.experiment.exact_sum import exact_sum
from cpo.run_folder import CUSTOMERS_COPY, find_engagement

_TRUE = ("1", "1.0", "true", "t", "yes", "y")
_FALSE = ("0", "0.0", "false", "f", "no", "n")
#: What a pass's partitions return: one row of pickled sums per partition.
_SUMS_SCHEMA = "sums binary"


def read_engagement_frame(session: Any, run_dir: Path) -> Any:
    """The run's engagement as a Spark frame (the dataset, or engagement.csv as text).

    Raises:
        DataValidationError: the run has no engagement.
    """
    path = find_engagement(run_dir)
    if path is None:
        raise DataValidationError(
            f"{run_dir}: no engagement (engagement.csv or engagement.parquet/)",
            hint="the engage stage writes it: rerun it with `cpo run --resume RUN_DIR`",
        )
    if path.is_dir():
        return session.read.parquet(str(path.resolve()))
    # cpo's own CSV: every column text; an escaped label ("'+VIP") has its quote removed.
    frame = session.read.options(header=True, inferSchema=False).csv(str(path.resolve()))
    from pyspark.sql import functions as F

    unescaped = [
        F.regexp_replace(F.col(c), r"^'('*[=+\-@\t\r])", "$1").alias(c)
        if c in (ARM_COLUMN, SEGMENT_COLUMN)
        else F.col(c)
        for c in frame.columns
    ]
    return frame.select(*unescaped)


def engagement_statistics(engine: Any, run_dir: Path) -> SufficientStatistics:
    """Counts per (arm, segment) of the run's engagement, reduced by Spark.

    Raises:
        DataValidationError: an arm or segment is blank, or a flag is not 0/1
            (messages name the column and the count of rows).
    """
    from pyspark.sql import functions as F

    frame = read_engagement_frame(engine.session, run_dir)
    source = str(find_engagement(run_dir))
    columns = set(frame.columns)
    flags = {c: _flag(frame, c) for c in FLAG_COLUMNS}
    segment = F.col(SEGMENT_COLUMN) if SEGMENT_COLUMN in columns else F.lit(DEFAULT_SEGMENT)
    cells = frame.select(
        F.col(ARM_COLUMN).cast("string").alias("arm"),
        segment.cast("string").alias("segment"),
        *(value.alias(c) for c, value in flags.items()),
        (F.col(SOURCE_COLUMN) if SOURCE_COLUMN in columns else F.lit(None)).alias("source"),
    )
    _check(source, cells)
    opened, clicked, converted = (F.col(c) == 1 for c in FLAG_COLUMNS)
    counts = cells.groupBy("arm", "segment").agg(
        F.count(F.lit(1)).alias("sent"),
        F.sum((opened | clicked).cast("long")).alias("opened"),
        F.sum(clicked.cast("long")).alias("clicked"),
        F.sum(converted.cast("long")).alias("converted"),
        F.sum((clicked & ~opened).cast("long")).alias("clicked_without_open"),
        F.collect_set("source").alias("sources"),
    )
    table: dict[tuple[str, str], dict[str, int]] = {}
    sources: set[str] = set()
    for row in counts.collect():
        keys = ("sent", "opened", "clicked", "converted", "clicked_without_open")
        table[(str(row["arm"]), str(row["segment"]))] = {k: int(row[k]) for k in keys}
        sources.update(str(s) for s in row["sources"] if s)
    return SufficientStatistics.from_counts(table, sources)


def _flag(frame: Any, column: str) -> Any:
    """A 0/1/true/false column as 1/0 (null: any other value), as the local reduction reads it."""
    from pyspark.sql import functions as F

    kind = dict(frame.dtypes)[column]
    if kind == "string":
        text = F.lower(F.trim(F.col(column)))
        return F.when(text.isin(*_TRUE), 1).when(text.isin(*_FALSE), 0)
    number = F.col(column).cast("double")
    return F.when(number == 1.0, 1).when(number == 0.0, 0)


def _check(source: str, cells: Any) -> None:
    """Blank labels and flags that are not binary are errors (as the local reduction)."""
    from pyspark.sql import functions as F

    def blank(name: str) -> Any:
        return F.sum((F.col(name).isNull() | (F.trim(F.col(name)) == "")).cast("long"))

    sums = [blank("arm").alias("arm"), blank("segment").alias("segment")]
    sums += [F.sum(F.col(c).isNull().cast("long")).alias(c) for c in FLAG_COLUMNS]
    found = cells.agg(*sums).first().asDict()
    for label, column in (("arm", ARM_COLUMN), ("segment", SEGMENT_COLUMN)):
        if found[label]:
            raise DataValidationError(
                f"{source}: column '{column}' is empty in {found[label]} row(s)",
                hint=f"every record needs a {column}",
            )
    for column in FLAG_COLUMNS:
        if found[column]:
            raise DataValidationError(
                f"{source}: column '{column}' must be 0/1 or true/false; "
                f"{found[column]} row(s) have other values",
                hint=f"'{column}' records whether the recipient {column} (1) or not (0)",
            )


# --------------------------------------------------------------------------
# Regression adjustment: three reducible passes
# --------------------------------------------------------------------------


def adjust_metrics(
    engine: Any,
    run_dir: Path,
    request: cuped.AdjustmentRequest,
    customers: Callable[[Sequence[str]], pd.DataFrame] | None,
) -> cuped.RegressionAdjustment:
    """:func:`cpo.experiment.cuped.adjust_metrics` of the run's engagement, passes on Spark.

    Args:
        engine: The Spark engine.
        run_dir: The run folder (engagement and customer copy).
        request: What to adjust.
        customers: Reads the customers' covariate columns in this process when
            the run's customer copy is not current; None: Spark reads the copy.
    """
    from pyspark.sql import functions as F

    wanted = cuped.covariate_columns(request.covariates)
    engagement = read_engagement_frame(engine.session, run_dir)
    records = engagement.select(
        F.col("customer_id").cast("string"),
        F.col(ARM_COLUMN).cast("string"),
        *(F.col(c) for c in FLAG_COLUMNS if c in engagement.columns),
    )
    covariates = _covariates(engine, run_dir, wanted, customers)
    present = [c for c in wanted if c in covariates.columns]
    joined = records.join(covariates.select("customer_id", *present), "customer_id", "left")
    joined = joined.cache()
    try:
        passes = _Passes(joined, request)
        return cuped.adjust_with(passes.estimate, set(present), request)
    finally:
        joined.unpersist()


def _covariates(
    engine: Any,
    run_dir: Path,
    wanted: Sequence[str],
    customers: Callable[[Sequence[str]], pd.DataFrame] | None,
) -> Any:
    """customer_id and the covariate columns the customer data has, as doubles."""
    from pyspark.sql import functions as F

    if customers is None:
        frame = engine.session.read.parquet(str(CUSTOMERS_COPY.path(run_dir).resolve()))
    else:
        local = customers(list(wanted))
        frame = engine.session.createDataFrame(local.astype({"customer_id": str}))
    present = [c for c in wanted if c in frame.columns and c != "customer_id"]
    return frame.select(
        F.col("customer_id").cast("string"), *(F.col(c).cast("double") for c in present)
    )


#: A metric's regression covariates: (covariate, pooled mean of its known values, whether
#: a missing-value indicator is added), in :func:`cpo.experiment.cuped.covariate_matrix` order.
Imputation = list[tuple[str, float, bool]]


class _Passes:
    """The three passes over the joined records, made once for every metric together.

    The first call of :meth:`estimate` runs them for every metric with
    covariates in the customer data; later calls read the results.
    """

    def __init__(self, joined: Any, request: cuped.AdjustmentRequest) -> None:
        self.joined = joined
        self.request = request
        self.arms = 1 + len(request.treatment_arms)
        self.results: dict[str, tuple[list[cuped.ArmEstimate], list[str]]] | None = None

    def estimate(
        self, metric: str, covariates: Sequence[str]
    ) -> tuple[list[cuped.ArmEstimate], list[str]]:
        """The metric's per-arm estimates and regression covariates (a ``cuped.ArmEstimator``)."""
        if self.results is None:
            self.results = self._run()
        return self.results[metric]

    def _run(self) -> dict[str, tuple[list[cuped.ArmEstimate], list[str]]]:
        """Pooled means, then moments, then HC2 meats: three Spark passes."""
        present = set(self.joined.columns)
        wanted = {
            metric: [c for c in self.request.covariates.get(metric, ()) if c in present]
            for metric in self.request.metrics
        }
        wanted = {metric: names for metric, names in wanted.items() if names}
        known = _reduce(self.joined, _known_sums(self.request, wanted), _add)
        plans = {m: _imputation(known, m, names) for m, names in wanted.items()}
        summed = _reduce(self.joined, _moment_sums(self.request, plans, self.arms), _add)
        moments = {
            m: _arm_moments(summed, m, len(_names(plan)), self.arms) for m, plan in plans.items()
        }
        results: dict[str, tuple[list[cuped.ArmEstimate], list[str]]] = {}
        fits: dict[str, list[cuped.ArmFit]] = {}
        for metric, sums in moments.items():
            if sum(m.n for m in sums) == 0:
                nobody = cuped.ArmEstimate(0, None, None, None, None, "no recipients")
                results[metric] = ([nobody] * self.arms, _names(plans[metric]))
            else:
                center = cuped.pooled_mean(sums)
                fits[metric] = [cuped.fit_arm(m, center) for m in sums]
        meats = _reduce(self.joined, _meat_sums(self.request, plans, fits), _add_meat)
        for metric, arm_fits in fits.items():
            estimates = [
                cuped.estimate_arm(moments[metric][code], fit, _rounded_meat(meats, metric, code))
                for code, fit in enumerate(arm_fits)
            ]
            results[metric] = (estimates, _names(plans[metric]))
        return results


def _arm_moments(
    summed: Mapping[Any, cuped.MomentSums], metric: str, covariates: int, arms: int
) -> list[cuped.ArmMoments]:
    """The metric's merged moment sums per arm code, rounded (an arm without rows: zeros)."""
    return [(summed.get((metric, code)) or _empty(covariates)).moments() for code in range(arms)]


def _rounded_meat(
    meats: Mapping[Any, cuped.MeatSums | None], metric: str, code: int
) -> np.ndarray | None:
    """The arm's merged HC2 meat as a matrix; None when undefined or the arm had no rows."""
    sums = meats.get((metric, code))
    return None if sums is None else sums.meat()


def _reduce(
    frame: Any,
    partial: Callable[[pd.DataFrame], dict[Any, Any]],
    combine: Callable[[Any, Any], Any],
) -> dict[Any, Any]:
    """``partial`` of every Arrow batch (on the executors), combined by key on the driver."""

    def mapper(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame({"sums": [pickle.dumps(partial(batch.reset_index(drop=True)))]})

    total: dict[Any, Any] = {}
    for row in frame.mapInPandas(mapper, _SUMS_SCHEMA).collect():
        for key, value in pickle.loads(row["sums"]).items():
            total[key] = combine(total[key], value) if key in total else value
    return total


def _add(left: Any, right: Any) -> Any:
    """Two partial sums added (tuples element by element, moments by their ``+``)."""
    if isinstance(left, tuple):
        return tuple(a + b for a, b in zip(left, right, strict=True))
    return left + right


def _add_meat(left: cuped.MeatSums | None, right: cuped.MeatSums | None) -> cuped.MeatSums | None:
    """Two partial HC2 meats merged; None (a leverage of 1 somewhere) wins."""
    return None if left is None or right is None else left + right


def _known_sums(
    request: cuped.AdjustmentRequest, wanted: Mapping[str, Sequence[str]]
) -> Callable[[pd.DataFrame], dict[Any, Any]]:
    """Pass 1: per (metric, covariate), the known values' count and exact sum, and the rows."""

    def partial(batch: pd.DataFrame) -> dict[Any, Any]:
        columns = cuped.RecipientColumns.of(batch, request)
        out: dict[Any, Any] = {}
        for metric, names in wanted.items():
            _, rows = columns.outcome(metric)
            for name in names:
                values = columns.covariates[name][rows]
                finite = np.isfinite(values)
                out[(metric, name)] = (int(finite.sum()), exact_sum(values[finite]), len(rows))
        return out

    return partial


def _imputation(known: Mapping[Any, Any], metric: str, names: Sequence[str]) -> Imputation:
    """The metric's covariates with their pooled means (one never known is left out).

    The mean is :func:`cpo.experiment.cuped.known_mean`'s: exact sum / count.
    """
    plan = []
    for name in names:
        count, total, rows = known.get((metric, name), (0, None, 0))
        if count:
            plan.append((name, total.value() / count, count < rows))
    return plan


def _names(plan: Imputation) -> list[str]:
    """The regression's covariate names (``<covariate>_missing`` for an indicator)."""
    names = []
    for name, _mean, indicator in plan:
        names += [name, f"{name}_missing"] if indicator else [name]
    return names


def _imputed(
    covariates: Mapping[str, np.ndarray], rows: np.ndarray, plan: Imputation
) -> np.ndarray:
    """The covariate matrix of ``rows`` as :func:`cpo.experiment.cuped.covariate_matrix` has it."""
    columns = []
    for name, mean, indicator in plan:
        values = covariates[name][rows]
        missing = ~np.isfinite(values)
        columns.append(np.where(missing, mean, values))
        if indicator:
            columns.append(missing.astype(float))
    return np.column_stack(columns) if columns else np.zeros((len(rows), 0))


def _per_arm(
    request: cuped.AdjustmentRequest,
    plans: Mapping[str, Imputation],
    arms: int,
    each: Callable[[str, int, np.ndarray, np.ndarray], Any],
) -> Callable[[pd.DataFrame], dict[Any, Any]]:
    """A pass that calls ``each(metric, arm code, y, x)`` on every arm's rows of a batch."""

    def partial(batch: pd.DataFrame) -> dict[Any, Any]:
        columns = cuped.RecipientColumns.of(batch, request)
        out: dict[Any, Any] = {}
        for metric, plan in plans.items():
            y, rows = columns.outcome(metric)
            x = _imputed(columns.covariates, rows, plan)
            codes = columns.codes[rows]
            for code in range(arms):
                mine = np.flatnonzero(codes == code)
                out[(metric, code)] = each(metric, code, y[mine], x[mine])
        return out

    return partial


def _moment_sums(
    request: cuped.AdjustmentRequest, plans: Mapping[str, Imputation], arms: int
) -> Callable[[pd.DataFrame], dict[Any, Any]]:
    """Pass 2: :func:`cpo.experiment.cuped.moment_sums` per (metric, arm)."""
    return _per_arm(request, plans, arms, lambda _m, _c, y, x: cuped.moment_sums(y, x))


def _meat_sums(
    request: cuped.AdjustmentRequest,
    plans: Mapping[str, Imputation],
    fits: Mapping[str, list[cuped.ArmFit]],
) -> Callable[[pd.DataFrame], dict[Any, Any]]:
    """Pass 3: :func:`cpo.experiment.cuped.meat_sums` per (metric, arm) with the arm's fit."""
    fitted = {metric: plan for metric, plan in plans.items() if metric in fits}
    arms = 1 + len(request.treatment_arms)
    return _per_arm(
        request, fitted, arms, lambda m, code, y, x: cuped.meat_sums(y, x, fits[m][code])
    )


def _empty(covariates: int) -> cuped.MomentSums:
    """The moment sums of no rows."""
    return cuped.moment_sums(np.zeros(0), np.zeros((0, covariates)))
