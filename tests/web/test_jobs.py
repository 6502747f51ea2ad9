"""Background jobs: one process per run, errors recorded, restarts lose no run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpo.run_folder import MANIFEST, read_manifest
from cpo.runlock import lock_holder
from cpo.web.db import connect
from cpo.web.jobs import (
    Worker,
    enqueue,
    get_job,
    jobs_for_run,
    resume_args,
    run_args,
)

from .conftest import RUN_ID

HOLD_LOCK = (
    "import sys, time\n"
    "from cpo.runlock import run_dir_lock\n"
    "with run_dir_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def new_worker(runs_dir: Path, **kwargs) -> Worker:
    return Worker(runs_dir, connect, poll_s=0.1, **kwargs)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def mark_running(runs_dir: Path, job_id: int, pid: int) -> None:
    conn = connect(runs_dir)
    conn.execute("UPDATE jobs SET status = 'running', pid = ? WHERE id = ?", (pid, job_id))
    conn.close()


def set_status(run_dir: Path, status: str) -> None:
    manifest = read_manifest(run_dir)
    manifest["status"] = status
    MANIFEST.path(run_dir).write_text(json.dumps(manifest), encoding="utf-8")


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_run_has_one_active_job_at_a_time(runs_dir, run_dir):
    conn = connect(runs_dir)
    enqueue(conn, RUN_ID, "resume", resume_args(run_dir), "maria")
    with pytest.raises(Exception, match="is already queued"):
        enqueue(conn, RUN_ID, "resume", resume_args(run_dir), "maria")
    enqueue(conn, "other", "run", run_args(runs_dir / "other"), "maria")  # another folder is fine


def test_a_failing_job_records_the_commands_error(runs_dir):
    (runs_dir / "broken").mkdir()
    conn = connect(runs_dir)
    args = run_args(runs_dir / "broken", ["--customers", str(runs_dir / "missing.csv")])
    job = enqueue(conn, "broken", "run", args, "maria")
    worker = new_worker(runs_dir)
    worker.tick()
    assert get_job(conn, job.id).status == "running"
    wait_for(lambda: (worker.tick(), get_job(conn, job.id).status)[1] != "running")
    done = get_job(conn, job.id)
    assert done.status == "failed" and done.exit_code == 1
    assert "missing.csv" in (done.error or "")
    assert "Traceback" not in (done.error or "")


def test_at_most_max_parallel_jobs_run(runs_dir):
    conn = connect(runs_dir)
    for name in ("a", "b"):  # quick jobs: each fails at once on a missing file
        (runs_dir / name).mkdir()
        options = ["--customers", str(runs_dir / f"{name}.csv")]
        enqueue(conn, name, "run", run_args(runs_dir / name, options), "maria")
    worker = new_worker(runs_dir, max_parallel=1)
    worker.tick()
    statuses = sorted(j.status for name in ("a", "b") for j in jobs_for_run(conn, name))
    assert statuses == ["queued", "running"]
    assert worker.wait_idle(timeout=0) is False
    worker.start()
    try:
        assert worker.wait_idle(timeout=120)
    finally:
        worker.stop()
    for name in ("a", "b"):
        (job,) = jobs_for_run(conn, name)
        assert job.status == "failed" and f"{name}.csv" in (job.error or "")


@pytest.mark.parametrize(
    ("manifest_status", "settled"),
    [("completed", "completed"), ("awaiting_approval", "awaiting_approval"), ("failed", "failed")],
)
def test_restart_settles_a_gone_process_from_the_manifest(
    runs_dir, run_dir, manifest_status, settled
):
    set_status(run_dir, manifest_status)
    conn = connect(runs_dir)
    job = enqueue(conn, RUN_ID, "resume", resume_args(run_dir), "maria")
    mark_running(runs_dir, job.id, dead_pid())
    new_worker(runs_dir).reconcile()
    assert get_job(conn, job.id).status == settled
    assert len(jobs_for_run(conn, RUN_ID)) == 1


def test_restart_requeues_a_run_interrupted_mid_stage(runs_dir, run_dir):
    set_status(run_dir, "running")
    conn = connect(runs_dir)
    job = enqueue(conn, RUN_ID, "run", run_args(run_dir), "maria")
    mark_running(runs_dir, job.id, dead_pid())
    new_worker(runs_dir).reconcile()
    again, old = jobs_for_run(conn, RUN_ID)
    assert old.id == job.id and old.status == "interrupted"
    assert (again.kind, again.status, again.created_by) == ("resume", "queued", "maria")
    assert again.args == tuple(resume_args(run_dir))


def test_restart_adopts_a_process_that_still_holds_the_lock(runs_dir, run_dir):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert lock_holder(run_dir)["pid"] == holder.pid
        conn = connect(runs_dir)
        job = enqueue(conn, RUN_ID, "resume", resume_args(run_dir), "maria")
        mark_running(runs_dir, job.id, holder.pid)
        worker = new_worker(runs_dir)
        worker.reconcile()
        worker.tick()
        assert get_job(conn, job.id).status == "running"  # adopted, not settled
    finally:
        holder.kill()
        holder.wait()
    worker.tick()
    assert get_job(conn, job.id).status == "completed"  # the demo manifest's status


def test_a_server_restart_in_the_middle_of_a_run_loses_nothing(runs_dir):
    (runs_dir / "long").mkdir()
    conn = connect(runs_dir)
    job = enqueue(conn, "long", "run", run_args(runs_dir / "long"), "maria")
    first = new_worker(runs_dir)
    first.tick()
    wait_for(lambda: MANIFEST.path(runs_dir / "long").is_file())
    first.stop()  # the server goes away; its run keeps going in its own process
    second = new_worker(runs_dir)
    second.start()
    try:
        assert second.wait_idle(timeout=240)
    finally:
        second.stop()
    assert get_job(conn, job.id).status == "completed"
    assert read_manifest(runs_dir / "long")["status"] == "completed"


def test_a_job_whose_process_cannot_start_fails_with_the_reason(runs_dir, monkeypatch):
    conn = connect(runs_dir)
    (runs_dir / "nostart").mkdir()
    job = enqueue(conn, "nostart", "run", run_args(runs_dir / "nostart"), "maria")
    monkeypatch.setattr(sys, "executable", str(runs_dir / "no-such-python"))
    new_worker(runs_dir).tick()
    failed = get_job(conn, job.id)
    assert failed.status == "failed" and "could not start" in (failed.error or "")
