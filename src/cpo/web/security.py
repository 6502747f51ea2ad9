"""Security headers on every response, and the login rate limit.

Every response gets :data:`DEFAULT_CSP` and the other headers of
:func:`security_headers` unless the route set its own ``Content-Security-Policy``
(a page that needs a different policy, such as a served report with its inline
styles, passes ``security_headers(csp=...)`` as its response headers).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: The app's Content-Security-Policy: nothing inline, nothing from another origin.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

#: Failed logins per (user name, client) within :data:`RATE_WINDOW_S` before 429.
MAX_FAILURES_PER_USER = 5
#: Failed logins per client (any user names) within the window before 429.
MAX_FAILURES_PER_CLIENT = 20
#: The rate limit's window in seconds (15 minutes).
RATE_WINDOW_S = 15 * 60

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def security_headers(csp: str | None = None) -> dict[str, str]:
    """The security headers of a response.

    Args:
        csp: A Content-Security-Policy to use instead of :data:`DEFAULT_CSP`.
    """
    return {
        "Content-Security-Policy": csp or DEFAULT_CSP,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


class SecurityHeadersMiddleware:
    """ASGI middleware adding :func:`security_headers` (and no-store caching) to responses.

    A header the route already set is kept, so a route can loosen or tighten its
    own CSP. Pages are personal and may hold customer data: they are never cached
    (``Cache-Control: no-store``), static files may be.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = security_headers()
                if not is_static:
                    extra["Cache-Control"] = "no-store"
                for name, value in extra.items():
                    if name.lower().encode("latin-1") not in present:
                        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def login_blocked(conn: sqlite3.Connection, name: str, client: str) -> bool:
    """True when this user name or this client failed too often in the window."""
    since = time.time() - RATE_WINDOW_S
    per_user = conn.execute(
        "SELECT COUNT(*) FROM login_failures WHERE name = ? AND client = ? AND failed_at > ?",
        (name.strip().casefold(), client, since),
    ).fetchone()[0]
    per_client = conn.execute(
        "SELECT COUNT(*) FROM login_failures WHERE client = ? AND failed_at > ?", (client, since)
    ).fetchone()[0]
    return bool(per_user >= MAX_FAILURES_PER_USER or per_client >= MAX_FAILURES_PER_CLIENT)


def record_failure(conn: sqlite3.Connection, name: str, client: str) -> None:
    """Count one failed login (and forget failures older than the window)."""
    now = time.time()
    conn.execute("DELETE FROM login_failures WHERE failed_at <= ?", (now - RATE_WINDOW_S,))
    conn.execute(
        "INSERT INTO login_failures (name, client, failed_at) VALUES (?, ?, ?)",
        (name.strip().casefold(), client, now),
    )


def clear_failures(conn: sqlite3.Connection, name: str, client: str) -> None:
    """Forget this user name's failures from this client after a good login."""
    conn.execute(
        "DELETE FROM login_failures WHERE name = ? AND client = ?",
        (name.strip().casefold(), client),
    )
