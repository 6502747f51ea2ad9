"""Read a run folder's artifacts for the report, defensively.

The report is built only from files in the run folder, never by re-running a
stage or reading the customer file (the moderator analysis is in
moderators.json, written by the analyze stage). A run whose analysis has not
finished is refused with the list of missing artifacts and the stage that
writes each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cpo import run_folder
from cpo.errors import DataValidationError, RunDirError
from cpo.runfiles import csv_header, read_columns

REPORT_STAGE = "report"

#: Artifacts the report cannot do without, and what writes each one.
REQUIRED_ARTIFACTS: dict[str, str] = {
    run_folder.MANIFEST.name: "`cpo run`",
    run_folder.VARIANTS.name: "the generate stage",
    run_folder.SAFETY_AUDIT.name: "the screen stage",
    run_folder.EXPERIMENT_DESIGN.name: "the experiment design (assign stage)",
    run_folder.ENGAGEMENT.name: "the engagement stage (simulated or imported)",
    run_folder.METRICS.name: "the analysis stage",
}
ENGAGEMENT_COLUMNS = ("customer_id", "experiment_arm", "opened", "clicked", "converted")
#: The engagement.csv columns the report reads (the last one when present).
REPORT_ENGAGEMENT_COLUMNS = ("customer_id", "experiment_arm", "engagement_source")
#: The assignments.csv column the report reads.
ASSIGNED_ID = "customer_id"


@dataclass(frozen=True)
class AuditCheck:
    """The audit log as the report sees it.

    Attributes:
        ok: The hash chain verified (and matched the manifest's count and head).
        message: The verifier's one-line verdict.
        entries: Every entry of the log (screenings, approvals, rejections).
        bad_line: First bad line when not ok.
    """

    ok: bool
    message: str
    entries: tuple[dict[str, Any], ...]
    bad_line: int | None = None


@dataclass(frozen=True)
class RunArtifacts:
    """Everything the report reads from a run folder.

    Attributes:
        run_dir: The run folder.
        manifest: manifest.json (or the live manifest when called by the stage).
        metrics: metrics.json.
        design: experiment_design.json.
        variants: The ``variants`` list of variants.json (the control included).
        variants_meta: The rest of variants.json (backend, model, counts, usage).
        audit: The verified safety audit log.
        engagement: engagement.csv's ``customer_id``, ``experiment_arm`` and
            ``engagement_source`` as text (the report counts rows per arm and
            reads the source; the flags are analysed in metrics.json).
        retrieval: retrieval.json, or None when absent.
        assignments: assignments.csv's ``customer_id`` (as text), or None when absent.
        profiles: segment_profiles.json, or None when absent.
        moderators: moderators.json (the moderator analysis), or None when absent.
    """

    run_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    design: dict[str, Any]
    variants: list[dict[str, Any]]
    variants_meta: dict[str, Any]
    audit: AuditCheck
    engagement: pd.DataFrame
    retrieval: dict[str, Any] | None = None
    assignments: pd.DataFrame | None = None
    profiles: dict[str, Any] | None = None
    moderators: dict[str, Any] | None = None


def load_run(run_dir: Path | str, manifest: dict[str, Any] | None = None) -> RunArtifacts:
    """Load a completed run's artifacts.

    Args:
        run_dir: The run folder.
        manifest: The live manifest (the report stage passes it); when None the
            folder's manifest.json is read and the run must be complete.

    Raises:
        RunDirError: the folder is not a completed run, or artifacts are missing.
        DataValidationError: an artifact is not in the expected shape.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(
            f"{run_dir}: no such run folder", hint="pass the --out folder of `cpo run`"
        )
    _check_required(run_dir, skip_manifest=manifest is not None)
    if manifest is None:
        manifest = _read_json(run_dir / run_folder.MANIFEST.name)
        check_complete(run_dir, manifest)
    variants, variants_meta = _read_variants(run_dir / run_folder.VARIANTS.name)
    return RunArtifacts(
        run_dir=run_dir,
        manifest=manifest,
        metrics=_read_json(run_dir / run_folder.METRICS.name),
        design=_read_json(run_dir / run_folder.EXPERIMENT_DESIGN.name),
        variants=variants,
        variants_meta=variants_meta,
        audit=check_audit(run_dir / run_folder.SAFETY_AUDIT.name, manifest),
        engagement=_read_engagement(run_dir),
        retrieval=_read_optional_json(run_dir / run_folder.RETRIEVAL.name),
        assignments=_read_assigned_ids(run_dir),
        profiles=_read_optional_json(run_dir / run_folder.SEGMENT_PROFILES.name),
        moderators=_read_optional_json(run_dir / run_folder.MODERATORS.name),
    )


def _check_required(run_dir: Path, *, skip_manifest: bool) -> None:
    """Raise one error that lists every missing required artifact."""
    missing = [
        f"{name} (written by {writer})"
        for name, writer in REQUIRED_ARTIFACTS.items()
        if not _present(run_dir, name) and not (skip_manifest and name == run_folder.MANIFEST.name)
    ]
    if missing:
        raise RunDirError(
            f"{run_dir}: cannot report on this run, missing: {'; '.join(missing)}",
            hint="the report needs a completed run: finish it with "
            f"`cpo run --resume {run_dir}` (or start one with `cpo run --out DIR`)",
        )


def _present(run_dir: Path, name: str) -> bool:
    """Whether the required artifact is there (the engagement as engagement.csv or its dataset)."""
    if name == run_folder.ENGAGEMENT.name:
        return run_folder.find_engagement(run_dir) is not None
    return (run_dir / name).is_file()


def check_complete(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Refuse a run that is paused or has an unfinished stage before the report.

    Raises:
        RunDirError: naming the status or the unfinished stage.
    """
    status = manifest.get("status")
    if status == "awaiting_approval":
        raise RunDirError(
            f"{run_dir}: the run is paused awaiting approval; there are no results to report yet",
            hint=f"`cpo approve {run_dir} --by NAME`, then `cpo run --resume {run_dir}`",
        )
    stages = manifest.get("stages") or {}
    unfinished = [
        f"{name} ({record.get('status', 'unknown')})"
        for name, record in stages.items()
        if name != REPORT_STAGE and record.get("status") != "completed"
    ]
    if unfinished:
        raise RunDirError(
            f"{run_dir}: the run is not complete; unfinished stage(s): {', '.join(unfinished)}",
            hint=f"finish it with `cpo run --resume {run_dir}`",
        )


def _read_json(path: Path) -> Any:
    """Parse a JSON artifact, naming the file when it is broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})",
            hint="the artifact is damaged; rerun the stage that writes it (`cpo run --resume`)",
        ) from None


