"""What the workflow pages share: the worker, job-aware run folders, error pages.

A run started in the browser has a job before it has a manifest (the folder is
created empty and the worker's ``cpo run`` writes the manifest), so its pages
find the folder through :func:`job_run_dir` rather than requiring a manifest.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from cpo.errors import CpoError
from cpo.web.auth import db, runs_dir
from cpo.web.jobs import WEB_STATE_DIR, Worker, latest_job
from cpo.web.runs import RUN_ID_PATTERN, RunNotFound, RunsFolder
from cpo.web.templating import render
from cpo.web.uploads import DEFAULT_MAX_UPLOAD_MB, UploadTooLarge, check_declared_size

#: Most files a content zip may hold.
ZIP_MAX_ENTRIES = 5000


def worker(request: Request) -> Worker:
    """The app's background worker."""
    found: Worker = request.app.state.worker
    return found


def max_upload_bytes(request: Request) -> int:
    """The upload size limit in bytes (``cpo serve --max-upload-mb``)."""
    megabytes = getattr(request.app.state, "max_upload_mb", DEFAULT_MAX_UPLOAD_MB)
    return int(float(megabytes) * 1024 * 1024)


def refuse_oversized(request: Request, limit_bytes: int, what: str) -> None:
    """Answer 413 before reading a body whose ``Content-Length`` is over ``limit_bytes``.

    Raises:
        HTTPException: 413 with the size, the limit and the fix.
    """
    try:
        check_declared_size(request.headers.get("content-length"), limit_bytes, what)
    except UploadTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from None


def inputs_dir(request: Request, run_id: str) -> Path:
    """Where the uploaded inputs of a run are kept (outside its run folder)."""
    return runs_dir(request) / WEB_STATE_DIR / "inputs" / run_id


def job_run_dir(request: Request, run_id: str) -> Path:
    """The folder of a run that has a manifest, or a job of this app (queued runs).

    Raises:
        RunNotFound: not a run id, or neither a run folder nor a job of one.
    """
    if RUN_ID_PATTERN.fullmatch(run_id) and latest_job(db(request), run_id) is not None:
        folder = runs_dir(request) / run_id
        if folder.is_dir():
            return folder
    return RunsFolder(runs_dir(request)).run_dir(run_id)


def manifest_run_dir(request: Request, run_id: str) -> Path:
    """The folder of a run with a manifest (RunNotFound otherwise)."""
    return RunsFolder(runs_dir(request)).run_dir(run_id)


def error_page(request: Request, exc: CpoError, status_code: int) -> HTMLResponse:
    """The app's error page for a cpo error: its message and how to fix it."""
    return render(
        request,
        "error.html",
        status_code=status_code,
        status=status_code,
        message=exc.message,
        hint=exc.hint or "",
    )


__all__ = [
    "RunNotFound",
    "error_page",
    "inputs_dir",
    "job_run_dir",
    "manifest_run_dir",
    "max_upload_bytes",
    "refuse_oversized",
    "worker",
]
