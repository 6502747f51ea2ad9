"""Rendering pages: one Jinja2 environment (autoescape on) over ``cpo/web/templates``.

Every page extends ``base.html`` (navigation, the signed-in user, flash messages,
blocks ``title`` and ``content``) and gets ``user``, ``csrf_token`` and
``flashes`` in its context besides what the route passes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cpo.web.auth import LOGIN_CSRF_COOKIE, csrf_token, optional_user, pop_flashes

TEMPLATES_DIR = Path(__file__).parent / "templates"


def format_time(value: object) -> str:
    """An ISO timestamp or Unix time as ``YYYY-MM-DD HH:MM UTC`` (``""`` for none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_seconds(value: object) -> str:
    """A duration in seconds for a person: ``0.4 s``, ``12 s``, ``3 min 5 s``."""
    if not isinstance(value, int | float):
        return ""
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The app's templates (autoescape on for every template, whatever its extension)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = format_time
    env.filters["seconds"] = format_seconds
    return Jinja2Templates(env=env)


def render(
    request: Request,
    template_name: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template_name`` as the response to ``request``.

    Args:
        request: The request (its user, CSRF token and flash messages go in the context).
        template_name: File under ``cpo/web/templates``.
        status_code: HTTP status of the page.
        headers: Extra response headers (e.g. ``security_headers(csp=...)``).
        **context: The template's variables.
    """
    base = {
        "user": optional_user(request),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
    }
    response = templates().TemplateResponse(
        request, template_name, {**base, **context}, status_code=status_code, headers=headers
    )
    new_token = getattr(request.state, "new_login_csrf", None)
    if new_token:
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            new_token,
            httponly=True,
            samesite="strict",
            secure=bool(request.app.state.secure_cookies),
            path="/",
        )
    return response
