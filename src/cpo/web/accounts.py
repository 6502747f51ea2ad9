"""Users of the web app: add, list, remove, change role or password; check a password.

Passwords are hashed with argon2id (``argon2-cffi``'s recommended parameters);
only the hash is stored. Used by ``cpo users`` and the admin's users page.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from cpo.errors import CpoError
from cpo.web.db import ROLES

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 8
#: Longest user name accepted.
MAX_NAME_LENGTH = 64


class AccountError(CpoError):
    """A user cannot be added, changed or removed as asked."""


@dataclass(frozen=True)
class Account:
    """A user as listed (never with the password hash).

    Attributes:
        id: Database id.
        name: Login name.
        role: ``marketer``, ``reviewer`` or ``admin``.
        created_at: Unix time the user was added.
    """

    id: int
    name: str
    role: str
    created_at: float


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """The argon2id password hasher (imported on first use)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist (same time as a real check)."""
    return hasher().hash("not a password of anyone")


def check_name(name: str) -> str:
    """The user name, stripped; raises AccountError when empty, too long or unprintable."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise AccountError(
            f"user name {name!r}: must be 1 to {MAX_NAME_LENGTH} printable characters",
            hint="choose a short login name such as 'maria' or 'compliance1'",
        )
    return name


def check_role(role: str) -> str:
    """The role, if it is one of :data:`cpo.web.db.ROLES`; AccountError otherwise."""
    if role not in ROLES:
        raise AccountError(f"role {role!r}: unknown", hint=f"use one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """The password, if long enough; AccountError otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        what = "empty" if not password else f"only {len(password)} characters"
        raise AccountError(
            f"password is {what}",
            hint=f"use at least {MIN_PASSWORD_LENGTH} characters (a passphrase is best)",
        )
    return password


def add_user(conn: sqlite3.Connection, name: str, role: str, password: str) -> Account:
    """Add a user.

    Raises:
        AccountError: bad name, role or password, or the name is taken.
    """
    name, role = check_name(name), check_role(role)
    password_hash = hasher().hash(check_password(password))
    now = time.time()
    try:
        cursor = conn.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role, password_hash, now),
        )
    except sqlite3.IntegrityError:
        raise AccountError(
            f"user {name!r} already exists",
            hint="choose another name, or change this user on the users page or with "
            "`cpo users passwd`",
        ) from None
    return Account(int(cursor.lastrowid or 0), name, role, now)


def list_users(conn: sqlite3.Connection) -> list[Account]:
    """Every user, by name."""
    rows = conn.execute("SELECT id, name, role, created_at FROM users ORDER BY name").fetchall()
    return [Account(row["id"], row["name"], row["role"], row["created_at"]) for row in rows]


def get_user(conn: sqlite3.Connection, name: str) -> Account:
    """The user called ``name``; AccountError when there is none."""
    row = conn.execute(
        "SELECT id, name, role, created_at FROM users WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise AccountError(
            f"user {name!r} does not exist", hint="see the users with `cpo users list`"
        )
    return Account(row["id"], row["name"], row["role"], row["created_at"])


def get_user_by_id(conn: sqlite3.Connection, user_id: int) -> Account:
    """The user with database id ``user_id``; AccountError when there is none."""
    row = conn.execute(
        "SELECT id, name, role, created_at FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    if row is None:
        raise AccountError(f"user #{user_id} does not exist", hint="reload the users page")
    return Account(row["id"], row["name"], row["role"], row["created_at"])


def remove_user(conn: sqlite3.Connection, name: str) -> None:
    """Remove a user and end their sessions; AccountError when there is none."""
    account = get_user(conn, name)
    conn.execute("DELETE FROM users WHERE id = ?", (account.id,))


def set_password(conn: sqlite3.Connection, name: str, password: str) -> None:
    """Change a user's password and end their sessions (log them out everywhere)."""
    account = get_user(conn, name)
    password_hash = hasher().hash(check_password(password))
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, account.id))
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (account.id,))
    conn.execute("COMMIT")


def set_role(conn: sqlite3.Connection, name: str, role: str) -> None:
    """Change a user's role; AccountError for an unknown user or role."""
    account = get_user(conn, name)
    conn.execute("UPDATE users SET role = ? WHERE id = ?", (check_role(role), account.id))


def count_admins(conn: sqlite3.Connection) -> int:
    """How many users have the admin role."""
    return int(conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0])


def authenticate(conn: sqlite3.Connection, name: str, password: str) -> Account | None:
    """The user when ``password`` is theirs, else ``None``.

    An unknown name costs the same argon2 check as a wrong password, so the
    answer time does not tell which names exist.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    row = conn.execute(
        "SELECT id, name, role, created_at, password_hash FROM users WHERE name = ?",
        (name.strip(),),
    ).fetchone()
    stored = _dummy_hash() if row is None else row["password_hash"]
    try:
        hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if hasher().check_needs_rehash(stored):
        conn.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (hasher().hash(password), row["id"])
        )
    return Account(row["id"], row["name"], row["role"], row["created_at"])
