"""The run folders under the app's runs directory, read through :mod:`cpo.run_folder`.

A run id in a URL is the name of one folder directly under the runs directory;
:meth:`RunsFolder.run_dir` refuses anything else (``..``, a path, a hidden name,
a folder without a manifest) with :class:`RunNotFound`, which the app answers
with 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.errors import CpoError
from cpo.run_folder import MANIFEST, read_manifest

#: What a run id (a folder name) may look like: no separators, no leading dot.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunNotFound(CpoError):
    """The URL names no run folder of this runs directory (answered with 404)."""


@dataclass(frozen=True)
class StageTiming:
    """One stage of a run as its manifest records it."""

    name: str
    status: str
    duration_s: float | None
    summary: str


@dataclass(frozen=True)
class RunSummary:
    """What the runs list shows about one run, from its manifest.

    Attributes:
        run_id: The folder name (the id in the app's URLs).
        status: ``completed``, ``running``, ``failed``, ``awaiting_approval`` or
            ``unreadable`` (the manifest could not be read; ``problem`` says why).
        created_at: ISO time the run started (``""`` when unknown).
        engagement_source: ``simulated``, ``imported`` (or ``""`` before that stage).
        customers: Customer rows read (``None`` when unknown).
        runtime_s: Total runtime recorded.
        stages: Each stage's status and duration, in run order.
        pending_review: Variants waiting for a reviewer.
        problem: Why the manifest could not be read, or the run's recorded error.
    """

    run_id: str
    status: str
    created_at: str = ""
    engagement_source: str = ""
    customers: int | None = None
    runtime_s: float | None = None
    stages: tuple[StageTiming, ...] = field(default_factory=tuple)
    pending_review: int = 0
    problem: str = ""


class RunsFolder:
    """The run folders of one runs directory.

    Args:
        runs_dir: The directory holding one folder per run (``cpo run --out RUNS/NAME``).
    """

    def __init__(self, runs_dir: Path) -> None:
        self.root = Path(runs_dir)

    def run_ids(self) -> list[str]:
        """The names of the run folders (folders with a manifest), last changed first."""
        if not self.root.is_dir():
            return []
        found = [
            entry
            for entry in self.root.iterdir()
            if RUN_ID_PATTERN.fullmatch(entry.name)
            and entry.is_dir()
            and MANIFEST.path(entry).is_file()
        ]
        found.sort(key=lambda entry: MANIFEST.path(entry).stat().st_mtime, reverse=True)
        return [entry.name for entry in found]

    def list_runs(self) -> list[RunSummary]:
        """A summary of every run, newest first by start time (an unreadable manifest is
        listed as such, after the others)."""
        runs = [self.summary(run_id) for run_id in self.run_ids()]
        return sorted(runs, key=lambda run: (run.created_at, run.run_id), reverse=True)

    def run_dir(self, run_id: str) -> Path:
        """The folder of ``run_id``.

        Raises:
            RunNotFound: not a single folder name, not under the runs directory, or
                no run folder (manifest) there.
        """
        if not RUN_ID_PATTERN.fullmatch(run_id):
            raise RunNotFound(f"run {run_id!r}: not a run id", hint="pick a run from the runs list")
        folder = self.root / run_id
        inside = folder.resolve().parent == self.root.resolve()
        if not inside or not folder.is_dir() or not MANIFEST.path(folder).is_file():
            raise RunNotFound(
                f"run {run_id!r}: no such run in this runs directory",
                hint="pick a run from the runs list",
            )
        return folder

    def manifest(self, run_id: str) -> dict[str, Any]:
        """The manifest of ``run_id`` (RunNotFound / RunDirError / DataValidationError)."""
        return read_manifest(self.run_dir(run_id))

    def summary(self, run_id: str) -> RunSummary:
        """The list's summary of ``run_id``; a manifest that cannot be read is ``unreadable``."""
        try:
            manifest = self.manifest(run_id)
        except CpoError as exc:
            return RunSummary(run_id, "unreadable", problem=exc.message)
        return summarize(run_id, manifest)


def summarize(run_id: str, manifest: dict[str, Any]) -> RunSummary:
    """A :class:`RunSummary` from a manifest (missing keys leave their defaults)."""
    stages = tuple(
        StageTiming(
            str(name),
            str(record.get("status", "")),
            record.get("duration_s"),
            str(record.get("summary") or ""),
        )
        for name, record in (manifest.get("stages") or {}).items()
        if isinstance(record, dict)
    )
    customers = ((manifest.get("inputs") or {}).get("customers") or {}).get("rows")
    error = manifest.get("error")
    return RunSummary(
        run_id=run_id,
        status=str(manifest.get("status") or "unknown"),
        created_at=str(manifest.get("created_at") or ""),
        engagement_source=str((manifest.get("experiment") or {}).get("engagement_source") or ""),
        customers=customers if isinstance(customers, int) else None,
        runtime_s=(manifest.get("totals") or {}).get("runtime_s"),
        stages=stages,
        pending_review=len((manifest.get("safety") or {}).get("pending_review") or []),
        problem=_error_text(error),
    )


def _error_text(error: object) -> str:
    """The manifest's recorded error as one line (``""`` for none)."""
    if not error:
        return ""
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
