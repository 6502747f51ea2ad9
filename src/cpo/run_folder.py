"""The run folder: every artifact's file name, schema version and description, once.

``cpo run --out DIR`` writes one folder per run. This module is its single
owner: each file (or folder) the run writes is an :class:`Artifact` constant
below, and :data:`ARTIFACTS` lists them all in the order a run writes them
(``cpo run --help`` and the docs print that list). Stages, commands and the
report name files only through these constants.

This is a leaf module: it imports the standard library, :mod:`cpo.errors` and
:mod:`cpo.models` only; pandas and the file helpers of :mod:`cpo.runfiles` are
imported inside the functions that need them, so ``cpo --help`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file (or folder) of a run folder.

    Attributes:
        name: File name relative to the run folder, e.g. ``"segments.csv"``
            (a folder ends with ``/``, e.g. ``"logs/"``).
        schema_version: Version of the file's layout; it changes when a
            column or key is renamed or removed, or its meaning changes.
        description: One line saying what is in it (shown by ``cpo run --help``).
        writer: The stage (or command) that writes it.
    """

    name: str
    schema_version: int
    description: str
    writer: str

    @property
    def is_folder(self) -> bool:
        """True for a folder artifact (``logs/``)."""
        return self.name.endswith("/")

    @property
    def file_name(self) -> str:
        """The name without a folder's trailing ``/``."""
        return self.name.rstrip("/")

    def path(self, run_dir: Path | str) -> Path:
        """This artifact's path inside ``run_dir``."""
        return Path(run_dir) / self.file_name


MANIFEST = Artifact(
    "manifest.json",
    1,
    "run id, seed, options, config snapshot and hash, input hashes, stage records, totals, status",
    "pipeline",
)
SEGMENTS = Artifact(
    "segments.csv",
    1,
    "one row per customer: customer_id, segment, segment_id, confidence, reason",
    "segment",
)
SEGMENT_PROFILES = Artifact(
    "segment_profiles.json",
    1,
    "per segment: size, share, definition, feature means and medians, traits",
    "segment",
)
REJECTED = Artifact(
    "rejected.csv",
    1,
    "customer rows set aside by --on-invalid skip, with the reason",
    "segment",
)
CONTENT_INDEX = Artifact(
    "content_index.sqlite",
    1,
    "full-text index of the approved content (embedded retrieval backend)",
    "retrieve",
)
RETRIEVAL = Artifact(
    "retrieval.json",
    1,
    "per segment: query, filters and the retrieved snippets with scores",
    "retrieve",
)
VARIANTS = Artifact(
    "variants.json",
    1,
    "every generated variant and the control message, with citations and usage",
    "generate",
)
SAFETY_AUDIT = Artifact(
    "safety_audit.jsonl",
    1,
    "append-only, hash-chained screening decisions (one JSON line each)",
    "screen",
)
SAFETY_AUDIT_CSV = Artifact(
    "safety_audit.csv",
    1,
    "the same screening decisions as CSV, for compliance export",
    "screen",
)
EXPERIMENT_DESIGN = Artifact(
    "experiment_design.json",
    1,
    "arms, allocation, metrics, alpha, power and the sample size the design needs",
    "assign",
)
ASSIGNMENTS = Artifact(
    "assignments.csv",
    1,
    "one row per customer: experiment arm, variant id, assignment method",
    "assign",
)
SENDS = Artifact(
    "sends.csv",
    1,
    "the send list an email service can import (screened-and-passed content only)",
    "assign",
)
WITHHELD = Artifact(
    "withheld.csv",
    1,
    "customers held back from the send list, with the reason",
    "assign",
)
ENGAGEMENT = Artifact(
    "engagement.csv",
    1,
    "one row per recipient: opened, clicked, converted and where the data came from",
    "engage",
)
ENGAGEMENT_COUNTS = Artifact(
    "engagement_counts.csv",
    1,
    "engagement as counts per arm and segment (when imported as aggregates)",
    "engage",
)
ENGAGEMENT_REPORT = Artifact(
    "engagement_report.json",
    1,
    "where the engagement came from (import or simulation) and what was checked",
    "engage",
)
METRICS = Artifact(
    "metrics.json",
    1,
    "the analysis: rates, lift, intervals, corrected p-values, sample-ratio check, power",
    "analyze",
)
MODERATORS = Artifact(
    "moderators.json",
    1,
    "which customer attributes moderate the lift (explainability)",
    "analyze",
)
REPORT_HTML = Artifact(
    "report.html",
    1,
    "self-contained report (no network needed to view it)",
    "report",
)
REPORT_PDF = Artifact("report.pdf", 1, "printable report", "report")
REPORT_NOTEBOOK = Artifact(
    "report.ipynb",
    1,
    "executed notebook that reproduces the report from the artifacts",
    "report",
)
LOGS = Artifact(
    "logs/",
    1,
    "system.log and experiment.log: JSON lines of stage events (no personal data)",
    "pipeline",
)
LOCK = Artifact(
    ".cpo.lock",
    1,
    "lock held by the cpo process that is changing the folder (its pid while held)",
    "pipeline",
)

#: Every artifact of a run folder, in the order a run writes them.
ARTIFACTS: tuple[Artifact, ...] = (
    MANIFEST,
    SEGMENTS,
    SEGMENT_PROFILES,
    REJECTED,
    CONTENT_INDEX,
    RETRIEVAL,
    VARIANTS,
    SAFETY_AUDIT,
    SAFETY_AUDIT_CSV,
    EXPERIMENT_DESIGN,
    ASSIGNMENTS,
    SENDS,
    WITHHELD,
    ENGAGEMENT,
    ENGAGEMENT_COUNTS,
    ENGAGEMENT_REPORT,
    METRICS,
    MODERATORS,
    REPORT_HTML,
    REPORT_PDF,
    REPORT_NOTEBOOK,
    LOGS,
    LOCK,
)


def artifact(name: str) -> Artifact:
    """The artifact with file name ``name`` (``"logs"`` and ``"logs/"`` both work).

    Raises:
        KeyError: no artifact has that name.
    """
    for candidate in ARTIFACTS:
        if name in (candidate.name, candidate.file_name):
            return candidate
    raise KeyError(name)
