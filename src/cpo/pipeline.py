"""Run the stages of a campaign in its run folder (names and readers: :mod:`cpo.run_folder`).

The pipeline is an ordered list of stages. Each stage reads earlier artifacts
(and input files) from the run folder and writes its own; it declares which files
it depends on, so ``resume`` can skip a completed stage whose inputs are
unchanged. Adding a stage means writing one class on the contract of
:mod:`cpo.stage_api` (subclass :class:`~cpo.stage_api.StageBase`) and listing it
in :func:`default_stages`. Only this module writes the manifest: it merges what
each stage returns (:class:`~cpo.stage_api.StageOutcome`).

This module never touches the terminal: progress goes to a :class:`Reporter`,
which the CLI (or a web app) supplies.
"""

from __future__ import annotations

import shutil
import time
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo import __version__
from cpo.config import Config, load_config
from cpo.errors import CpoError, RunDirError, StageError
from cpo.logs import RunLog, mask_values, utc_now
from cpo.outpaths import check_writable, os_error, output_dir
from cpo.run_folder import LOCK, LOGS, MANIFEST, REJECTED, read_manifest, write_manifest
from cpo.runfiles import sha256_json, sha256_path
from cpo.runlock import run_dir_lock
from cpo.stage_api import (
    NullReporter,
    Reporter,
    RunContext,
    RunOptions,
    Stage,
    StageOutcome,
    merge_records,
)

if TYPE_CHECKING:
    from cpo.reporting.worker import ReportWorker

STATUS_AWAITING_APPROVAL = "awaiting_approval"
#: A run of adaptive waves sent for real waits for the current wave's events.
STATUS_AWAITING_ENGAGEMENT = "awaiting_engagement"


def default_stages(report_worker: ReportWorker | None = None) -> list[Stage]:
    """The stages of ``cpo run``, in order.

    Args:
        report_worker: A report worker started for this run (the report stage
            renders in it); None renders in this process.
    """
    from cpo.experiment.analysis_stage import AnalyzeStage
    from cpo.experiment.stages import AssignStage, EngageStage
    from cpo.generation.stage import GenerateStage
    from cpo.reporting.stage import ReportStage
    from cpo.retrieval.stage import RetrieveStage
    from cpo.safety.merge import RunMergeScreening
    from cpo.safety.stage import ScreenStage
    from cpo.segmentation.stage import SegmentStage

    return [
        SegmentStage(),
        RetrieveStage(),
        GenerateStage(),
        ScreenStage(),
        AssignStage(merge_screening=RunMergeScreening),
        EngageStage(),
        AnalyzeStage(),
        ReportStage(report_worker),
    ]


def run_pipeline(
    run_dir: Path | str,
    config: Config | None = None,
    options: RunOptions | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    reporter: Reporter | None = None,
    stages: Iterable[Stage] | None = None,
    report_worker: ReportWorker | None = None,
) -> dict[str, Any]:
    """Run (or resume) a campaign into ``run_dir`` and return the final manifest.

    Args:
        run_dir: The run folder. Must be empty or missing unless ``force`` or ``resume``.
        config: Loaded configuration (the packaged defaults when ``None``).
        options: Input files and flags (see :class:`RunOptions`).
        force: Overwrite an earlier run's artifacts in a non-empty folder.
        resume: Continue the run in ``run_dir``, skipping completed stages whose
            inputs are unchanged.
        reporter: Progress receiver (nothing is shown when ``None``).
        stages: Override the stage list (tests).
        report_worker: The report's worker, started by the caller for ``run_dir``
            (the caller closes it). None starts one here for the default stages.

    Raises:
        RunDirError: the folder cannot be used as asked.
        StageError: a stage failed; the manifest records status ``failed``.
    """
    run_dir = Path(run_dir)
    reporter = reporter or NullReporter()
    _open_run_dir(run_dir, resume=resume)
    # The lock comes before anything in the folder is read, deleted or written:
    # a second `--force` or `--resume` must never touch a run that is still going.
    with run_dir_lock(run_dir):
        own = report_worker is None and stages is None
        worker = _start_report_worker(run_dir, options) if own else report_worker
        try:
            stage_list = list(stages) if stages is not None else default_stages(worker)
            _prepare_run_dir(run_dir, force=force, resume=resume, stage_list=stage_list)
            return _run_locked(run_dir, config, options, resume, reporter, stage_list)
        except OSError as exc:
            # A stage's own errors become StageError; this is the folder itself
            # failing (e.g. made read-only while the run was going).
            raise os_error(run_dir, exc, "write the run folder") from None
        finally:
            if own and worker is not None:
                worker.close()


def _start_report_worker(run_dir: Path, options: RunOptions | None) -> ReportWorker | None:
    """Start the report's worker process now, so that it warms up beside the stages.

    None for a run that pauses before its report (``--await-engagement``).
    """
    if options is not None and options.await_engagement:
        return None
    from cpo.reporting.worker import ReportWorker

    return ReportWorker(run_dir).start()


