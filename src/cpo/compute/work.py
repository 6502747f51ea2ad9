"""What a stage asks of an engine, and the small summaries it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pandas as pd

    from cpo.customer_settings import CustomerSettings
    from cpo.experiment.cuped import AdjustmentRequest
    from cpo.experiment.send_stage import MergeValueScreening
    from cpo.experiment.sends import MessageOptions
    from cpo.experiment.settings import SendListSettings, SimulationSettings
    from cpo.merge_values import MergeResult
    from cpo.models import SegmentProfile, Variant
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


@dataclass(frozen=True)
class AssignedCustomers:
    """What the assign stage gets back from an engine's assignment.

    Attributes:
        counts: Customers per arm, the holdout included.
        rows: The assignments, when the engine holds them in this process (the
            local engine; adaptive waves: the wave being mailed), handed on to its
            send list; ``None`` when they stay in the run folder's dataset (Spark).
    """

    counts: dict[str, int]
    rows: pd.DataFrame | None = None


@dataclass(frozen=True)
class SendListRequest:
    """What the assign stage asks of an engine for the send list.

    Attributes:
        run_dir: The run folder (assignments and the customer copy are read from
            it; the send list is written to it).
        variants: The sendable variants the design uses, by id.
        options: How customer copies are made (citations, footer, greeting fallback).
        screening: Screens distinct first names and records them in the audit log
            (recorded before the send list is written).
        settings: ``experiment.send_list`` (the compact form's threshold).
        customers: Reads the run's validated customers, the columns given (an
            engine that builds the list in this process calls it).
        assignments: The rows to mail when the caller holds them
            (:attr:`AssignedCustomers.rows`); ``None``: the run's assignments.
    """

    run_dir: Path
    variants: Mapping[str, Variant]
    options: MessageOptions
    screening: MergeValueScreening
    settings: SendListSettings
    customers: Callable[[Sequence[str]], pd.DataFrame]
    assignments: pd.DataFrame | None = None


@dataclass(frozen=True)
class SendListSummary:
    """What the assign stage gets back from the send list: counts, never the rows.

    Attributes:
        recipients: Rows of the send list (holdout and withheld left out).
        form: The manifest's ``send_list`` record (file, format, why).
        records: The manifest records of the merge screening (the audit head).
        withheld: ``withheld.csv`` rows (customer_id, field, reason), in
            assignment order.
        merge_results: One screening result per distinct non-blank first name.
        missing_names: Recipients greeted with the greeting fallback (blank name).
        unknown_fields: Variant id -> merge fields left as written.
    """

    recipients: int
    form: dict[str, Any]
    records: dict[str, Any]
    withheld: pd.DataFrame
    merge_results: list[MergeResult]
    missing_names: int
    unknown_fields: dict[str, list[str]]


def arm_counts(assignments: pd.DataFrame) -> dict[str, int]:
    """Customers per arm of assignment rows (the holdout included)."""
    return {str(arm): int(n) for arm, n in assignments["experiment_arm"].value_counts().items()}


@dataclass(frozen=True)
class EngageRequest:
    """What the engage stage asks of an engine.

    Attributes:
        run_dir: The run folder (the assignments and the customer copy are read
            from it; the engagement is written to it).
        arm_tones: Arm -> tone, from the design.
        simulation: The ``simulation`` section.
        seed: The run's seed (the simulated draws).
        customers: Reads the run's validated customers, the columns given (in
            this process: the local engine, or a stale customer copy).
        customer_copy_current: Whether the run's customer copy is the one
            ``customers`` would read (an engine may read the copy itself).
        engagement: The per-recipient (or per-event) engagement file to import,
            as given (a path, or with Spark any URI Spark reads); None to simulate.
    """

    run_dir: Path
    arm_tones: Mapping[str, str]
    simulation: SimulationSettings
    seed: int
    customers: Callable[[Sequence[str]], pd.DataFrame]
    customer_copy_current: bool = False
    engagement: str | None = None


@dataclass(frozen=True)
class Engaged:
    """What the engage stage gets back: the report and totals, never the rows.

    Attributes:
        report: engagement_report.json (an import's counts and warnings, or the
            simulation's model); the stage adds the file name of an import.
        totals: Recipients who opened, clicked and converted.
        recipients: Recipients with engagement.
    """

    report: dict[str, Any]
    totals: dict[str, int]
    recipients: int


@dataclass(frozen=True)
class AdjustRequest:
    """What the analyze stage asks of an engine for the regression adjustment (CUPED).

    Attributes:
        run_dir: The run folder (the engagement and the customer copy are read from it).
        adjustment: The metrics, covariates, arms and levels to adjust.
        rows: The per-recipient engagement in this process (the local engine;
            read once for the adjustment and the moderators).
        customers: Reads the run's validated customers, the columns given, in this process.
        customer_copy_current: Whether the run's customer copy is the one
            ``customers`` would read (an engine may read the copy itself).
    """

    run_dir: Path
    adjustment: AdjustmentRequest
    rows: Callable[[], pd.DataFrame]
    customers: Callable[[Sequence[str]], pd.DataFrame]
    customer_copy_current: bool = False