def _read_optional_json(path: Path) -> Any:
    return _read_json(path) if path.is_file() else None


def _read_assigned_ids(run_dir: Path) -> pd.DataFrame | None:
    """The assigned customer ids (all the report uses), or None without the assignments.

    From assignments.csv, or the assignments dataset of a run on the Spark engine.
    """
    path = run_dir / run_folder.ASSIGNMENTS.name
    if not path.is_file() and run_folder.ASSIGNMENTS_DATASET.path(run_dir).is_dir():
        return run_folder.read_assignments(run_dir, [ASSIGNED_ID])
    if not path.is_file() or ASSIGNED_ID not in csv_header(path):
        return None
    return read_columns(path, [ASSIGNED_ID], text=[ASSIGNED_ID])


def _read_variants(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The variants list and the file's other keys (it is ``{"variants": [...], ...}``)."""
    data = _read_json(path)
    items = data.get("variants") if isinstance(data, dict) else data
    meta = {k: v for k, v in data.items() if k != "variants"} if isinstance(data, dict) else {}
    if not isinstance(items, list) or not all(
        isinstance(v, dict) and "variant_id" in v for v in items
    ):
        raise DataValidationError(
            f"{path}: expected {{'variants': [...]}} with a variant_id on every variant"
        )
    return items, meta


def _read_engagement(run_dir: Path) -> pd.DataFrame:
    """The engagement's columns the report reads, as text, its required columns checked.

    From engagement.csv or its dataset (:func:`cpo.run_folder.read_engagement`).
    """
    header = run_folder.engagement_columns(run_dir)
    absent = [c for c in ENGAGEMENT_COLUMNS if c not in header]
    if absent:
        raise DataValidationError(
            f"{run_folder.find_engagement(run_dir)}: missing column(s) {', '.join(absent)}",
            hint="engagement.csv needs customer_id, experiment_arm, opened, clicked, converted",
        )
    columns = [c for c in REPORT_ENGAGEMENT_COLUMNS if c in header]
    return run_folder.read_engagement(run_dir, columns, text=columns)


def check_audit(path: Path, manifest: dict[str, Any]) -> AuditCheck:
    """Verify the audit chain against the count and head hash the manifest recorded."""
    from cpo.audit import read_entries, verify

    recorded = (manifest.get("safety") or {}).get("audit") or {}
    result = verify(path, recorded.get("entries"), recorded.get("head_hash"))
    try:
        entries = tuple(read_entries(path))
    except Exception as exc:  # a broken log is reported in the report, not hidden
        entries = ()
        if result.ok:
            return AuditCheck(False, f"entries unreadable: {exc}", entries)
    return AuditCheck(result.ok, result.message(), entries, result.bad_line)
