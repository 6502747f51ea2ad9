"""The stage contract of ``cpo run``: what a stage is given and what it returns.

A stage is a class with a ``name``, a ``description``, the ``outputs`` it writes
into the run folder, and six methods (:class:`Stage`). Subclass
:class:`StageBase` to get the optional hooks with their defaults and override
only what the stage needs. The pipeline (:mod:`cpo.pipeline`) calls the hooks in
this order: ``preflight`` (and on resume ``check_resume``) for every stage
before anything runs; then per stage
``input_files`` and ``fingerprint_extra`` (the resume fingerprint),
``outputs_written`` (a resume skips a stage only when they are there) and ``run``.

A stage never writes the manifest: it returns a :class:`StageOutcome` whose
``records`` the pipeline merges into the manifest (``{"inputs": {"customers":
{...}}}`` adds one input record) and whose ``usage`` it adds to the run totals.

This is a leaf module (standard library only at run time), so stage modules,
the pipeline and tests can all import it without a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cpo.config import Config
    from cpo.logs import RunLog


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
        """Ignore the start."""

    def stage_progress(self, name: str, completed: int, total: int) -> None:
        """Ignore progress."""

    def stage_finished(self, name: str, status: str, seconds: float, summary: str) -> None:
        """Ignore the end."""

    def event(self, record: dict[str, Any]) -> None:
        """Ignore events."""


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for; stored in the manifest so a resume can reuse it.

    Attributes:
        customers: Customer file (``None`` = the bundled sample).
        content: Approved-content folder (``None`` = the bundled sample).
        engagement: Engagement file to import instead of simulating.
        orders: Orders file whose orders are the conversions (with an email
            service event file as ``engagement``).
        suppressions: Suppression list (folder or file) that an event file's
            unsubscribes and bounces go to (``None`` = beside the run folder).
        seed: Overrides ``campaign.seed`` when set.
        on_invalid: ``"error"`` or ``"skip"`` for invalid customer rows.
        column_map: ``--map`` pairs (their column, our column), merged over
            ``customers.columns`` of the config.
        encoding: ``--encoding`` of the customer file (``None`` = the config's).
        delimiter: ``--delimiter`` of the customer file (``None`` = the config's).
        waves: ``--waves N``: overrides ``experiment.waves.count`` when set.
        await_engagement: ``--await-engagement``: adaptive waves are sent for
            real; the run pauses after each wave until its events are imported.
    """

    customers: Path | None = None
    content: Path | None = None
    engagement: Path | None = None
    orders: Path | None = None
    suppressions: Path | None = None
    seed: int | None = None
    on_invalid: str = "error"
    column_map: tuple[tuple[str, str], ...] = ()
    encoding: str | None = None
    delimiter: str | None = None
    waves: int | None = None
    await_engagement: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (paths as text; ``waves`` and ``await_engagement`` only when set)."""
        data = {
            "customers": _path_text(self.customers),
            "content": _path_text(self.content),
            "engagement": _path_text(self.engagement),
            "orders": _path_text(self.orders),
            "suppressions": _path_text(self.suppressions),
            "seed": self.seed,
            "on_invalid": self.on_invalid,
            "column_map": dict(self.column_map),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }
        if self.waves is not None:
            data["waves"] = self.waves
        if self.await_engagement:
            data["await_engagement"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        """Rebuild options stored by :meth:`to_dict`."""
        return cls(
            customers=_path_or_none(data.get("customers")),
            content=_path_or_none(data.get("content")),
            engagement=_path_or_none(data.get("engagement")),
            orders=_path_or_none(data.get("orders")),
            suppressions=_path_or_none(data.get("suppressions")),
            seed=data.get("seed"),
            on_invalid=data.get("on_invalid", "error"),
            column_map=tuple((data.get("column_map") or {}).items()),
            encoding=data.get("encoding"),
            delimiter=data.get("delimiter"),
            waves=data.get("waves"),
            await_engagement=bool(data.get("await_engagement", False)),
        )


def _path_text(path: Path | None) -> str | None:
    if path is None:
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", str(path)):  # a URI (Spark engine): as given
        return str(path)
    return str(Path(path).resolve())


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


@dataclass(frozen=True)
class ApiUsage:
    """Paid API use of one stage, added to the run totals in the manifest.

    Attributes:
        api_calls: Requests sent.
        tokens_prompt: Prompt tokens billed.
        tokens_completion: Completion tokens billed.
        cost_usd: Estimated cost.
    """

    api_calls: int = 0
    tokens_prompt: int = 0
    tokens_completion: int = 0
    cost_usd: float = 0.0


@dataclass
class StageOutcome:
    """What a stage reports when it returns.

    Attributes:
        summary: One line for the terminal, e.g. "500 customers in 4 segments".
        paused: True when the run must stop here and wait (e.g. for approval).
        awaiting: What a paused run waits for: the manifest's status becomes
            ``awaiting_<awaiting>`` (``awaiting_approval``, ``awaiting_engagement``).
        facts: Stage facts recorded in the manifest under ``stages.<name>.facts``.
        records: Run-level records the pipeline merges into the manifest
            (a dict updates the manifest's dict key by key), e.g.
            ``{"inputs": {"content": {...}}}`` or ``{"safety": {...}}``.
        usage: Paid API use, added to the manifest's ``totals``.
    """

    summary: str = ""
    paused: bool = False
    awaiting: str = "approval"
    facts: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    usage: ApiUsage | None = None


@dataclass
class RunContext:
    """Everything a stage may use: the run folder, config, options, log and manifest.

    Attributes:
        run_dir: The run folder.
        config: The loaded configuration.
        options: The user's input files and flags.
        log: The run's JSON-lines log.
        manifest: The manifest so far, for reading (earlier stages' records);
            a stage records through :attr:`StageOutcome.records`.
        reporter: Progress receiver.
        current_stage: Name of the running stage (for progress).
    """

    run_dir: Path
    config: Config
    options: RunOptions
    log: RunLog
    manifest: dict[str, Any]
    reporter: Reporter
    current_stage: str = ""

    @property
    def run_id(self) -> str:
        """The run's id (kept across resumes)."""
        return str(self.manifest["run_id"])

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
        """Absolute path of an artifact in the run folder (``ctx.path(SEGMENTS.name)``)."""
        return self.run_dir / name

    def progress(self, completed: int, total: int) -> None:
        """Report progress of the current stage."""
        self.reporter.stage_progress(self.current_stage, completed, total)


class Stage(Protocol):
    """One step of the pipeline (subclass :class:`StageBase` to implement it)."""

    @property
    def name(self) -> str:
        """Short name (``segment``), used in the manifest, log and terminal."""

    @property
    def description(self) -> str:
        """What the terminal shows while it runs ("Segmenting customers")."""

    @property
    def outputs(self) -> tuple[str, ...]:
        """Artifact file names it writes (``run_folder`` names); a resume checks they exist."""

    def preflight(self, config: Config, options: RunOptions) -> None:
        """Check what can be checked from config and options before any stage runs."""

    def check_resume(self, run_dir: Path, config: Config, options: RunOptions) -> None:
        """On resume, before any stage runs: refuse options the run in ``run_dir`` cannot take."""

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Files (or folders) whose content decides whether this stage must rerun."""

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, Any] | None:
        """Facts that are not files (e.g. a default as-of date) for the resume fingerprint."""

    def outputs_written(self, ctx: RunContext) -> bool:
        """Whether its outputs are in the run folder (a resume reruns the stage if not)."""

    def run(self, ctx: RunContext) -> StageOutcome:
        """Do the work and write ``outputs`` into ``ctx.run_dir``."""


class StageBase:
    """Base class of the stages: the optional hooks with their defaults.

    A subclass sets ``name``, ``description`` and ``outputs`` (artifact file
    names, e.g. ``(SEGMENTS.name,)``), implements ``run(ctx) -> StageOutcome``
    and overrides the hooks it needs; mypy checks it against :class:`Stage`
    where the pipeline takes it.
    """

    name: str = ""
    description: str = ""
    outputs: tuple[str, ...] = ()

    def preflight(self, config: Config, options: RunOptions) -> None:
        """No checks before the run by default."""
        del config, options

    def check_resume(self, run_dir: Path, config: Config, options: RunOptions) -> None:
        """No checks of the run folder on resume by default."""
        del run_dir, config, options

    def input_files(self, ctx: RunContext) -> list[Path]:
        """No input files by default (the stage reruns only when config or seed change)."""
        del ctx
        return []

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, Any] | None:
        """Nothing beyond files, config and seed by default."""
        del ctx
        return None

    def outputs_written(self, ctx: RunContext) -> bool:
        """Every one of ``outputs`` exists by default."""
        return all(ctx.path(name).exists() for name in self.outputs)


def merge_records(target: dict[str, Any], records: dict[str, Any]) -> None:
    """Merge a stage's ``records`` into the manifest ``target`` in place.

    A record that is a dict updates the manifest's dict of that name key by key
    (so ``{"inputs": {"content": ...}}`` keeps the other inputs, and
    ``{"experiment": {"engagement_source": ...}}`` adds one key); anything else
    replaces what was there.
    """
    for key, value in records.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            current.update(value)
        else:
            target[key] = value