def _run_locked(
    run_dir: Path,
    config: Config | None,
    options: RunOptions | None,
    resume: bool,
    reporter: Reporter,
    stage_list: list[Stage],
) -> dict[str, Any]:
    """Body of :func:`run_pipeline` while holding the run folder's lock."""
    previous = read_manifest(run_dir) if resume else None
    if previous is not None and options is None:
        options = RunOptions.from_dict(previous.get("options", {}))
    options = options or RunOptions()
    config = config or load_config(previous["config_source"] if previous else None)
    for stage in stage_list:
        stage.preflight(config, options)
        if previous is not None:
            stage.check_resume(run_dir, config, options)
    log = RunLog(LOGS.path(run_dir), listener=reporter.event)
    manifest = _new_manifest(config, options, previous, stage_list)
    ctx = RunContext(run_dir, config, options, log, manifest, reporter)
    _save_manifest(ctx)
    log.info("pipeline", "run_started", run_id=manifest["run_id"], resume=resume)
    started = time.perf_counter()
    for stage in stage_list:
        if not _run_stage(ctx, stage, previous):
            break
    else:
        manifest["status"] = "completed"
    manifest["totals"]["runtime_s"] = round(
        manifest["totals"].get("runtime_s_before_resume", 0.0) + time.perf_counter() - started, 3
    )
    _save_manifest(ctx)
    log.info("pipeline", "run_finished", status=manifest["status"])
    return manifest


def _new_manifest(
    config: Config,
    options: RunOptions,
    previous: dict[str, Any] | None,
    stage_list: list[Stage],
) -> dict[str, Any]:
    """A fresh manifest, or the previous one updated for a resume."""
    seed = options.seed if options.seed is not None else config.experiment.campaign.seed
    manifest: dict[str, Any] = {
        "run_id": previous["run_id"] if previous else uuid.uuid4().hex,
        "cpo_version": __version__,
        "created_at": previous["created_at"] if previous else utc_now(),
        "updated_at": utc_now(),
        "status": "running",
        "seed": seed,
        "options": options.to_dict(),
        "config_source": str(config.source),
        "config_sha256": config.sha256(),
        "config": config.snapshot(),
        "inputs": {},
        "stages": {s.name: {"status": "pending"} for s in stage_list},
        "totals": {
            "runtime_s": 0.0,
            "api_calls": 0,
            "tokens_prompt": 0,
            "tokens_completion": 0,
            "cost_usd": 0.0,
        },
        "error": None,
    }
    if previous:
        manifest["inputs"] = previous.get("inputs", {})
        manifest["stages"].update(previous.get("stages", {}))
        manifest["totals"] = previous.get("totals", manifest["totals"])
        manifest["totals"]["runtime_s_before_resume"] = manifest["totals"].get("runtime_s", 0.0)
        for key, value in previous.items():
            manifest.setdefault(key, value)
    return manifest


def _fingerprint(ctx: RunContext, stage: Stage) -> str:
    """Hash of what a stage depends on: its input files, the config and the seed."""
    files = {}
    for path in stage.input_files(ctx):
        files[str(path)] = sha256_path(path) if path.exists() else None
    return sha256_json(
        {
            "files": files,
            "config": ctx.manifest["config_sha256"],
            "seed": ctx.seed,
            "extra": stage.fingerprint_extra(ctx),
        }
    )


def _run_stage(ctx: RunContext, stage: Stage, previous: dict[str, Any] | None) -> bool:
    """Run one stage, recording it in the manifest. Returns False to stop the run."""
    ctx.current_stage = stage.name
    record = ctx.manifest["stages"].setdefault(stage.name, {})
    fingerprint = _fingerprint(ctx, stage)
    if previous and _can_skip(ctx, stage, record, fingerprint):
        ctx.reporter.stage_finished(stage.name, "skipped", 0.0, "unchanged since last run")
        ctx.log.info(stage.name, "stage_skipped", reason="inputs unchanged")
        return True
    record.update(status="running", started_at=utc_now(), fingerprint=fingerprint, error=None)
    _save_manifest(ctx)
    ctx.reporter.stage_started(stage.name, stage.description)
    ctx.log.info(stage.name, "stage_started")
    began = time.perf_counter()
    try:
        outcome = stage.run(ctx)
    except Exception as exc:
        _record_failure(ctx, stage, record, exc, time.perf_counter() - began)
        if isinstance(exc, StageError):
            raise
        message = exc.message if isinstance(exc, CpoError) else f"{type(exc).__name__}: {exc}"
        hint = exc.hint if isinstance(exc, CpoError) else None
        sensitive = exc.sensitive if isinstance(exc, CpoError) else ()
        raise StageError(stage.name, message, hint, sensitive) from exc
    seconds = time.perf_counter() - began
    _record_outcome(ctx, outcome)
    status = "paused" if outcome.paused else "completed"
    record.update(
        status=status,
        finished_at=utc_now(),
        duration_s=round(seconds, 3),
        outputs=list(stage.outputs),
        summary=outcome.summary,
        facts=outcome.facts,
    )
    if outcome.paused:
        ctx.manifest["status"] = f"awaiting_{outcome.awaiting}"
    _save_manifest(ctx)
    ctx.log.info(stage.name, "stage_finished", status=status, seconds=round(seconds, 3))
    ctx.reporter.stage_finished(stage.name, status, seconds, outcome.summary)
    return not outcome.paused


