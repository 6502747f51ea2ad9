"""The Spark engine: rules segmentation and arm assignment as Spark jobs.

What runs where:

* **segment** (rules): each quantile threshold is resolved from the exact
  order statistics of its column (:mod:`.order_statistics`, combined as
  ``numpy.quantile`` does, :mod:`cpo.compute.quantiles`); each numeric
  column's standard deviation (the confidence scale) is a Spark aggregate; then
  every partition is assigned by the local rules code with those numbers
  (``mapInPandas``), so a customer gets the segment, confidence and reason the
  local engine gives. k-means is refused (rules only).
* **assign**: the keyed hash of every id is the local function run on Arrow
  batches (``pandas_udf``), so the hashes are identical; ``hash`` assigns each
  row from its own hash; ``stratified_block`` ranks customers within their
  segment by unsigned hash (ties by input position, as the local stable sort)
  with a window function and deals the ranks into the design's blocks.

The customer file is read and validated by the same loader as the local engine
(same errors), and the results come back to the driver as the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from cpo.compute.quantiles import needed_ranks, quantile_from_ranks
from cpo.compute.settings import SparkSettings
from cpo.compute.spark.order_statistics import order_statistics
from cpo.compute.spark.session import spark_session
from cpo.errors import ConfigError
from cpo.experiment.assignment import ASSIGNMENT_COLUMNS, assign, hash_ids
from cpo.experiment.design import Design
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.segmentation import rules_result
from cpo.segmentation.advice import SPARSE_SHARE, sparse_segment_warnings
from cpo.segmentation.base import ASSIGNMENT_COLUMNS as SEGMENT_COLUMNS
from cpo.segmentation.base import SegmentationResult
from cpo.segmentation.rules import ResolvedRules, assign_by_rules
from cpo.segmentation.settings import Quantile, SegmentationSettings
from cpo.segmentation.thresholds import (
    CONFIG_FILE,
    NUMERIC_OPS,
    numeric_values,
    resolve_thresholds,
)

ROW = "__row"  # input position: results are returned in input order


class SparkEngine:
    """Segments and assigns customers with Apache Spark.

    Args:
        settings: ``compute.spark`` (the session is created on first use).
    """

    name = "spark"

    def __init__(self, settings: SparkSettings) -> None:
        self.settings = settings
        self._session: Any = None

    @property
    def session(self) -> Any:
        """The Spark session (created, or the active one taken, on first use)."""
        if self._session is None:
            self._session = spark_session(self.settings)
        return self._session

    def segment(
        self, customers: pd.DataFrame, settings: SegmentationSettings, seed: int
    ) -> SegmentationResult:
        """Rules segmentation on Spark (k-means is refused).

        Raises:
            ConfigError: k-means is configured, there are no rules, or a rule
                names a missing or wrongly typed column (as the local engine).
        """
        if settings.method != "rules":
            raise ConfigError(
                f"{CONFIG_FILE}: key 'segmentation.method' is '{settings.method}', which the "
                "Spark engine does not run (it segments by rules only)",
                hint="set segmentation.method: rules, or compute.engine: local for k-means",
            )
        if not settings.rules:
            assign_by_rules(customers, settings)  # raises the local engine's error
        # The local engine's checks of every rule column, with its errors (no quantile yet).
        resolve_thresholds(customers, settings, lambda column, level: 0.0)
        columns = _numeric_columns(customers, settings)
        frame = self._rules_frame(customers, settings, columns).cache()  # read by every pass
        try:
            resolved = _resolve(frame, customers, settings, columns)
            mapped = frame.mapInPandas(_rules_mapper(settings, resolved), _segment_schema())
            assignments = _collect_in_order(mapped)[list(SEGMENT_COLUMNS)]
        finally:
            frame.unpersist()
        warnings = self._sparse_warnings(customers, settings, resolved, assignments)
        return rules_result(customers, settings, assignments, resolved.thresholds, warnings)

    def assign(self, segments: pd.DataFrame, design: Design, assigned_at: str) -> pd.DataFrame:
        """Assign each customer to an arm (or the holdout) as the local engine does.

        Raises:
            ValueError: a segment is not in the design, or a segment's size is
                not the design's (as the local engine).
        """
        frame = segments[["customer_id", "segment"]].reset_index(drop=True)
        known = {plan.segment for plan in design.segments}
        unknown = sorted(set(frame["segment"].unique()) - known)
        if unknown:
            raise ValueError(f"segments {unknown} are not in the design")
        data = self._frame(frame.astype({"customer_id": str, "segment": str}))
        if design.method == "stratified_block":
            _check_sizes(frame, design)
            data = _block_ranks(data, design.salt)
        mapper = _assign_mapper(design, assigned_at)
        return _collect_in_order(data.mapInPandas(mapper, _assignment_schema()))

    def _frame(self, frame: pd.DataFrame) -> Any:
        """A Spark DataFrame of ``frame`` with its input position."""
        positioned = frame.assign(**{ROW: np.arange(len(frame), dtype=np.int64)})
        return self.session.createDataFrame(positioned)

    def _rules_frame(
        self, customers: pd.DataFrame, settings: SegmentationSettings, numeric: dict[str, str]
    ) -> Any:
        """Customer id, the rule columns and each numeric rule column as doubles."""
        used = list(dict.fromkeys(c.column for r in settings.rules for c in r.conditions))
        used = [column for column in used if column in customers.columns]
        frame = customers[["customer_id", *[c for c in used if c != "customer_id"]]].copy()
        frame["customer_id"] = frame["customer_id"].astype(str)
        for column in frame.columns:
            cells = frame[column]
            if not pd.api.types.is_numeric_dtype(cells) or pd.api.types.is_bool_dtype(cells):
                # As the local rules read text (``astype(str)``), so a missing value
                # reads the same on both engines.
                frame[column] = cells.astype(str)
        for column, helper in numeric.items():
            values = numeric_values(customers[column], "", "")
            doubles = pd.Series(values, index=frame.index, dtype="Float64")
            frame[helper] = doubles.where(~np.isnan(values), None)
        return self._frame(frame.reset_index(drop=True))

    def _sparse_warnings(
        self,
        customers: pd.DataFrame,
        settings: SegmentationSettings,
        resolved: ResolvedRules,
        assignments: pd.DataFrame,
    ) -> list[str]:
        """The local engine's sparse-segment warnings, computed only when a segment is sparse."""
        sizes = np.bincount(
            assignments["segment_id"].to_numpy(dtype=np.int64), minlength=len(settings.rules) + 1
        )
        if len(assignments) == 0 or sizes.min() >= SPARSE_SHARE * len(assignments):
            return []
        # Rare: the advice searches looser thresholds over every customer (on the driver).
        outcome = assign_by_rules(customers, settings, resolved)
        return sparse_segment_warnings(customers, settings, outcome)


