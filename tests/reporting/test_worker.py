"""The report worker: a process started with the run renders its three reports.

The pipeline starts ``python -m cpo.reporting.worker RUN_DIR`` when a run starts
(imports, templates and the notebook kernel load beside the other stages) and
the report stage hands it the manifest. These tests run real worker processes:
the reports it writes, errors that come back as the same CpoError, a dead worker
(the stage renders in its own process instead), and no process left behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import load_config
from cpo.errors import RunDirError
from cpo.logs import RunLog
from cpo.reporting.render import render_report
from cpo.reporting.stage import ReportStage
from cpo.reporting.worker import ReportWorker, WorkerUnavailable
from cpo.stage_api import NullReporter, RunContext, RunOptions


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def _processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line contains ``text`` (pid -> command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if text in command and state != "Z":
            found[int(entry.name)] = command
    return found


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gone(pids: list[int], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def test_worker_writes_the_three_reports(make_run) -> None:
    run_dir = make_run()
    worker = ReportWorker(run_dir).start()
    try:
        result = worker.render(_manifest(run_dir))
    finally:
        worker.close()
    assert set(result["files"]) == {"report.html", "report.pdf", "report.ipynb"}
    for name, size in result["files"].items():
        assert (run_dir / name).stat().st_size == size > 10_000, name
    assert set(result["seconds"]) == {"html", "pdf", "notebook"}
    assert result["simulated"] is True
    notebook = nbformat.read(run_dir / "report.ipynb", as_version=4)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert outputs and not [out for out in outputs if out.output_type == "error"]
    assert b"SIMULATED" in (run_dir / "report.html").read_bytes()


def test_a_rendering_error_comes_back_as_the_same_error(make_run) -> None:
    run_dir = make_run()
    manifest = _manifest(run_dir)
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunDirError) as here:
        render_report(run_dir, notebook=False, pdf=False)
    worker = ReportWorker(run_dir).start()
    try:
        with pytest.raises(RunDirError) as there:
            worker.render(manifest)
    finally:
        worker.close()
    assert str(there.value) == str(here.value)
    assert "metrics.json" in str(there.value)


def test_a_dead_worker_is_unavailable_and_the_stage_renders_itself(
    make_run, tmp_path: Path
) -> None:
    run_dir = make_run()
    worker = ReportWorker(run_dir).start()
    assert worker._process is not None
    worker._process.kill()
    worker._process.wait()
    with pytest.raises(WorkerUnavailable):
        worker.render(_manifest(run_dir))

    log = RunLog(tmp_path / "logs")
    ctx = RunContext(
        run_dir, load_config(None), RunOptions(), log, _manifest(run_dir), NullReporter()
    )
    dead = ReportWorker(run_dir).start()
    assert dead._process is not None
    dead._process.kill()
    dead._process.wait()
    outcome = ReportStage(dead).run(ctx)
    dead.close()
    assert set(outcome.facts["files"]) == {"report.html", "report.pdf", "report.ipynb"}
    lines = (tmp_path / "logs" / "system.log").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events if e["event"] == "report_worker_failed"] == [
        "report_worker_failed"
    ]


def test_a_worker_never_asked_stops_with_its_kernel(tmp_path: Path) -> None:
    worker = ReportWorker(tmp_path).start()
    assert worker._process is not None
    pid = worker._process.pid
    deadline = time.monotonic() + 60
    kernels: list[int] = []
    while not kernels and time.monotonic() < deadline:
        kernels = [k for k in _children(pid) if "ipykernel" in _command(k)]
        time.sleep(0.1)
    assert kernels, "the worker starts the notebook kernel while it waits"
    worker.close()
    assert _gone([pid, *kernels])


def test_cpo_run_that_fails_leaves_no_worker_behind(tmp_path: Path) -> None:
    bad = tmp_path / "customers.csv"
    bad.write_text("customer_id,nothing_else\nc1,1\n", encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--customers", str(bad), "-q"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert _gone(list(_processes_mentioning(f"cpo.reporting.worker {out}")))


def test_cpo_run_renders_in_the_worker_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    log = (out / "logs" / "system.log").read_text(encoding="utf-8")
    assert "report_worker_failed" not in log
    assert "report_written" in log
    assert _gone(list(_processes_mentioning(f"cpo.reporting.worker {out}")))


def test_a_worker_that_cannot_start_leaves_the_stage_to_render_itself(
    make_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = make_run()
    not_runnable = tmp_path / "python"
    not_runnable.write_text("", encoding="utf-8")  # exists, not executable: Popen fails
    monkeypatch.setattr("cpo.reporting.worker.sys.executable", str(not_runnable))
    worker = ReportWorker(run_dir).start()
    assert worker._process is None
    with pytest.raises(WorkerUnavailable):
        worker.render(_manifest(run_dir))
    worker.close()
