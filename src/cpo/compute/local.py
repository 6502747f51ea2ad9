"""The local engine: pandas and NumPy on this machine (today's code, unchanged)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cpo.compute.settings import ComputeSettings
from cpo.compute.work import (
    AssignedCustomers,
    SegmentedCustomers,
    SegmentRequest,
    SendListRequest,
    SendListSummary,
    arm_counts,
)
from cpo.customers import load_customers
from cpo.errors import DataValidationError
from cpo.experiment.assignment import assign
from cpo.experiment.design import Design
from cpo.experiment.send_stage import write_local_send_list
from cpo.run_folder import (
    read_segments,
    write_assignments,
    write_customer_copy,
    write_segments,
)
from cpo.segmentation import segment
from cpo.segmentation.base import SegmentationResult
from cpo.segmentation.settings import SegmentationSettings

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


class LocalEngine:
    """Runs the per-customer operations in this process.

    Args:
        settings: The ``compute`` section; above ``columnar_above`` customers the
            segments and assignments are written as Parquet datasets, not CSV.
    """

    name = "local"

    def __init__(self, settings: ComputeSettings | None = None) -> None:
        self.settings = settings or ComputeSettings()

    def segment(
        self, customers: pd.DataFrame, settings: SegmentationSettings, seed: int
    ) -> SegmentationResult:
        """:func:`cpo.segmentation.segment`."""
        return segment(customers, settings, seed=seed)

    def assign(self, segments: pd.DataFrame, design: Design, assigned_at: str) -> pd.DataFrame:
        """:func:`cpo.experiment.assignment.assign`."""
        return assign(segments, design, assigned_at=assigned_at)

    def segment_customers(self, request: SegmentRequest) -> SegmentedCustomers:
        """Load and validate the customer file, segment, write the segments and the copy.

        Raises:
            DataValidationError: the customer file is a URI (the Spark engine reads
                those), or the loader's errors.
        """
        if _URI.match(request.customers) and not re.match(r"^[A-Za-z]:[\\/]", request.customers):
            raise DataValidationError(
                f"{request.customers}: a URI; the local engine reads local files only",
                hint="give a local path, or set compute.engine: spark in experiment_config.yaml "
                "to read it with Spark",
            )
        loaded = load_customers(
            Path(request.customers), on_invalid=request.on_invalid, settings=request.reading
        )
        write_customer_copy(request.run_dir, loaded.frame, request.copy_source)
        result = segment(loaded.frame, request.segmentation, seed=request.seed)
        columnar = self.settings.columnar(len(result.assignments))
        write_segments(request.run_dir, result.assignments, columnar=columnar)
        return SegmentedCustomers(
            profiles=result.profiles,
            method=result.method,
            warnings=result.warnings,
            details=result.details,
            total_rows=loaded.total_rows,
            valid_rows=len(loaded.frame),
            rejected=loaded.rejected,
            reading=loaded.reading,
            has_email=loaded.has_email,
        )

    def assign_segments(self, run_dir: Path, design: Design, assigned_at: str) -> AssignedCustomers:
        """Assign the run's segmented customers, write the assignments; keep them for the sends."""
        segments = read_segments(run_dir, ["customer_id", "segment"])
        assignments = assign(segments, design, assigned_at=assigned_at)
        columnar = self.settings.columnar(len(assignments))
        write_assignments(run_dir, assignments, columnar=columnar)
        return AssignedCustomers(arm_counts(assignments), rows=assignments)

    def write_send_list(self, request: SendListRequest) -> SendListSummary:
        """:func:`cpo.experiment.send_stage.write_local_send_list` (in this process)."""
        return write_local_send_list(request)

    def check_waves(self, count: int) -> None:
        """Any number of adaptive waves runs here."""
