"""The Spark engine: rules segmentation and arm assignment as Spark jobs.

What runs where:

* **segment** (rules, :mod:`.rules`; k-means is refused): the segment stage's
  work (:meth:`SparkEngine.segment_customers`, :mod:`.segment`) reads the
  customer file with Spark and writes the segments and the customer copy as
  Parquet datasets; :meth:`SparkEngine.segment` segments a pandas frame.
* **assign**: the keyed hash of every id is the local function run on Arrow
  batches (``pandas_udf``), so the hashes are identical; ``hash`` assigns each
  row from its own hash; ``stratified_block`` ranks customers within their
  segment by unsigned hash (ties by input position, as the local stable sort)
  with a window function and deals the ranks into the design's blocks.

The frame operations (``segment``, ``assign``) take and return pandas frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from cpo.compute.settings import SparkSettings
from cpo.compute.spark.rules import (
    ROW,
    _text_columns,
    check_columns,
    check_rules,
    numeric_columns,
    resolve,
    rules_frame,
    rules_mapper,
    segment_schema,
)
from cpo.compute.spark.session import spark_session
from cpo.compute.work import SegmentedCustomers, SegmentRequest
from cpo.experiment.assignment import ASSIGNMENT_COLUMNS, assign, hash_ids
from cpo.experiment.design import Design
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.segmentation import rules_result
from cpo.segmentation.advice import SPARSE_SHARE, sparse_segment_warnings
from cpo.segmentation.base import ASSIGNMENT_COLUMNS as SEGMENT_COLUMNS
from cpo.segmentation.base import SegmentationResult
from cpo.segmentation.rules import ResolvedRules, assign_by_rules
from cpo.segmentation.settings import SegmentationSettings


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
        check_rules(settings)
        check_columns(customers, settings)
        columns = numeric_columns(customers, settings)
        data = self._frame(_text_columns(customers, settings))
        frame = rules_frame(data, customers, settings, columns).cache()  # read by every pass
        try:
            resolved = resolve(frame, customers, len(customers), settings, columns)
            mapped = frame.mapInPandas(rules_mapper(settings, resolved), segment_schema())
            assignments = _collect_in_order(mapped)[list(SEGMENT_COLUMNS)]
        finally:
            frame.unpersist()
        warnings = self._sparse_warnings(customers, settings, resolved, assignments)
        return rules_result(customers, settings, assignments, resolved.thresholds, warnings)

    def segment_customers(self, request: SegmentRequest) -> SegmentedCustomers:
        """Read, validate and segment with Spark; write the segments and the copy as datasets."""
        from cpo.compute.spark.segment import segment_customers

        return segment_customers(self, request)

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
