"""The run's report inside the app: ``/runs/{run_id}/report`` and its downloads.

``report.html`` is served as the report stage wrote it, under a CSP of its own:
the report is self-contained with inline styles (and inline images), so its
policy allows those and nothing else (no scripts, nothing from another origin).
The PDF and the notebook are downloads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from cpo.run_folder import REPORT_HTML, REPORT_NOTEBOOK, REPORT_PDF, Artifact
from cpo.web.auth import User, current_user
from cpo.web.runs import RunNotFound
from cpo.web.security import security_headers
from cpo.web.workflow import manifest_run_dir

router = APIRouter()

#: The report's policy: its own inline styles and images, no script, no other origin.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_MEDIA_TYPES = {
    REPORT_PDF.name: "application/pdf",
    REPORT_NOTEBOOK.name: "application/x-ipynb+json",
}


def _report_file(request: Request, run_id: str, artifact: Artifact) -> FileResponse:
    run_dir = manifest_run_dir(request, run_id)
    path = artifact.path(run_dir)
    if not path.is_file():
        raise RunNotFound(
            f"run {run_id!r} has no {artifact.name} yet",
            hint="the report stage writes it when the run completes; watch the run's progress",
        )
    if artifact is REPORT_HTML:
        return FileResponse(
            path, media_type="text/html; charset=utf-8", headers=security_headers(REPORT_CSP)
        )
    return FileResponse(
        path, media_type=_MEDIA_TYPES[artifact.name], filename=f"{run_id}-{artifact.name}"
    )


@router.get("/runs/{run_id}/report", response_model=None)
def report_html(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The run's HTML report."""
    return _report_file(request, run_id, REPORT_HTML)


@router.get("/runs/{run_id}/report.pdf", response_model=None)
def report_pdf(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The printable report (download)."""
    return _report_file(request, run_id, REPORT_PDF)


@router.get("/runs/{run_id}/report.ipynb", response_model=None)
def report_notebook(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The executed notebook that reproduces the report (download)."""
    return _report_file(request, run_id, REPORT_NOTEBOOK)
