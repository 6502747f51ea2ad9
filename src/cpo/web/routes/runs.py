"""The runs list (``GET /runs``, with filters) and one run's overview (``GET /runs/{run_id}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from cpo.web.auth import User, current_user, runs_dir
from cpo.web.runs import RunsFolder, RunSummary
from cpo.web.templating import render

router = APIRouter()


@router.get("/", response_model=None)
def home(user: Annotated[User, Depends(current_user)]) -> Response:
    """The start page is the runs list."""
    return RedirectResponse("/runs", status_code=303)


def filter_runs(
    runs: list[RunSummary], status: str, engagement: str, text: str
) -> list[RunSummary]:
    """The runs matching every filter given (an empty filter matches all)."""
    needle = text.strip().casefold()
    return [
        run
        for run in runs
        if (not status or run.status == status)
        and (not engagement or run.engagement_source == engagement)
        and (not needle or needle in run.run_id.casefold())
    ]


@router.get("/runs", response_model=None)
def runs_list(
    request: Request,
    user: Annotated[User, Depends(current_user)],
    status: Annotated[str, Query(max_length=40)] = "",
    engagement: Annotated[str, Query(max_length=40)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Every run: status, created, engagement source, stage timings; filtered by the query."""
    runs = RunsFolder(runs_dir(request)).list_runs()
    shown = filter_runs(runs, status, engagement, q)
    return render(
        request,
        "runs.html",
        runs=shown,
        total=len(runs),
        statuses=sorted({run.status for run in runs}),
        engagements=sorted({run.engagement_source for run in runs if run.engagement_source}),
        filters={"status": status, "engagement": engagement, "q": q},
    )