def _record_outcome(ctx: RunContext, outcome: StageOutcome) -> None:
    """Merge what a stage returned for the manifest: its records and its API usage."""
    merge_records(ctx.manifest, outcome.records)
    usage = outcome.usage
    if usage is None:
        return
    totals = ctx.manifest["totals"]
    totals["api_calls"] += usage.api_calls
    totals["tokens_prompt"] += usage.tokens_prompt
    totals["tokens_completion"] += usage.tokens_completion
    totals["cost_usd"] = round(totals["cost_usd"] + usage.cost_usd, 6)


def _save_manifest(ctx: RunContext) -> None:
    """Write the manifest atomically, stamped with the time."""
    ctx.manifest["updated_at"] = utc_now()
    write_manifest(ctx.run_dir, ctx.manifest)


def _can_skip(ctx: RunContext, stage: Stage, record: dict[str, Any], fingerprint: str) -> bool:
    """A stage is skipped on resume when it completed with the same inputs and outputs exist."""
    return (
        record.get("status") == "completed"
        and record.get("fingerprint") == fingerprint
        and stage.outputs_written(ctx)
    )


def _record_failure(
    ctx: RunContext, stage: Stage, record: dict[str, Any], exc: Exception, seconds: float
) -> None:
    """Mark the stage and the run as failed, with the error, in manifest and log."""
    message = str(exc) if isinstance(exc, CpoError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, CpoError) and exc.sensitive:
        message = mask_values(message, exc.sensitive, ctx.salt)
    record.update(status="failed", finished_at=utc_now(), duration_s=round(seconds, 3))
    record["error"] = message
    ctx.manifest["status"] = "failed"
    ctx.manifest["error"] = {"stage": stage.name, "message": message}
    _save_manifest(ctx)
    ctx.log.error(
        stage.name,
        "stage_failed",
        error=message,
        traceback=None if isinstance(exc, CpoError) else traceback.format_exc(limit=5),
    )
    ctx.reporter.stage_finished(stage.name, "failed", seconds, message.splitlines()[0])


def _open_run_dir(run_dir: Path, *, resume: bool) -> None:
    """Check the run folder's path and create it when new; nothing inside is touched.

    Raises:
        RunDirError: ``resume`` and there is no run folder.
        OutputPathError: the path is a file, a parent is a file, or the folder
            cannot be created or written.
    """
    if resume and not run_dir.is_dir():
        raise RunDirError(
            f"{run_dir}: no such run folder, so there is no run to resume",
            hint="pass the folder of an earlier `cpo run --out`",
        )
    # Writability is tried under the lock (a probe file must not show up in a
    # folder another process is checking for emptiness).
    output_dir(run_dir, "run folder", create=not resume, writable=False)


def _prepare_run_dir(run_dir: Path, *, force: bool, resume: bool, stage_list: list[Stage]) -> None:
    """Check that the (locked) run folder may be used as asked; clear it for ``force``."""
    check_writable(run_dir, "write in the run folder")
    if resume:
        if not MANIFEST.path(run_dir).is_file():
            raise RunDirError(
                f"{run_dir}: no {MANIFEST.name} here, so there is no run to resume",
                hint="pass the folder of an earlier `cpo run --out`",
            )
        return
    existing = [p for p in run_dir.iterdir() if p.name != LOCK.name]
    if existing and not force:
        raise RunDirError(
            f"{run_dir}: folder is not empty",
            hint="choose a new --out folder, pass --force to overwrite the earlier run, "
            "or --resume to continue it",
        )
    if existing:
        try:
            _remove_run_artifacts(run_dir, stage_list)
        except OSError as exc:
            raise os_error(run_dir, exc, "remove the earlier run's files from") from None


def _remove_run_artifacts(run_dir: Path, stage_list: list[Stage]) -> None:
    """Delete the files an earlier run wrote (only those cpo owns)."""
    owned = {MANIFEST.name, REJECTED.name, *(name for s in stage_list for name in s.outputs)}
    for name in owned:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    shutil.rmtree(LOGS.path(run_dir), ignore_errors=True)
