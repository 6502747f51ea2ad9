"""Background jobs of the web app: each run executes in its own OS process.

A request never runs a pipeline. It records a job (a ``cpo`` command line for
one run folder) in the app database; the :class:`Worker` thread of the server
starts queued jobs as ``python -m cpo ...`` subprocesses, at most one per run
folder (the subprocess takes the run folder's lock, :func:`cpo.runlock.run_dir_lock`)
and at most ``max_parallel`` at a time. The jobs table is migration 2 of
:data:`cpo.web.db.MIGRATIONS`. A job's stage progress is read from the
run's manifest, never from the process.

A restart loses no run: job state is in the database and the manifest. When the
worker starts it reconciles every job marked running: a process that is still
alive (it holds the run folder's lock) is adopted; one that is gone is settled
from the manifest (completed, failed, paused for review) and a run interrupted
mid-stage is queued again as ``cpo run --resume``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.errors import CpoError
from cpo.logs import utc_now
from cpo.pipeline import STATUS_AWAITING_APPROVAL
from cpo.run_folder import MANIFEST, read_manifest
from cpo.runlock import lock_holder

#: Folder under the runs folder for the web app's own files (job logs, uploads).
WEB_STATE_DIR = ".cpo_web"
QUEUED, RUNNING = "queued", "running"
COMPLETED, FAILED, AWAITING = "completed", "failed", STATUS_AWAITING_APPROVAL
INTERRUPTED = "interrupted"
ACTIVE_STATUSES = (QUEUED, RUNNING)
#: Job kinds: a new run, a resume (after review), a re-analysis with imported engagement.
KIND_RUN, KIND_RESUME, KIND_ENGAGEMENT = "run", "resume", "engagement"
_ERROR_TAIL_LINES = 12


@dataclass(frozen=True)
class Job:
    """One background job: a ``cpo`` command line for one run folder.

    Attributes:
        id: Job number.
        run_id: The run folder's name under the runs folder.
        kind: ``run``, ``resume`` or ``engagement``.
        args: The ``cpo`` arguments (after ``python -m cpo``).
        status: ``queued``, ``running``, ``completed``, ``failed``,
            ``awaiting_approval`` or ``interrupted``.
        pid: The process id while it runs (and after, for the record).
        exit_code: The process's exit status once it ended (``None`` otherwise).
        error: What went wrong (the command's error message and fix).
        created_by: The user name that asked for it.
        created_at: When it was queued (UTC, ISO 8601).
        started_at: When its process started.
        finished_at: When it ended.
    """

    id: int
    run_id: str
    kind: str
    args: tuple[str, ...]
    status: str
    pid: int | None
    exit_code: int | None
    error: str | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None

    @property
    def active(self) -> bool:
        """True while the job is queued or running."""
        return self.status in ACTIVE_STATUSES

    def as_record(self) -> dict[str, Any]:
        """The job as JSON-ready data (the progress API)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


_COLUMNS = (
    "id, run_id, kind, args, status, pid, exit_code, error, "
    "created_by, created_at, started_at, finished_at"
)


def _job(row: Sequence[Any]) -> Job:
    values = list(row)
    values[3] = tuple(json.loads(values[3]))
    return Job(*values)


def enqueue(
    conn: sqlite3.Connection, run_id: str, kind: str, args: Sequence[str], created_by: str
) -> Job:
    """Queue a job for ``run_id``; the worker starts it when the run folder is free.

    Raises:
        CpoError: a job of this run is already queued or running.
    """
    with conn:
        busy = active_job(conn, run_id)
        if busy is not None:
            raise CpoError(
                f"run {run_id}: job {busy.id} ({busy.kind}) is already {busy.status}",
                hint="wait until it has finished; its progress is on the run's page",
            )
        cursor = conn.execute(
            "INSERT INTO jobs (run_id, kind, args, status, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, kind, json.dumps(list(args)), QUEUED, created_by, utc_now()),
        )
    job_id = cursor.lastrowid
    assert job_id is not None
    return get_job(conn, job_id)


def get_job(conn: sqlite3.Connection, job_id: int) -> Job:
    """The job with this id (``KeyError`` when there is none)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise KeyError(job_id)
    return _job(row)


def jobs_for_run(conn: sqlite3.Connection, run_id: str) -> list[Job]:
    """Every job of a run, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY id DESC", (run_id,)
    ).fetchall()
    return [_job(row) for row in rows]


