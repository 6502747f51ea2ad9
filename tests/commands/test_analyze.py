"""``cpo analyze``: the command prints the analysis (JSON or tables) and fails cleanly."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli


def recipients_frame(counts, segment=None):
    """Per-recipient records: ``counts`` maps arm -> (clicked, sent)."""
    rows = []
    for arm, (clicked, sent) in counts.items():
        for i in range(sent):
            row = {"customer_id": f"{arm}-{i}", "experiment_arm": arm, "opened": int(i < clicked),
                   "clicked": int(i < clicked), "converted": 0}  # fmt: skip
            if segment:
                row["segment"] = segment
            rows.append(row)
    return pd.DataFrame(rows)


def run(*args):
    result = CliRunner().invoke(cli, ["analyze", *map(str, args)])
    return result


def lift(metrics, arm="treatment_1", metric="click_rate"):
    return next(
        r for r in metrics["lift_analysis"] if r["treatment_arm"] == arm and r["metric"] == metric
    )


def test_newcombe_example_a_through_cpo_analyze_json(tmp_path):
    # Newcombe RG (1998) Stat Med 17:873-890, Table II example (a): 56/70 vs
    # 48/80, hybrid score interval 0.0524 to 0.3339.
    path = tmp_path / "engagement.csv"
    recipients_frame({"treatment_1": (56, 70), "control": (48, 80)}).to_csv(path, index=False)
    result = run(path, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    ci = lift(metrics)["statistical_significance"]["confidence_interval"]
    assert (round(ci["lower"], 4), round(ci["upper"], 4)) == (0.0524, 0.3339)


def test_fisher_tea_tasting_from_parquet(tmp_path):
    # Fisher (1935) lady tasting tea, [[3, 1], [1, 3]]: two-sided exact p = 0.4857.
    path = tmp_path / "engagement.parquet"
    recipients_frame({"treatment_1": (3, 4), "control": (1, 4)}).to_parquet(path)
    metrics = json.loads(run(path, "--json").output)
    significance = lift(metrics)["statistical_significance"]
    assert significance["test"] == "fisher-exact" and round(significance["p_value"], 4) == 0.4857


def test_plain_text_tables(tmp_path):
    path = tmp_path / "engagement.csv"
    frame = recipients_frame({"control": (10, 200), "treatment_1": (25, 200)}, segment="Loyal")
    frame["engagement_source"] = "simulated"
    frame.to_csv(path, index=False)
    result = run(path)
    assert result.exit_code == 0, result.output
    output = result.output
    for text in ("Arms", "Lift against control", "Segments", "sample ratio (chi-square",
                 "stratified by segment", "engagement: SIMULATED", "warning [simulated_data]",
                 "12.50%", "Holm"):  # fmt: skip
        assert text in output
    assert "\x1b[" not in output  # no terminal escapes when not on a terminal


def test_out_file_and_design_beside_the_file(tmp_path):
    path = tmp_path / "engagement.csv"
    recipients_frame({"control": (5, 50), "treatment_1": (9, 50)}).to_csv(path, index=False)
    design = {
        "experiment_name": "beside",
        "arms": [
            {"name": "control", "tone": "control"},
            {"name": "treatment_1", "tone": "friendly"},
        ],
        "expected_shares": {"control": 0.5, "treatment_1": 0.5},
        "segments": [],
    }
    (tmp_path / "experiment_design.json").write_text(json.dumps(design))
    out = tmp_path / "metrics.json"
    result = run(path, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["srm"]["expected_from"] == "experiment_design.json"
    assert written["arms"]["treatment_1"]["tone"] == "friendly"


def test_event_file_joined_to_assignments(tmp_path):
    assignments = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(8)],
            "segment": ["S"] * 8,
            "experiment_arm": ["control", "treatment_1"] * 4,
            "variant_id": ["control", "v1"] * 4,
            "assigned_at": ["2026-01-01T00:00:00Z"] * 8,
            "assignment_method": ["stratified_block"] * 8,
        }
    )
    assignments.to_csv(tmp_path / "assignments.csv", index=False)
    events = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C3", "C0", "C5"],
            "event": ["open", "click", "click", "open", "click"],
            "timestamp": ["2026-01-02T10:00:00Z"] * 5,
        }
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    result = run(tmp_path / "events.csv", "--assignments", tmp_path / "assignments.csv", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["engagement_source"] == "imported"
    treatment = metrics["arms"]["treatment_1"]["counts"]
    assert treatment == {"sent": 4, "opened": 3, "clicked": 3, "converted": 0}
    assert "click_without_open" in [w["code"] for w in metrics["warnings"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [("customer_id,opened\nA,1\n", "missing column"),
     ("experiment_arm,opened,clicked,converted\ncontrol,1,7,0\n", "'clicked' must be 0/1")],
)  # fmt: skip
def test_invalid_files_fail_with_a_message(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run(path)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_missing_file(tmp_path):
    result = run(tmp_path / "nope.csv")
    assert result.exit_code == 1 and "not found" in result.output


# ---- counts per arm (published results) ----

PUBLISHED_COUNTS = (
    "experiment_arm,sent,opened,clicked,converted\n"
    "control,1000,300,80,10\ntreatment_1,1000,330,95,12\n"
)


def expanded(counts):
    """Per-recipient records equal to ``counts``: arm -> (sent, opened, clicked, converted)."""
    rows = []
    for arm, (sent, opened, clicked, converted) in counts.items():
        rows += [
            {"customer_id": f"{arm}-{i}", "experiment_arm": arm, "opened": int(i < opened),
             "clicked": int(i < clicked), "converted": int(i < converted)}
            for i in range(sent)
        ]  # fmt: skip
    return pd.DataFrame(rows)


def statistical_content(metrics):
    return {
        k: v
        for k, v in metrics.items()
        # regression_adjustment says why nothing was adjusted, which differs by layout
        if k not in ("computed_at", "engagement_source", "warnings", "regression_adjustment")
    }


def test_counts_file_gives_the_same_metrics_as_the_per_recipient_file(tmp_path):
    counts = tmp_path / "published.csv"
    counts.write_text(PUBLISHED_COUNTS)
    records = tmp_path / "recipients.csv"
    expanded({"control": (1000, 300, 80, 10), "treatment_1": (1000, 330, 95, 12)}).to_csv(
        records, index=False
    )
    from_counts = run(counts, "--json")
    from_records = run(records, "--json")
    assert from_counts.exit_code == 0, from_counts.output
    assert from_records.exit_code == 0, from_records.output
    a, b = json.loads(from_counts.output), json.loads(from_records.output)
    assert statistical_content(a) == statistical_content(b)
    assert "counts per arm" in a["regression_adjustment"]["reason"]
    assert "--customers" in b["regression_adjustment"]["reason"]
    assert a["engagement_source"] == "imported"
    assert a["arms"]["treatment_1"]["counts"] == {
        "sent": 1000, "opened": 330, "clicked": 95, "converted": 12,
    }  # fmt: skip


def test_counts_file_plain_output_and_segments(tmp_path):
    path = tmp_path / "by_segment.csv"
    path.write_text(
        "experiment_arm,segment,sent,opened,clicked,converted\n"
        "control,Gardeners,400,120,30,5\ntreatment_1,Gardeners,410,150,45,9\n"
        "control,Cooks,300,90,20,2\ntreatment_1,Cooks,290,95,28,3\n"
    )
    result = run(path)
    assert result.exit_code == 0, result.output
    assert "Gardeners" in result.output and "Cooks" in result.output
    assert "1400 recipients; engagement: imported" in result.output


def test_counts_file_checked_against_assignments(tmp_path):
    assignments = pd.DataFrame(
        {
            "customer_id": [f"K{i}" for i in range(6)],
            "segment": ["Retail"] * 6,
            "experiment_arm": ["control", "treatment_1"] * 3,
        }
    )
    assignments.to_csv(tmp_path / "assignments.csv", index=False)
    path = tmp_path / "counts.csv"
    path.write_text(
        "experiment_arm,sent,opened,clicked,converted\ncontrol,3,1,0,0\nvariant_b,3,1,1,0\n"
    )
    result = run(path, "--assignments", tmp_path / "assignments.csv")
    assert result.exit_code == 1
    assert "line 3 value 'variant_b'" in result.output and "control, treatment_1" in result.output
    assert "Traceback" not in result.output
    path.write_text(
        "experiment_arm,sent,opened,clicked,converted\ncontrol,3,1,0,0\ntreatment_1,2,1,1,0\n"
    )
    result = run(path, "--assignments", tmp_path / "assignments.csv", "--json")
    assert result.exit_code == 0, result.output
    assert "missing_recipients" in [w["code"] for w in json.loads(result.output)["warnings"]]


def test_invalid_counts_fail_with_line_and_fix(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("experiment_arm,sent,opened,clicked,converted\ncontrol,100,40,50,1\n")
    result = run(path)
    assert result.exit_code == 1
    assert f"{path}: column 'clicked': larger than 'opened'" in result.output
    assert "line 2 (clicked 50 > opened 40)" in result.output
    assert "fix:" in result.output and "Traceback" not in result.output
