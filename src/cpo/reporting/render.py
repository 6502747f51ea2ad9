"""Write the three reports of a run folder: report.html, report.pdf, report.ipynb.

Used by the ``report`` stage (last stage of ``cpo run``) and by
``cpo report RUN_DIR``, which regenerates the reports from the artifacts without
re-running anything.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo import run_folder
from cpo.reporting.artifacts import RunArtifacts, load_run
from cpo.reporting.html import render_documents
from cpo.reporting.notebook import NotebookKernel, write_notebook
from cpo.reporting.pdf import render_pdf
from cpo.reporting.sections.common import is_simulated
from cpo.reporting.sections.explain import NO_ARTIFACT
from cpo.runfiles import atomic_open

REPORT_FILES = (
    run_folder.REPORT_HTML.name,
    run_folder.REPORT_PDF.name,
    run_folder.REPORT_NOTEBOOK.name,
)


@dataclass
class ReportResult:
    """What :func:`render_report` wrote.

    Attributes:
        run_dir: The run folder.
        files: Report file name -> size in bytes.
        seconds: Time per step (html, pdf, notebook).
        simulated: The engagement was simulated (the reports say so).
        explain_note: Why the run has no moderator analysis, if it has none.
    """

    run_dir: Path
    files: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    simulated: bool = False
    explain_note: str | None = None


def render_report(
    run_dir: Path | str,
    *,
    manifest: dict[str, Any] | None = None,
    notebook: bool = True,
    pdf: bool = True,
    kernel: NotebookKernel | None = None,
) -> ReportResult:
    """Write report.html (and report.pdf, report.ipynb) for a completed run.

    Args:
        run_dir: The run folder.
        manifest: The live manifest (the report stage passes it); None reads
            manifest.json and requires a completed run.
        notebook: Also build and execute report.ipynb.
        pdf: Also render report.pdf.
        kernel: A notebook kernel started earlier in ``run_dir`` (the report
            worker starts one while the run's other stages work); None starts
            one when the notebook is executed. It is shut down either way.

    Raises:
        RunDirError: the run is incomplete or artifacts are missing.
        StageError: the PDF is too large or a notebook cell failed.
    """
    run_dir = Path(run_dir)
    art = load_run(run_dir, manifest=manifest)
    result = ReportResult(
        run_dir=run_dir, simulated=is_simulated(art), explain_note=_no_explain(art)
    )
    # The notebook runs in its own kernel process: start it first so that it
    # overlaps with the explainability, HTML and PDF work done here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpo-notebook") as pool:
        pending = None
        if notebook and kernel is not None:
            pending = kernel.submit(_timed_notebook, art, result.simulated, kernel)
        elif notebook:
            pending = pool.submit(_timed_notebook, art, result.simulated, None)
        _write_html_and_pdf(art, result, pdf=pdf)
        if pending is not None:
            path, seconds = pending.result()
            result.files[run_folder.REPORT_NOTEBOOK.name] = path.stat().st_size
            result.seconds["notebook"] = seconds
    return result


def _write_html_and_pdf(art: RunArtifacts, result: ReportResult, *, pdf: bool) -> None:
    """report.html, then report.pdf from the printable HTML of the same context."""
    began = time.perf_counter()
    html, printable = render_documents(art, printable=pdf)
    with atomic_open(art.run_dir / run_folder.REPORT_HTML.name) as handle:
        handle.write(html)
    result.files[run_folder.REPORT_HTML.name] = len(html.encode("utf-8"))
    result.seconds["html"] = _lap(began)
    if printable is not None:
        began = time.perf_counter()
        result.files[run_folder.REPORT_PDF.name] = render_pdf(
            printable, art.run_dir / run_folder.REPORT_PDF.name
        )
        result.seconds["pdf"] = _lap(began)


def _no_explain(art: RunArtifacts) -> str | None:
    """Why the report has no moderator analysis (None when moderators.json has one)."""
    if art.moderators is None:
        return NO_ARTIFACT
    if art.moderators.get("result"):
        return None
    return str(art.moderators.get("note") or "it was not computed")


def _timed_notebook(
    art: RunArtifacts, simulated: bool, kernel: NotebookKernel | None
) -> tuple[Path, float]:
    began = time.perf_counter()
    run_id = str(art.manifest.get("run_id", ""))
    path = write_notebook(art.run_dir, run_id, simulated, kernel=kernel)
    return path, _lap(began)


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 3)


__all__ = ["REPORT_FILES", "ReportResult", "render_report"]
