"""Adding a metric over the existing counts takes one file: this one.

The metric is registered here, named in ``analysis.secondary_metrics`` of a
config folder made with ``cpo init``, and ``cpo run`` on the bundled sample
data analyses it (metrics.json), simulates its true rate
(engagement_report.json), plans its power (experiment_design.json) and
reports it (report.html).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cpo_testkit import init_config

from cpo.cli import cli
from cpo.experiment.catalog import Metric, register_metric, unregister_metric

NAME = "click_to_convert_rate"
LABEL = "Click-to-convert rate"


@pytest.fixture
def click_to_convert():
    """The new metric, registered for this module's tests only."""
    found = register_metric(
        Metric(NAME, LABEL, "Share of clickers who converted.", "converted", "clicked")
    )
    yield found
    unregister_metric(NAME)


def _config_with(
    tmp_path: Path,
    secondary: list[str],
    baselines: dict[str, float] | None = None,
    primary: str | None = None,
) -> Path:
    """A ``cpo init`` folder with these metrics (and configured baselines)."""

    def edit(document: dict) -> None:
        document["analysis"]["secondary_metrics"] = secondary
        if primary is not None:
            document["analysis"]["primary_metric"] = primary
        if baselines is not None:
            document["experiment"]["power"]["baseline_rates"] = baselines

    return init_config(tmp_path, edit)


@pytest.mark.slow
def test_a_registered_metric_is_analysed_simulated_and_reported(tmp_path: Path, click_to_convert):
    config = _config_with(tmp_path, ["open_rate", NAME], baselines={NAME: 0.25})
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(run), "--config", str(config), "-q"])
    assert result.exit_code == 0, result.output

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    for arm in metrics["arms"].values():
        counts = arm["counts"]
        expected = counts["converted"] / counts["clicked"] if counts["clicked"] else None
        assert arm["metrics"][NAME] == expected
        assert arm["intervals"][NAME]["method"] == "wilson"
    records = [r for r in metrics["lift_analysis"] if r["metric"] == NAME]
    assert len(records) == len(metrics["arms"]) - 1
    for record in records:
        trials = record["counts"]["treatment"]["trials"]
        assert trials == metrics["arms"][record["treatment_arm"]]["counts"]["clicked"]
        assert record["statistical_significance"]["adjustment"] == "benjamini-hochberg"

    design = json.loads((run / "experiment_design.json").read_text(encoding="utf-8"))
    planned = design["power"]["metrics"][NAME]
    # As configured; the estimated baseline is tested in tests/experiment/test_catalog.py.
    assert planned["baseline"] == 0.25
    click_n = next(iter(design["power"]["metrics"]["click_rate"]["by_arm"].values()))["n_per_arm"]
    own_n = next(iter(planned["by_arm"].values()))["n_per_arm"]
    # Measured among clickers only: the planned n is the click baseline's share.
    click_baseline = design["power"]["metrics"]["click_rate"]["baseline"]
    assert own_n == pytest.approx(click_n * click_baseline, abs=1e-3)

    engagement = json.loads((run / "engagement_report.json").read_text(encoding="utf-8"))
    truth = engagement["model"]["true_effects"]
    assert 0 < truth["control"][NAME] < 1
    assert all(NAME in arm for arm in truth["arms"].values())

    html = (run / "report.html").read_text(encoding="utf-8")
    assert LABEL in html


@pytest.mark.slow
def test_a_registered_metric_can_be_the_primary_metric(tmp_path: Path, click_to_convert):
    config = _config_with(tmp_path, ["open_rate", "click_rate"], primary=NAME)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(run), "--config", str(config), "-q"])
    assert result.exit_code == 0, result.output

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["primary_metric"] == NAME
    records = [r for r in metrics["lift_analysis"] if r["metric"] == NAME]
    assert records and all(r["statistical_significance"]["adjustment"] == "holm" for r in records)
    design = json.loads((run / "experiment_design.json").read_text(encoding="utf-8"))
    assert design["power"]["primary_metric"] == NAME
    # Estimated: converted / clicked at baseline is conversion_per_click (0.10 by default).
    assert design["power"]["metrics"][NAME]["baseline"] == pytest.approx(0.10)
    moderators = json.loads((run / "moderators.json").read_text(encoding="utf-8"))
    assert moderators["metric"] == NAME and moderators["result"]["outcome"] == "converted"
    # Among clickers only: the model's recipients are the arms' clickers.
    clickers = {arm: a["counts"]["clicked"] for arm, a in metrics["arms"].items()}
    assert moderators["result"]["n_control"] == clickers["control"]
    assert moderators["result"]["n_treatment"] == sum(clickers.values()) - clickers["control"]
    html = (run / "report.html").read_text(encoding="utf-8")
    assert LABEL in html


def test_an_unknown_metric_name_is_one_clear_config_error(tmp_path: Path, click_to_convert):
    config = _config_with(tmp_path, ["open_rate", "click_to_buy_rate"])
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "run"), "--config", str(config)]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "experiment_config.yaml" in result.output
    assert "analysis.secondary_metrics.1" in result.output
    assert f"'click_to_open_rate' or '{NAME}'" in result.output
    assert "'click_to_buy_rate'" in result.output


def test_a_baseline_of_an_unknown_metric_is_one_clear_config_error(
    tmp_path: Path, click_to_convert
):
    config = _config_with(tmp_path, [NAME], baselines={NAME: 0.25, "bounce_rate": 0.1})
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "run"), "--config", str(config)]
    )
    assert result.exit_code == 1
    assert "experiment.power.baseline_rates" in result.output
    assert "unknown key(s) bounce_rate; expected metric names" in result.output
    assert "Traceback" not in result.output
    assert NAME in result.output
