"""Counts per arm imported into a run: what the run folder holds, the analysis, the report.

A counts import writes ``engagement_counts.csv`` (the counts, which the analysis
reads), ``engagement.csv`` with its header and no rows (no recipient is known)
and ``engagement_report.json`` with layout ``counts``.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.errors import StageError
from cpo.experiment.analysis_stage import AnalyzeStage
from cpo.experiment.stages import AssignStage, EngageStage
from cpo.pipeline import run_pipeline
from cpo.reporting.artifacts import load_run
from cpo.reporting.render import render_report
from cpo.reporting.sections.design import design_section
from cpo.safety.merge import RunMergeScreening
from cpo.safety.stage import ScreenStage
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

SEGMENTS = ["High-Value Recent", "At-Risk", "New Customer", "Standard"]


def stages(xkit):
    return [
        SegmentStage(),
        xkit.VariantsStage(xkit.variant_set(SEGMENTS)),
        ScreenStage(analyzer=xkit.MarkerAnalyzer(), backend_name="marker"),
        AssignStage(merge_screening=RunMergeScreening),
        EngageStage(),
        AnalyzeStage(),
    ]


def recipient_export(run: Path) -> pd.DataFrame:
    """A per-recipient export of the run's send: a deterministic mix of outcomes."""
    sends = pd.read_csv(run / "sends.csv", dtype={"customer_id": str})
    position = pd.Series(range(len(sends)))
    return pd.DataFrame(
        {
            "customer_id": sends["customer_id"],
            "opened": (position % 3 == 0).astype(int),
            "clicked": (position % 9 == 0).astype(int),
            "converted": (position % 27 == 0).astype(int),
        }
    )


def counts_of(run: Path, export: pd.DataFrame) -> pd.DataFrame:
    """The export reduced to counts per (arm, segment), as a published table would be."""
    assignments = pd.read_csv(run / "assignments.csv", dtype={"customer_id": str})
    joined = export.merge(assignments[["customer_id", "experiment_arm", "segment"]])
    grouped = joined.groupby(["experiment_arm", "segment"])
    table = grouped[["opened", "clicked", "converted"]].sum()
    table.insert(0, "sent", grouped.size())
    return table.reset_index()


def statistical_content(metrics: dict) -> dict:
    # regression_adjustment needs per-recipient rows: counts say why it is missing
    skipped = ("computed_at", "warnings", "regression_adjustment")
    return {k: v for k, v in metrics.items() if k not in skipped}


@pytest.fixture
def counts_run(tmp_path, xkit):
    """A run resumed with counts per arm and segment, and the equivalent per-recipient export."""
    run = tmp_path / "run"
    assert run_pipeline(run, stages=stages(xkit))["status"] == "completed"
    export = recipient_export(run)
    counts_file = tmp_path / "published_counts.csv"
    counts_of(run, export).to_csv(counts_file, index=False)
    options = RunOptions(engagement=counts_file)
    manifest = run_pipeline(run, options=options, resume=True, stages=stages(xkit))
    return run, manifest, export


@pytest.mark.slow
def test_counts_import_writes_counts_and_matches_per_recipient_import(counts_run, tmp_path, xkit):
    run, manifest, export = counts_run
    assert manifest["status"] == "completed"
    assert manifest["inputs"]["engagement"]["layout"] == "counts"
    report = json.loads((run / "engagement_report.json").read_text())
    assert report["layout"] == "counts" and report["counts_file"] == "engagement_counts.csv"
    assert report["counts"]["recipients"] == len(export)
    assert pd.read_csv(run / "engagement.csv").empty
    assert len(pd.read_csv(run / "engagement_counts.csv")) == 4 * len(SEGMENTS)
    assert f"{len(export)} recipients" in manifest["stages"]["engage"]["summary"]
    # The same send imported per recipient, in a second run, gives the same analysis.
    other = tmp_path / "per_recipient"
    export_file = tmp_path / "export.csv"
    export.to_csv(export_file, index=False)
    run_pipeline(other, options=RunOptions(engagement=export_file), stages=stages(xkit))
    from_counts = json.loads((run / "metrics.json").read_text())
    from_records = json.loads((other / "metrics.json").read_text())
    assert statistical_content(from_counts) == statistical_content(from_records)
    assert "counts per arm" in from_counts["regression_adjustment"]["reason"]
    assert not from_counts["regression_adjustment"]["comparisons"]
    assert from_records["regression_adjustment"]["comparisons"]
    assert from_counts["coverage"]["share_analysed"]["control"] == 1.0


