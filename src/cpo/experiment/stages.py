"""The ``assign`` and ``engage`` stages of ``cpo run``.

``assign`` reads segments.csv, variants.json, the final screening decisions from
the verified audit log (approvals included) and the customers; it writes
``experiment_design.json``, ``assignments.csv``, the send list (``sends.csv``, or
``sends.parquet`` above ``experiment.send_list.compact_above`` recipients) and
``withheld.csv``.

``engage`` reads the assignments and either imports the engagement file given
with ``cpo run --engagement FILE`` or simulates engagement; it writes
``engagement.csv`` and ``engagement_report.json`` (the import's validation
counts, or the simulation model). A file of counts per arm (layout ``counts``)
is written to ``engagement_counts.csv`` instead, with ``engagement.csv`` left
with its header and no rows (no recipient is known). Design, assignment and
engagement events go to ``logs/experiment.log``; no email, name or raw customer
id is logged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cpo import run_folder
from cpo.compute import engine_for
from cpo.compute.work import (
    AssignedCustomers,
    Engaged,
    EngageRequest,
    SendListRequest,
    SendListSummary,
    arm_counts,
)
from cpo.errors import DataValidationError
from cpo.events.formats import detect_format
from cpo.events.imports import import_provider_events
from cpo.events.normalise import SendIndex
from cpo.experiment.cuped import expected_reductions
from cpo.experiment.design import (
    Design,
    build_design,
    estimate_baselines,
    experiment_salt,
    history_columns,
    resolve_tones,
)
from cpo.experiment.engagement import (
    LAYOUT_COUNTS,
    EngagementCounts,
    EngagementImport,
    engagement_totals,
    import_counts,
    import_engagement,
    is_counts_file,
    summarize,
)
from cpo.experiment.send_stage import (
    MergeScreeningFactory,
    decisions_fingerprint,
    message_options,
    send_list_settings,
    withheld_summary,
)
from cpo.experiment.sends import CONTACT_COLUMNS
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.experiment.simulate import SOURCE_SIMULATED
from cpo.experiment.wave_imports import (
    Importer,
    WaveStep,
    advance_waves,
    check_resume_waves,
    current_rows,
    imported_document,
    is_real_send,
    recipients_index,
    waiting_for,
)
from cpo.experiment.wave_stage import (
    assign_run,
    check_wave_options,
    wave_settings,
)
from cpo.idjoin import inner_join
from cpo.models import Variant
from cpo.run_folder import (
    ENGAGEMENT_REPORT,
    RETRIEVAL,
    SAFETY_AUDIT,
    SEGMENTS,
    VARIANTS,
    read_segments,
    read_variants,
)
from cpo.run_inputs import customer_copy_current, customers_path, load_run_customers
from cpo.runfiles import read_text_artifact, sha256_file, write_csv, write_json
from cpo.stage_api import RunContext, RunOptions, StageBase, StageOutcome

if TYPE_CHECKING:
    from cpo.config import Config

CHANNEL = "experiment"


def segment_sizes(segments: pd.DataFrame) -> dict[str, int]:
    """Customers per segment, in segment_id order (name order when there is no id)."""
    key = "segment_id" if "segment_id" in segments else "segment"
    order = segments.groupby("segment", sort=False)[key].first().sort_values(kind="stable")
    counts = segments["segment"].value_counts()
    return {name: int(counts[name]) for name in order.index}


class AssignStage(StageBase):
    """Design the experiment, assign customers and write the send list.

    Args:
        merge_screening: Builds the run's merge-value screening (the pipeline
            passes ``cpo.safety.merge.RunMergeScreening``).
    """

    name = "assign"
    description = "Designing the experiment and assigning customers"
    outputs = (
        run_folder.EXPERIMENT_DESIGN.name,
        run_folder.ASSIGNMENTS.name,
        run_folder.ASSIGNMENTS_DATASET.name,
        run_folder.WAVES.name,
        run_folder.SENDS.name,
        run_folder.SENDS_PARQUET.name,
        run_folder.WITHHELD.name,
    )

    def __init__(self, merge_screening: MergeScreeningFactory) -> None:
        self.merge_screening = merge_screening

    def preflight(self, config: Config, options: RunOptions) -> None:
        """Refuse an unusable wave count, or an engagement file for waves not sent for real."""
        check_wave_options(config, options)

    def check_resume(self, run_dir: Path, config: Config, options: RunOptions) -> None:
        """Refuse a changed wave count while the run's waves are being sent."""
        check_resume_waves(run_dir, config.experiment.experiment.waves, options)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Segments, variants, retrieval (footnote links) and the customer file."""
        return [
            SEGMENTS.path(ctx.run_dir),
            run_folder.SEGMENTS_DATASET.path(ctx.run_dir),
            VARIANTS.path(ctx.run_dir),
            RETRIEVAL.path(ctx.run_dir),
            customers_path(ctx),
        ]

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, Any]:
        """The audit log's decisions (approvals change them; this stage's merge entries do not)."""
        extra: dict[str, Any] = {
            "audit_decisions": decisions_fingerprint(SAFETY_AUDIT.path(ctx.run_dir))
        }
        if ctx.options.waves is not None:
            extra["waves"] = ctx.options.waves
        if is_real_send(ctx):  # each wave's event file makes the next wave's allocation
            engagement = ctx.options.engagement
            extra["wave_events"] = sha256_file(Path(engagement)) if engagement else None
        return extra

    def outputs_written(self, ctx: RunContext) -> bool:
        """Design, withheld.csv and one form each of the assignments and the send list exist."""
        forms = {form.name for form in run_folder.SEND_LIST_FORMS}
        assigned = {run_folder.ASSIGNMENTS.name, run_folder.ASSIGNMENTS_DATASET.name}
        optional = forms | assigned | {run_folder.WAVES.name}
        fixed = [name for name in self.outputs if name not in optional]
        present = all(ctx.path(name).exists() for name in fixed)
        present = present and any(ctx.path(name).exists() for name in assigned)
        return present and run_folder.find_send_list(ctx.run_dir) is not None

    def run(self, ctx: RunContext) -> StageOutcome:
        """Build the design, assign, render the send list, write the three artifacts."""
        from cpo.decisions import sendable_variants

        segments = read_segments(ctx.run_dir, ["customer_id", "segment", "segment_id"])
        variants = read_variants(ctx.run_dir)
        decisions = sendable_variants(ctx.run_dir)
        customers = load_run_customers(ctx, history_columns())  # the design's columns only
        design = self._design(ctx, segments, variants, decisions, customers)
        run_folder.write_design(ctx.run_dir, design.to_dict())
        self._log_design(ctx, design)
        step: WaveStep | None = None
        if is_real_send(ctx):
            contacts = load_run_customers(ctx, [*CONTACT_COLUMNS, *history_columns()])
            step = advance_waves(ctx, segments, design, _wave_importer(contacts))
            assigned = AssignedCustomers(arm_counts(step.assignments), rows=current_rows(step))
        else:
            assigned = assign_run(ctx, segments, design, customers)
        send_list = self._write_send_list(ctx, design, variants, assigned)
        audit_records = send_list.records
        counts = assigned.counts
        self._log_sends(ctx, send_list, counts)
        experiment = {
            "design": run_folder.EXPERIMENT_DESIGN.name,
            "assignment_method": design.method,
            "salt_sha256": design.salt_sha256,
            "arms": {a.name: a.tone for a in design.arms},
            "assigned": {k: int(v) for k, v in sorted(counts.items())},
            "recipients": send_list.recipients,
            "send_list": send_list.form,
            "withheld": withheld_summary(send_list),
        }
        summary = self._summary(design, counts)
        waves = wave_settings(ctx).count
        if waves > 1:
            experiment["waves"] = waves
            summary += f"; {waves} adaptive waves (see {run_folder.WAVES.name})"
        if step is not None:
            experiment["current_wave"] = step.current
            summary += self._wave_step_summary(step, waves)
        if len(send_list.withheld):
            summary += f"; {len(send_list.withheld)} withheld (see {run_folder.WITHHELD.name})"
        return StageOutcome(
            summary=summary,
            facts=experiment,
            records={**audit_records, "experiment": experiment},
        )

    def _write_send_list(
        self, ctx: RunContext, design: Design, variants: list[Variant], assigned: AssignedCustomers
    ) -> SendListSummary:
        """The engine builds and writes the send list (audited first); withheld.csv is written."""
        by_id = {v.variant_id: v for v in variants}
        used = {vid for plan in design.segments for vid in plan.variant_ids.values()}
        variants_used = {vid: by_id[vid] for vid in used}
        request = SendListRequest(
            run_dir=ctx.run_dir,
            variants=variants_used,
            options=message_options(ctx, list(variants_used.values())),
            screening=self.merge_screening(ctx),
            settings=send_list_settings(ctx),
            customers=functools.partial(load_run_customers, ctx),
            assignments=assigned.rows,
        )
        send_list = engine_for(ctx.config.experiment.compute).write_send_list(request)
        write_csv(ctx.path(run_folder.WITHHELD.name), send_list.withheld)
        return send_list

    def _wave_step_summary(self, step: WaveStep, waves: int) -> str:
        imported = f"; events of wave {step.imported} imported" if step.imported is not None else ""
        waiting = waiting_for(step.document)
        if waiting is None:
            return f"{imported}; every wave's events imported"
        return f"{imported}; send list: wave {waiting} of {waves}"

    def _design(
        self,
        ctx: RunContext,
        segments: pd.DataFrame,
        variants: list[Variant],
        decisions: Mapping[str, Any],
        customers: pd.DataFrame,
    ) -> Design:
        settings = ctx.config.experiment.experiment
        generation = getattr(ctx.config.experiment, "generation", None)
        # A hash join (the merge's rows, in the segments' order), not Series.isin:
        # isin on Arrow-backed strings is slow at 1M rows.
        in_run = inner_join(segments[["customer_id"]], customers)
        return build_design(
            experiment_name=ctx.config.experiment.campaign.name,
            settings=settings,
            tones=resolve_tones(settings, getattr(generation, "tones", None)),
            segment_sizes=segment_sizes(segments),
            variants=variants,
            decisions=decisions,
            salt=experiment_salt(settings, ctx.config.experiment.campaign.name, ctx.seed),
            analysis=ctx.config.experiment.analysis,
            baselines=estimate_baselines(in_run, settings.power),
            reductions=expected_reductions(in_run, ctx.config.experiment.analysis.covariates),
        )

    def _log_design(self, ctx: RunContext, design: Design) -> None:
        primary = design.power["primary_metric"]
        ctx.log.info(
            self.name,
            "design",
            channel=CHANNEL,
            arms={a.name: a.tone for a in design.arms},
            allocation={a.name: round(a.weight, 6) for a in design.arms},
            holdout_share=design.holdout_share,
            assignment_method=design.method,
            salt_sha256=design.salt_sha256,
            expected_counts=design.expected_counts(),
            primary_metric=primary,
            primary_mde_relative=design.power["metrics"][primary]["mde_relative"],
        )
        for plan in design.segments:
            for arm, dropped in plan.dropped.items():
                ctx.log.info(
                    self.name,
                    "arm_dropped",
                    channel=CHANNEL,
                    segment=plan.segment,
                    arm=arm,
                    code=dropped.code,
                    variant_id=dropped.variant_id,
                    shares=plan.shares,
                )
        for warning in design.warnings:
            ctx.log.warning(self.name, warning["code"], channel=CHANNEL, message=warning["message"])

    def _log_sends(
        self, ctx: RunContext, send_list: SendListSummary, counts: dict[str, Any]
    ) -> None:
        ctx.log.info(
            self.name,
            "assigned",
            channel=CHANNEL,
            counts={k: int(v) for k, v in sorted(counts.items())},
            recipients=send_list.recipients,
        )
        if send_list.missing_names:
            ctx.log.info(
                self.name,
                "blank_first_names",
                channel=CHANNEL,
                count=send_list.missing_names,
                message=f"{send_list.missing_names} recipient(s) without a first name are "
                "greeted with the greeting fallback",
            )
        if len(send_list.withheld):
            summary = withheld_summary(send_list)
            ctx.log.warning(
                self.name,
                "recipients_withheld",
                channel=CHANNEL,
                count=summary["customers"],
                by_reason=summary["by_reason"],
                message=f"{summary['customers']} recipient(s) withheld: their first name failed "
                f"screening ({', '.join(summary['by_reason'])}); see {run_folder.WITHHELD.name}",
            )
        for variant_id, fields in send_list.unknown_fields.items():
            ctx.log.warning(
                self.name,
                "unknown_merge_fields",
                channel=CHANNEL,
                variant_id=variant_id,
                message=f"{variant_id}: merge field(s) {fields} are not supported and were "
                "left as written",
            )

    def _summary(self, design: Design, counts: dict[str, Any]) -> str:
        arms = ", ".join(f"{name} {int(counts.get(name, 0))}" for name in design.arm_names)
        held = int(counts.get(HOLDOUT_ARM, 0))
        primary = design.power["primary_metric"]
        mde = design.power["metrics"][primary]["mde_relative"]
        mde_text = f"MDE {primary} {mde:+.0%}" if mde is not None else f"MDE {primary} unreachable"
        underpowered = any(w["code"] == "underpowered" for w in design.warnings)
        return (
            f"{arms}"
            + (f", holdout {held}" if held else "")
            + f"; {mde_text}"
            + (" (underpowered)" if underpowered else "")
        )


class EngageStage(StageBase):
    """Import engagement from a real send, or simulate it."""

    name = "engage"
    description = "Collecting engagement"
    outputs = (
        run_folder.ENGAGEMENT.name,
        run_folder.ENGAGEMENT_DATASET.name,
        ENGAGEMENT_REPORT.name,
    )

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Assignments, design, customers (simulation baselines) and the engagement file."""
        files = [
            ctx.path(run_folder.ASSIGNMENTS.name),
            ctx.path(run_folder.ASSIGNMENTS_DATASET.name),
            ctx.path(run_folder.EXPERIMENT_DESIGN.name),
            customers_path(ctx),
        ]
        if ctx.options.engagement is not None:
            files.append(Path(ctx.options.engagement))
        if ctx.options.orders is not None:
            files.append(Path(ctx.options.orders))
        return files

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, Any] | None:
        """The suppression list given (an event file's unsubscribes go to it)."""
        if ctx.options.suppressions is None:
            return None
        return {"suppressions": str(Path(ctx.options.suppressions).resolve())}

    def outputs_written(self, ctx: RunContext) -> bool:
        """engagement_report.json and the engagement (engagement.csv or its dataset)."""
        report = ENGAGEMENT_REPORT.path(ctx.run_dir).is_file()
        return report and run_folder.find_engagement(ctx.run_dir) is not None

    def run(self, ctx: RunContext) -> StageOutcome:
        """Write the engagement (engagement.csv or its dataset) and engagement_report.json.

        The engine simulates, or imports a per-recipient (or per-event) file; an
        email service's export, ``--orders`` and counts per arm are imported here.
        """
        if is_real_send(ctx):
            return self._imported_waves(ctx)
        engine = engine_for(ctx.config.experiment.compute)
        design = run_folder.read_design(ctx.run_dir)
        request = EngageRequest(
            run_dir=ctx.run_dir,
            arm_tones={arm["name"]: arm["tone"] for arm in design["arms"]},
            simulation=ctx.config.experiment.simulation,
            seed=ctx.seed,
            customers=lambda columns: load_run_customers(ctx, columns),
            customer_copy_current=customer_copy_current(ctx),
            engagement=None if ctx.options.engagement is None else str(ctx.options.engagement),
        )
        if request.engagement is None:
            return self._report(ctx, engine.simulate_engagement(request), {})
        path = Path(request.engagement)
        if _imported_here(path, ctx.options.orders is not None):
            assignments = run_folder.read_assignments(ctx.run_dir)
            frame, report, inputs = import_engagement_file(ctx, assignments)
            return self._finish(ctx, frame, report, {"inputs": inputs})
        engaged = engine.import_engagement(request)
        engaged = replace(engaged, report={**engaged.report, "file": path.name})
        return self._report(ctx, engaged, {"inputs": _input_record(path, engaged.report)})

    def _finish(
        self, ctx: RunContext, frame: pd.DataFrame, report: dict[str, Any], records: dict[str, Any]
    ) -> StageOutcome:
        """Write engagement.csv and engagement_report.json, log and summarize."""
        run_folder.write_engagement(ctx.run_dir, frame)
        totals, recipients = engagement_totals(frame, report)
        return self._report(ctx, Engaged(report, totals, recipients), records)

    def _report(self, ctx: RunContext, engaged: Engaged, records: dict[str, Any]) -> StageOutcome:
        """Write engagement_report.json (the engagement is written), log and summarize."""
        report, totals, recipients = engaged.report, engaged.totals, engaged.recipients
        if report["layout"] != LAYOUT_COUNTS:  # a counts file of an earlier import is stale
            ctx.path(run_folder.ENGAGEMENT_COUNTS.name).unlink(missing_ok=True)
        write_json(ENGAGEMENT_REPORT.path(ctx.run_dir), report)
        for warning in report["warnings"]:
            ctx.log.warning(self.name, warning["code"], channel=CHANNEL, message=warning["message"])
        source = report["engagement_source"]
        ctx.log.info(
            self.name,
            "engagement",
            channel=CHANNEL,
            engagement_source=source,
            recipients=recipients,
            **totals,
        )
        records["experiment"] = {"engagement_source": source}
        summary = (
            f"{recipients} recipients: {totals['opened']} opened, {totals['clicked']} clicked, "
            f"{totals['converted']} converted"
            + (" (SIMULATED, not measured)" if source == SOURCE_SIMULATED else " (imported)")
            + (" from counts per arm" if report["layout"] == LAYOUT_COUNTS else "")
        )
        return StageOutcome(
            summary=summary,
            facts={"engagement_source": source, "recipients": recipients, **totals},
            records=records,
        )

    def _imported_waves(self, ctx: RunContext) -> StageOutcome:
        """Adaptive waves sent for real: pause for the awaited wave, or finish the import."""
        document = imported_document(ctx.run_dir)
        if document is None:
            raise DataValidationError(
                f"{run_folder.WAVES.path(ctx.run_dir)}: missing; the assign stage of a run "
                "of waves sent for real writes it",
                hint="rerun the assign stage: `cpo run --resume RUN_DIR`",
            )
        waiting = waiting_for(document)
        if waiting is not None:
            return StageOutcome(
                summary=f"waiting for the events of wave {waiting} of {document['count']}: "
                f"send it, then import them with `cpo run --resume RUN_DIR --engagement FILE`",
                paused=True,
                awaiting="engagement",
                facts={"wave": waiting, "waves": document["count"]},
            )
        frame = read_text_artifact(run_folder.ENGAGEMENT.path(ctx.run_dir))
        for column in ("opened", "clicked", "converted"):
            frame[column] = frame[column].astype("int8")
        report = waves_import_report(document, len(frame))
        return self._finish(ctx, frame, report, {})