def latest_job(conn: sqlite3.Connection, run_id: str) -> Job | None:
    """The run's newest job, if it has one."""
    jobs = jobs_for_run(conn, run_id)
    return jobs[0] if jobs else None


def active_job(conn: sqlite3.Connection, run_id: str) -> Job | None:
    """The run's queued or running job, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE run_id = ? AND status IN (?, ?) ORDER BY id",
        (run_id, *ACTIVE_STATUSES),
    ).fetchone()
    return _job(row) if row else None


def jobs_with_status(conn: sqlite3.Connection, *statuses: str) -> list[Job]:
    """Jobs in any of ``statuses``, oldest first."""
    marks = ", ".join("?" for _ in statuses)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY id", statuses
    ).fetchall()
    return [_job(row) for row in rows]


def _update(conn: sqlite3.Connection, job_id: int, **values: Any) -> None:
    assignments = ", ".join(f"{key} = ?" for key in values)
    with conn:
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))


def job_log_path(runs_dir: Path, job_id: int) -> Path:
    """Where a job's process writes its terminal output."""
    return Path(runs_dir) / WEB_STATE_DIR / "jobs" / f"{job_id}.log"


def run_command(args: Sequence[str]) -> list[str]:
    """The full command line of a job: this Python running ``cpo`` with ``args``."""
    return [sys.executable, "-m", "cpo", *args]


def run_args(run_dir: Path, options: Sequence[str] = ()) -> list[str]:
    """``cpo run --out RUN_DIR`` with more options, quiet."""
    return ["run", "--out", str(run_dir), *options, "--quiet"]


def resume_args(run_dir: Path, options: Sequence[str] = ()) -> list[str]:
    """``cpo run --resume RUN_DIR`` with more options, quiet."""
    return ["run", "--resume", str(run_dir), *options, "--quiet"]


def manifest_status(run_dir: Path) -> str | None:
    """The run's status in its manifest (``None`` when it has none or it is unreadable)."""
    if not MANIFEST.path(run_dir).is_file():
        return None
    try:
        return str(read_manifest(run_dir).get("status"))
    except CpoError:
        return None


def stage_progress(run_dir: Path) -> list[dict[str, Any]]:
    """Each stage of the run in order: name, status, seconds, summary (from the manifest)."""
    if not MANIFEST.path(run_dir).is_file():
        return []
    try:
        stages = read_manifest(run_dir).get("stages") or {}
    except CpoError:
        return []
    return [
        {
            "name": name,
            "status": record.get("status", "pending"),
            "duration_s": record.get("duration_s"),
            "summary": record.get("summary", ""),
        }
        for name, record in stages.items()
    ]


