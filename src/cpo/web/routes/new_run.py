"""Starting a run: ``GET/POST /runs/new``.

The form takes a customer file (CSV or Parquet) or the bundled sample, a
content folder as a zip or the bundled sample content, and a saved config
folder (``RUNS_DIR/configs/NAME``) or the packaged defaults. Everything is
checked before anything starts: the upload's size, the zip's entries, the
config, the content and the customer file (with the same library code
``cpo run`` uses, so the page shows the same message, line numbers and fix).
The run itself is a job for the background worker, never run in the request.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from cpo.errors import CpoError, DataValidationError
from cpo.web.auth import User, csrf_protect, db, require_role, runs_dir
from cpo.web.jobs import KIND_RUN, enqueue, run_args
from cpo.web.runs import RUN_ID_PATTERN
from cpo.web.templating import render
from cpo.web.uploads import (
    UploadTooLarge,
    customer_file_name,
    extract_zip,
    limit_text,
    save_upload,
)
from cpo.web.workflow import (
    ZIP_MAX_ENTRIES,
    inputs_dir,
    max_upload_bytes,
    refuse_oversized,
    worker,
)

router = APIRouter()

#: The folder of saved config folders under the runs directory.
CONFIGS_DIR = "configs"
DEFAULT_CONFIG = "default"
ON_INVALID_CHOICES = ("error", "skip")
#: Starting runs is for marketers (and admins).
Marketer = Annotated[User, Depends(require_role("marketer"))]


def saved_configs(folder: Path) -> list[str]:
    """The names of the saved config folders (``RUNS_DIR/configs/*``), sorted."""
    configs = folder / CONFIGS_DIR
    if not configs.is_dir():
        return []
    return sorted(
        entry.name
        for entry in configs.iterdir()
        if entry.is_dir() and RUN_ID_PATTERN.fullmatch(entry.name)
    )


def _check_size(request: Request) -> None:
    """Dependency: refuse (413) a body declared larger than the limit before reading it."""
    limit = max_upload_bytes(request)
    # two files, and the form's text fields ride along: allow a little room for them
    refuse_oversized(request, 2 * limit + 64 * 1024, "new run")


def _form_page(
    request: Request, *, status_code: int = 200, error: CpoError | None = None, **values: Any
) -> Response:
    return render(
        request,
        "new_run.html",
        status_code=status_code,
        configs=saved_configs(runs_dir(request)),
        limit=limit_text(max_upload_bytes(request)),
        error=error,
        values=values,
    )


@router.get("/runs/new", response_model=None)
def new_run_page(request: Request, user: Marketer) -> Response:
    """The new-run form."""
    return _form_page(request)


@dataclass(frozen=True)
class RunRequest:
    """What the new-run form asked for, checked."""

    run_id: str
    config: str
    on_invalid: str


@router.post("/runs/new", dependencies=[Depends(_check_size)], response_model=None)
async def start_run(
    request: Request,
    user: Marketer,
    _csrf: Annotated[None, Depends(csrf_protect)],
) -> Response:
    """Check the uploads and settings, then queue the run and go to its progress page."""
    form = await request.form()
    values = {key: form.get(key) for key in ("run_name", "config", "on_invalid")}
    staging: Path | None = None
    try:
        wanted = _run_request(request, form)
        staging = inputs_dir(request, wanted.run_id)
        options = await _prepare_inputs(request, form, wanted, staging)
        run_dir = runs_dir(request) / wanted.run_id
        run_dir.mkdir()
    except UploadTooLarge as exc:
        _discard(staging)
        return _form_page(request, status_code=413, error=exc, **values)
    except CpoError as exc:
        _discard(staging)
        return _form_page(request, status_code=422, error=exc, **values)
    except FileExistsError:
        _discard(staging)
        exists = DataValidationError(
            "a run with this name was just created", hint="choose another run name"
        )
        return _form_page(request, status_code=422, error=exists, **values)
    enqueue(db(request), wanted.run_id, KIND_RUN, run_args(run_dir, options), user.name)
    worker(request).wake()
    return RedirectResponse(f"/runs/{wanted.run_id}/progress", status_code=303)


def _discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def _run_request(request: Request, form: FormData) -> RunRequest:
    """The run name, config and invalid-row choice of the form, checked."""
    name = str(form.get("run_name") or "").strip()
    if not name:
        name = "run-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if not RUN_ID_PATTERN.fullmatch(name):
        raise DataValidationError(
            f"run name {name!r} cannot be a folder name",
            hint="use letters, digits, '.', '_' and '-' (starting with a letter or digit)",
        )
    if (runs_dir(request) / name).exists() or inputs_dir(request, name).exists():
        raise DataValidationError(
            f"a run named {name!r} already exists", hint="choose another run name"
        )
    config = str(form.get("config") or DEFAULT_CONFIG)
    if config != DEFAULT_CONFIG and config not in saved_configs(runs_dir(request)):
        raise DataValidationError(
            f"config {config!r} is not a saved config folder",
            hint=f"choose one of the list; saved configs live in RUNS_DIR/{CONFIGS_DIR}/NAME",
        )
    on_invalid = str(form.get("on_invalid") or "error")
    if on_invalid not in ON_INVALID_CHOICES:
        raise DataValidationError(f"on_invalid {on_invalid!r} is not error or skip")
    return RunRequest(name, config, on_invalid)


async def _prepare_inputs(
    request: Request, form: FormData, wanted: RunRequest, staging: Path
) -> list[str]:
    """Save and check the uploads; return the ``cpo run`` options naming them."""
    from cpo.config import load_config

    limit = max_upload_bytes(request)
    config_dir = (
        runs_dir(request) / CONFIGS_DIR / wanted.config if wanted.config != DEFAULT_CONFIG else None
    )
    config = await run_in_threadpool(load_config, config_dir)
    options = ["--on-invalid", wanted.on_invalid]
    if config_dir is not None:
        options += ["--config", str(config_dir)]
    content = form.get("content_zip")
    if isinstance(content, UploadFile) and content.filename:
        archive = staging / "content.zip"
        await save_upload(content, archive, limit, "content zip")
        folder = extract_zip(
            archive, staging / "content", max_bytes=limit, max_entries=ZIP_MAX_ENTRIES
        )
        await run_in_threadpool(_check_content, folder)
        options += ["--content", str(folder)]
    customers = form.get("customers")
    if isinstance(customers, UploadFile) and customers.filename:
        path = staging / customer_file_name(customers.filename)
        await save_upload(customers, path, limit, f"customer file {customers.filename!r}")
        await run_in_threadpool(
            _check_customers, path, customers.filename, config, wanted.on_invalid
        )
        options += ["--customers", str(path)]
    return options


def _check_content(folder: Path) -> None:
    """Validate the content folder as the retrieve stage will (DataValidationError)."""
    from cpo.retrieval.content import load_content

    try:
        load_content(folder)
    except CpoError as exc:
        raise _renamed(exc, folder, "content zip") from None


def _check_customers(path: Path, shown_name: str, config: Any, on_invalid: str) -> None:
    """Validate the customer file as ``cpo run`` reads it (DataValidationError).

    The message names the uploaded file (not where the server keeps it) and
    keeps the reader's line numbers.
    """
    from cpo.customers import load_customers, merged_settings

    try:
        load_customers(path, on_invalid, merged_settings(config.experiment.customers))
    except CpoError as exc:
        raise _renamed(exc, path, shown_name) from None


def _renamed(exc: CpoError, path: Path, shown_name: str) -> DataValidationError:
    """The same error with the server's path replaced by the name the user knows."""
    return DataValidationError(exc.message.replace(str(path), shown_name), hint=exc.hint)
