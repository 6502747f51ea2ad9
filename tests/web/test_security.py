"""Security headers, the login rate limit, escaping, and no inline scripts in any template."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from cpo.run_folder import SEGMENT_PROFILES
from cpo.web import accounts
from cpo.web.app import create_app
from cpo.web.db import DB_FILE
from cpo.web.security import (
    DEFAULT_CSP,
    MAX_FAILURES_PER_USER,
    RATE_WINDOW_S,
    SecurityHeadersMiddleware,
    security_headers,
)
from cpo.web.templating import TEMPLATES_DIR

from .web_kit import RUN_ID, USERS, csrf_of

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def assert_security_headers(response) -> None:
    """The CSP, frame denial, no sniffing and the referrer policy are all there."""
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize(
    "path", ["/login", "/runs", f"/runs/{RUN_ID}", "/nowhere", "/static/cpo.css", "/users"]
)
def test_every_response_has_the_security_headers(client_for, path) -> None:
    """Pages, errors and static files alike; pages are never cached."""
    response = client_for("reviewer").get(path)
    assert_security_headers(response)
    if not path.startswith("/static/"):
        assert response.headers["cache-control"] == "no-store"


def test_redirects_and_401s_have_them_too(anonymous) -> None:
    """Even the login redirect carries the headers."""
    assert_security_headers(anonymous.get("/runs", follow_redirects=False))


def test_a_route_can_set_its_own_csp() -> None:
    """A response that sets its own CSP keeps it; the other headers are still added."""
    assert DEFAULT_CSP == EXPECTED_CSP
    own = security_headers(csp="default-src 'none'; style-src 'unsafe-inline'")
    inner = FastAPI()

    @inner.get("/page")
    def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>", headers=own)

    response = TestClient(SecurityHeadersMiddleware(inner)).get("/page")
    assert response.headers["content-security-policy"] == own["Content-Security-Policy"]
    assert response.headers["x-frame-options"] == "DENY"


def failed_login(client: TestClient, name: str, password: str = "not-the-password"):
    """Post one login attempt through the form."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def test_login_is_rate_limited_per_user_and_client(app, runs_dir) -> None:
    """After 5 failures the right password is refused too (429), counted in the database."""
    name, password = USERS["marketer"]
    client = TestClient(app)
    for _ in range(MAX_FAILURES_PER_USER):
        assert failed_login(client, name).status_code == 401
    blocked = failed_login(client, name, password)
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    # The count lives in the database: a restarted app still refuses.
    assert failed_login(TestClient(create_app(runs_dir)), name, password).status_code == 429
    # Another user from the same client is not locked out by these failures.
    other_name, other_password = USERS["reviewer"]
    ok = failed_login(TestClient(app), other_name, other_password)
    assert ok.status_code == 200 and "Sign out" in ok.text
    # Once the failures are older than the window, the user may sign in again.
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        conn.execute("UPDATE login_failures SET failed_at = ?", (time.time() - RATE_WINDOW_S - 1,))
    assert "Sign out" in failed_login(TestClient(app), name, password).text


def test_unknown_users_cost_a_password_check(monkeypatch, runs_dir) -> None:
    """An unknown name still runs argon2 (against a dummy hash), so timing hides who exists."""
    checked: list[str] = []
    real = accounts.hasher()

    class SpyHasher:
        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return real.verify(stored, password)

        def __getattr__(self, name: str):
            return getattr(real, name)

    monkeypatch.setattr(accounts, "hasher", SpyHasher)
    failed_login(TestClient(create_app(runs_dir)), "no-such-user")
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")


def test_page_text_from_run_files_is_escaped(client_for, run_dir: Path) -> None:
    """A segment name and definition with markup are shown as text, never run."""
    path = SEGMENT_PROFILES.path(run_dir)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["segments"][0]["name"] = "<script>alert('x')</script>"
    document["segments"][0]["definition"] = '<img src=x onerror="alert(1)">'
    path.write_text(json.dumps(document), encoding="utf-8")
    page = client_for("reviewer").get(f"/runs/{RUN_ID}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_the_login_form_escapes_the_name_typed(anonymous) -> None:
    """A name with markup comes back escaped in the form after a failure."""
    page = failed_login(anonymous, '"><script>alert(1)</script>').text
    assert "<script>alert(1)</script>" not in page
    assert "&#34;&gt;&lt;script&gt;" in page


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style|\sstyle\s*=", re.IGNORECASE)
REMOTE = re.compile(r"""(src|href)\s*=\s*["'](https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES_DIR.glob("*.html")), ids=str)
def test_templates_have_no_inline_script_style_or_remote_asset(template) -> None:
    """The CSP forbids inline scripts and styles: no template may need them, or a CDN."""
    text = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    assert not INLINE_SCRIPT.search(text), "inline <script>"
    assert not INLINE_HANDLER.search(text), "inline event handler"
    assert not INLINE_STYLE.search(text), "inline style"
    assert not REMOTE.search(text), "asset from another origin"
