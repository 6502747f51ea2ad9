"""The engine contract: the per-customer operations a stage hands to an engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from cpo.compute.settings import ComputeSettings
    from cpo.experiment.design import Design
    from cpo.segmentation.base import SegmentationResult
    from cpo.segmentation.settings import SegmentationSettings


class Engine(Protocol):
    """Segments and assigns customers; every engine gives the local engine's results.

    Inputs and outputs are the pandas frames the stages already read and write,
    so a stage does not know which engine ran.
    """

    name: str

    def segment(
        self, customers: pd.DataFrame, settings: SegmentationSettings, seed: int
    ) -> SegmentationResult:
        """Assign every customer to a segment and profile the segments."""
        ...

    def assign(self, segments: pd.DataFrame, design: Design, assigned_at: str) -> pd.DataFrame:
        """Assign each customer to an arm (or the holdout) by the design."""
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

    return LocalEngine()
