"""The pipeline and run folder: artifacts, manifest, determinism, refusal, failure, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from cpo.errors import OutputPathError, RunDirError, StageError
from cpo.pipeline import run_pipeline
from cpo.run_folder import LOCK
from cpo.runlock import lock_holder, run_dir_lock
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions, StageBase, StageOutcome

LOCK_FILE = LOCK.name


def segment_only(run_dir: Path, **kwargs):
    return run_pipeline(run_dir, stages=[SegmentStage()], **kwargs)


def test_run_writes_artifacts_and_manifest(tmp_path: Path):
    manifest = segment_only(tmp_path / "run")
    run = tmp_path / "run"
    for name in ("manifest.json", "segments.csv", "segment_profiles.json", "logs/system.log"):
        assert (run / name).is_file(), name
    assert manifest["status"] == "completed"
    saved = json.loads((run / "manifest.json").read_text())
    assert saved["run_id"] == manifest["run_id"] and len(saved["config_sha256"]) == 64
    assert saved["inputs"]["customers"]["rows"] == 500
    assert len(saved["inputs"]["customers"]["sha256"]) == 64
    assert saved["stages"]["segment"]["status"] == "completed"
    assert saved["stages"]["segment"]["duration_s"] >= 0
    assert set(saved["totals"]) >= {"runtime_s", "api_calls", "tokens_prompt", "cost_usd"}
    assert "experiment_config.yaml" in saved["config"]
    segments = pd.read_csv(run / "segments.csv")
    assert list(segments.columns) == [
        "customer_id",
        "segment",
        "segment_id",
        "confidence",
        "reason",
    ]


def test_two_runs_give_identical_segments(tmp_path: Path):
    segment_only(tmp_path / "a", options=RunOptions(seed=3))
    segment_only(tmp_path / "b", options=RunOptions(seed=3))
    for name in ("segments.csv", "segment_profiles.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_refuses_non_empty_folder_without_force(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        segment_only(run)
    segment_only(run, force=True)
    assert (run / "notes.txt").read_text() == "mine"  # --force removes only cpo's own files
    assert (run / "segments.csv").is_file()


class Exploding(StageBase):
    name = "explode"
    description = "Always fails"
    outputs = ("never.txt",)

    def __init__(self, fail: bool = True) -> None:
        self.fail = fail
        self.calls = 0

    def input_files(self, ctx):
        return []

    def run(self, ctx):
        self.calls += 1
        if self.fail:
            raise ValueError("boom")
        ctx.path("never.txt").write_text("ok")
        return StageOutcome(summary="fine now")


def test_failed_stage_marks_manifest_failed_and_resume_continues(tmp_path: Path):
    run = tmp_path / "run"
    with pytest.raises(StageError, match="stage 'explode' failed: ValueError: boom"):
        run_pipeline(run, stages=[SegmentStage(), Exploding()])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"]["stage"] == "explode"
    assert manifest["stages"]["segment"]["status"] == "completed"
    assert manifest["stages"]["explode"]["status"] == "failed"
    before = (run / "segments.csv").stat().st_mtime_ns
    fixed = Exploding(fail=False)
    resumed = run_pipeline(run, resume=True, stages=[SegmentStage(), fixed])
    assert resumed["status"] == "completed" and fixed.calls == 1
    assert resumed["run_id"] == manifest["run_id"]
    assert (run / "segments.csv").stat().st_mtime_ns == before  # skipped: inputs unchanged


def test_resume_reruns_a_stage_whose_input_changed(tmp_path: Path, customers_csv: Path):
    run = tmp_path / "run"
    segment_only(run, options=RunOptions(customers=customers_csv))
    frame = pd.read_csv(customers_csv)
    frame.iloc[:-10].to_csv(customers_csv, index=False)
    manifest = segment_only(run, resume=True)
    assert manifest["inputs"]["customers"]["rows"] == 490
    assert len(pd.read_csv(run / "segments.csv")) == 490


def test_resume_without_a_run_is_an_error(tmp_path: Path):
    with pytest.raises(RunDirError, match="no manifest.json"):
        segment_only(tmp_path, resume=True)


def test_skip_invalid_rows_writes_rejected_and_counts_them(
    tmp_path: Path, customers_csv: Path, edit_csv
):
    def edit(frame):
        frame.loc[0, "historical_open_rate"] = "1.7"

    edit_csv(customers_csv, edit)
    run = tmp_path / "run"
    manifest = segment_only(run, options=RunOptions(customers=customers_csv, on_invalid="skip"))
    assert manifest["inputs"]["customers"]["rejected"] == 1
    rejected = pd.read_csv(run / "rejected.csv")
    assert list(rejected["line"]) == [2]
    assert "historical_open_rate" in rejected.loc[0, "reason"]


class DatedStage(StageBase):
    """A stage whose result depends on a non-file fact (like today's date)."""

    name = "dated"
    description = "Depends on a date"
    outputs = ("dated.txt",)

    def __init__(self, as_of: str) -> None:
        self.as_of = as_of
        self.calls = 0

    def input_files(self, ctx):
        return []

    def fingerprint_extra(self, ctx):
        return {"as_of": self.as_of}

    def run(self, ctx):
        self.calls += 1
        ctx.path("dated.txt").write_text(self.as_of)
        return StageOutcome()


def test_resume_reruns_a_stage_whose_extra_fingerprint_changed(tmp_path: Path):
    run = tmp_path / "run"
    run_pipeline(run, stages=[DatedStage("2026-11-26")])
    same = DatedStage("2026-11-26")
    run_pipeline(run, resume=True, stages=[same])
    assert same.calls == 0
    later = DatedStage("2026-12-01")
    run_pipeline(run, resume=True, stages=[later])
    assert later.calls == 1 and (run / "dated.txt").read_text() == "2026-12-01"


def cpo_process(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a second process."""
    return subprocess.run(
        [sys.executable, "-c", "from cpo.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


#: Files of an earlier run; safety_audit.jsonl is the compliance evidence that must survive.
EARLIER_RUN = {
    "manifest.json": '{"run_id": "earlier", "status": "running", "options": {}}\n',
    "safety_audit.jsonl": '{"seq": 1, "entry_hash": "ab12"}\n{"seq": 2, "entry_hash": "cd34"}\n',
    "segments.csv": "customer_id,segment\nK-1,Loyal Gardeners\n",
    "notes.txt": "the user's own file",
}


def _earlier_run(run: Path) -> dict[str, tuple[bytes, int]]:
    run.mkdir()
    (run / "logs").mkdir()
    (run / "logs" / "system.log").write_text('{"event": "run_started"}\n')
    for name, text in EARLIER_RUN.items():
        (run / name).write_text(text)
    return _snapshot(run)


def _snapshot(run: Path) -> dict[str, tuple[bytes, int]]:
    """Every file except the lock: bytes and modification time."""
    return {
        str(p.relative_to(run)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.mark.parametrize("mode", ["--force", "--resume"])
def test_second_process_never_touches_a_run_folder_another_process_holds(tmp_path: Path, mode: str):
    run = tmp_path / "run"
    before = _earlier_run(run)
    args = (
        ["run", "--out", str(run), "--force"]
        if mode == "--force"
        else ["run", "--resume", str(run)]
    )
    with run_dir_lock(run):
        assert lock_holder(run)["pid"] == os.getpid()
        second = cpo_process(*args)
        assert _snapshot(run) == before  # checked while the first holder still holds it
    assert second.returncode == 1, second.stderr
    assert "Traceback" not in second.stderr
    assert f"{run}: run folder is in use by process {os.getpid()}" in second.stderr
    assert "nothing in it was changed" in second.stderr
    assert sorted(p.name for p in run.iterdir()) == sorted([*EARLIER_RUN, "logs", LOCK_FILE])
    assert lock_holder(run) is None  # released: the holder record is cleared


def test_lock_held_without_a_holder_record_still_refuses(tmp_path: Path):
    """A process that locks the folder without writing its pid (e.g. an older cpo)."""
    run = tmp_path / "run"
    before = _earlier_run(run)
    unknown = r"in use by another cpo process \(pid unknown\)"
    with FileLock(str(run / LOCK_FILE), timeout=0), pytest.raises(RunDirError, match=unknown):
        segment_only(run, force=True)
    assert _snapshot(run) == before


def test_force_after_the_holder_finished_replaces_only_cpo_files(tmp_path: Path):
    run = tmp_path / "run"
    _earlier_run(run)
    with run_dir_lock(run):
        pass
    manifest = run_pipeline(run, force=True, stages=[DatedStage("2026-11-30")])
    assert manifest["run_id"] != "earlier" and manifest["status"] == "completed"
    assert json.loads((run / "manifest.json").read_text())["run_id"] == manifest["run_id"]
    assert (run / "dated.txt").read_text() == "2026-11-30"
    assert (run / "notes.txt").read_text() == EARLIER_RUN["notes.txt"]  # not cpo's file


@pytest.mark.parametrize("resume", [False, True])
def test_run_folder_under_a_file_is_one_clear_error(tmp_path: Path, resume: bool):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    with pytest.raises((OutputPathError, RunDirError), match=str(blocker)):
        segment_only(blocker / "run", resume=resume)
    with pytest.raises((OutputPathError, RunDirError), match="is a file"):
        segment_only(blocker)
    assert blocker.read_text() == "a file"


def test_approve_waits_for_the_run_that_holds_the_folder(tmp_path: Path):
    """`cpo approve` takes the same lock, so the refusal names the running process."""
    from click.testing import CliRunner

    from cpo.cli import cli

    run = tmp_path / "run"
    before = _earlier_run(run)
    with run_dir_lock(run):
        result = CliRunner().invoke(cli, ["approve", str(run), "--by", "Dana Reviewer"])
    assert result.exit_code == 1, result.output
    assert f"in use by process {os.getpid()}" in result.output
    assert "wait until `cpo run` has stopped, then approve" in result.output
    assert _snapshot(run) == before
