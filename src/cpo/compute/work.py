"""What a stage asks of an engine, and the small summaries it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cpo.customer_settings import CustomerSettings
    from cpo.models import SegmentProfile
    from cpo.segmentation.settings import SegmentationSettings


@dataclass(frozen=True)
class SegmentRequest:
    """What the segment stage asks of an engine.

    Attributes:
        customers: The customer file: a local path, or (Spark engine) any URI Spark reads.
        reading: How the file is read (encoding, delimiter, column mapping).
        on_invalid: ``"error"`` or ``"skip"`` (set invalid rows aside).
        segmentation: The ``segmentation`` section.
        seed: The run's seed (k-means).
        run_dir: The run folder the segments and the customer copy are written to.
        copy_source: What the customer copy depends on (stored with it).
    """

    customers: str
    reading: CustomerSettings
    on_invalid: str
    segmentation: SegmentationSettings
    seed: int
    run_dir: Path
    copy_source: dict[str, Any]


@dataclass(frozen=True)
class SegmentedCustomers:
    """What the segment stage gets back: small summaries, never the customers.

    Attributes:
        profiles: One profile per non-empty segment.
        method: ``rules`` or ``kmeans``.
        warnings: Segmentation warnings.
        details: Method facts for segment_profiles.json.
        total_rows: Rows in the customer file.
        valid_rows: Customers segmented.
        rejected: Rows set aside (``--on-invalid skip``), as read, with reasons.
        reading: How the file was read (recorded in the manifest).
        has_email: Whether the customers have email addresses.
    """

    profiles: list[SegmentProfile]
    method: str
    warnings: list[str]
    details: dict[str, object]
    total_rows: int
    valid_rows: int
    rejected: pd.DataFrame
    reading: dict[str, Any] = field(default_factory=dict)
    has_email: bool = False
