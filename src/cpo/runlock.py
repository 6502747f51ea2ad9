"""The run folder's lock: one cpo process changes a run folder at a time.

``cpo run`` holds it for the whole run and ``cpo approve`` while it records a
decision; a second process is refused with the holder's pid. A leaf module, so
stages and commands can take the lock without importing the pipeline.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cpo.errors import RunDirError
from cpo.logs import utc_now
from cpo.outpaths import os_error
from cpo.run_folder import LOCK


@contextmanager
def run_dir_lock(run_dir: Path | str, busy_hint: str | None = None) -> Iterator[None]:
    """Hold the run folder's lock (``.cpo.lock``) while the body runs.

    Every cpo process that changes a run folder takes this lock first; the
    holder's pid is written into the lock file (and cleared on release) so a
    process that is refused can say who holds it.

    Args:
        run_dir: The run folder (it must exist).
        busy_hint: The fix shown when another process holds the lock
            (default: wait, or choose another ``--out`` folder).

    Raises:
        RunDirError: another process holds the lock; nothing in the folder was changed.
        OutputPathError: the lock file cannot be created (e.g. a read-only folder).
    """
    run_dir = Path(run_dir)
    lock_path = LOCK.path(run_dir)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _busy_error(run_dir, busy_hint) from None
    except OSError as exc:
        raise os_error(run_dir, exc, "lock the run folder") from None
    try:
        _write_holder(lock_path, {"pid": os.getpid(), "since": utc_now()})
        yield
    finally:
        _write_holder(lock_path, None)
        lock.release()


def _write_holder(lock_path: Path, holder: dict[str, Any] | None) -> None:
    """Record (or clear) who holds the lock; best effort, the lock itself is what counts."""
    with contextlib.suppress(OSError):
        lock_path.write_text(json.dumps(holder) if holder else "", encoding="utf-8")


def lock_holder(run_dir: Path | str) -> dict[str, Any] | None:
    """The ``{"pid", "since"}`` record of the process holding the run folder's lock, if known."""
    try:
        holder = json.loads(LOCK.path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder else None


def _busy_error(run_dir: Path, hint: str | None) -> RunDirError:
    holder = lock_holder(run_dir)
    who = (
        f"process {holder['pid']} (since {holder.get('since', 'unknown')})"
        if holder
        else "another cpo process (pid unknown)"
    )
    return RunDirError(
        f"{run_dir}: run folder is in use by {who}; nothing in it was changed",
        hint=hint or "wait for that run to finish, or choose another --out folder",
    )
