"""The review queue: ``GET /review``, ``GET /runs/{run_id}/review`` and the decisions.

Reviewers (and admins) see every variant awaiting review with its text, cited
paragraphs, screening and customer copy, and approve or reject it with a
required reason. A decision is recorded by :func:`cpo.safety.approval.approve_run`,
the function ``cpo approve`` calls: a hash-chained audit entry naming the
reviewer, with the channel ``web``. With ``require_distinct_approver`` on, the
user who started a run may not decide on its variants. When nothing is left in
review, the run is resumed by the background worker.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from cpo.errors import CpoError, DataValidationError
from cpo.models import HARM_CATEGORIES
from cpo.web.auth import User, csrf_protect, db, distinct_approver_required, flash, require_role
from cpo.web.auth import runs_dir as app_runs_dir
from cpo.web.jobs import (
    AWAITING,
    KIND_RESUME,
    KIND_RUN,
    active_job,
    enqueue,
    jobs_for_run,
    manifest_status,
    resume_args,
)
from cpo.web.runs import RunsFolder
from cpo.web.templating import render
from cpo.web.variant_views import variant_views
from cpo.web.workflow import manifest_run_dir, worker

router = APIRouter()

#: Deciding on variants is for reviewers (and admins).
Reviewer = Annotated[User, Depends(require_role("reviewer"))]
DECISIONS = ("approve", "reject")


def run_starter(conn: sqlite3.Connection, run_id: str) -> str | None:
    """Who started the run in the app (``None`` for a run started elsewhere)."""
    started = [job for job in jobs_for_run(conn, run_id) if job.kind == KIND_RUN]
    return started[-1].created_by if started else None


@router.get("/review", response_model=None)
def review_queue(request: Request, user: Reviewer) -> Response:
    """Every run with variants waiting for a decision."""
    runs = [run for run in RunsFolder(app_runs_dir(request)).list_runs() if run.pending_review]
    return render(request, "review_queue.html", runs=runs)


def _review_page(
    request: Request,
    run_id: str,
    run_dir: Path,
    user: User,
    *,
    error: CpoError | None = None,
    status_code: int = 200,
) -> Response:
    conn = db(request)
    starter = run_starter(conn, run_id)
    blocked = ""
    if starter == user.name and distinct_approver_required(request):
        blocked = (
            "You started this run, and this app requires a different person to approve "
            "its variants: ask another reviewer."
        )
    views = [view for view in variant_views(run_dir) if view.status == "review-pending"]
    return render(
        request,
        "review_run.html",
        status_code=status_code,
        run_id=run_id,
        views=views,
        categories=HARM_CATEGORIES,
        review=not blocked,
        starter=starter,
        blocked_reason=blocked,
        error=error,
        job=active_job(conn, run_id),
    )


@router.get("/runs/{run_id}/review", response_model=None)
def review_run(run_id: str, request: Request, user: Reviewer) -> Response:
    """The variants of one run awaiting review, each with a decision form."""
    return _review_page(request, run_id, manifest_run_dir(request, run_id), user)


@router.post("/runs/{run_id}/review/{variant_id}", response_model=None)
def decide(
    run_id: str,
    variant_id: str,
    request: Request,
    user: Reviewer,
    _csrf: Annotated[None, Depends(csrf_protect)],
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Record an approval or rejection in the run's audit log, then resume when none is left."""
    from cpo.safety.approval import approve_run

    run_dir = manifest_run_dir(request, run_id)
    if run_starter(db(request), run_id) == user.name and distinct_approver_required(request):
        raise HTTPException(
            status_code=403,
            detail="You started this run; another reviewer must decide on its variants "
            "(require_distinct_approver is on).",
        )
    problem = _form_problem(decision, reason)
    if problem is not None:
        return _review_page(request, run_id, run_dir, user, error=problem, status_code=422)
    chosen = [variant_id] if decision == "approve" else []
    rejected = [variant_id] if decision == "reject" else []
    try:
        approve_run(
            run_dir,
            by=user.name,
            approve=chosen,
            reject=rejected,
            note=reason.strip(),
            channel="web",
        )
    except CpoError as exc:
        return _review_page(request, run_id, run_dir, user, error=exc, status_code=409)
    verb = "approved" if decision == "approve" else "rejected"
    flash(request, f"{variant_id} {verb}; the decision is in the audit log.", "success")
    _resume_when_done(request, run_id, run_dir, user)
    return RedirectResponse(f"/runs/{run_id}/review", status_code=303)


def _form_problem(decision: str, reason: str) -> DataValidationError | None:
    if decision not in DECISIONS:
        return DataValidationError(
            "choose approve or reject", hint="pick one of the two options, then submit"
        )
    if not reason.strip():
        return DataValidationError(
            "a reason is required for every decision",
            hint="say why in the reason field; it is recorded in the audit log",
        )
    return None


def _resume_when_done(request: Request, run_id: str, run_dir: Path, user: User) -> None:
    """Queue ``cpo run --resume`` once the paused run has nothing left in review."""
    if manifest_status(run_dir) != AWAITING:
        return
    if any(view.status == "review-pending" for view in variant_views(run_dir)):
        return
    conn = db(request)
    if active_job(conn, run_id) is not None:
        return
    enqueue(conn, run_id, KIND_RESUME, resume_args(run_dir), user.name)
    worker(request).wake()
    flash(request, "Nothing is left in review: the run continues in the background.", "info")
