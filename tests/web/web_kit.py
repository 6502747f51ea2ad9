"""Helpers of the web app's tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

#: The run folder's name inside every test's runs directory.
RUN_ID = "demo"
#: One user per role: role -> (name, password).
USERS = {
    "marketer": ("maria", "marketer-pass-1"),
    "reviewer": ("rafael", "reviewer-pass-1"),
    "admin": ("ada", "admin-pass-123"),
}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str) -> None:
    """Sign ``client`` in through the login form, as a browser does."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def run_worker_until_idle(app: Any, timeout: float = 240) -> None:
    """Start the app's background worker, wait until its queue is done, stop it."""
    worker = app.state.worker
    worker.poll_s = 0.2
    worker.start()
    try:
        assert worker.wait_idle(timeout=timeout), "the worker did not finish its jobs"
    finally:
        worker.stop()