def _numeric_columns(customers: pd.DataFrame, settings: SegmentationSettings) -> dict[str, str]:
    """Numeric rule column -> the name of its double copy in the Spark frame."""
    columns = [
        c.column
        for rule in settings.rules
        for c in rule.conditions
        if c.op in NUMERIC_OPS and c.column in customers.columns
    ]
    return {column: f"__num_{i}" for i, column in enumerate(dict.fromkeys(columns))}


def _resolve(
    frame: Any, customers: pd.DataFrame, settings: SegmentationSettings, numeric: dict[str, str]
) -> ResolvedRules:
    """Thresholds (exact quantiles from Spark) and each numeric column's standard deviation."""
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("rows")]
    for helper in numeric.values():
        aggregates += [F.count(helper).alias(f"n{helper}"), F.stddev_pop(helper).alias(helper)]
    row = frame.select(*aggregates).first().asDict() if numeric else {"rows": len(customers)}
    counts = {column: int(row[f"n{helper}"]) for column, helper in numeric.items()}
    method = settings.quantile_method
    wanted: dict[str, set[int]] = {}
    for column, level in _quantile_requests(settings, numeric):
        if counts[column]:
            wanted.setdefault(numeric[column], set()).update(
                needed_ranks(counts[column], level, method)
            )
    found = order_statistics(
        frame,
        {helper: tuple(sorted(ranks)) for helper, ranks in wanted.items()},
        {numeric[column]: count for column, count in counts.items()},
    )

    def quantile(column: str, level: float) -> float | None:
        if not counts.get(column):
            return None  # the local code reports the empty column
        return quantile_from_ranks(counts[column], level, method, found[numeric[column]])

    thresholds = resolve_thresholds(customers, settings, quantile)
    scales = {column: _scale(row[helper], int(row["rows"])) for column, helper in numeric.items()}
    return ResolvedRules(thresholds, scales)


