"""The ``segment`` stage of ``cpo run``: load customers, segment, profile."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from cpo.customer_settings import CustomerSettings
from cpo.customers import LoadedCustomers, load_customers, merged_settings
from cpo.pipeline import RunContext, StageOutcome
from cpo.runfiles import sha256_file, write_csv, write_json
from cpo.sample_data import bundled_customers
from cpo.segmentation import segment

SEGMENTS_FILE = "segments.csv"
PROFILES_FILE = "segment_profiles.json"
REJECTED_FILE = "rejected.csv"


def customers_path(ctx: RunContext) -> Path:
    """The customer file of this run (the bundled sample unless given)."""
    return Path(ctx.options.customers) if ctx.options.customers else bundled_customers()


def customer_settings(ctx: RunContext) -> CustomerSettings:
    """How this run reads its customer file: the config's ``customers:`` plus the flags."""
    options = ctx.options
    return merged_settings(
        ctx.config.experiment.customers,
        columns=dict(options.column_map),
        encoding=options.encoding,
        delimiter=options.delimiter,
    )


class SegmentStage:
    """Validate customers, assign segments and write their profiles."""

    name = "segment"
    description = "Segmenting customers"
    outputs = (SEGMENTS_FILE, PROFILES_FILE)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """The customer file."""
        return [customers_path(ctx)]

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, object]:
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
        ctx.manifest["inputs"]["customers"] = {
            "path": str(path.resolve()),
            "sha256": sha256_file(path),
            "rows": loaded.total_rows,
            "valid": len(loaded.frame),
            "rejected": len(loaded.rejected),
            "reading": loaded.reading,
        }
        self._write_rejected(ctx, loaded.rejected)
        self._warn_without_email(ctx, loaded)
        settings = ctx.config.experiment.segmentation
        result = segment(loaded.frame, settings, seed=ctx.seed)
        write_csv(ctx.path(SEGMENTS_FILE), result.assignments)
        write_json(
            ctx.path(PROFILES_FILE),
            {
                "method": result.method,
                "total_customers": len(result.assignments),
                "details": result.details,
                "segments": [asdict(p) for p in result.profiles],
            },
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

    def _write_rejected(self, ctx: RunContext, rejected) -> None:
        """Write rejected.csv (or remove a stale one) and log the count."""
        target = ctx.path(REJECTED_FILE)
        if len(rejected):
            write_csv(target, rejected)
            ctx.log.warning(
                self.name,
                "rows_rejected",
                count=len(rejected),
                message=f"{len(rejected)} invalid customer rows set aside in {REJECTED_FILE}",
            )
        else:
            target.unlink(missing_ok=True)
