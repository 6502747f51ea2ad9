"""Sign-in, sessions, roles and CSRF, over HTTP with FastAPI's TestClient."""

from __future__ import annotations

import sqlite3
import time

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cpo.web.app import create_app
from cpo.web.auth import SESSION_COOKIE, token_sha256
from cpo.web.db import DB_FILE

from .web_kit import RUN_ID, USERS, csrf_of, sign_in

#: Values for the path parameters of every route, to reach each one.
PATH_VALUES = {
    "run_id": RUN_ID,
    "variant_id": "control",
    "name": "manifest.json",
    "user_id": "1",
    "job_id": "1",
    "provider": "sendgrid",
}


def api_routes(routes) -> list[APIRoute]:
    """The API routes among ``routes``, looking inside included routers (FastAPI >= 0.16x
    keeps them as ``_IncludedRouter`` entries; the app includes them without a prefix)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(api_routes(route.original_router.routes))
    return found


def concrete_paths(app, method: str) -> list[str]:
    """Every route of ``app`` answering ``method``, with its parameters filled in."""
    paths = []
    for route in api_routes(app.routes):
        if method in route.methods:
            path = route.path
            for key, value in PATH_VALUES.items():
                path = path.replace("{" + key + "}", value)
            assert "{" not in path, f"no test value for a parameter of {route.path}"
            paths.append(path)
    return paths


def test_every_page_redirects_to_login_and_every_api_route_answers_401(app) -> None:
    """Without a session no GET route shows anything: pages go to /login, /api/ gets 401."""
    client = TestClient(app)
    paths = [p for p in concrete_paths(app, "GET") if p != "/login"]
    assert "/runs" in paths and "/users" in paths and f"/runs/{RUN_ID}/audit" in paths
    for path in paths:
        response = client.get(path, follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path


def test_every_post_without_session_is_refused(app) -> None:
    """No POST route (except the login form itself) acts without a session."""
    client = TestClient(app)
    for path in concrete_paths(app, "POST"):
        if path == "/login":
            continue
        response = client.post(path, data={"csrf_token": "x"}, follow_redirects=False)
        if path.startswith("/hooks/"):  # machines call webhooks: a signature, not a session
            assert response.status_code in (401, 503), path
            continue
        assert response.status_code in (303, 401, 403), path
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login"), path


def test_login_goes_to_the_page_asked_for_and_sets_a_safe_cookie(anonymous) -> None:
    """The redirect keeps the page asked for; the cookie is HttpOnly, SameSite=Lax, not Secure."""
    first = anonymous.get(f"/runs/{RUN_ID}", follow_redirects=False)
    login_page = anonymous.get(first.headers["location"])
    assert f'name="next" value="/runs/{RUN_ID}"' in login_page.text
    name, password = USERS["reviewer"]
    response = anonymous.post(
        "/login",
        data={
            "name": name,
            "password": password,
            "csrf_token": csrf_of(login_page.text),
            "next": f"/runs/{RUN_ID}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/runs/{RUN_ID}"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert anonymous.get(f"/runs/{RUN_ID}").status_code == 200


def test_secure_cookies_flag_marks_the_session_cookie_secure(runs_dir) -> None:
    """Behind TLS (--secure-cookies) the session cookie is Secure."""
    client = TestClient(create_app(runs_dir, secure_cookies=True), base_url="https://testserver")
    token = csrf_of(client.get("/login").text)
    name, password = USERS["marketer"]
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "Secure" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize(
    ("name", "password"),
    [("maria", "wrong-password"), ("nobody", "marketer-pass-1"), ("", "")],
)
def test_bad_credentials_get_one_message_and_no_session(anonymous, name, password) -> None:
    """A wrong password and an unknown user look the same; no session is started."""
    token = csrf_of(anonymous.get("/login").text)
    response = anonymous.post(
        "/login", data={"name": name, "password": password, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert SESSION_COOKIE not in anonymous.cookies
    assert 'type="password" autocomplete="current-password" required>' in response.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(anonymous, target) -> None:
    """A ``next`` that is not a path of this app goes to the runs list instead."""
    token = csrf_of(anonymous.get("/login").text)
    name, password = USERS["admin"]
    response = anonymous.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": target},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/runs"


def test_sessions_are_stored_hashed_and_logout_deletes_them(client_for, runs_dir) -> None:
    """The database holds the token's sha256 only; after logout the old cookie is worthless."""
    client = client_for("marketer")
    token = client.cookies[SESSION_COOKIE]
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        stored = [row[0] for row in conn.execute("SELECT token_sha256 FROM sessions")]
    assert stored == [token_sha256(token)]
    response = client.post(
        "/logout", data={"csrf_token": csrf_of(client.get("/runs").text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    replay = TestClient(client.app, cookies={SESSION_COOKIE: token})
    assert replay.get("/runs", follow_redirects=False).status_code == 303


def test_an_expired_session_sends_back_to_login(client_for, runs_dir) -> None:
    """A session past its expiry no longer signs anyone in."""
    client = client_for("reviewer")
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        conn.execute("UPDATE sessions SET expires_at = ?", (time.time() - 1,))
    response = client.get("/runs", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    client_for("admin")  # the next sign-in clears expired sessions away
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_removing_a_user_ends_their_session(client_for, runs_dir) -> None:
    """Sessions belong to the user: removing the user signs them out at once."""
    client = client_for("marketer")
    with sqlite3.connect(runs_dir / DB_FILE) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM users WHERE name = ?", (USERS["marketer"][0],))
    assert client.get("/runs", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("reviewer", "/users", 403),
        ("marketer", "/users", 403),
        ("admin", "/users", 200),
        ("reviewer", f"/runs/{RUN_ID}/files/sends.csv", 403),
        ("reviewer", f"/runs/{RUN_ID}/files/assignments.csv", 403),
        ("marketer", f"/runs/{RUN_ID}/files/sends.csv", 200),
        ("reviewer", f"/runs/{RUN_ID}/files/metrics.json", 200),
        ("marketer", f"/runs/{RUN_ID}/audit", 200),
    ],
)
def test_roles(client_for, role, path, status) -> None:
    """Only admins manage users; customer-level files are for marketers and admins."""
    response = client_for(role).get(path)
    assert response.status_code == status
    if status == 403:
        assert "Not allowed" in response.text


def test_a_reviewer_cannot_post_to_the_users_page(client_for) -> None:
    """The role check holds for form posts too, even with a valid CSRF token."""
    client = client_for("reviewer")
    token = csrf_of(client.get("/runs").text)
    response = client.post(
        "/users",
        data={"csrf_token": token, "name": "zz-mallory", "role": "admin", "password": "x" * 12},
    )
    assert response.status_code == 403
    admin = client_for("admin")
    assert "zz-mallory" not in admin.get("/users").text


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_posts_without_the_right_csrf_token_are_refused(client_for, token) -> None:
    """Logout and the users form refuse a missing or wrong token (403) and change nothing."""
    client = client_for("admin")
    data = {} if token is None else {"csrf_token": token}
    assert client.post("/logout", data=data).status_code == 403
    added = client.post(
        "/users",
        data={
            **data,
            "name": "zz-intruder",
            "role": "admin",
            "password": "p" * 10,
            "password_again": "p" * 10,
        },
    )
    assert added.status_code == 403
    assert "security token" in added.text
    page = client.get("/users")
    assert page.status_code == 200 and "zz-intruder" not in page.text


def test_a_session_token_of_another_session_is_refused(client_for) -> None:
    """The CSRF token is per session: one user's token does not work in another's session."""
    marketer, admin = client_for("marketer"), client_for("admin")
    foreign = csrf_of(marketer.get("/runs").text)
    assert admin.post("/logout", data={"csrf_token": foreign}).status_code == 403


def test_the_login_form_needs_its_own_token(anonymous) -> None:
    """Login CSRF: a login post without the token of the login page's cookie is refused."""
    name, password = USERS["admin"]
    response = anonymous.post("/login", data={"name": name, "password": password})
    assert response.status_code == 403
    token = csrf_of(anonymous.get("/login").text)
    stranger = TestClient(anonymous.app)
    response = stranger.post(
        "/login", data={"name": name, "password": password, "csrf_token": token}
    )
    assert response.status_code == 403


def approver_rule_checked(runs_dir, **options) -> bool:
    """Whether the admin's users page shows the four-eyes rule on, for an app made with options."""
    client = TestClient(create_app(runs_dir, **options))
    sign_in(client, *USERS["admin"])
    checkbox = client.get("/users").text.split('id="distinct-approver"')[1].split(">")[0]
    return "checked" in checkbox


def test_distinct_approver_setting(runs_dir, client_for) -> None:
    """Off by default; ``cpo serve --require-distinct-approver`` stores it; the admin's form too."""
    assert approver_rule_checked(runs_dir) is False
    assert approver_rule_checked(runs_dir, require_distinct_approver=True) is True
    assert approver_rule_checked(runs_dir) is True  # stored, kept without the flag
    assert approver_rule_checked(runs_dir, require_distinct_approver=False) is False
    admin = client_for("admin")
    token = csrf_of(admin.get("/users").text)
    saved = admin.post(
        "/users/settings", data={"csrf_token": token, "require_distinct_approver": "on"}
    )
    assert "may not approve" in saved.text
    assert approver_rule_checked(runs_dir) is True


def test_sign_in_helper_works_for_every_role(app) -> None:
    """Each fixture user can sign in and sees their role in the page header."""
    for role, (name, password) in USERS.items():
        client = TestClient(app)
        sign_in(client, name, password)
        page = client.get("/runs").text
        assert f'<span class="role role-{role}">{role}</span>' in page and name in page
