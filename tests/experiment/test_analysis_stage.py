"""The ``analyze`` stage: metrics.json, the experiment log and the manifest summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment.analysis_stage import AnalyzeStage
from cpo.pipeline import default_stages, run_pipeline


def write_run_files(run_dir):
    """A minimal run folder as the assign and engage stages leave it."""
    rows = []
    for segment, n in (("Loyal", 60), ("Lapsed", 40)):
        for i in range(n):
            arm = "control" if i % 2 == 0 else "treatment_1"
            rows.append({
                "customer_id": f"{segment[:2]}{i:04d}", "segment": segment, "experiment_arm": arm,
                "opened": int(i % 3 == 0),
                "clicked": int(i % 6 == 0 or (arm != "control" and i % 7 == 0)),
                "converted": 0, "engagement_source": "imported",
            })  # fmt: skip
    engagement = pd.DataFrame(rows)
    engagement.to_csv(run_dir / "engagement.csv", index=False)
    assignments = engagement[["customer_id", "segment", "experiment_arm"]].copy()
    holdout = pd.DataFrame({"customer_id": ["H1", "H2"], "segment": ["Loyal"] * 2,
                            "experiment_arm": ["holdout"] * 2})  # fmt: skip
    pd.concat([assignments, holdout]).to_csv(run_dir / "assignments.csv", index=False)
    design = {
        "experiment_name": "stage test",
        "salt_sha256": "0123456789abcdef" * 4,
        "arms": [{"name": "control", "tone": "control"}, {"name": "treatment_1", "tone": "urgent"}],
        "expected_shares": {"control": 0.5, "treatment_1": 0.5},
        "segments": [
            {"segment": "Loyal", "expected_shares": {"control": 0.5, "treatment_1": 0.5}},
            {"segment": "Lapsed", "expected_shares": {"control": 0.5, "treatment_1": 0.5}},
        ],
        "power": {"expected_relative_lift": 0.25},
    }
    (run_dir / "experiment_design.json").write_text(json.dumps(design))
    report = {"engagement_source": "imported", "warnings": [
        {"code": "missing_recipients", "message": "3 recipient(s) have no row"}]}  # fmt: skip
    (run_dir / "engagement_report.json").write_text(json.dumps(report))


def test_stage_writes_metrics_logs_and_summary(tmp_path):
    write_run_files(tmp_path)
    manifest = run_pipeline(tmp_path, stages=[AnalyzeStage()], force=True)
    assert manifest["status"] == "completed"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["experiment_id"] == "stage-test-0123456789ab"
    assert metrics["engagement_source"] == "imported"
    assert metrics["srm"]["expected_from"] == "experiment_design.json"
    assert metrics["power"]["expected_relative_lift"] == 0.25
    assert metrics["coverage"]["assigned"] == {"control": 50, "treatment_1": 50}
    carried = [w for w in metrics["warnings"] if w["code"] == "missing_recipients"]
    assert carried and carried[0]["source"] == "engagement"
    summary = manifest["analysis"]
    assert summary["primary_metric"] == "click_rate" and summary["recipients"] == 100
    assert [r["arm"] for r in summary["results"]] == ["treatment_1"]
    assert manifest["stages"]["analyze"]["summary"].startswith("click_rate: treatment_1")
    events = [json.loads(line) for line in (tmp_path / "logs" / "experiment.log").open()]
    analysis = [e for e in events if e["event"] == "analysis"]
    assert analysis and analysis[0]["primary_metric"] == "click_rate"
    log_text = (tmp_path / "logs" / "experiment.log").read_text()
    assert "Lo0001" not in log_text  # no raw customer ids in the log


def test_stage_reruns_only_when_its_inputs_change(tmp_path):
    write_run_files(tmp_path)
    run_pipeline(tmp_path, stages=[AnalyzeStage()], force=True)
    again = run_pipeline(tmp_path, stages=[AnalyzeStage()], resume=True)
    assert again["stages"]["analyze"]["status"] == "completed"
    events = [json.loads(x) for x in (tmp_path / "logs" / "system.log").open()]
    assert any(e["event"] == "stage_skipped" for e in events)


def test_stage_without_engagement_fails_clearly(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(Exception, match="engagement.csv: not found"):
        run_pipeline(tmp_path, stages=[AnalyzeStage()], force=True)


def test_analyze_is_registered_after_engage():
    names = [stage.name for stage in default_stages()]
    assert "analyze" in names and names.index("analyze") == names.index("engage") + 1


@pytest.mark.slow
def test_cpo_run_on_bundled_data_and_cpo_analyze_agree(tmp_path):
    run_dir = tmp_path / "run"
    manifest = run_pipeline(run_dir)
    assert manifest["status"] == "completed", manifest.get("error")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["engagement_source"] == "simulated"
    assert metrics["warnings"][0]["code"] == "simulated_data"
    assert metrics["total_customers"] == sum(a["sample_size"] for a in metrics["arms"].values())
    assert next(iter(metrics["arms"])) == "control" and len(metrics["lift_analysis"]) > 0
    assert metrics["srm"]["expected_from"] == "experiment_design.json"
    # The command on the run's files computes the same document as the stage
    # (apart from the timestamp and what only the stage adds: coverage, the next
    # test's size and the engagement report's warnings).
    result = CliRunner().invoke(cli, ["analyze", str(run_dir / "engagement.csv"), "--json"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.output)
    for document in (metrics, from_cli):
        document.pop("computed_at"), document.pop("coverage", None)
        document.pop("next_test", None)
        document["warnings"] = [w for w in document["warnings"] if w.get("source") != "engagement"]
    assert from_cli == metrics


def _primary(arm: str, lift: float, estimate: str) -> dict[str, object]:
    return {
        "arm": arm, "lift_percent": lift, "p_value_adjusted": 0.2, "significant": False,
        "estimate": estimate,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("decided", "other", "expected"),
    [
        ("cuped", "unadjusted", "[CUPED-adjusted; unadjusted: treatment_1 +5.0%"),
        ("unadjusted", "cuped", "[unadjusted; CUPED-adjusted: treatment_1 +5.0%"),
        ("wave_stratified", "unadjusted", "[wave-stratified; pooled over waves: treatment_1 +5.0%"),
    ],
)
def test_summary_line_names_the_deciding_estimate_and_the_other(decided, other, expected):
    """The stage's line says which estimate decides (CUPED, wave-stratified, unadjusted)."""
    from cpo.experiment.analysis_stage import summary_line

    summary = {
        "primary_metric": "click_rate",
        "results": [_primary("treatment_1", 12.0, decided)],
        "other_results": [_primary("treatment_1", 5.0, other)],
        "srm_mismatch": False,
        "engagement_source": "imported",
    }
    line = summary_line(summary)
    assert line.startswith("click_rate: treatment_1 +12.0% (adj. p 0.2)")
    assert expected in line
