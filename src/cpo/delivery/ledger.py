"""The send ledger: what was sent to whom, durable across crashes.

One SQLite file in the run folder (:data:`cpo.run_folder.SEND_LEDGER`), one row
per customer id. The protocol that keeps a recipient from being sent twice:

1. before the SMTP ``DATA`` of a recipient, :meth:`SendLedger.begin` commits the
   row in state ``sending`` (WAL, ``synchronous=FULL``: it is on disk before the
   message leaves);
2. after the server's answer, :meth:`SendLedger.finish` commits ``sent``,
   ``bounced`` or ``deferred`` (not delivered; tried again by the next run);
3. when ``cpo send`` starts, :meth:`SendLedger.recover` turns rows left in
   ``sending`` (the process died mid-message) into ``unknown``: the server may
   have accepted the message, so it is reported and resent only on request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cpo.errors import RunDirError
from cpo.run_folder import SEND_LEDGER

#: A recipient's state in the ledger.
State = Literal["sending", "sent", "bounced", "deferred", "unknown"]
STATES: tuple[State, ...] = ("sending", "sent", "bounced", "deferred", "unknown")
#: States whose recipient is never sent again by a plain ``cpo send``.
FINAL_STATES: frozenset[str] = frozenset({"sent", "bounced"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    customer_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
"""
_QUERY_CHUNK = 500


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SendLedger:
    """An open send ledger (use :func:`open_ledger`)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    def recover(self) -> int:
        """Mark rows left in ``sending`` by a dead process as ``unknown``.

        Returns:
            How many rows were in flight.
        """
        with self._db:
            cursor = self._db.execute(
                "UPDATE sends SET state = 'unknown', detail = 'in flight when a send stopped', "
                "updated_at = ? WHERE state = 'sending'",
                (_now(),),
            )
        return cursor.rowcount

    def states(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """The recorded state of each of ``customer_ids`` that has a row."""
        ids = list(customer_ids)
        found: dict[str, str] = {}
        for start in range(0, len(ids), _QUERY_CHUNK):
            chunk = ids[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    f"SELECT customer_id, state FROM sends WHERE customer_id IN ({marks})", chunk
                ).fetchall()
            )
        return found

    def begin(self, customer_id: str, message_id: str) -> None:
        """Commit that the message to ``customer_id`` is about to be handed over."""
        with self._db:
            self._db.execute(
                "INSERT INTO sends (customer_id, state, message_id, attempts, updated_at) "
                "VALUES (?, 'sending', ?, 1, ?) ON CONFLICT (customer_id) DO UPDATE SET "
                "state = 'sending', message_id = excluded.message_id, "
                "attempts = attempts + 1, detail = '', updated_at = excluded.updated_at",
                (customer_id, message_id, _now()),
            )

    def finish(self, customer_id: str, state: State, detail: str = "") -> None:
        """Commit the result of the attempt to ``customer_id``."""
        with self._db:
            self._db.execute(
                "UPDATE sends SET state = ?, detail = ?, updated_at = ? WHERE customer_id = ?",
                (state, detail[:500], _now(), customer_id),
            )

    def counts(self) -> dict[str, int]:
        """Rows per state (every state listed, zero included)."""
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for state, count in self._db.execute("SELECT state, COUNT(*) FROM sends GROUP BY state"):
            counts[state] = int(count)
        return counts

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> SendLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ledger(run_dir: Path | str, create: bool = True) -> SendLedger:
    """Open (creating if needed) the send ledger of the run in ``run_dir``.

    Args:
        run_dir: The run folder.
        create: False for a look that must leave no file behind (a dry run):
            a run without a ledger then gets an empty one in memory.

    Raises:
        RunDirError: the ledger cannot be created or read.
    """
    path = SEND_LEDGER.path(run_dir)
    target = str(path) if create or path.exists() else ":memory:"
    try:
        connection = sqlite3.connect(target, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise RunDirError(
            f"{path}: cannot open the send ledger: {exc}",
            hint="check that the run folder is writable and the file is not damaged",
        ) from exc
    return SendLedger(path, connection)
