"""The ``report`` stage of ``cpo run`` (the last one): HTML, PDF and notebook.

Reads only artifacts of the run folder (the moderator analysis from
moderators.json, not the customer file) and writes report.html, report.pdf and
report.ipynb. The same
work is available without re-running the pipeline as ``cpo report RUN_DIR``.
"""

from __future__ import annotations

from pathlib import Path

from cpo import run_folder
from cpo.reporting.artifacts import REQUIRED_ARTIFACTS
from cpo.run_folder import MANIFEST, REPORT_HTML, REPORT_NOTEBOOK, REPORT_PDF
from cpo.stage_api import RunContext, StageBase, StageOutcome


class ReportStage(StageBase):
    """Write the three reports from the run's artifacts."""

    name = "report"
    description = "Writing the report"
    outputs = (REPORT_HTML.name, REPORT_PDF.name, REPORT_NOTEBOOK.name)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Every artifact the report reads."""
        names = [n for n in REQUIRED_ARTIFACTS if n != MANIFEST.name]
        names += [
            run_folder.RETRIEVAL.name,
            run_folder.ASSIGNMENTS.name,
            run_folder.SEGMENT_PROFILES.name,
            run_folder.MODERATORS.name,
            run_folder.ENGAGEMENT_REPORT.name,
        ]
        return [ctx.path(name) for name in names]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Render the reports with the live manifest."""
        from cpo.reporting.render import render_report  # heavy imports only when reporting

        result = render_report(ctx.run_dir, manifest=ctx.manifest)
        if result.explain_note:
            ctx.log.warning(self.name, "explain_skipped", message=result.explain_note)
        ctx.log.info(
            self.name,
            "report_written",
            files=result.files,
            seconds=result.seconds,
            simulated=result.simulated,
        )
        sizes = ", ".join(f"{name} {size / 1024:.0f} KB" for name, size in result.files.items())
        return StageOutcome(
            summary=sizes + (" (SIMULATED engagement)" if result.simulated else ""),
            facts={"files": result.files, "seconds": result.seconds},
        )
