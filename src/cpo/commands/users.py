"""``cpo users add|list|remove|passwd``: the web app's accounts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.web.db import ROLES
from cpo.web.extra import require_web_extra

RUNS_OPTION = click.option(
    "--runs",
    "runs_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs"),
    show_default=True,
    help="The runs directory `cpo serve` serves (its cpo_web.sqlite holds the users).",
)
PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)


def added(unix_time: float) -> str:
    """A user's creation time as ``YYYY-MM-DD HH:MM UTC``."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix_time, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@cli.group("users")
@common_options
def users_group() -> None:
    """Manage who may sign in to the web app (`cpo serve`).

    Roles: marketer (start runs, upload data, read reports), reviewer (approve or
    reject variants, read everything), admin (everything, and manage users).
    Passwords are stored as argon2 hashes in RUNS/cpo_web.sqlite.
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@PASSWORD_STDIN
@RUNS_OPTION
@common_options
def add_command(name: str, role: str, password_stdin: bool, runs_dir: Path) -> None:
    """Add user NAME with --role (at least 8 characters of password)."""
    require_web_extra("argon2")
    from cpo.web.accounts import add_user, check_name, check_password
    from cpo.web.db import open_db

    check_name(name)
    password = check_password(read_password(password_stdin))
    with open_db(runs_dir) as conn:
        account = add_user(conn, name, role, password)
    click.echo(f"added {account.name} ({account.role}) to {runs_dir}")


@users_group.command("list")
@RUNS_OPTION
@common_options
def list_command(runs_dir: Path) -> None:
    """List the users and their roles."""
    from cpo.web.accounts import list_users
    from cpo.web.db import open_db

    with open_db(runs_dir) as conn:
        accounts = list_users(conn)
    if not accounts:
        click.echo(f"no users in {runs_dir}; add one with `cpo users add NAME --role admin`")
        return
    width = max(len(account.name) for account in accounts)
    for account in accounts:
        click.echo(f"{account.name:<{width}}  {account.role:<8}  added {added(account.created_at)}")


@users_group.command("remove")
@click.argument("name")
@RUNS_OPTION
@common_options
def remove_command(name: str, runs_dir: Path) -> None:
    """Remove user NAME (their sessions end at once)."""
    from cpo.web.accounts import remove_user
    from cpo.web.db import open_db

    with open_db(runs_dir) as conn:
        remove_user(conn, name)
    click.echo(f"removed {name}")


@users_group.command("passwd")
@click.argument("name")
@PASSWORD_STDIN
@RUNS_OPTION
@common_options
def passwd_command(name: str, password_stdin: bool, runs_dir: Path) -> None:
    """Set a new password for NAME (signs them out everywhere)."""
    require_web_extra("argon2")
    from cpo.web.accounts import check_password, get_user, set_password
    from cpo.web.db import open_db

    with open_db(runs_dir) as conn:
        get_user(conn, name)  # an unknown user fails before the password prompt
        set_password(conn, name, check_password(read_password(password_stdin)))
    click.echo(f"password of {name} changed; their sessions have ended")
