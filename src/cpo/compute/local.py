"""The local engine: pandas and NumPy on this machine (today's code, unchanged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    arm_counts,
)
from cpo.customers import load_customers
from cpo.errors import DataValidationError
from cpo.experiment.aggregate import SufficientStatistics, aggregate_file
from cpo.experiment.assignment import assign
from cpo.experiment.cuped import (
    RegressionAdjustment,
    adjust_metrics,
    covariate_columns,
    join_covariates,
)
from cpo.experiment.design import Design
from cpo.experiment.engagement import engagement_totals, import_engagement, summarize
from cpo.experiment.send_stage import write_local_send_list
from cpo.experiment.simulate import SIMULATION_COLUMNS, simulate_engagement
from cpo.run_folder import (
    ENGAGEMENT,
    find_engagement,
    read_assignments,
    read_segments,
    write_assignments,
    write_customer_copy,
    write_engagement,
    write_engagement_dataset,
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

    def simulate_engagement(self, request: EngageRequest) -> Engaged:
        """Simulate the recipients' engagement (waves too) and write it."""
        from cpo.experiment.wave_stage import simulate_waves
        from cpo.experiment.waves import WAVE_COLUMN

        assignments = read_assignments(request.run_dir)
        customers = request.customers(list(SIMULATION_COLUMNS))
        arm_tones, settings, seed = request.arm_tones, request.simulation, request.seed
        holdout = None
        if WAVE_COLUMN in assignments:
            result, holdout = simulate_waves(customers, assignments, arm_tones, settings, seed)
        else:
            result = simulate_engagement(customers, assignments, arm_tones, settings, seed)
        counts = result.frame.groupby("experiment_arm")[["opened", "clicked", "converted"]].sum()
        report = {
            "engagement_source": result.source,
            "layout": "simulated",
            "counts": {"recipients": len(result.frame)},
            "by_arm": {arm: {k: int(v) for k, v in row.items()} for arm, row in counts.iterrows()},
            "warnings": result.warnings,
            "model": result.model,
        }
        if holdout is not None:
            report["holdout"] = holdout
        waves = WAVE_COLUMN in assignments
        return self._engaged(request.run_dir, result.frame, report, waves=waves)

    def import_engagement(self, request: EngageRequest) -> Engaged:
        """Import a per-recipient or per-event file against the assignments; write the engagement.

        Raises:
            DataValidationError: the import's errors (:mod:`cpo.experiment.engagement`).
        """
        from cpo.experiment.waves import WAVE_COLUMN

        assignments = read_assignments(request.run_dir)
        result = import_engagement(Path(str(request.engagement)), assignments)
        waves = WAVE_COLUMN in assignments.columns
        return self._engaged(request.run_dir, result.frame, summarize(result), waves=waves)

    def engagement_statistics(self, run_dir: Path) -> SufficientStatistics:
        """The run's engagement streamed into counts per (arm, segment) (``aggregate_file``).

        Raises:
            DataValidationError: the run has no engagement, or a record is invalid.
        """
        found = find_engagement(run_dir)
        if found is None:
            raise DataValidationError(
                f"{ENGAGEMENT.path(run_dir)}: not found", hint=ENGAGEMENT.rewrite_hint
            )
        # one row per recipient: the engage stage combined repeated rows when it wrote it
        return aggregate_file(found, check_duplicates=False)

    def adjust_for_covariates(self, request: AdjustRequest) -> RegressionAdjustment:
        """:func:`~cpo.experiment.cuped.adjust_metrics` on the rows joined to the customers."""
        columns = covariate_columns(request.adjustment.covariates)
        customers = request.customers(columns)
        joined = join_covariates(request.rows(), customers, columns)
        return adjust_metrics(joined, request.adjustment)

    def analysis_rows(self, rows: Callable[[], pd.DataFrame]) -> pd.DataFrame | None:
        """The rows (they are read in this process)."""
        return rows()

    def _engaged(
        self, run_dir: Path, frame: pd.DataFrame, report: dict[str, Any], *, waves: bool = False
    ) -> Engaged:
        """Write the engagement; the report and totals.

        Above ``columnar_above`` recipients it is the engagement dataset
        (``engagement.parquet/``), else engagement.csv; adaptive waves keep the
        CSV (their analysis reads it with the assignments.csv they write).
        """
        if not waves and self.settings.columnar(len(frame)):
            write_engagement_dataset(run_dir, frame)
        else:
            write_engagement(run_dir, frame)
        totals, recipients = engagement_totals(frame, report)
        return Engaged(report=report, totals=totals, recipients=recipients)

    def check_waves(self, count: int) -> None:
        """Any number of adaptive waves runs here."""
