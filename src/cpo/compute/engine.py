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
    from pathlib import Path

    import pandas as pd

    from cpo.compute.settings import ComputeSettings
    from cpo.compute.work import (
        AssignedCustomers,
        SegmentedCustomers,
        SegmentRequest,
        SendListRequest,
        SendListSummary,
    )
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
