"""The suppression list: addresses and customers never to be sent to again.

Unsubscribes, hard bounces and complaints from earlier campaigns (and manual
entries) are kept in one SQLite file, ``suppressions.sqlite``, beside the runs:
by default in the parent folder of the run folder, so every run written under
the same ``--out`` parent shares one list (``--suppressions PATH`` picks another
folder, or the file itself). ``cpo send`` never sends to a suppressed address
or customer id and counts them; the event imports add unsubscribes and bounces.

Values are normalised (surrounding whitespace stripped, lower-cased) and kept
as given otherwise, so the team can export the list to its email service. They
are personal data: never log them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from cpo.errors import CpoError, DataValidationError

#: The file name of the suppression list inside its folder.
SUPPRESSIONS_FILE = "suppressions.sqlite"

#: Why a value is suppressed.
Reason = Literal["unsubscribe", "hard_bounce", "complaint", "manual"]
REASONS: tuple[str, ...] = get_args(Reason)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    value TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at TEXT NOT NULL
) WITHOUT ROWID;
"""
_QUERY_CHUNK = 500


class SuppressionsError(CpoError):
    """The suppression list cannot be opened or read."""


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry of the suppression list.

    Attributes:
        value: The normalised address or customer id.
        reason: One of :data:`REASONS`.
        source: Where it came from (a run id, an event file, ``manual``).
        added_at: When it was first suppressed (ISO 8601, UTC).
    """

    value: str
    reason: str
    source: str
    added_at: str


def normalise(value: str) -> str:
    """Return ``value`` as the list stores it: stripped and lower-cased."""
    return str(value).strip().lower()


def default_suppressions_path(run_dir: Path | str) -> Path:
    """The default list of a run folder: ``suppressions.sqlite`` in its parent."""
    return Path(run_dir).resolve().parent / SUPPRESSIONS_FILE


def resolve_suppressions_path(path: Path | str | None, run_dir: Path | str) -> Path:
    """Turn a ``--suppressions`` value into the file to open.

    Args:
        path: A folder (the list is ``suppressions.sqlite`` inside it), a file
            path, or None for the default beside the run folder.
        run_dir: The run folder the command works on.

    Returns:
        The path of the SQLite file.
    """
    if path is None:
        return default_suppressions_path(run_dir)
    return suppressions_file(path)


def suppressions_file(path: Path | str) -> Path:
    """The list file named by ``path``: a folder (existing, or a new name without a
    suffix) holds ``suppressions.sqlite``; anything else is the file itself."""
    target = Path(path)
    if target.is_dir() or (not target.suffix and not target.exists()):
        return target / SUPPRESSIONS_FILE
    return target


def _utc(at: datetime | None) -> datetime:
    """``at`` in UTC (now if None; a naive time is taken as UTC)."""
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


class Suppressions:
    """An open suppression list (use :func:`open_suppressions`)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    def add(
        self,
        address_or_customer_id: str,
        reason: Reason | str,
        source: str,
        at: datetime | None = None,
    ) -> bool:
        """Suppress a value; adding one already listed changes nothing.

        Args:
            address_or_customer_id: An email address or a customer id.
            reason: One of :data:`REASONS`.
            source: Where the suppression comes from (run id, file name, ``manual``).
            at: When it happened (default: now); naive times are taken as UTC.

        Returns:
            True if the value was new to the list.

        Raises:
            DataValidationError: For an empty value or an unknown reason.
        """
        value = normalise(address_or_customer_id)
        if not value:
            raise DataValidationError(
                "a suppression needs an address or customer id; got an empty value",
                hint="pass the email address or customer id to suppress",
            )
        if reason not in REASONS:
            raise DataValidationError(
                f"unknown suppression reason {reason!r}",
                hint=f"use one of: {', '.join(REASONS)}",
            )
        when = _utc(at)
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO suppressions (value, reason, source, added_at) "
                "VALUES (?, ?, ?, ?)",
                (value, reason, str(source), when.isoformat(timespec="seconds")),
            )
        return cursor.rowcount == 1

    def remove(self, address_or_customer_id: str) -> bool:
        """Take a value off the list; returns True if it was listed."""
        with self._db:
            cursor = self._db.execute(
                "DELETE FROM suppressions WHERE value = ?", (normalise(address_or_customer_id),)
            )
        return cursor.rowcount == 1

    def contains_many(self, values: Iterable[str]) -> set[str]:
        """Return the values (as given) that are on the list.

        Args:
            values: Addresses and/or customer ids, in any case and spacing.

        Returns:
            The subset of ``values`` whose normalised form is suppressed.
        """
        by_normal: dict[str, list[str]] = {}
        for value in values:
            by_normal.setdefault(normalise(value), []).append(value)
        keys = list(by_normal)
        found: set[str] = set()
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT value FROM suppressions WHERE value IN ({marks})", chunk
            )
            for (value,) in rows:
                found.update(by_normal[value])
        return found

    def counts(self) -> dict[str, int]:
        """Number of entries per reason (every reason listed, zero included)."""
        counts = dict.fromkeys(REASONS, 0)
        for reason, count in self._db.execute(
            "SELECT reason, COUNT(*) FROM suppressions GROUP BY reason"
        ):
            counts[reason] = int(count)
        return counts

    def entries(self) -> Iterator[Suppression]:
        """Every entry, ordered by value (for ``list`` and ``export``)."""
        rows = self._db.execute(
            "SELECT value, reason, source, added_at FROM suppressions ORDER BY value"
        )
        for value, reason, source, added_at in rows:
            yield Suppression(value, reason, source, added_at)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Suppressions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_suppressions(path: Path | str) -> Suppressions:
    """Open (creating if needed) the suppression list at ``path``.

    Args:
        path: The SQLite file, or a folder holding ``suppressions.sqlite``.

    Returns:
        The open list; close it (or use it as a context manager) when done.

    Raises:
        SuppressionsError: If the file cannot be created or is not a list.
    """
    target = Path(path)
    if target.is_dir():
        target = target / SUPPRESSIONS_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(target, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise SuppressionsError(
            f"cannot open the suppression list {target}: {exc}",
            hint="pass --suppressions with a writable folder or an existing suppressions.sqlite",
        ) from exc
    return Suppressions(target, connection)
