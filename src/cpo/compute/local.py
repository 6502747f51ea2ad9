"""The local engine: pandas and NumPy on this machine (today's code, unchanged)."""

from __future__ import annotations

import pandas as pd

from cpo.experiment.assignment import assign
from cpo.experiment.design import Design
from cpo.segmentation import segment
from cpo.segmentation.base import SegmentationResult
from cpo.segmentation.settings import SegmentationSettings


class LocalEngine:
    """Runs the per-customer operations in this process."""

    name = "local"

    def segment(
        self, customers: pd.DataFrame, settings: SegmentationSettings, seed: int
    ) -> SegmentationResult:
        """:func:`cpo.segmentation.segment`."""
        return segment(customers, settings, seed=seed)

    def assign(self, segments: pd.DataFrame, design: Design, assigned_at: str) -> pd.DataFrame:
        """:func:`cpo.experiment.assignment.assign`."""
        return assign(segments, design, assigned_at=assigned_at)
