"""Engagement from a real send: ``GET/POST /runs/{run_id}/engagement``.

A marketer uploads the engagement export (CSV or Parquet, any layout
``cpo run --engagement`` reads). The file gets the import's checks in the
request, against the run's assignments, with the same library functions the
engage stage calls, so a bad file is shown in the page with its lines and fix.
A good file becomes a background job, ``cpo run --resume RUN_DIR --engagement
FILE``, which re-runs the engagement, analysis and report stages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from cpo.errors import CpoError, DataValidationError
from cpo.run_folder import read_manifest
from cpo.web.auth import User, csrf_protect, current_user, db, flash, require_role
from cpo.web.jobs import KIND_ENGAGEMENT, active_job, enqueue, jobs_for_run, resume_args
from cpo.web.templating import render
from cpo.web.uploads import (
    UploadTooLarge,
    limit_text,
    save_upload,
)
from cpo.web.workflow import (
    inputs_dir,
    manifest_run_dir,
    max_upload_bytes,
    refuse_oversized,
    worker,
)

router = APIRouter()

#: cpo's layouts (CSV, Parquet) and email service event exports (JSON, JSON Lines).
ENGAGEMENT_SUFFIXES = (".csv", ".parquet", ".json", ".jsonl")
#: Uploading engagement is for marketers (and admins).
Marketer = Annotated[User, Depends(require_role("marketer"))]


def _check_size(request: Request) -> None:
    """Dependency: refuse (413) a body declared larger than the limit before reading it."""
    refuse_oversized(request, max_upload_bytes(request) + 64 * 1024, "engagement upload")


def _page(
    request: Request,
    run_id: str,
    run_dir: Path,
    *,
    error: CpoError | None = None,
    status_code: int = 200,
) -> Response:
    manifest = read_manifest(run_dir)
    conn = db(request)
    imports = [job for job in jobs_for_run(conn, run_id) if job.kind == KIND_ENGAGEMENT]
    engage = (manifest.get("stages") or {}).get("engage") or {}
    return render(
        request,
        "engagement.html",
        status_code=status_code,
        run_id=run_id,
        source=(manifest.get("experiment") or {}).get("engagement_source") or "",
        engage_summary=engage.get("summary") or "",
        recorded=((manifest.get("inputs") or {}).get("engagement") or {}),
        imports=imports,
        active=active_job(conn, run_id),
        limit=limit_text(max_upload_bytes(request)),
        error=error,
    )


@router.get("/runs/{run_id}/engagement", response_model=None)
def engagement_page(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """Where the run's engagement comes from, and the upload form."""
    return _page(request, run_id, manifest_run_dir(request, run_id))


@router.post("/runs/{run_id}/engagement", dependencies=[Depends(_check_size)], response_model=None)
async def upload_engagement(
    run_id: str,
    request: Request,
    user: Marketer,
    _csrf: Annotated[None, Depends(csrf_protect)],
) -> Response:
    """Check the uploaded engagement file, then queue the re-analysis."""
    run_dir = manifest_run_dir(request, run_id)
    busy = active_job(db(request), run_id)
    if busy is not None:
        error = CpoError(
            f"run {run_id}: job {busy.id} ({busy.kind}) is {busy.status}",
            hint="wait until it has finished, then upload the engagement file",
        )
        return _page(request, run_id, run_dir, error=error, status_code=409)
    form = await request.form()
    upload = form.get("engagement")
    try:
        path = await _saved(request, run_id, upload)
        warnings = await run_in_threadpool(_check_engagement, run_dir, path, upload)
    except UploadTooLarge as exc:
        return _page(request, run_id, run_dir, error=exc, status_code=413)
    except CpoError as exc:
        return _page(request, run_id, run_dir, error=exc, status_code=422)
    args = resume_args(run_dir, ["--engagement", str(path)])
    enqueue(db(request), run_id, KIND_ENGAGEMENT, args, user.name)
    worker(request).wake()
    for warning in warnings:
        flash(request, f"Engagement import: {warning}", "warning")
    return RedirectResponse(f"/runs/{run_id}/progress", status_code=303)


async def _saved(request: Request, run_id: str, upload: Any) -> Path:
    """Save the upload under the run's inputs (a new name each time; earlier files stay)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise DataValidationError(
            "no engagement file was uploaded", hint="choose the CSV or Parquet export of the send"
        )
    suffix = Path(upload.filename.replace("\\", "/")).suffix.lower()
    if suffix not in ENGAGEMENT_SUFFIXES:
        raise DataValidationError(
            f"engagement file {upload.filename!r}: a {suffix or 'file without a suffix'} "
            "is not read",
            hint="upload the send's engagement export as .csv or .parquet, or the email "
            "service's event export as .json or .jsonl",
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = inputs_dir(request, run_id) / f"engagement-{stamp}{suffix}"
    await save_upload(upload, path, max_upload_bytes(request), "engagement file")
    return path


def _check_engagement(run_dir: Path, path: Path, upload: Any) -> list[str]:
    """The engage stage's import checks against the run's assignments; returns the warnings.

    Raises:
        DataValidationError: the file fails a check (named by its uploaded name).
    """
    from cpo.events.formats import detect_format
    from cpo.events.imports import import_provider_events
    from cpo.events.interim import run_experiment_config
    from cpo.experiment.engagement import (
        import_counts,
        import_engagement,
        is_counts_file,
        summarize,
    )
    from cpo.run_folder import read_assignments

    try:
        assignments = read_assignments(run_dir)
        if detect_format(path) is not None:  # an email service's event export
            settings = run_experiment_config(read_manifest(run_dir)).experiment.events
            result: Any = import_provider_events(
                path, run_dir, assignments, settings, check_only=True
            )[0]
        elif is_counts_file(path):
            result = import_counts(path, assignments)
        else:
            result = import_engagement(path, assignments)
    except CpoError as exc:
        path.unlink(missing_ok=True)
        raise DataValidationError(
            exc.message.replace(str(path), str(upload.filename)), hint=exc.hint
        ) from None
    return [str(w.get("message", "")) for w in summarize(result).get("warnings", [])]