def _quantile_requests(
    settings: SegmentationSettings, numeric: dict[str, str]
) -> list[tuple[str, float]]:
    """Every (column, level) a rule condition takes a quantile of."""
    requests = []
    for rule in settings.rules:
        for condition in rule.conditions:
            items = condition.value if isinstance(condition.value, list) else [condition.value]
            if condition.op in NUMERIC_OPS and condition.column in numeric:
                requests += [
                    (condition.column, i.quantile) for i in items if isinstance(i, Quantile)
                ]
    return requests


def _scale(deviation: float | None, rows: int) -> float:
    """The local engine's scale: NaN-ignoring std, 1 when 0 or there are no rows."""
    if rows == 0:
        return 1.0
    value = float("nan") if deviation is None else float(deviation)
    return value or 1.0


def _rules_mapper(settings: SegmentationSettings, resolved: ResolvedRules) -> Any:
    """Per partition: the local rules assignment with the run's thresholds and scales."""

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            outcome = assign_by_rules(part.reset_index(drop=True), settings, resolved)
            out = outcome.assignments.astype({"customer_id": str, "reason": str})
            out[ROW] = part[ROW].to_numpy()
            yield out

    return mapper


def _segment_schema() -> str:
    """Spark schema of the segment assignments."""
    return (
        "customer_id string, segment string, segment_id long, confidence double, "
        f"reason string, {ROW} long"
    )


def _assignment_schema() -> str:
    """Spark schema of assignments.csv rows."""
    return ", ".join(f"{c} string" for c in ASSIGNMENT_COLUMNS) + f", {ROW} long"


def _check_sizes(frame: pd.DataFrame, design: Design) -> None:
    """Every segment has the size the design apportioned (the local engine's check)."""
    sizes = frame["segment"].value_counts()
    for plan in design.segments:
        expected = sum(int(n) for n in plan.expected_counts.values())
        found = int(sizes.get(plan.segment, 0))
        if found and expected != found:
            raise ValueError(
                f"segment '{plan.segment}': design expects {expected} customers, found {found}"
            )


def _block_ranks(frame: Any, salt: str) -> Any:
    """Add ``__rank``: position within the segment by unsigned hash, ties by input position."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    @F.pandas_udf("long")  # type: ignore[call-overload]
    def order_key(ids: pd.Series) -> pd.Series:
        # Flipping the top bit makes signed order the unsigned order of the local sort.
        hashes = hash_ids(ids, salt) ^ np.uint64(1 << 63)
        return pd.Series(hashes.view(np.int64))

    window = Window.partitionBy("segment").orderBy("__key", ROW)
    keyed = frame.withColumn("__key", order_key(F.col("customer_id")))
    return keyed.withColumn("__rank", F.row_number().over(window) - 1).drop("__key")


def _assign_mapper(design: Design, assigned_at: str) -> Any:
    """Per partition: ``hash`` by the local code; ``stratified_block`` deals ranks into blocks."""
    plans = {plan.segment: plan for plan in design.segments}

    def deal(part: pd.DataFrame) -> pd.DataFrame:
        out = part[["customer_id", "segment"]].reset_index(drop=True)
        arm = np.empty(len(out), dtype=object)
        variant = np.empty(len(out), dtype=object)
        ranks = part["__rank"].to_numpy(dtype=np.int64)
        for name, rows in out.groupby("segment", sort=False).indices.items():
            plan = plans[str(name)]
            groups = [HOLDOUT_ARM, *plan.shares]
            edges = np.cumsum([int(plan.expected_counts.get(g, 0)) for g in groups])
            group = np.searchsorted(edges, ranks[rows], side="right")
            arm[rows] = np.array(groups, dtype=object)[group]
            names = ["", *(plan.variant_ids[g] for g in groups[1:])]
            variant[rows] = np.array(names, dtype=object)[group]
        out["experiment_arm"] = arm
        out["variant_id"] = variant
        out["assigned_at"] = assigned_at
        out["assignment_method"] = design.method
        return out

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            if design.method == "stratified_block":
                out = deal(part)
            else:
                out = assign(part[["customer_id", "segment"]], design, assigned_at)
            out = out[list(ASSIGNMENT_COLUMNS)].astype(str)
            out[ROW] = part[ROW].to_numpy()
            yield out

    return mapper


def _collect_in_order(frame: Any) -> pd.DataFrame:
    """The Spark frame as pandas, in input order, without the position column."""
    local = frame.toPandas().sort_values(ROW, kind="stable")
    return local.drop(columns=[ROW]).reset_index(drop=True)
