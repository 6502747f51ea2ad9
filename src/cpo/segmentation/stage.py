"""The ``segment`` stage of ``cpo run``: load customers, segment, profile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cpo.compute import engine_for
from cpo.customers import LoadedCustomers, load_customers
from cpo.run_folder import (
    CUSTOMERS_COPY,
    REJECTED,
    SEGMENT_PROFILES,
    SEGMENTS,
    write_customer_copy,
    write_profiles,
    write_segments,
)
from cpo.run_inputs import copy_source, customer_settings, customers_path
from cpo.runfiles import sha256_file, write_csv
from cpo.stage_api import RunContext, StageBase, StageOutcome


class SegmentStage(StageBase):
    """Validate customers, assign segments and write their profiles."""

    name = "segment"
    description = "Segmenting customers"
    outputs = (SEGMENTS.name, SEGMENT_PROFILES.name, CUSTOMERS_COPY.name)

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
        """Load, validate, segment; write segments.csv and segment_profiles.json."""
        path = customers_path(ctx)
        loaded = load_customers(
            path, on_invalid=ctx.options.on_invalid, settings=customer_settings(ctx)
        )
        sha256 = sha256_file(path)
        customers_record = {
            "path": str(path.resolve()),
            "sha256": sha256,
            "rows": loaded.total_rows,
            "valid": len(loaded.frame),
            "rejected": len(loaded.rejected),
            "reading": loaded.reading,
        }
        self._write_rejected(ctx, loaded.rejected)
        write_customer_copy(ctx.run_dir, loaded.frame, copy_source(ctx, sha256))
        self._warn_without_email(ctx, loaded)
        settings = ctx.config.experiment.segmentation
        result = engine_for(ctx.config.experiment.compute).segment(loaded.frame, settings, ctx.seed)
        write_segments(ctx.run_dir, result.assignments)
        write_profiles(
            ctx.run_dir,
            result.profiles,
            method=result.method,
            total_customers=len(result.assignments),
            details=result.details,
        )
        for warning in result.warnings:
            ctx.log.warning(self.name, "segment_warning", message=warning)
        ctx.log.info(
            self.name,
            "segmented",
            method=result.method,
            customers=len(result.assignments),
            segments={p.name: p.size for p in result.profiles},
        )
        return StageOutcome(
            summary=f"{len(result.assignments)} customers in {len(result.profiles)} segments"
            + (f" ({len(loaded.rejected)} rows rejected)" if len(loaded.rejected) else ""),
            facts={"segments": {p.name: p.size for p in result.profiles}},
            records={"inputs": {"customers": customers_record}},
        )

    def _warn_without_email(self, ctx: RunContext, loaded: LoadedCustomers) -> None:
        """One warning for the run when the customers have no email addresses."""
        if loaded.has_email:
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
