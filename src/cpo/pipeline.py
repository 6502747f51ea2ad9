"""Run the stages of a campaign and own its run folder.

The pipeline is an ordered list of stages. Each stage reads earlier artifacts
(and input files) from the run folder and writes its own; it declares which files
it depends on, so ``resume`` can skip a completed stage whose inputs are
unchanged. Adding a stage means writing one :class:`Stage` class and listing it
in :func:`default_stages`.

This module never touches the terminal: progress goes to a :class:`Reporter`,
which the CLI (or a web app) supplies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from cpo import __version__
from cpo.config import Config, load_config, sha256_json
from cpo.errors import CpoError, RunDirError, StageError
from cpo.logs import RunLog, mask_values, utc_now
from cpo.outpaths import check_writable, os_error, output_dir
from cpo.runfiles import read_json, sha256_path, write_json

MANIFEST = "manifest.json"
LOCK_FILE = ".cpo.lock"
LOG_DIR = "logs"
STATUS_AWAITING_APPROVAL = "awaiting_approval"


class Reporter(Protocol):
    """Receives progress from a running pipeline (the CLI shows it)."""

    def stage_started(self, name: str, description: str) -> None:
        """A stage begins."""

    def stage_progress(self, name: str, completed: int, total: int) -> None:
        """A long stage reports ``completed`` of ``total`` units."""

    def stage_finished(self, name: str, status: str, seconds: float, summary: str) -> None:
        """A stage ended (completed, skipped, paused or failed)."""

    def event(self, record: dict[str, Any]) -> None:
        """A log event (warnings are worth showing)."""


class NullReporter:
    """A reporter that shows nothing (library and test use)."""

    def stage_started(self, name: str, description: str) -> None:
        pass

    def stage_progress(self, name: str, completed: int, total: int) -> None:
        pass

    def stage_finished(self, name: str, status: str, seconds: float, summary: str) -> None:
        pass

    def event(self, record: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for; stored in the manifest so a resume can reuse it.

    Attributes:
        customers: Customer file (``None`` = the bundled sample).
        content: Approved-content folder (``None`` = the bundled sample).
        engagement: Engagement file to import instead of simulating.
        seed: Overrides ``campaign.seed`` when set.
        on_invalid: ``"error"`` or ``"skip"`` for invalid customer rows.
        column_map: ``--map`` pairs (their column, our column), merged over
            ``customers.columns`` of the config.
        encoding: ``--encoding`` of the customer file (``None`` = the config's).
        delimiter: ``--delimiter`` of the customer file (``None`` = the config's).
    """

    customers: Path | None = None
    content: Path | None = None
    engagement: Path | None = None
    seed: int | None = None
    on_invalid: str = "error"
    column_map: tuple[tuple[str, str], ...] = ()
    encoding: str | None = None
    delimiter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (paths as absolute strings)."""
        return {
            "customers": _path_text(self.customers),
            "content": _path_text(self.content),
            "engagement": _path_text(self.engagement),
            "seed": self.seed,
            "on_invalid": self.on_invalid,
            "column_map": dict(self.column_map),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        """Rebuild options stored by :meth:`to_dict`."""
        return cls(
            customers=_path_or_none(data.get("customers")),
            content=_path_or_none(data.get("content")),
            engagement=_path_or_none(data.get("engagement")),
            seed=data.get("seed"),
            on_invalid=data.get("on_invalid", "error"),
            column_map=tuple((data.get("column_map") or {}).items()),
            encoding=data.get("encoding"),
            delimiter=data.get("delimiter"),
        )


def _path_text(path: Path | None) -> str | None:
    return str(Path(path).resolve()) if path is not None else None


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


@dataclass
class StageOutcome:
    """What a stage reports when it returns.

    Attributes:
        summary: One line for the terminal, e.g. "500 customers in 4 segments".
        paused: True when the run must stop here and wait (e.g. for approval).
        facts: Stage facts recorded in the manifest under ``stages.<name>.facts``.
    """

    summary: str = ""
    paused: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """One step of the pipeline."""

    name: str
    description: str
    outputs: tuple[str, ...]

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Files (or folders) whose content decides whether this stage must rerun."""

    def run(self, ctx: RunContext) -> StageOutcome:
        """Do the work and write ``outputs`` into ``ctx.run_dir``."""

    # Optional: ``fingerprint_extra(ctx) -> dict`` adds facts that are not files
    # (e.g. the as-of date when it defaults to today) to the resume fingerprint.


