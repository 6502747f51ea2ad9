"""``cpo run --resume DIR --engagement COUNTS``: published counts per arm imported into a run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.slow
def test_resume_with_counts_per_arm_and_segment_then_bad_counts(
    tmp_path: Path, customers_csv: Path
):
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(240)
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    first = invoke("run", "--out", str(run), "--customers", str(customers_csv), "-q")
    assert first.exit_code == 0, first.output
    assignments = pd.read_csv(run / "assignments.csv", dtype=str, keep_default_na=False)
    recipients = assignments[assignments["experiment_arm"] != "holdout"]
    counts = recipients.groupby(["experiment_arm", "segment"]).size().rename("sent").reset_index()
    counts["opened"] = counts["sent"] // 2
    counts["clicked"] = counts["sent"] // 5
    counts["converted"] = counts["sent"] // 20
    published = tmp_path / "published.csv"
    counts.to_csv(published, index=False)

    resumed = invoke("run", "--resume", str(run), "--engagement", str(published), "-q")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((run / "engagement_report.json").read_text())
    assert report["layout"] == "counts" and report["warnings"] == []
    assert pd.read_csv(run / "engagement.csv").empty
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["engagement_source"] == "imported"
    for arm, group in counts.groupby("experiment_arm"):
        expected = {c: int(group[c].sum()) for c in ("sent", "opened", "clicked", "converted")}
        assert metrics["arms"][arm]["counts"] == expected
    assert (run / "report.html").is_file() and (run / "report.ipynb").is_file()
    # cpo analyze on the same counts, checked against the run, agrees with the stage.
    analysed = invoke(
        "analyze", str(published), "--assignments", str(run / "assignments.csv"),
        "--design", str(run / "experiment_design.json"), "--json",
    )  # fmt: skip
    assert analysed.exit_code == 0, analysed.output
    from_cli = json.loads(analysed.output)
    for key in ("arms", "lift_analysis", "srm", "segment_breakdown", "stratified"):
        assert from_cli[key] == metrics[key], key
    # Inconsistent counts stop the resumed run with one clear error.
    bad = tmp_path / "bad.csv"
    bad.write_text("experiment_arm,sent,opened,clicked,converted\ncontrol,10,4,6,0\n")
    failed = invoke("run", "--resume", str(run), "--engagement", str(bad), "-q")
    assert failed.exit_code == 1
    assert f"{bad}: column 'clicked': larger than 'opened'" in failed.output
    assert "line 2 (clicked 6 > opened 4)" in failed.output and "Traceback" not in failed.output
