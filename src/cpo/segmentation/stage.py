"""The ``segment`` stage of ``cpo run``: load customers, segment, profile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cpo.compute import engine_for
from cpo.compute.work import SegmentRequest
from cpo.run_folder import (
    CUSTOMERS_COPY,
    REJECTED,
    SEGMENT_PROFILES,
    SEGMENTS,
    SEGMENTS_DATASET,
    write_profiles,
)
from cpo.run_inputs import copy_source, customer_location, customer_settings, customers_path
from cpo.runfiles import sha256_file, write_csv
from cpo.stage_api import RunContext, StageBase, StageOutcome


class SegmentStage(StageBase):
    """Validate customers, assign segments and write their profiles."""

    name = "segment"
    description = "Segmenting customers"
    outputs = (SEGMENTS.name, SEGMENTS_DATASET.name, SEGMENT_PROFILES.name, CUSTOMERS_COPY.name)

    def outputs_written(self, ctx: RunContext) -> bool:
        """Profiles, the customer copy and one form of the segments (CSV or dataset)."""
        segments = ctx.path(SEGMENTS.name).is_file() or ctx.path(SEGMENTS_DATASET.name).is_dir()
        copy = ctx.path(CUSTOMERS_COPY.name).exists()
        return segments and copy and ctx.path(SEGMENT_PROFILES.name).is_file()

    def input_files(self, ctx: RunContext) -> list[Path]:
        """The customer file."""
        return [customers_path(ctx)]

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, object] | None:
        """How the file is read (flags included): a new ``--map`` re-runs the stage."""
        return {
            "reading": customer_settings(ctx).model_dump(mode="json"),
            "on_invalid": ctx.options.on_invalid,
        }

    def run(self, ctx: RunContext) -> StageOutcome:
        """Load, validate, segment; write segments, the customer copy and segment_profiles.json.

        The engine (``compute.engine``) reads the customers and writes the
        per-customer artifacts; this stage writes the small ones.
        """
        location = customer_location(ctx)
        path = Path(location)
        sha256 = sha256_file(path) if path.is_file() else None
        request = SegmentRequest(
            customers=location,
            reading=customer_settings(ctx),
            on_invalid=ctx.options.on_invalid,
            segmentation=ctx.config.experiment.segmentation,
            seed=ctx.seed,
            run_dir=ctx.run_dir,
            copy_source=copy_source(ctx, sha256),
        )
        result = engine_for(ctx.config.experiment.compute).segment_customers(request)
        customers_record = {
            "path": str(path.resolve()) if sha256 is not None else location,
            "sha256": sha256,
            "rows": result.total_rows,
            "valid": result.valid_rows,
            "rejected": len(result.rejected),
            "reading": result.reading,
        }
        self._write_rejected(ctx, result.rejected)
        self._warn_without_email(ctx, result.has_email)
        write_profiles(
            ctx.run_dir,
            result.profiles,
            method=result.method,
            total_customers=result.valid_rows,
            details=result.details,
        )
        for warning in result.warnings:
            ctx.log.warning(self.name, "segment_warning", message=warning)
        ctx.log.info(
            self.name,
            "segmented",
            method=result.method,
            customers=result.valid_rows,
            segments={p.name: p.size for p in result.profiles},
        )
        return StageOutcome(
            summary=f"{result.valid_rows} customers in {len(result.profiles)} segments"
            + (f" ({len(result.rejected)} rows rejected)" if len(result.rejected) else ""),
            facts={"segments": {p.name: p.size for p in result.profiles}},
            records={"inputs": {"customers": customers_record}},
        )

    def _warn_without_email(self, ctx: RunContext, has_email: bool) -> None:
        """One warning for the run when the customers have no email addresses."""
        if has_email:
            return
        ctx.log.warning(
            self.name,
            "no_email_column",
            message="the customer file has no email column: every stage runs, and sends.csv "
            "is keyed by customer_id for your email service to join addresses on",
        )

    def _write_rejected(self, ctx: RunContext, rejected: pd.DataFrame) -> None:
        """Write rejected.csv (or remove a stale one) and log the count."""
        target = REJECTED.path(ctx.run_dir)
        if len(rejected):
            write_csv(target, rejected)
            ctx.log.warning(
                self.name,
                "rows_rejected",
                count=len(rejected),
                message=f"{len(rejected)} invalid customer rows set aside in {REJECTED.name}",
            )
        else:
            target.unlink(missing_ok=True)
