"""Signing in and out: ``GET/POST /login``, ``POST /logout``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from cpo.web.accounts import authenticate
from cpo.web.auth import csrf_protect, current_user, db, end_session, optional_user, start_session
from cpo.web.security import clear_failures, login_blocked, record_failure
from cpo.web.templating import render

router = APIRouter()

#: Where a successful login goes when the login form names no page.
HOME = "/runs"


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of this app, else :data:`HOME` (no open redirects)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(c in target for c in "\r\n\\")
    ):
        return HOME
    return target


def client_address(request: Request) -> str:
    """The client's address (the proxy's forwarded one when uvicorn trusts the proxy)."""
    return request.client.host if request.client else "unknown"


@router.get("/login", response_model=None)
def login_page(request: Request, next: str = "", logged_out: bool = False) -> Response:
    """The sign-in form (a signed-in user goes straight on)."""
    if optional_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "You have signed out." if logged_out else ""
    return render(request, "login.html", next=safe_next(next), notice=notice, error="", name="")


@router.post("/login", dependencies=[Depends(csrf_protect)], response_model=None)
def login(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the name and password; start a session and go on, or show the form again.

    Too many failures for this name from this client (or from this client at
    all) within the window answer 429 without checking the password.
    """
    conn, client = db(request), client_address(request)
    if login_blocked(conn, name, client):
        return _form_again(
            request,
            429,
            name,
            next,
            "Too many failed sign-ins. Wait 15 minutes and try again, or ask an admin "
            "to reset your password.",
        )
    account = authenticate(conn, name, password)
    if account is None:
        record_failure(conn, name, client)
        return _form_again(request, 401, name, next, "Wrong user name or password.")
    clear_failures(conn, name, client)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(request, response, account.id)
    return response


def _form_again(request: Request, status: int, name: str, next: str, error: str) -> Response:
    """The login form with an error (the name kept, never the password)."""
    return render(
        request,
        "login.html",
        status_code=status,
        next=safe_next(next),
        notice="",
        error=error,
        name=name,
    )


@router.post(
    "/logout", dependencies=[Depends(current_user), Depends(csrf_protect)], response_model=None
)
def logout(request: Request) -> Response:
    """End the session (deleted from the database) and go to the login page."""
    response = RedirectResponse("/login?logged_out=1", status_code=303)
    end_session(request, response)
    return response
