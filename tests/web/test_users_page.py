"""The admin's users page: add, change role, reset password, remove."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .web_kit import USERS, csrf_of, sign_in


def user_id(page: str, name: str) -> str:
    """The id in the row of user ``name`` on the users page."""
    row = page.split(f'<th scope="row">{name}')[1]
    return row.split('action="/users/')[1].split("/")[0]


def test_an_admin_adds_a_user_who_can_then_sign_in(client_for, app) -> None:
    """The form adds the user with the role chosen; the new user signs in."""
    admin = client_for("admin")
    token = csrf_of(admin.get("/users").text)
    form = {"csrf_token": token, "name": "nadia", "role": "reviewer"}
    added = admin.post(
        "/users", data={**form, "password": "nadia-pass-1", "password_again": "nadia-pass-1"}
    )
    assert added.status_code == 200 and "Added nadia (reviewer)." in added.text
    newcomer = TestClient(app)
    sign_in(newcomer, "nadia", "nadia-pass-1")
    assert 'role-reviewer">reviewer' in newcomer.get("/runs").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": "x", "role": "admin", "password": "short", "password_again": "short"},
            "only 5 characters",
        ),
        (
            {
                "name": "x",
                "role": "admin",
                "password": "long-enough",
                "password_again": "different1",
            },
            "The two passwords differ.",
        ),
        (
            {
                "name": "maria",
                "role": "admin",
                "password": "long-enough",
                "password_again": "long-enough",
            },
            "already exists",
        ),
        (
            {
                "name": "x",
                "role": "owner",
                "password": "long-enough",
                "password_again": "long-enough",
            },
            "unknown",
        ),
    ],
)
def test_bad_additions_show_the_form_again_with_the_reason(client_for, fields, message) -> None:
    """400 with the reason in the page; the name typed is kept, the password is not."""
    admin = client_for("admin")
    token = csrf_of(admin.get("/users").text)
    response = admin.post("/users", data={"csrf_token": token, **fields})
    assert response.status_code == 400
    assert message in response.text
    assert f'value="{fields["name"]}"' in response.text
    assert fields["password"] not in response.text.split('id="add"')[1]


def test_role_change_password_reset_and_removal(client_for, app) -> None:
    """Each action takes effect at once; a reset password signs the user out."""
    admin = client_for("admin")
    marketer = client_for("marketer")
    page = admin.get("/users").text
    maria = user_id(page, USERS["marketer"][0])
    token = csrf_of(page)
    changed = admin.post(f"/users/{maria}/role", data={"csrf_token": token, "role": "reviewer"})
    assert "maria is now a reviewer." in changed.text
    assert 'role-reviewer">reviewer' in marketer.get("/runs").text
    reset = admin.post(
        f"/users/{maria}/password",
        data={"csrf_token": token, "password": "fresh-pass-9", "password_again": "fresh-pass-9"},
    )
    assert "Password of maria changed" in reset.text
    assert marketer.get("/runs", follow_redirects=False).status_code == 303
    sign_in(TestClient(app), "maria", "fresh-pass-9")
    removed = admin.post(f"/users/{maria}/remove", data={"csrf_token": token})
    assert "Removed maria." in removed.text and '<th scope="row">maria' not in removed.text


def test_an_admin_cannot_remove_or_demote_themselves(client_for) -> None:
    """So the app always keeps an admin who can sign in."""
    admin = client_for("admin")
    page = admin.get("/users").text
    own = user_id(page.replace(' <span class="small">(you)</span>', ""), USERS["admin"][0])
    token = csrf_of(page)
    refused = admin.post(f"/users/{own}/remove", data={"csrf_token": token})
    assert "You cannot remove yourself" in refused.text
    refused = admin.post(f"/users/{own}/role", data={"csrf_token": token, "role": "marketer"})
    assert "You cannot change your own role" in refused.text
    assert 'role-admin">admin' in admin.get("/users").text


def test_an_unknown_user_id_is_one_clear_error(client_for) -> None:
    """A stale form for a removed user says so instead of failing."""
    admin = client_for("admin")
    token = csrf_of(admin.get("/users").text)
    response = admin.post("/users/9999/remove", data={"csrf_token": token})
    assert response.status_code == 400 and "user #9999 does not exist" in response.text