@pytest.mark.slow
def test_reimporting_per_recipient_removes_the_stale_counts(counts_run, tmp_path, xkit):
    run, _, export = counts_run
    export_file = tmp_path / "export.csv"
    export.to_csv(export_file, index=False)
    options = RunOptions(engagement=export_file)
    manifest = run_pipeline(run, options=options, resume=True, stages=stages(xkit))
    assert manifest["status"] == "completed"
    assert not (run / "engagement_counts.csv").exists()
    assert len(pd.read_csv(run / "engagement.csv")) == len(export)


@pytest.mark.slow
def test_analysis_fails_clearly_when_the_counts_file_is_gone(counts_run, xkit):
    run, _, _ = counts_run
    (run / "engagement_counts.csv").unlink()
    with pytest.raises(StageError, match="engagement_counts.csv: not found") as caught:
        run_pipeline(run, resume=True, stages=stages(xkit))
    assert "--engagement FILE" in caught.value.hint


@pytest.mark.slow
def test_unknown_arm_in_counts_fails_the_engage_stage(tmp_path, xkit):
    run = tmp_path / "run"
    run_pipeline(run, stages=stages(xkit))
    counts = tmp_path / "counts.csv"
    counts.write_text(
        "experiment_arm,sent,opened,clicked,converted\ncontrol,10,2,1,0\nvariant_x,9,1,0,0\n"
    )
    with pytest.raises(StageError, match=r"line 3 value 'variant_x'"):
        run_pipeline(run, options=RunOptions(engagement=counts), resume=True, stages=stages(xkit))


@pytest.mark.slow
def test_report_on_a_counts_run(counts_run):
    run, _, _ = counts_run
    result = render_report(run, pdf=False, notebook=True)
    assert "moderators need per-recipient engagement" in (result.explain_note or "")
    assert (run / "report.html").is_file()
    # The design table's actual arm sizes come from the counts, not the empty engagement.csv.
    metrics = json.loads((run / "metrics.json").read_text())
    actual = {arm["name"]: arm["actual"] for arm in design_section(load_run(run))["arms"]}
    expected = {name: str(arm["sample_size"]) for name, arm in metrics["arms"].items()}
    assert actual == expected and all(int(n) > 0 for n in actual.values())
    notebook = nbformat.read(run / "report.ipynb", as_version=4)
    recount = next(c for c in notebook.cells if "engagement_counts.csv" in c.source)
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in recount.outputs)
    assert "True" in text and "False" not in text  # every arm's recount matches metrics.json


@pytest.mark.slow
def test_cpo_analyze_on_a_counts_run(counts_run):
    run, _, _ = counts_run
    empty = CliRunner().invoke(cli, ["analyze", str(run / "engagement.csv")])
    assert empty.exit_code == 1
    assert "imported as counts per arm" in empty.output
    assert f"cpo analyze {run / 'engagement_counts.csv'}" in empty.output
    counts = CliRunner().invoke(cli, ["analyze", str(run / "engagement_counts.csv"), "--json"])
    assert counts.exit_code == 0, counts.output
    stage = json.loads((run / "metrics.json").read_text())
    from_cli = json.loads(counts.output)
    for key in ("arms", "lift_analysis", "srm", "segment_breakdown"):
        assert from_cli[key] == stage[key], key
