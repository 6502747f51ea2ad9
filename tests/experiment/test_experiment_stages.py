"""The assign and engage stages through run_pipeline on the bundled customers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cpo.config import init_config, load_config
from cpo.errors import StageError
from cpo.experiment.stages import AssignStage, EngageStage
from cpo.pipeline import default_stages, run_pipeline
from cpo.safety.approval import approve_run
from cpo.safety.merge import RunMergeScreening
from cpo.safety.stage import ScreenStage
from cpo.sample_data import bundled_customers
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

SEGMENTS = ["High-Value Recent", "At-Risk", "New Customer", "Standard"]


def stages(xkit, variants):
    return [
        SegmentStage(),
        xkit.VariantsStage(variants),
        ScreenStage(analyzer=xkit.MarkerAnalyzer(), backend_name="marker"),
        AssignStage(merge_screening=RunMergeScreening),
        EngageStage(),
    ]


def config_with(tmp_path: Path, **experiment) -> Path:
    folder = tmp_path / "config"
    if not folder.exists():
        init_config(folder)
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["experiment"].update(experiment)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def read(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name, dtype={"customer_id": str}, keep_default_na=False)


@pytest.fixture
def blocked_run(tmp_path, xkit):
    """A run where At-Risk's urgent variant is blocked and New Customer's friendly is in review."""
    variants = xkit.variant_set(
        SEGMENTS, {"s1-urgent": "Hurry [violence:6].", "s2-friendly": "Hi [violence:4]."}
    )
    run = tmp_path / "run"
    manifest = run_pipeline(run, stages=stages(xkit, variants))
    return run, manifest


def test_artifacts_and_schemas(blocked_run):
    run, manifest = blocked_run
    assert manifest["status"] == "completed"
    assignments = read(run, "assignments.csv")
    assert list(assignments.columns) == [
        "customer_id",
        "segment",
        "experiment_arm",
        "variant_id",
        "assigned_at",
        "assignment_method",
    ]
    assert len(assignments) == 500
    assert list(read(run, "sends.csv").columns) == [
        "customer_id",
        "email",
        "first_name",
        "experiment_arm",
        "variant_id",
        "subject",
        "preheader",
        "body",
        "body_html",
    ]
    engagement = read(run, "engagement.csv")
    assert list(engagement.columns) == [
        "customer_id",
        "experiment_arm",
        "segment",
        "opened",
        "clicked",
        "converted",
        "engagement_source",
    ]
    assert set(engagement["engagement_source"]) == {"simulated"}
    report = json.loads((run / "engagement_report.json").read_text())
    assert report["engagement_source"] == "simulated" and report["model"]["seed"] == 42
    assert manifest["experiment"]["engagement_source"] == "simulated"
    assert "SIMULATED" in manifest["stages"]["engage"]["summary"]


def test_blocked_and_unapproved_variants_are_never_sent(blocked_run):
    run, _ = blocked_run
    sends = read(run, "sends.csv")
    assert not {"s1-urgent", "s2-friendly"} & set(sends["variant_id"])
    assert "[violence" not in " ".join(sends["body"])
    design = json.loads((run / "experiment_design.json").read_text())
    by_name = {plan["segment"]: plan for plan in design["segments"]}
    assert by_name["At-Risk"]["dropped"]["treatment_1"]["code"] == "blocked"
    assert by_name["New Customer"]["dropped"]["treatment_3"]["code"] == "review-pending"
    assert by_name["Standard"]["dropped"] == {}
    assignments = read(run, "assignments.csv")
    at_risk = assignments[assignments["segment"] == "At-Risk"]["experiment_arm"].value_counts()
    assert set(at_risk.index) == {"control", "treatment_2", "treatment_3"}
    assert at_risk.max() - at_risk.min() <= 1


def test_sends_render_names_and_match_assignments(blocked_run):
    run, _ = blocked_run
    sends = read(run, "sends.csv")
    customers = pd.read_csv(bundled_customers(), dtype=str).set_index("customer_id")
    assert len(sends) == 500
    first = sends.iloc[0]
    assert first["body"].startswith(f"Hi {customers.loc[first['customer_id'], 'first_name']},")
    assert first["email"] == customers.loc[first["customer_id"], "email"]
    assert not sends["subject"].str.contains("{first_name}", regex=False).any()
    merged = sends.merge(read(run, "assignments.csv"), on="customer_id", suffixes=("", "_a"))
    assert (merged["variant_id"] == merged["variant_id_a"]).all()


def test_experiment_log_has_design_and_no_pii(blocked_run):
    run, _ = blocked_run
    log = (run / "logs" / "experiment.log").read_text()
    events = [json.loads(line) for line in log.splitlines()]
    names = {e["event"] for e in events}
    assert {"design", "assigned", "arm_dropped", "engagement", "simulated_data"} <= names
    customers = pd.read_csv(bundled_customers(), dtype=str)
    everything = log + (run / "logs" / "system.log").read_text()
    assert "@" not in everything
    assert not any(f'"{cid}"' in everything for cid in customers["customer_id"].head(50))
    assert "Yusuf" not in everything


def test_same_seed_same_artifacts(tmp_path, xkit):
    variants = xkit.variant_set(SEGMENTS)
    for name in ("a", "b"):
        run_pipeline(tmp_path / name, stages=stages(xkit, variants), options=RunOptions(seed=9))
    for name in ("sends.csv", "engagement.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    a, b = (read(tmp_path / n, "assignments.csv").drop(columns="assigned_at") for n in "ab")
    pd.testing.assert_frame_equal(a, b)
    design_a = json.loads((tmp_path / "a" / "experiment_design.json").read_text())
    design_b = json.loads((tmp_path / "b" / "experiment_design.json").read_text())
    assert design_a == design_b


def test_blocked_control_fails_the_stage(tmp_path, xkit):
    variants = xkit.variant_set(SEGMENTS)
    variants[0] = xkit.make_variant("control", "all", "control", "Act [violence:7].")
    with pytest.raises(StageError, match="control message cannot be sent"):
        run_pipeline(tmp_path / "run", stages=stages(xkit, variants))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["assign"]["status"] == "failed"


def test_approval_then_resume_adds_the_approved_variant(tmp_path, xkit):
    config = load_config(config_with(tmp_path, require_approval=True, holdout_share=0.1))
    variants = xkit.variant_set(SEGMENTS, {"s2-friendly": "Hi [violence:4]."})
    run = tmp_path / "run"
    paused = run_pipeline(run, config, stages=stages(xkit, variants))
    assert paused["status"] == "awaiting_approval" and not (run / "sends.csv").exists()
    approve_run(run, by="Dana Reviewer")
    resumed = run_pipeline(run, resume=True, stages=stages(xkit, variants))
    assert resumed["status"] == "completed"
    sends = read(run, "sends.csv")
    assert "s2-friendly" in set(sends["variant_id"])
    assignments = read(run, "assignments.csv")
    holdout = assignments[assignments["experiment_arm"] == "holdout"]
    assert 45 <= len(holdout) <= 55 and not set(holdout["customer_id"]) & set(sends["customer_id"])
    assert (holdout["variant_id"] == "").all()
    assert len(read(run, "engagement.csv")) == len(sends)


def test_engagement_file_is_imported_and_resume_reruns_when_it_changes(tmp_path, xkit):
    variants = xkit.variant_set(SEGMENTS)
    first = tmp_path / "first"
    run_pipeline(first, stages=stages(xkit, variants))
    sends = read(first, "sends.csv")
    export = tmp_path / "export.csv"
    frame = pd.DataFrame({"customer_id": sends["customer_id"]})
    frame["opened"], frame["clicked"], frame["converted"] = 1, 0, 0
    frame.loc[:9, "clicked"] = 1
    frame.to_csv(export, index=False)
    run = tmp_path / "run"
    options = RunOptions(engagement=export)
    manifest = run_pipeline(run, options=options, stages=stages(xkit, variants))
    engagement = read(run, "engagement.csv")
    assert set(engagement["engagement_source"]) == {"imported"}
    assert engagement["clicked"].sum() == 10 and engagement["opened"].sum() == 500
    assert manifest["inputs"]["engagement"]["layout"] == "recipients"
    assert json.loads((run / "engagement_report.json").read_text())["counts"]["recipients"] == 500
    run_pipeline(run, resume=True, stages=stages(xkit, variants))
    assert skipped(run) == ["segment", "generate", "screen", "assign", "engage"]
    frame.loc[:19, "clicked"] = 1
    frame.to_csv(export, index=False)
    rerun = run_pipeline(run, resume=True, stages=stages(xkit, variants))
    assert read(run, "engagement.csv")["clicked"].sum() == 20
    assert rerun["status"] == "completed"
    assert "engage" not in skipped(run) and "assign" in skipped(run)


def skipped(run: Path) -> list[str]:
    """Stages skipped by the latest resume, from the system log."""
    events = [json.loads(line) for line in (run / "logs" / "system.log").read_text().splitlines()]
    last_start = max(i for i, e in enumerate(events) if e["event"] == "run_started")
    return [e["stage"] for e in events[last_start:] if e["event"] == "stage_skipped"]


def test_hash_method_and_weights_from_config(tmp_path, xkit):
    allocation = {"control": 2, "treatment_1": 1, "treatment_2": 1, "treatment_3": 0}
    folder = config_with(
        tmp_path, assignment_method="hash", allocation=allocation, salt="fixed-salt"
    )
    variants = xkit.variant_set(SEGMENTS)
    run_pipeline(tmp_path / "run", load_config(folder), stages=stages(xkit, variants))
    assignments = read(tmp_path / "run", "assignments.csv")
    assert set(assignments["assignment_method"]) == {"hash"}
    assert "treatment_3" not in set(assignments["experiment_arm"])
    counts = assignments["experiment_arm"].value_counts()
    assert counts["control"] > counts["treatment_1"]
    design = json.loads((tmp_path / "run" / "experiment_design.json").read_text())
    assert design["allocation"]["control"] == 0.5 and design["assignment_method"] == "hash"
    assert "fixed-salt" not in (tmp_path / "run" / "experiment_design.json").read_text()


def test_default_pipeline_on_bundled_data_writes_the_experiment_artifacts(tmp_path):
    # The real stages up to engage: rules segments, grounded generation, local screening
    # (the later analysis and report stages have their own tests).
    real = default_stages()
    names = [stage.name for stage in real]
    run = tmp_path / "run"
    manifest = run_pipeline(run, stages=real[: names.index("engage") + 1])
    assert manifest["status"] == "completed"
    names = list(manifest["stages"])
    assert names.index("screen") < names.index("assign") < names.index("engage")
    assignments = read(run, "assignments.csv")
    sends = read(run, "sends.csv")
    sendable = set(manifest["safety"]["sendable"])
    assert set(sends["variant_id"]) <= sendable
    assert len(assignments) == 500 and len(sends) == 500
    for _, group in assignments.groupby("segment"):
        counts = group["experiment_arm"].value_counts()
        assert counts.max() - counts.min() <= 1
    design = json.loads((run / "experiment_design.json").read_text())
    assert design["tones"] == ["urgent", "informational", "friendly"]
    assert design["power"]["metrics"]["click_rate"]["mde_relative"] > 0
    engagement = read(run, "engagement.csv")
    assert set(engagement["engagement_source"]) == {"simulated"}
    assert (engagement["clicked"] <= engagement["opened"]).all()
