"""The admin's users page: list, add and remove users, change a role or reset a password,
and the ``require_distinct_approver`` setting.

Admins cannot remove or demote themselves here, so the app always keeps an admin
who can sign in (``cpo users`` on the server can still change anything).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from cpo.web.accounts import (
    AccountError,
    add_user,
    get_user_by_id,
    list_users,
    remove_user,
    set_password,
    set_role,
)
from cpo.web.auth import (
    DISTINCT_APPROVER_SETTING,
    User,
    csrf_protect,
    db,
    distinct_approver_required,
    flash,
    require_role,
)
from cpo.web.db import ROLES, set_setting
from cpo.web.templating import render

router = APIRouter(dependencies=[Depends(require_role("admin"))])
Admin = Annotated[User, Depends(require_role("admin"))]
CSRF = [Depends(csrf_protect)]


def users_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str = "",
    name: str = "",
    role: str = "marketer",
) -> Response:
    """The users page (with the add form's error and values when adding failed)."""
    return render(
        request,
        "users.html",
        status_code=status_code,
        accounts=list_users(db(request)),
        roles=ROLES,
        error=error,
        form={"name": name, "role": role},
        distinct_approver=distinct_approver_required(request),
    )


def back_to_users() -> Response:
    """Redirect to the users page after a change (POST, redirect, GET)."""
    return RedirectResponse("/users", status_code=303)


@router.get("/users", response_model=None)
def users_list(request: Request, admin: Admin) -> Response:
    """Every user with their role, and the forms to change them."""
    return users_page(request)


@router.post("/users", dependencies=CSRF, response_model=None)
def users_add(
    request: Request,
    admin: Admin,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Add a user; a bad name, role or password shows the form again with the reason."""
    if password != password_again:
        return users_page(
            request, status_code=400, error="The two passwords differ.", name=name, role=role
        )
    try:
        account = add_user(db(request), name, role, password)
    except AccountError as exc:
        return users_page(request, status_code=400, error=str(exc), name=name, role=role)
    flash(request, f"Added {account.name} ({account.role}).", "success")
    return back_to_users()


@router.post("/users/{user_id}/role", dependencies=CSRF, response_model=None)
def users_role(
    request: Request, user_id: int, admin: Admin, role: Annotated[str, Form()] = ""
) -> Response:
    """Change a user's role (not your own)."""
    account = get_user_by_id(db(request), user_id)
    if account.id == admin.id:
        flash(request, "You cannot change your own role; ask another admin.", "error")
        return back_to_users()
    set_role(db(request), account.name, role)
    flash(request, f"{account.name} is now a {role}.", "success")
    return back_to_users()


@router.post("/users/{user_id}/password", dependencies=CSRF, response_model=None)
def users_password(
    request: Request,
    user_id: int,
    admin: Admin,
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Set a new password for a user (their sessions end)."""
    account = get_user_by_id(db(request), user_id)
    if password != password_again:
        flash(
            request, f"Password of {account.name} not changed: the two passwords differ.", "error"
        )
        return back_to_users()
    try:
        set_password(db(request), account.name, password)
    except AccountError as exc:
        flash(request, f"Password of {account.name} not changed: {exc}", "error")
        return back_to_users()
    if account.id == admin.id:
        return RedirectResponse("/login", status_code=303)  # your own session just ended
    flash(request, f"Password of {account.name} changed; they are signed out.", "success")
    return back_to_users()


@router.post("/users/{user_id}/remove", dependencies=CSRF, response_model=None)
def users_remove(request: Request, user_id: int, admin: Admin) -> Response:
    """Remove a user (not yourself); their sessions end."""
    account = get_user_by_id(db(request), user_id)
    if account.id == admin.id:
        flash(request, "You cannot remove yourself; ask another admin.", "error")
        return back_to_users()
    remove_user(db(request), account.name)
    flash(request, f"Removed {account.name}.", "success")
    return back_to_users()


@router.post("/users/settings", dependencies=CSRF, response_model=None)
def users_settings(
    request: Request, admin: Admin, require_distinct_approver: Annotated[str, Form()] = ""
) -> Response:
    """Store whether whoever started a run may approve its variants."""
    required = require_distinct_approver == "on"
    set_setting(db(request), DISTINCT_APPROVER_SETTING, str(required).lower())
    rule = "may not" if required else "may"
    flash(request, f"Saved: whoever started a run {rule} approve its variants.", "success")
    return back_to_users()
