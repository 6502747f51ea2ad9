"""What every segmentation method returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cpo.models import SegmentProfile

ASSIGNMENT_COLUMNS = ["customer_id", "segment", "segment_id", "confidence", "reason"]


@dataclass(frozen=True)
class SegmentationResult:
    """Segment assignments and profiles.

    Attributes:
        assignments: One row per customer: ``customer_id, segment, segment_id,
            confidence, reason`` (same order as the input).
        profiles: One profile per non-empty segment, by ``segment_id``.
        method: ``"rules"`` or ``"kmeans"``.
        warnings: Human-readable warnings (small or empty segments, ...).
        details: Method-specific facts for the manifest (e.g. chosen k, silhouette).
    """

    assignments: pd.DataFrame
    profiles: list[SegmentProfile]
    method: str
    warnings: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
