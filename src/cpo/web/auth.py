"""Logging in: sessions, roles and CSRF tokens.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure when the
app runs behind TLS: ``cpo serve --secure-cookies``); the database keeps only the
token's sha256, the user and an expiry, so a stolen database holds no live
session. Each session has its own CSRF token, which every form posts back as
``csrf_token`` and :func:`csrf_protect` checks. Before login, the login form's
token is a random value in its own cookie (double submit).

Roles: ``marketer`` (start runs, upload data, read reports), ``reviewer``
(approve or reject, read everything), ``admin`` (everything, and manage users).
An admin passes every :func:`require_role` check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from cpo.web.db import connect, get_setting, open_db

if TYPE_CHECKING:
    from starlette.responses import Response

#: The session cookie's name.
SESSION_COOKIE = "cpo_session"
#: The cookie holding the login form's CSRF token (before there is a session).
LOGIN_CSRF_COOKIE = "cpo_login_csrf"
#: The settings row (``"true"``/``"false"``) for ``require_distinct_approver``.
DISTINCT_APPROVER_SETTING = "require_distinct_approver"


@dataclass(frozen=True)
class User:
    """The logged-in user.

    Attributes:
        id: Database id.
        name: Login name (shown in the page and recorded in the audit by approvals).
        role: ``marketer``, ``reviewer`` or ``admin``.
    """

    id: int
    name: str
    role: str


#: ``with database(runs_dir) as conn:``, a connection outside a request, closed after.
database = open_db


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, API routes answer 401."""


def token_sha256(token: str) -> str:
    """The digest under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def runs_dir(request: Request) -> Path:
    """The runs directory the app serves."""
    return Path(request.app.state.runs_dir)


def db(request: Request) -> sqlite3.Connection:
    """This request's database connection (opened once, closed after the response)."""
    conn: sqlite3.Connection | None = getattr(request.state, "db", None)
    if conn is None:
        conn = connect(runs_dir(request))
        request.state.db = conn
    return conn


def start_session(request: Request, response: Response, user_id: int) -> None:
    """Create a session for ``user_id`` and set its cookie on ``response``."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    lifetime = float(request.app.state.session_seconds)
    db(request).execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))  # housekeeping
    db(request).execute(
        "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (token_sha256(token), user_id, secrets.token_urlsafe(32), now, now + lifetime),
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime),
        httponly=True,
        samesite="lax",
        secure=bool(request.app.state.secure_cookies),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def end_session(request: Request, response: Response) -> None:
    """Delete the request's session from the database and its cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        db(request).execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256(token),))
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=bool(request.app.state.secure_cookies),
    )


def optional_user(request: Request) -> User | None:
    """The logged-in user, or ``None`` without a valid session (never raises)."""
    if hasattr(request.state, "user"):
        user: User | None = request.state.user
        return user
    found = _session_row(request)
    request.state.user = None
    if found is not None:
        request.state.user = User(found["user_id"], found["name"], found["role"])
        request.state.session_sha256 = found["token_sha256"]
        request.state.session_csrf = found["csrf_token"]
    return request.state.user


def _session_row(request: Request) -> sqlite3.Row | None:
    """The unexpired session of the request's cookie, joined with its user."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    row: sqlite3.Row | None = (
        db(request)
        .execute(
            "SELECT s.token_sha256, s.csrf_token, s.user_id, u.name, u.role FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_sha256 = ? AND s.expires_at > ?",
            (token_sha256(token), time.time()),
        )
        .fetchone()
    )
    return row


def current_user(request: Request) -> User:
    """FastAPI dependency: the logged-in user.

    Raises:
        LoginRequired: no valid session (the app redirects pages to /login and
            answers 401 on ``/api/`` routes).
    """
    user = optional_user(request)
    if user is None:
        raise LoginRequired()
    return user


def require_role(*roles: str) -> Callable[[Request], User]:
    """A dependency allowing only users with one of ``roles`` (admins always pass).

    Returns:
        The dependency; it returns the user, raises LoginRequired without a session
        and a 403 for any other role.
    """

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user.role != "admin" and user.role not in roles:
            raise HTTPException(
                status_code=403,
                detail=f"This page is for the {' or '.join(roles)} role; you are signed in as "
                f"a {user.role}. Ask an admin if you need access.",
            )
        return user

    return dependency


def csrf_token(request: Request) -> str:
    """The CSRF token a form on this page must post back as ``csrf_token``.

    The session's token when logged in; before login, the login cookie's token
    (a new one is made, and set as a cookie by the page render, when there is none).
    """
    if optional_user(request) is not None:
        return str(request.state.session_csrf)
    existing = request.cookies.get(LOGIN_CSRF_COOKIE) or getattr(
        request.state, "new_login_csrf", None
    )
    if existing:
        return str(existing)
    request.state.new_login_csrf = secrets.token_urlsafe(32)
    return str(request.state.new_login_csrf)


async def csrf_protect(request: Request) -> None:
    """FastAPI dependency refusing (403) a POST whose ``csrf_token`` is missing or wrong.

    The token comes from the form field ``csrf_token`` or the ``X-CSRF-Token`` header.
    """
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value: Any = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if optional_user(request) is not None:
        expected = str(request.state.session_csrf)
    else:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(
            status_code=403,
            detail="The form's security token is missing or out of date. "
            "Reload the page and submit it again.",
        )


def distinct_approver_required(request: Request) -> bool:
    """True when whoever started a run may not approve its variants.

    On when ``cpo serve --require-distinct-approver`` started the app or the
    ``require_distinct_approver`` setting is ``"true"``.
    """
    if request.app.state.require_distinct_approver:
        return True
    return get_setting(db(request), DISTINCT_APPROVER_SETTING) == "true"


def flash(request: Request, message: str, category: str = "info") -> None:
    """Show ``message`` on the next page this session renders."""
    if optional_user(request) is None:
        return
    db(request).execute(
        "INSERT INTO flash_messages (token_sha256, category, message) VALUES (?, ?, ?)",
        (request.state.session_sha256, category, message),
    )


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    """The session's pending flash messages as ``(category, message)``, removed."""
    if optional_user(request) is None:
        return []
    conn = db(request)
    rows = conn.execute(
        "SELECT id, category, message FROM flash_messages WHERE token_sha256 = ? ORDER BY id",
        (request.state.session_sha256,),
    ).fetchall()
    if rows:
        conn.execute(
            f"DELETE FROM flash_messages WHERE id IN ({','.join('?' * len(rows))})",
            [row["id"] for row in rows],
        )
    return [(row["category"], row["message"]) for row in rows]
