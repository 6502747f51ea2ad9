"""The runs list (``GET /runs``, with filters) and one run's overview (``GET /runs/{run_id}``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from cpo.errors import CpoError
from cpo.models import SegmentProfile
from cpo.run_folder import (
    ARTIFACTS,
    ASSIGNMENTS,
    ENGAGEMENT,
    LOCK,
    LOGS,
    METRICS,
    REJECTED,
    SEGMENT_PROFILES,
    SEGMENTS,
    SEND_LEDGER,
    SENDS,
    SENDS_PARQUET,
    WITHHELD,
    artifact,
    read_profiles,
)
from cpo.web.auth import User, current_user, db, runs_dir
from cpo.web.runs import RunsFolder, RunSummary, summarize
from cpo.web.templating import render
from cpo.web.workflow import manifest_run_dir

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


#: Files with one row per customer (ids, and in the send list emails and names): only
#: the roles that run campaigns may download them.
CUSTOMER_LEVEL = frozenset(
    artifact.name
    for artifact in (
        SEGMENTS,
        REJECTED,
        ASSIGNMENTS,
        SENDS,
        SENDS_PARQUET,
        WITHHELD,
        SEND_LEDGER,
        ENGAGEMENT,
    )
)
#: Roles that may download :data:`CUSTOMER_LEVEL` files.
CUSTOMER_DATA_ROLES = ("marketer", "admin")
#: Artifacts that are never downloads: the lock and the logs folder.
NOT_DOWNLOADS = frozenset({LOCK.name, LOGS.name})
MEDIA_TYPES = {
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
    ".ipynb": "application/x-ipynb+json",
}


@dataclass(frozen=True)
class Download:
    """One artifact file of a run, as the overview lists it."""

    name: str
    description: str
    size: int
    allowed: bool


def may_download(user: User, name: str) -> bool:
    """True when ``user``'s role may download the artifact ``name``."""
    return name not in CUSTOMER_LEVEL or user.role in CUSTOMER_DATA_ROLES


def downloads(run_dir: Path, user: User) -> list[Download]:
    """The run's artifact files that exist, in run order, with whether ``user`` may fetch them."""
    return [
        Download(
            item.name,
            item.description,
            item.path(run_dir).stat().st_size,
            may_download(user, item.name),
        )
        for item in ARTIFACTS
        if item.name not in NOT_DOWNLOADS and item.path(run_dir).is_file()
    ]


def analysis_warnings(run_dir: Path) -> list[str]:
    """The analysis's warnings (``[]`` before the analysis or when metrics.json is unreadable)."""
    from cpo.experiment.results import read_metrics

    if not METRICS.path(run_dir).is_file():
        return []
    try:
        return [warning.message for warning in read_metrics(METRICS.path(run_dir)).warnings]
    except CpoError as exc:
        return [exc.message]


def segment_profiles(run_dir: Path) -> tuple[list[SegmentProfile], str]:
    """The run's segment profiles and, when they cannot be read, why."""
    if not SEGMENT_PROFILES.path(run_dir).is_file():
        return [], ""
    try:
        return read_profiles(run_dir), ""
    except CpoError as exc:
        return [], exc.message


def webhook_events(request: Request, run_id: str, run_dir: Path, analyse: bool) -> dict[str, Any]:
    """How many webhook events the run received and, when asked, their interim analysis."""
    from cpo.events.interim import interim_analysis
    from cpo.web.routes.hooks import stored_events

    stored = stored_events(db(request), run_id)
    return {
        "received": len(stored),
        "interim": interim_analysis(run_dir, stored) if analyse and stored else None,
    }


@router.get("/runs/{run_id}", response_model=None)
def run_overview(
    request: Request,
    run_id: str,
    user: Annotated[User, Depends(current_user)],
    interim: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """One run: manifest summary, segments and profiles, warnings, downloads.

    With ``?interim=1`` the webhook events received so far are analysed (labelled interim).
    """
    folder = RunsFolder(runs_dir(request))
    run_dir = folder.run_dir(run_id)
    manifest = folder.manifest(run_id)
    profiles, profiles_problem = segment_profiles(run_dir)
    return render(
        request,
        "run.html",
        run=summarize(run_id, manifest),
        manifest=manifest,
        profiles=profiles,
        profiles_problem=profiles_problem,
        warnings=analysis_warnings(run_dir),
        downloads=downloads(run_dir, user),
        hooks=webhook_events(request, run_id, run_dir, bool(interim)),
    )


@router.get("/runs/{run_id}/files/{name}", response_model=None)
def download_artifact(
    request: Request, run_id: str, name: str, user: Annotated[User, Depends(current_user)]
) -> Response:
    """One artifact file of a run, as an attachment.

    Only names of :data:`cpo.run_folder.ARTIFACTS` files are served (anything else,
    ``..`` included, is 404); customer-level files need the marketer or admin role.
    """
    run_dir = manifest_run_dir(request, run_id)
    try:
        item = artifact(name)
    except KeyError:
        raise HTTPException(404, f"{name!r} is not a file of a run folder") from None
    path = item.path(run_dir)
    if item.name != name or name in NOT_DOWNLOADS or not path.is_file():
        raise HTTPException(404, f"run {run_id!r} has no file {name!r}")
    if not may_download(user, name):
        raise HTTPException(
            403,
            f"{name} holds one row per customer; only the "
            f"{' and '.join(CUSTOMER_DATA_ROLES)} roles may download it.",
        )
    return FileResponse(
        path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), filename=name
    )
