"""The engine contract: the per-customer work a stage hands to an engine.

Two shapes of work:

* frame operations (``segment``, ``assign``): pandas frames in and out, for
  callers that already hold the customers (adaptive waves, tests);
* stage operations (``segment_customers``, ``assign_segments``,
  ``write_send_list``): the engine reads the customer file (or the run's
  datasets), writes the stage's per-customer artifacts into the run folder
  itself and returns only small summaries, so with Spark the customers never
  pass through the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

    from cpo.compute.settings import ComputeSettings
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
    from cpo.experiment.aggregate import SufficientStatistics
    from cpo.experiment.cuped import RegressionAdjustment
    from cpo.experiment.design import Design
    from cpo.segmentation.base import SegmentationResult
    from cpo.segmentation.settings import SegmentationSettings


class Engine(Protocol):
    """Segments and assigns customers; every engine gives the local engine's results."""

    name: str

    def segment(
        self, customers: pd.DataFrame, settings: SegmentationSettings, seed: int
    ) -> SegmentationResult:
        """Assign every customer to a segment and profile the segments."""
        ...

    def assign(self, segments: pd.DataFrame, design: Design, assigned_at: str) -> pd.DataFrame:
        """Assign each customer to an arm (or the holdout) by the design."""
        ...

    def segment_customers(self, request: SegmentRequest) -> SegmentedCustomers:
        """Read and validate the customers, segment them, write segments and the customer copy."""
        ...

    def assign_segments(self, run_dir: Path, design: Design, assigned_at: str) -> AssignedCustomers:
        """Assign the run's segments, write the assignments; return the counts per arm."""
        ...

    def write_send_list(self, request: SendListRequest) -> SendListSummary:
        """Build, screen (audited before writing) and write the send list; return counts."""
        ...

    def check_waves(self, count: int) -> None:
        """Refuse ``count`` adaptive waves if this engine cannot run them (a CpoError)."""
        ...

    def simulate_engagement(self, request: EngageRequest) -> Engaged:
        """Simulate the recipients' engagement, write it; return the report and totals."""
        ...

    def import_engagement(self, request: EngageRequest) -> Engaged:
        """Import a per-recipient (or per-event) file against the assignments, write it."""
        ...

    def engagement_statistics(self, run_dir: Path) -> SufficientStatistics:
        """The run's engagement reduced to counts per (arm, segment)."""
        ...

    def adjust_for_covariates(self, request: AdjustRequest) -> RegressionAdjustment:
        """The regression adjustment (CUPED) of every comparison, from reducible passes."""
        ...

    def analysis_rows(self, rows: Callable[[], pd.DataFrame]) -> pd.DataFrame | None:
        """The per-recipient engagement in this process for the moderator analysis.

        None when the engine keeps the rows where they are (the analysis is skipped).
        """
        ...


def engine_for(settings: ComputeSettings) -> Engine:
    """The engine the ``compute`` section asks for.

    Raises:
        BackendUnavailable: ``engine: spark`` without PySpark or Java (one
            message with the install commands).
    """
    if settings.engine == "spark":
        from cpo.compute.spark.engine import SparkEngine

        return SparkEngine(settings.spark)
    from cpo.compute.local import LocalEngine

    return LocalEngine(settings)
