"""The web app's own SQLite database, next to the runs (``RUNS_DIR/cpo_web.sqlite``).

It holds what the run folders do not: users, sessions, login failures (for the
rate limit), flash messages and app settings. The schema grows by appending to
:data:`MIGRATIONS`; each entry is applied once, in order, inside one transaction,
and recorded in the ``schema_version`` table. Never edit an applied migration:
add a new entry with the next version number.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cpo.errors import CpoError

#: The database file's name inside the runs directory.
DB_FILE = "cpo_web.sqlite"

#: Roles a user can have, least to most powerful.
ROLES = ("marketer", "reviewer", "admin")

#: (version, SQL script), applied in order; append, never edit.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('marketer', 'reviewer', 'admin')),
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            token_sha256 TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions(user_id);
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            client TEXT NOT NULL,
            failed_at REAL NOT NULL
        );
        CREATE INDEX login_failures_by_key ON login_failures(name, client, failed_at);
        CREATE TABLE flash_messages (
            id INTEGER PRIMARY KEY,
            token_sha256 TEXT NOT NULL REFERENCES sessions(token_sha256) ON DELETE CASCADE,
            category TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        # Background jobs of cpo.web.jobs: one cpo command line per run folder.
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            args TEXT NOT NULL,
            status TEXT NOT NULL,
            pid INTEGER,
            exit_code INTEGER,
            error TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX jobs_by_run ON jobs(run_id);
        CREATE INDEX jobs_by_status ON jobs(status);
        """,
    ),
    (
        3,
        # Email service events posted to /hooks/{provider}/{run_id} (cpo.web.routes.hooks):
        # one row per event, keyed by the provider's event id, so a retried post adds nothing.
        """
        CREATE TABLE hook_events (
            provider TEXT NOT NULL,
            run_id TEXT NOT NULL,
            event_key TEXT NOT NULL,
            event TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (provider, run_id, event_key)
        );
        CREATE INDEX hook_events_by_run ON hook_events(run_id);
        """,
    ),
    (
        4,
        # Mailgun signs only (timestamp, token), not the body: each token is accepted once,
        # so a captured signature cannot carry other events.
        """
        CREATE TABLE hook_tokens (
            provider TEXT NOT NULL,
            token TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (provider, token)
        );
        """,
    ),
]


class WebDatabaseError(CpoError):
    """The web app's database cannot be opened or is newer than this cpo."""


def db_path(runs_dir: Path) -> Path:
    """The database file of the runs directory ``runs_dir``."""
    return Path(runs_dir) / DB_FILE


def connect(runs_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the app database of ``runs_dir``, migrations applied.

    The connection is in autocommit mode (use ``with transaction(conn):`` for
    several statements), rows are :class:`sqlite3.Row`, foreign keys are on and
    the journal is WAL so pages can read while a worker writes.

    Raises:
        WebDatabaseError: the folder cannot hold the database, the file is not a
            SQLite database, or its schema is newer than this cpo knows.
    """
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise WebDatabaseError(
            f"{runs_dir}: is a file, the runs directory must be a folder",
            hint="pass a folder with --runs",
        )
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            db_path(runs_dir), timeout=10, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA busy_timeout = 10000")
        _migrate(conn, db_path(runs_dir))
    except sqlite3.DatabaseError as exc:
        raise WebDatabaseError(
            f"{db_path(runs_dir)}: cannot open the web app database ({exc})",
            hint="check that the file is the database `cpo users` created and that you may "
            "write the folder",
        ) from None
    except OSError as exc:
        raise WebDatabaseError(
            f"{runs_dir}: cannot create the runs directory ({exc.strerror})",
            hint="choose a folder you can write with --runs",
        ) from None
    return conn


@contextmanager
def open_db(runs_dir: Path) -> Iterator[sqlite3.Connection]:
    """:func:`connect`, closed when the ``with`` block ends."""
    conn = connect(runs_dir)
    try:
        yield conn
    finally:
        conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied (0 for a new database)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply every migration newer than the database, each in its own transaction."""
    current = schema_version(conn)
    known = max(version for version, _ in MIGRATIONS)
    if current > known:
        raise WebDatabaseError(
            f"{path}: schema version {current} is newer than this cpo knows ({known})",
            hint="upgrade cpo, or use the cpo version that last opened this runs directory",
        )
    for version, script in sorted(MIGRATIONS):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) < version:  # another process may have just applied it
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """The statements of a migration script (``executescript`` would commit mid-way)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    """An app setting's value (``None`` when unset)."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row["value"])


def set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store an app setting (replacing its value)."""
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
