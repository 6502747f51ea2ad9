"""A run's live progress: ``GET /runs/{run_id}/progress`` and its JSON for polling.

The page lists the stages with their status and time, read from the run's
manifest, and the job's state from the app database. ``static/progress.js``
polls ``GET /api/runs/{run_id}/progress`` and updates the page in place; with
scripts off, the page has a plain reload link (no meta refresh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from cpo.web.auth import User, current_user, db
from cpo.web.jobs import Job, latest_job, manifest_status, stage_progress
from cpo.web.templating import render
from cpo.web.workflow import job_run_dir

router = APIRouter()


def progress(run_id: str, run_dir: Path, job: Job | None) -> dict[str, Any]:
    """The run's progress: status, the job, each stage, and whether it has stopped."""
    recorded = manifest_status(run_dir)
    status = job.status if job is not None and job.active else (recorded or "unknown")
    if job is not None and job.status in ("failed", "interrupted") and recorded != "completed":
        status = job.status
    return {
        "run_id": run_id,
        "status": status,
        "done": status not in ("queued", "running"),
        "job": job.as_record() if job is not None else None,
        "stages": stage_progress(run_dir),
    }


@router.get("/api/runs/{run_id}/progress", response_model=None)
def progress_json(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The progress as JSON (polled by the progress page)."""
    run_dir = job_run_dir(request, run_id)
    return JSONResponse(progress(run_id, run_dir, latest_job(db(request), run_id)))


@router.get("/runs/{run_id}/progress", response_model=None)
def progress_page(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The progress page (updates itself with scripts on; a reload link otherwise)."""
    run_dir = job_run_dir(request, run_id)
    return render(
        request,
        "progress.html",
        run_id=run_id,
        progress=progress(run_id, run_dir, latest_job(db(request), run_id)),
    )
