"""The composition root of the web app: :func:`create_app`.

Each page area is a module ``cpo.web.routes.<area>`` exposing ``router``; the
app includes every module named in :data:`ROUTERS`, in order.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cpo import __version__
from cpo.errors import CpoError
from cpo.web.auth import DISTINCT_APPROVER_SETTING, LoginRequired, database
from cpo.web.db import connect, set_setting
from cpo.web.jobs import Worker
from cpo.web.runs import RunNotFound
from cpo.web.security import Message, Receive, Scope, SecurityHeadersMiddleware, Send
from cpo.web.templating import render
from cpo.web.uploads import DEFAULT_MAX_UPLOAD_MB

#: The page-area modules whose ``router`` the app includes, in order.
ROUTERS: list[str] = [
    "cpo.web.routes.login",
    "cpo.web.routes.new_run",  # before runs: /runs/new is not a run id
    "cpo.web.routes.runs",
    "cpo.web.routes.progress",
    "cpo.web.routes.report",
    "cpo.web.routes.variants",
    "cpo.web.routes.review",
    "cpo.web.routes.engagement",
    "cpo.web.routes.audit",
    "cpo.web.routes.users",
    "cpo.web.routes.hooks",  # email service webhooks: signed, no login
]

STATIC_DIR = Path(__file__).parent / "static"
#: How long a session lasts (seconds) unless create_app is told otherwise: 12 hours.
DEFAULT_SESSION_SECONDS = 12 * 3600


def create_app(
    runs_dir: Path,
    *,
    secure_cookies: bool = False,
    require_distinct_approver: bool | None = None,
    session_seconds: int = DEFAULT_SESSION_SECONDS,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_parallel_runs: int = 2,
) -> FastAPI:
    """Build the web app over the run folders in ``runs_dir``.

    Args:
        runs_dir: One folder per run, and the app database ``cpo_web.sqlite``.
        secure_cookies: Mark cookies Secure (serve behind TLS).
        require_distinct_approver: When given, store it as the app setting (whoever
            started a run may not approve its variants); ``None`` keeps the stored one.
        session_seconds: How long a login lasts.
        max_upload_mb: Largest upload (customer file, content zip, engagement file).
        max_parallel_runs: Most runs the background worker executes at once.

    Raises:
        WebDatabaseError: the app database cannot be opened or migrated.
    """
    runs_dir = Path(runs_dir)
    with database(runs_dir) as conn:  # fail at start-up, not on the first request
        if require_distinct_approver is not None:
            set_setting(conn, DISTINCT_APPROVER_SETTING, str(require_distinct_approver).lower())
    app = FastAPI(
        title="cpo",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_run_worker,
    )
    app.state.worker = Worker(runs_dir, connect, max_parallel=max_parallel_runs)
    app.state.max_upload_mb = max_upload_mb
    app.state.runs_dir = runs_dir
    app.state.secure_cookies = secure_cookies
    app.state.require_distinct_approver = False
    app.state.session_seconds = session_seconds
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module_name in ROUTERS:
        app.include_router(importlib.import_module(module_name).router)
    _add_exception_handlers(app)
    app.add_middleware(CloseDatabaseMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


@asynccontextmanager
async def _run_worker(app: FastAPI) -> AsyncIterator[None]:
    """Run the background worker while the server runs (it reconciles jobs first)."""
    app.state.worker.start()
    try:
        yield
    finally:
        app.state.worker.stop()


def is_api(request: Request) -> bool:
    """True for ``/api/`` routes (JSON answers, 401 instead of a login redirect)."""
    return request.url.path.startswith("/api/")


def _add_exception_handlers(app: FastAPI) -> None:
    """Errors become the error page (or JSON on /api/), never a traceback."""

    async def login_required(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_page(request, exc.status_code, str(exc.detail), headers=exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CpoError)
        return error_page(request, 404, exc.message, hint=exc.hint)

    async def cpo_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CpoError)
        return error_page(request, 400, exc.message, hint=exc.hint)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        missing = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        return error_page(
            request, 400, f"The request is missing or has bad values: {', '.join(missing)}."
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RunNotFound, not_found)
    app.add_exception_handler(CpoError, cpo_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def error_page(
    request: Request,
    status_code: int,
    message: str,
    *,
    hint: str | None = None,
    headers: Any = None,
) -> Response:
    """The error page (JSON ``{"detail": ...}`` on /api/ routes) with ``status_code``."""
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status_code, headers=headers)
    return render(
        request,
        "error.html",
        status_code=status_code,
        headers=dict(headers) if headers else None,
        status=status_code,
        message=message,
        hint=hint,
    )


def _quote(target: str) -> str:
    """``target`` quoted for a query string."""
    from urllib.parse import quote

    return quote(target, safe="/")


class CloseDatabaseMiddleware:
    """Closes the request's database connection (see :func:`cpo.web.auth.db`) after it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, then close the connection the request opened, if any."""
        try:
            await self.app(scope, receive, send)
        finally:
            state = scope.get("state") or {}
            conn = state.get("db") if isinstance(state, dict) else None
            if conn is not None:
                conn.close()


__all__ = ["ROUTERS", "Message", "create_app", "error_page", "is_api"]
