"""The Spark engine: rules segmentation and arm assignment as Spark jobs.

What runs where:

* **segment** (rules, :mod:`.rules`; k-means is refused): the segment stage's
  work (:meth:`SparkEngine.segment_customers`, :mod:`.segment`) reads the
  customer file with Spark and writes the segments and the customer copy as
  Parquet datasets; :meth:`SparkEngine.segment` segments a pandas frame.
* **send list** (:mod:`.sends`): Spark joins the recipients to the customer
  copy, the driver screens the distinct first names, each partition renders
  its messages with the local code and Spark writes ``sends.parquet/``;
* **assign**: the keyed hash of every id is the local function run on Arrow
  batches (``pandas_udf``), so the hashes are identical; ``hash`` assigns each
  row from its own hash; ``stratified_block`` ranks customers within their
  segment by unsigned hash (ties by input position, as the local stable sort)
  with a window function and deals the ranks into the design's blocks.

The frame operations (``segment``, ``assign``) take and return pandas frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cpo.compute.settings import SparkSettings
from cpo.compute.spark.assignment import (
    assign_mapper,
    assignment_schema,
    block_ranks,
    check_segments,
)
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
from cpo.compute.work import (
    AdjustRequest,
    AssignedCustomers,
    Engaged,
    EngageRequest,
    SegmentedCustomers,
    SegmentRequest,
    SendListRequest,
    SendListSummary,
)
from cpo.errors import CpoError, DataValidationError
from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.cuped import RegressionAdjustment
from cpo.experiment.design import Design
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
        sizes = {str(k): int(v) for k, v in frame["segment"].value_counts().items()}
        check_segments(sizes, design)
        data = self._frame(frame.astype({"customer_id": str, "segment": str}))
        if design.method == "stratified_block":
            data = block_ranks(data, design.salt, [ROW])
        mapper = assign_mapper(design, assigned_at, [ROW])
        return _collect_in_order(data.mapInPandas(mapper, assignment_schema({ROW: "long"})))

    def assign_segments(self, run_dir: Path, design: Design, assigned_at: str) -> AssignedCustomers:
        """Assign the run's segments on Spark; Spark writes the assignments dataset.

        Returns:
            The customers per arm (the assignments stay in the dataset).
        """
        from cpo.compute.spark.assign_stage import assign_segments

        return assign_segments(self, run_dir, design, assigned_at)

    def write_send_list(self, request: SendListRequest) -> SendListSummary:
        """Build and write the send list on Spark (:mod:`.sends`): ``sends.parquet/``."""
        from cpo.compute.spark.sends import write_send_list

        return write_send_list(self, request)

    def simulate_engagement(self, request: EngageRequest) -> Engaged:
        """Simulate on Spark (:mod:`.engage`); Spark writes the engagement dataset."""
        from cpo.compute.spark.engage import simulate_engagement

        return simulate_engagement(self, request)

    def import_engagement(self, request: EngageRequest) -> Engaged:
        """A per-recipient file on Spark (:mod:`.engage`); an event file on the driver.

        Raises:
            DataValidationError: the local import's errors; an event file or a
                file of counts given as a URI (the driver reads local files only).
        """
        from cpo.compute.local import LocalEngine
        from cpo.compute.spark.customers import is_uri
        from cpo.compute.spark.engage import engagement_layout, import_recipients
        from cpo.experiment.engagement import LAYOUT_RECIPIENTS

        location = str(request.engagement)
        layout = engagement_layout(self, location)
        if layout == LAYOUT_RECIPIENTS:
            return import_recipients(self, request)
        if is_uri(location):
            raise DataValidationError(
                f"{location}: a file of {layout} is imported on the driver, which reads "
                "local files only",
                hint="copy the file to a local path and give that to --engagement, or export "
                "one row per recipient (customer_id, opened, clicked, converted)",
            )
        return LocalEngine().import_engagement(request)

    def engagement_statistics(self, run_dir: Path) -> SufficientStatistics:
        """Counts per (arm, segment), reduced by Spark (:mod:`.aggregate`)."""
        from cpo.compute.spark.aggregate import engagement_statistics

        return engagement_statistics(self, Path(run_dir))

    def adjust_for_covariates(self, request: AdjustRequest) -> RegressionAdjustment:
        """CUPED's passes on Spark (:mod:`.aggregate`); only sums reach the driver."""
        from cpo.compute.spark.aggregate import adjust_metrics

        customers = None if request.customer_copy_current else request.customers
        return adjust_metrics(self, Path(request.run_dir), request.adjustment, customers)

    def analysis_rows(self, rows: Callable[[], pd.DataFrame]) -> pd.DataFrame | None:
        """None: the per-recipient rows stay in Spark (the moderator analysis is skipped)."""
        del rows
        return None

    def check_waves(self, count: int) -> None:
        """Refuse adaptive waves: their loop holds every customer on the driver.

        Raises:
            CpoError: ``count`` is above 1.
        """
        if count > 1:
            raise CpoError(
                f"adaptive waves ({count}) with compute.engine: spark: the wave loop assigns, "
                "simulates and reallocates every wave on the driver with all customers in "
                "memory, so it runs with the local engine only",
                hint="set compute.engine: local in experiment_config.yaml for a run of waves, "
                "or run one wave (--waves 1) on Spark",
            )

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


def _collect_in_order(frame: Any) -> pd.DataFrame:
    """The Spark frame as pandas, in input order, without the position column."""
    local = frame.toPandas().sort_values(ROW, kind="stable")
    return local.drop(columns=[ROW]).reset_index(drop=True)
