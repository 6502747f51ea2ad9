"""``cpo run --waves N``: adaptive waves with a persistent holdout, offline, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from cpo_testkit import config_with_holdout

from cpo.cli import cli


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def waves_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample run in 3 waves with a 10% holdout."""
    root = tmp_path_factory.mktemp("waves")
    config = config_with_holdout(root, 0.1)
    run = root / "run"
    result = invoke("run", "--out", str(run), "--config", str(config), "--waves", "3", "-q")
    assert result.exit_code == 0, result.output
    return run


@pytest.mark.slow
def test_waves_allocate_later_waves_from_earlier_responses(waves_run: Path) -> None:
    waves = json.loads((waves_run / "waves.json").read_text())
    design = json.loads((waves_run / "experiment_design.json").read_text())
    assert waves["count"] == 3 and len(waves["allocations"]) == 3
    first, *later = waves["allocations"]
    assert first["method"] == "design"
    assert first["shares"] == pytest.approx(design["expected_shares"])
    for allocation in later:
        assert allocation["method"] == "top_two_thompson"
        assert allocation["shares"]["control"] == pytest.approx(
            design["expected_shares"]["control"]
        )
        assert sum(allocation["shares"].values()) == pytest.approx(1.0)
        assert min(allocation["shares"].values()) >= waves["min_share"] - 1e-9
    # The responses each allocation saw are exactly the run's engagement, wave by wave.
    assignments = pd.read_csv(waves_run / "assignments.csv", dtype=str, keep_default_na=False)
    engagement = pd.read_csv(waves_run / "engagement.csv", dtype={"customer_id": str})
    joined = engagement.merge(assignments[["customer_id", "wave"]], on="customer_id")
    clicks = joined.groupby(["wave", "experiment_arm"])["clicked"].agg(["sum", "size"])
    for allocation in waves["allocations"]:
        for arm, (events, sent) in allocation["responses"].items():
            row = clicks.loc[(str(allocation["wave"]), arm)]
            assert (int(row["sum"]), int(row["size"])) == (events, sent)


@pytest.mark.slow
def test_the_holdout_is_fixed_and_never_mailed(waves_run: Path) -> None:
    assignments = pd.read_csv(waves_run / "assignments.csv", dtype=str, keep_default_na=False)
    sends = pd.read_csv(waves_run / "sends.csv", dtype=str, keep_default_na=False)
    held = set(assignments.loc[assignments["experiment_arm"] == "holdout", "customer_id"])
    design = json.loads((waves_run / "experiment_design.json").read_text())
    assert len(held) == design["expected_counts"]["holdout"]  # 10% of each segment
    assert abs(len(held) - 0.1 * len(assignments)) <= len(design["segments"])
    assert held.isdisjoint(sends["customer_id"])
    assert held.isdisjoint(pd.read_csv(waves_run / "engagement.csv", dtype=str)["customer_id"])
    # Every wave has its share of the holdout (wave and holdout are independent).
    per_wave = assignments.loc[assignments["experiment_arm"] == "holdout", "wave"].value_counts()
    assert sorted(per_wave.index) == ["1", "2", "3"]
    report = json.loads((waves_run / "engagement_report.json").read_text())
    by_wave = report["holdout"]["by_wave"]
    assert {k: v["customers"] for k, v in by_wave.items()} == per_wave.to_dict()


@pytest.mark.slow
def test_the_run_says_it_was_sent_in_waves(waves_run: Path) -> None:
    manifest = json.loads((waves_run / "manifest.json").read_text())
    assert manifest["experiment"]["waves"] == 3
    assert "3 adaptive waves (see waves.json)" in manifest["stages"]["assign"]["summary"]
    events = [
        json.loads(line)
        for line in (waves_run / "logs" / "experiment.log").read_text().splitlines()
        if '"wave_allocated"' in line
    ]
    assert [event["wave"] for event in events] == [1, 2, 3]


@pytest.mark.slow
def test_metrics_decide_on_the_wave_stratified_estimate(waves_run: Path) -> None:
    metrics = json.loads((waves_run / "metrics.json").read_text())
    section = metrics["waves"]
    assert section["count"] == 3 and section["metric"] == metrics["primary_metric"]
    assert [c["arm"] for c in section["comparisons"]] == [
        "treatment_1",
        "treatment_2",
        "treatment_3",
    ]
    assert section["holdout"]["metric"] == "conversion_rate"
    held = json.loads((waves_run / "experiment_design.json").read_text())["expected_counts"]
    assert section["holdout"]["holdout"] == held["holdout"]
    assert section["holdout"]["mailed"] == metrics["total_customers"] == 500 - held["holdout"]
    assert section["holdout"]["difference"] is not None
    manifest = json.loads((waves_run / "manifest.json").read_text())
    decided = manifest["analysis"]["results"]
    assert {r["estimate"] for r in decided} == {"wave_stratified"}
    # The CUPED estimates pool the waves too: shown, not the decision.
    assert metrics["regression_adjustment"]["used_for_decision"] is False
    assert "wave-stratified" in metrics["regression_adjustment"]["decision"]
    assert [r["lift_absolute"] for r in decided] == [
        c["difference"] for c in section["comparisons"]
    ]
    # The sample-ratio check expects the shares the waves dealt, not the design's.
    assert metrics["srm"]["mismatch"] is False
    html = (waves_run / "report.html").read_text(encoding="utf-8")
    assert "Adaptive waves" in html and "Incremental lift of the program" in html
    assert "3 adaptive waves: decide on the stratified estimate" in html
    assert "Decided on CUPED-adjusted estimates" not in html


@pytest.mark.slow
def test_simulated_waves_refuse_an_engagement_file(waves_run: Path, tmp_path: Path) -> None:
    events = tmp_path / "engagement.csv"
    events.write_bytes((waves_run / "engagement.csv").read_bytes())
    result = invoke("run", "--resume", str(waves_run), "--engagement", str(events), "-q")
    assert result.exit_code == 1
    assert "adaptive waves (3) with an engagement file" in result.output
    assert "not started with --await-engagement" in result.output
    assert "Traceback" not in result.output
    # Refused before any stage ran: the completed run is left as it was.
    assert json.loads((waves_run / "manifest.json").read_text())["status"] == "completed"


def test_waves_with_an_engagement_file_but_no_await_are_refused_before_any_stage(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.csv"
    events.write_text("customer_id,opened,clicked,converted\nC000001,1,0,0\n")
    run = tmp_path / "run"
    result = invoke("run", "--out", str(run), "--waves", "2", "--engagement", str(events))
    assert result.exit_code == 1
    assert "adaptive waves (2) with an engagement file" in result.output
    assert "--await-engagement" in result.output
    assert not (run / "segments.csv").exists()


def test_more_waves_than_the_customers_allow_is_one_clear_error(
    tmp_path: Path, customers_csv: Path
) -> None:
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(60)
    frame.to_csv(customers_csv, index=False)
    result = invoke(
        "run", "--out", str(tmp_path / "run"), "--customers", str(customers_csv),
        "--waves", "40", "-q",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "experiment.waves.count 40" in result.output
    assert "use fewer waves" in result.output
    assert "Traceback" not in result.output


def test_one_wave_writes_no_wave_column_and_no_waves_file(
    tmp_path: Path, customers_csv: Path
) -> None:
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(80)
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    result = invoke("run", "--out", str(run), "--customers", str(customers_csv), "--waves", "1")
    assert result.exit_code == 0, result.output
    assert not (run / "waves.json").exists()
    assert "wave" not in pd.read_csv(run / "assignments.csv", nrows=1).columns
    assert "waves" not in json.loads((run / "metrics.json").read_text())