def error_tail(log_path: Path) -> str:
    """The last lines of a job's output, from its ``error:`` line on when there is one."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    tail = lines[starts[-1] :] if starts else lines[-_ERROR_TAIL_LINES:]
    return "\n".join(tail[:_ERROR_TAIL_LINES]).removeprefix("error: ")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _settled_status(run_dir: Path, exit_code: int | None) -> str:
    """A finished job's status: the manifest's, or failed when the process failed."""
    status = manifest_status(run_dir)
    if status in (COMPLETED, AWAITING, FAILED):
        return status
    if exit_code == 0 and status is None:
        return FAILED  # nothing recorded: nothing ran
    return FAILED if exit_code not in (None, 0) else INTERRUPTED


class Worker:
    """Starts queued jobs as subprocesses and settles them when they end.

    One thread of the server process; it never runs a pipeline itself. Call
    :meth:`start` when the server starts (it reconciles first) and :meth:`stop`
    when it stops (running processes are left to finish; the next start adopts
    or settles them).

    Args:
        runs_dir: The runs folder (run folders, the app database, job logs).
        connect: Opens a connection to the app database (``cpo.web.db.connect``).
        max_parallel: Most jobs running at once (never two for one run folder).
        poll_s: Seconds between looks at the queue and the running processes.
        on_settled: Called with each job that has just ended (tests, notices).
    """

    def __init__(
        self,
        runs_dir: Path,
        connect: Callable[[Path], sqlite3.Connection],
        *,
        max_parallel: int = 2,
        poll_s: float = 0.5,
        on_settled: Callable[[Job], None] | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir)
        self._connect = connect
        self.max_parallel = max(1, max_parallel)
        self.poll_s = poll_s
        self._on_settled = on_settled
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._adopted: set[int] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Reconcile jobs left running by an earlier server, then start the worker thread."""
        self.reconcile()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="cpo-web-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker thread (job processes keep running; see :meth:`reconcile`)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look at the queue now (called after a job is queued)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # the worker must outlive one bad tick
                print(f"cpo web worker: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        """Settle ended processes, then start queued jobs while there is room."""
        conn = self._connect(self.runs_dir)
        try:
            self._reap(conn)
            self._start_queued(conn)
        finally:
            conn.close()

    def run_dir(self, run_id: str) -> Path:
        """The run folder of a job."""
        return self.runs_dir / run_id

    def reconcile(self) -> None:
        """Settle or adopt every job marked running (the server restarted meanwhile).

        A process that still holds its run folder's lock is adopted and watched;
        otherwise the manifest says how the run ended, and a run interrupted
        mid-stage is queued again as a resume.
        """
        conn = self._connect(self.runs_dir)
        try:
            for job in jobs_with_status(conn, RUNNING):
                if job.id in self._processes:
                    continue
                if job.pid and self._holds_lock(job):
                    self._adopted.add(job.id)
                    continue
                self._settle(conn, job, None)
        finally:
            conn.close()

    def _holds_lock(self, job: Job) -> bool:
        holder = lock_holder(self.run_dir(job.run_id))
        return bool(holder and holder.get("pid") == job.pid and _pid_alive(int(job.pid or 0)))

    def _reap(self, conn: sqlite3.Connection) -> None:
        for job_id, process in list(self._processes.items()):
            code = process.poll()
            if code is not None:
                del self._processes[job_id]
                self._settle(conn, get_job(conn, job_id), code)
        for job_id in list(self._adopted):
            job = get_job(conn, job_id)
            if not _pid_alive(int(job.pid or 0)) or not self._holds_lock(job):
                self._adopted.discard(job_id)
                self._settle(conn, job, None)

    def _settle(self, conn: sqlite3.Connection, job: Job, exit_code: int | None) -> None:
        """Record how a job ended; an interrupted run is queued again as a resume."""
        run_dir = self.run_dir(job.run_id)
        status = _settled_status(run_dir, exit_code)
        error = None
        if status in (FAILED, INTERRUPTED):
            error = error_tail(job_log_path(self.runs_dir, job.id)) or (
                "the server stopped while the run was going"
                if status == INTERRUPTED
                else f"the run ended with exit status {exit_code}"
            )
        _update(
            conn, job.id, status=status, exit_code=exit_code, error=error, finished_at=utc_now()
        )
        if status == INTERRUPTED and MANIFEST.path(run_dir).is_file():
            enqueue(conn, job.run_id, KIND_RESUME, resume_args(run_dir), job.created_by)
        elif status == INTERRUPTED:
            enqueue(conn, job.run_id, job.kind, job.args, job.created_by)
        if self._on_settled is not None:
            self._on_settled(get_job(conn, job.id))

    def _start_queued(self, conn: sqlite3.Connection) -> None:
        running = {j.run_id for j in jobs_with_status(conn, RUNNING)}
        for job in jobs_with_status(conn, QUEUED):
            if len(self._processes) + len(self._adopted) >= self.max_parallel:
                return
            if job.run_id in running:
                continue
            self._launch(conn, job)
            running.add(job.run_id)

    def _launch(self, conn: sqlite3.Connection, job: Job) -> None:
        """Start the job's process; a job that cannot start fails with the reason."""
        log_path = job_log_path(self.runs_dir, job.id)
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as log:
                # A session of its own: the run outlives a server restart (then adopted).
                process = subprocess.Popen(
                    run_command(job.args),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=_job_environment(),
                )
        except OSError as exc:
            message = f"the run's process could not start: {exc.strerror or exc}"
            _update(conn, job.id, status=FAILED, error=message, finished_at=utc_now())
            return
        self._processes[job.id] = process
        _update(conn, job.id, status=RUNNING, pid=process.pid, started_at=utc_now())

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running (tests); True when idle in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conn = self._connect(self.runs_dir)
            try:
                busy = jobs_with_status(conn, *ACTIVE_STATUSES)
            finally:
                conn.close()
            if not busy:
                return True
            time.sleep(0.1)
        return False


def _job_environment() -> dict[str, str]:
    """The job's environment: the server's, without a traceback switch or colours."""
    env = {key: value for key, value in os.environ.items() if key != "CPO_DEBUG"}
    env["NO_COLOR"] = "1"
    with contextlib.suppress(KeyError):
        del env["FORCE_COLOR"]
    return env
