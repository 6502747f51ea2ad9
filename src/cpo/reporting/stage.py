"""The ``report`` stage of ``cpo run`` (the last one): HTML, PDF and notebook.

Reads only artifacts of the run folder (the moderator analysis from
moderators.json, not the customer file) and writes report.html, report.pdf and
report.ipynb. The same
work is available without re-running the pipeline as ``cpo report RUN_DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpo import run_folder
from cpo.reporting.worker import ReportWorker, WorkerUnavailable
from cpo.run_folder import MANIFEST, REPORT_HTML, REPORT_NOTEBOOK, REPORT_PDF
from cpo.stage_api import RunContext, StageBase, StageOutcome


class ReportStage(StageBase):
    """Write the three reports from the run's artifacts.

    Args:
        worker: A :class:`~cpo.reporting.worker.ReportWorker` started for this
            run folder when the run started (the pipeline starts one), which
            renders the reports with its imports, templates and notebook
            kernel already loaded. None, or a worker that broke, renders here.
    """

    name = "report"
    description = "Writing the report"
    outputs = (REPORT_HTML.name, REPORT_PDF.name, REPORT_NOTEBOOK.name)

    def __init__(self, worker: ReportWorker | None = None) -> None:
        self.worker = worker

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Every artifact the report reads."""
        from cpo.reporting.artifacts import REQUIRED_ARTIFACTS  # imports pandas

        names = [n for n in REQUIRED_ARTIFACTS if n != MANIFEST.name]
        names += [
            run_folder.RETRIEVAL.name,
            run_folder.ASSIGNMENTS.name,
            run_folder.ASSIGNMENTS_DATASET.name,
            run_folder.ENGAGEMENT_DATASET.name,
            run_folder.SEGMENT_PROFILES.name,
            run_folder.MODERATORS.name,
            run_folder.ENGAGEMENT_REPORT.name,
        ]
        return [ctx.path(name) for name in names]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Render the reports with the live manifest (in the worker when there is one)."""
        result = self._render(ctx)
        if result["explain_note"]:
            ctx.log.warning(self.name, "explain_skipped", message=result["explain_note"])
        files, seconds = result["files"], result["seconds"]
        ctx.log.info(
            self.name, "report_written", files=files, seconds=seconds, simulated=result["simulated"]
        )
        sizes = ", ".join(f"{name} {size / 1024:.0f} KB" for name, size in files.items())
        return StageOutcome(
            summary=sizes + (" (SIMULATED engagement)" if result["simulated"] else ""),
            facts={"files": files, "seconds": seconds},
        )

    def _render(self, ctx: RunContext) -> dict[str, Any]:
        """files, seconds, simulated and explain_note of the written reports."""
        if self.worker is not None:
            try:
                return self.worker.render(ctx.manifest)
            except WorkerUnavailable as exc:
                ctx.log.warning(self.name, "report_worker_failed", message=str(exc))
        from cpo.reporting.render import render_report  # heavy imports only when reporting

        result = render_report(ctx.run_dir, manifest=ctx.manifest)
        return {
            "files": result.files,
            "seconds": result.seconds,
            "simulated": result.simulated,
            "explain_note": result.explain_note,
        }
