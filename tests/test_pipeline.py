"""The pipeline and run folder: artifacts, manifest, determinism, refusal, failure, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cpo.errors import RunDirError, StageError
from cpo.pipeline import RunOptions, StageOutcome, run_pipeline
from cpo.segmentation.stage import SegmentStage


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


class Exploding:
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


class DatedStage:
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