@dataclass
class RunContext:
    """Everything a stage may use: the run folder, config, options, log and manifest."""

    run_dir: Path
    config: Config
    options: RunOptions
    log: RunLog
    manifest: dict[str, Any]
    reporter: Reporter
    current_stage: str = ""

    @property
    def seed(self) -> int:
        """The effective seed: the option when given, else ``campaign.seed``."""
        if self.options.seed is not None:
            return self.options.seed
        return self.config.experiment.campaign.seed

    @property
    def salt(self) -> str:
        """Salt for hashing customer ids in logs (per campaign and seed)."""
        return f"{self.config.experiment.campaign.name}:{self.seed}"

    def path(self, name: str) -> Path:
        """Absolute path of an artifact in the run folder."""
        return self.run_dir / name

    def progress(self, completed: int, total: int) -> None:
        """Report progress of the current stage."""
        self.reporter.stage_progress(self.current_stage, completed, total)

    def add_usage(
        self,
        api_calls: int = 0,
        tokens_prompt: int = 0,
        tokens_completion: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Add API usage to the run totals in the manifest."""
        totals = self.manifest["totals"]
        totals["api_calls"] += api_calls
        totals["tokens_prompt"] += tokens_prompt
        totals["tokens_completion"] += tokens_completion
        totals["cost_usd"] = round(totals["cost_usd"] + cost_usd, 6)

    def save_manifest(self) -> None:
        """Write the manifest atomically."""
        self.manifest["updated_at"] = utc_now()
        write_json(self.path(MANIFEST), self.manifest)


StageFactory = Callable[[], list[Stage]]


def default_stages() -> list[Stage]:
    """The stages of ``cpo run``, in order."""
    from cpo.experiment.analysis_stage import AnalyzeStage
    from cpo.experiment.stages import AssignStage, EngageStage
    from cpo.generation.stage import GenerateStage
    from cpo.reporting.stage import ReportStage
    from cpo.retrieval.stage import RetrieveStage
    from cpo.safety.stage import ScreenStage
    from cpo.segmentation.stage import SegmentStage

    return [
        SegmentStage(),
        RetrieveStage(),
        GenerateStage(),
        ScreenStage(),
        AssignStage(),
        EngageStage(),
        AnalyzeStage(),
        ReportStage(),
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

    Raises:
        RunDirError: the folder cannot be used as asked.
        StageError: a stage failed; the manifest records status ``failed``.
    """
    run_dir = Path(run_dir)
    reporter = reporter or NullReporter()
    stage_list = list(stages) if stages is not None else default_stages()
    _open_run_dir(run_dir, resume=resume)
    # The lock comes before anything in the folder is read, deleted or written:
    # a second `--force` or `--resume` must never touch a run that is still going.
    with run_dir_lock(run_dir):
        _prepare_run_dir(run_dir, force=force, resume=resume, stage_list=stage_list)
        try:
            return _run_locked(run_dir, config, options, resume, reporter, stage_list)
        except OSError as exc:
            # A stage's own errors become StageError; this is the folder itself
            # failing (e.g. made read-only while the run was going).
            raise os_error(run_dir, exc, "write the run folder") from None


@contextmanager
def run_dir_lock(run_dir: Path | str, busy_hint: str | None = None) -> Iterator[None]:
    """Hold the run folder's lock (``.cpo.lock``) while the body runs.

    Every cpo process that changes a run folder takes this lock first; the
    holder's pid is written into the lock file (and cleared on release) so a
    process that is refused can say who holds it.

    Args:
        run_dir: The run folder (it must exist).
        busy_hint: The fix shown when another process holds the lock
            (default: wait, or choose another ``--out`` folder).

    Raises:
        RunDirError: another process holds the lock; nothing in the folder was changed.
        OutputPathError: the lock file cannot be created (e.g. a read-only folder).
    """
    run_dir = Path(run_dir)
    lock_path = run_dir / LOCK_FILE
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _busy_error(run_dir, busy_hint) from None
    except OSError as exc:
        raise os_error(run_dir, exc, "lock the run folder") from None
    try:
        _write_holder(lock_path, {"pid": os.getpid(), "since": utc_now()})
        yield
    finally:
        _write_holder(lock_path, None)
        lock.release()


def _write_holder(lock_path: Path, holder: dict[str, Any] | None) -> None:
    """Record (or clear) who holds the lock; best effort, the lock itself is what counts."""
    with contextlib.suppress(OSError):
        lock_path.write_text(json.dumps(holder) if holder else "", encoding="utf-8")


def lock_holder(run_dir: Path | str) -> dict[str, Any] | None:
    """The ``{"pid", "since"}`` record of the process holding the run folder's lock, if known."""
    try:
        holder = json.loads((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder else None


def _busy_error(run_dir: Path, hint: str | None) -> RunDirError:
    holder = lock_holder(run_dir)
    who = (
        f"process {holder['pid']} (since {holder.get('since', 'unknown')})"
        if holder
        else "another cpo process (pid unknown)"
    )
    return RunDirError(
        f"{run_dir}: run folder is in use by {who}; nothing in it was changed",
        hint=hint or "wait for that run to finish, or choose another --out folder",
    )


def _run_locked(
    run_dir: Path,
    config: Config | None,
    options: RunOptions | None,
    resume: bool,
    reporter: Reporter,
    stage_list: list[Stage],
) -> dict[str, Any]:
    """Body of :func:`run_pipeline` while holding the run folder's lock."""
    previous = read_json(run_dir / MANIFEST) if resume else None
    if previous is not None and options is None:
        options = RunOptions.from_dict(previous.get("options", {}))
    options = options or RunOptions()
    config = config or load_config(previous["config_source"] if previous else None)
    for stage in stage_list:
        # A stage's `preflight(config, options)` checks what it can before anything runs.
        preflight = getattr(stage, "preflight", None)
        if preflight is not None:
            preflight(config, options)
    log = RunLog(run_dir / LOG_DIR, listener=reporter.event)
    manifest = _new_manifest(config, options, previous, stage_list)
    ctx = RunContext(run_dir, config, options, log, manifest, reporter)
    ctx.save_manifest()
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
    ctx.save_manifest()
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
    extra = getattr(stage, "fingerprint_extra", None)
    return sha256_json(
        {
            "files": files,
            "config": ctx.manifest["config_sha256"],
            "seed": ctx.seed,
            "extra": extra(ctx) if extra is not None else None,
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
    ctx.save_manifest()
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
        ctx.manifest["status"] = STATUS_AWAITING_APPROVAL
    ctx.save_manifest()
    ctx.log.info(stage.name, "stage_finished", status=status, seconds=round(seconds, 3))
    ctx.reporter.stage_finished(stage.name, status, seconds, outcome.summary)
    return not outcome.paused


def _can_skip(ctx: RunContext, stage: Stage, record: dict[str, Any], fingerprint: str) -> bool:
    """A stage is skipped on resume when it completed with the same inputs and outputs exist."""
    return (
        record.get("status") == "completed"
        and record.get("fingerprint") == fingerprint
        and all(ctx.path(name).exists() for name in stage.outputs)
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
    ctx.save_manifest()
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
        if not (run_dir / MANIFEST).is_file():
            raise RunDirError(
                f"{run_dir}: no {MANIFEST} here, so there is no run to resume",
                hint="pass the folder of an earlier `cpo run --out`",
            )
        return
    existing = [p for p in run_dir.iterdir() if p.name != LOCK_FILE]
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
    owned = {MANIFEST, "rejected.csv", *(name for s in stage_list for name in s.outputs)}
    for name in owned:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    shutil.rmtree(run_dir / LOG_DIR, ignore_errors=True)