def _imported_here(path: Path, orders: bool) -> bool:
    """An email service's export, ``--orders`` or counts per arm: imported by the stage.

    Only a local file can be one; anything else goes to the engine (which
    names a missing file).
    """
    if not path.is_file():
        return False
    return orders or detect_format(path) is not None or is_counts_file(path)


def _input_record(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``inputs`` record of an engagement file imported by the engine."""
    local = path.is_file()
    record = {
        "path": str(path.resolve()) if local else str(path),
        "sha256": sha256_file(path) if local else None,
        "layout": report["layout"],
        "rows": report["counts"].get("rows", 0),
    }
    return {"engagement": record}


def import_engagement_file(
    ctx: RunContext, assignments: pd.DataFrame, index: SendIndex | None = None
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Import ``--engagement`` against ``assignments``: frame, report and ``inputs`` record.

    An email service's event export (with ``--orders`` for conversions), a file
    of counts per arm, or one row per recipient or per event. ``index`` says
    whom an email service's events may concern (None = the run's send list).
    """
    path = Path(ctx.options.engagement or "")

    result: EngagementImport | EngagementCounts
    extra: dict[str, Any] = {}
    if detect_format(path) is not None:  # an email service's event export
        settings = ctx.config.experiment.experiment.events
        result, extra = import_provider_events(
            path,
            ctx.run_dir,
            assignments,
            settings,
            ctx.options.orders,
            ctx.options.suppressions,
            index=index,
        )
    elif ctx.options.orders is not None:
        raise DataValidationError(
            f"{path}: --orders needs an email service event file as --engagement",
            hint="give the SendGrid, Mailgun, SES or event CSV export as --engagement, "
            "or leave out --orders (a per-recipient file has its own converted column)",
        )
    elif is_counts_file(path):
        result = import_counts(path, assignments)
        write_csv(ctx.path(run_folder.ENGAGEMENT_COUNTS.name), result.table)
    else:
        result = import_engagement(path, assignments)
    record = {
        "path": str(path.resolve()),
        "sha256": sha256_file(path),
        "layout": result.layout,
        "rows": result.counts.get("rows", 0),
    }
    report = {**summarize(result), "file": path.name, **extra}
    return result.frame, report, {"engagement": record}


def waves_import_report(document: dict[str, Any], recipients: int) -> dict[str, Any]:
    """engagement_report.json of adaptive waves sent for real: every wave's import."""
    imports = {str(e["wave"]): e["import"] for e in document["allocations"]}
    warnings = [
        {"code": w["code"], "message": f"wave {wave}: {w['message']}"}
        for wave, record in imports.items()
        for w in record["warnings"]
    ]
    return {
        "engagement_source": "imported",
        "layout": "waves",
        "counts": {"recipients": recipients},
        "warnings": warnings,
        "waves": imports,
    }


def _wave_importer(customers: pd.DataFrame) -> Importer:
    """Imports one wave's events; an email service's events may concern any wave's recipient."""

    def import_wave(
        ctx: RunContext, rows: pd.DataFrame, mailed: pd.DataFrame
    ) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
        return import_engagement_file(ctx, rows, recipients_index(ctx.run_id, mailed, customers))

    return import_wave
