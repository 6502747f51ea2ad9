"""``cpo analyze`` and ``cpo run`` show the CUPED-adjusted lifts beside the unadjusted ones.

The adjusted values are checked against statsmodels' OLS
``y ~ C(arm) * (x - x̄)`` with ``cov_type="HC2"`` (Lin 2013; Deng et al. 2013),
computed here on the same joined data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import yaml
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment.cuped import expected_reduction
from cpo.sample_data import bundled_customers


def _engagement(tmp_path: Path) -> Path:
    """Bundled customers in two arms; clicks follow each customer's historical click rate."""
    customers = pd.read_csv(bundled_customers())
    rng = np.random.default_rng(7)
    arm = np.where(np.arange(len(customers)) % 2 == 0, "control", "treatment_1")
    p_click = np.clip(
        1.5 * customers["historical_click_rate"] * np.where(arm == "control", 1, 1.4), 0, 1
    )
    clicked = (rng.random(len(customers)) < p_click).astype(int)
    opened = np.maximum(clicked, (rng.random(len(customers)) < customers["historical_open_rate"]))
    frame = pd.DataFrame({
        "customer_id": customers["customer_id"], "experiment_arm": arm,
        "opened": opened.astype(int), "clicked": clicked, "converted": 0,
    })  # fmt: skip
    path = tmp_path / "engagement.csv"
    frame.to_csv(path, index=False)
    return path


def _config(tmp_path: Path, **analysis: object) -> Path:
    folder = tmp_path / "config"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["analysis"].update(analysis)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _reference(engagement: Path, column: str) -> tuple[float, float]:
    """statsmodels: the treatment coefficient and its HC2 standard error on click rate."""
    data = pd.read_csv(engagement).merge(pd.read_csv(bundled_customers()), on="customer_id")
    data["xc"] = data[column] - data[column].mean()
    data["y"] = data["clicked"].astype(float)
    fit = smf.ols("y ~ C(experiment_arm, Treatment('control')) * xc", data).fit(cov_type="HC2")
    term = "C(experiment_arm, Treatment('control'))[T.treatment_1]"
    return float(fit.params[term]), float(fit.bse[term])


def test_analyze_with_customers_adds_the_adjusted_lifts(tmp_path: Path) -> None:
    """--json carries both estimates; the adjusted one equals statsmodels HC2 to 1e-8."""
    engagement = _engagement(tmp_path)
    result = CliRunner().invoke(
        cli, ["analyze", str(engagement), "--customers", str(bundled_customers()), "--json"]
    )
    assert result.exit_code == 0, result.output
    section = json.loads(result.output)["regression_adjustment"]
    assert section["setting"] == "cuped" and section["used_for_decision"] is True
    click = next(c for c in section["comparisons"] if c["metric"] == "click_rate")
    difference, error = _reference(engagement, "historical_click_rate")
    assert click["adjusted"]["difference"] == pytest.approx(difference, abs=1e-8)
    assert click["adjusted"]["standard_error"] == pytest.approx(error, abs=1e-8)
    assert click["variance_reduction"] > 0.05  # clicks were drawn from the covariate
    unadjusted = json.loads(result.output)["lift_analysis"][0]
    assert click["unadjusted"]["difference"] == pytest.approx(unadjusted["lift_absolute"])


def test_analyze_prints_both_and_says_which_one_decides(tmp_path: Path) -> None:
    """The terminal output has the CUPED table and the decision sentence."""
    engagement = _engagement(tmp_path)
    result = CliRunner().invoke(
        cli, ["analyze", str(engagement), "--customers", str(bundled_customers())]
    )
    assert result.exit_code == 0, result.output
    assert "Regression adjustment (CUPED, HC2 errors)" in result.output
    assert "unadjusted [CI]" in result.output and "var. reduction" in result.output
    assert "The decision on click_rate uses the CUPED-adjusted estimates" in result.output


def test_variance_reduction_none_keeps_the_unadjusted_decision(tmp_path: Path) -> None:
    """analysis.variance_reduction: none reports the adjusted lifts but does not decide on them."""
    engagement = _engagement(tmp_path)
    config = _config(tmp_path, variance_reduction="none")
    result = CliRunner().invoke(
        cli,
        ["analyze", str(engagement), "--customers", str(bundled_customers()),
         "--config", str(config), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    section = json.loads(result.output)["regression_adjustment"]
    assert section["used_for_decision"] is False and section["comparisons"]
    assert (
        "uses the unadjusted estimates (analysis.variance_reduction: none)" in section["decision"]
    )


def test_a_covariate_missing_from_the_customers_is_noted(tmp_path: Path) -> None:
    """A configured column the customer data lacks: the metric is left unadjusted, with a note."""
    engagement = _engagement(tmp_path)
    config = _config(tmp_path, covariates={"click_rate": ["lifetime_clicks"]})
    result = CliRunner().invoke(
        cli,
        ["analyze", str(engagement), "--customers", str(bundled_customers()),
         "--config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "click_rate: covariate(s) lifetime_clicks not in the customer data" in result.output
    assert "uses the unadjusted estimates" in result.output


def test_a_bad_covariates_key_is_one_clear_config_error(tmp_path: Path) -> None:
    """analysis.covariates names metrics; anything else fails with the key and no traceback."""
    config = _config(tmp_path, covariates={"revenue": ["historical_click_rate"]})
    result = CliRunner().invoke(
        cli, ["analyze", str(_engagement(tmp_path)), "--config", str(config)]
    )
    assert result.exit_code == 1
    assert "analysis.covariates" in result.output and "Traceback" not in result.output


def test_without_customer_data_the_section_says_why(tmp_path: Path) -> None:
    """No --customers and no run folder: nothing is adjusted, and the reason names the flag."""
    result = CliRunner().invoke(cli, ["analyze", str(_engagement(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    section = json.loads(result.output)["regression_adjustment"]
    assert section["comparisons"] == [] and "--customers" in section["reason"]


@pytest.mark.slow
def test_cpo_run_summary_and_metrics_carry_both(tmp_path: Path) -> None:
    """cpo run on the bundled data: metrics.json and the manifest's summary show both estimates."""
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    section = metrics["regression_adjustment"]
    assert {c["metric"] for c in section["comparisons"]} == {
        metrics["primary_metric"],
        *metrics["secondary_metrics"],
    }
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    analysis = manifest["analysis"]
    assert [r["estimate"] for r in analysis["results"]] == ["cuped"] * 3
    assert [r["estimate"] for r in analysis["other_results"]] == ["unadjusted"] * 3
    assert "[CUPED-adjusted; unadjusted: treatment_1" in manifest["stages"]["analyze"]["summary"]
    # The design planned for it: the primary metric's MDE with the expected reduction.
    design = json.loads((run_dir / "experiment_design.json").read_text(encoding="utf-8"))
    planned = design["power"]["metrics"]["click_rate"]
    customers = pd.read_csv(bundled_customers())
    expected = expected_reduction(customers, "click_rate", ["historical_click_rate"])
    assert design["power"]["variance_reduction"] == "cuped"
    assert planned["cuped"]["variance_reduction"] == pytest.approx(expected["variance_reduction"])
    assert planned["cuped"]["mde_relative"] < planned["mde_relative"]
    underpowered = next(w for w in design["warnings"] if w["code"] == "underpowered")
    assert "variance reduction CUPED can be expected to give" in underpowered["message"]


def test_metrics_document_reads_the_section_and_documents_without_it(tmp_path: Path) -> None:
    """The typed document round-trips the section; an older metrics.json without it still reads."""
    from cpo.experiment.results import MetricsDocument

    engagement = _engagement(tmp_path)
    result = CliRunner().invoke(
        cli, ["analyze", str(engagement), "--customers", str(bundled_customers()), "--json"]
    )
    data = json.loads(result.output)
    document = MetricsDocument.from_dict(data)
    assert document.to_dict() == data
    assert document.regression_adjustment is not None
    summary = document.summary()
    assert [r.estimate for r in summary.results] == ["cuped"]
    assert [r.estimate for r in summary.other_results] == ["unadjusted"]
    del data["regression_adjustment"]
    older = MetricsDocument.from_dict(data)
    assert older.regression_adjustment is None
    assert [r.estimate for r in older.summary().results] == ["unadjusted"]
    assert older.summary().other_results == ()


def test_an_export_joined_to_the_assignments_is_adjusted_the_same(tmp_path: Path) -> None:
    """--assignments: the joined per-recipient export gives the same adjusted estimates."""
    engagement = _engagement(tmp_path)
    frame = pd.read_csv(engagement)
    assignments = tmp_path / "assignments.csv"
    frame.assign(segment="all")[["customer_id", "segment", "experiment_arm"]].to_csv(
        assignments, index=False
    )
    export = tmp_path / "export.csv"
    frame[["customer_id", "opened", "clicked", "converted"]].to_csv(export, index=False)
    customers = str(bundled_customers())
    direct = CliRunner().invoke(
        cli, ["analyze", str(engagement), "--customers", customers, "--json"]
    )
    joined = CliRunner().invoke(
        cli,
        ["analyze", str(export), "--assignments", str(assignments), "--customers", customers,
         "--json"],
    )  # fmt: skip
    assert joined.exit_code == 0, joined.output
    first = json.loads(direct.output)["regression_adjustment"]["comparisons"]
    second = json.loads(joined.output)["regression_adjustment"]["comparisons"]
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        assert a["adjusted"] == pytest.approx(b["adjusted"], abs=1e-12)


def test_an_invalid_customer_file_is_one_clear_error(tmp_path: Path) -> None:
    """--customers is validated as cpo run validates it: exit 1, the file and the fix named."""
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,historical_click_rate\nC000001,0.1\n", encoding="utf-8")
    engagement = _engagement(tmp_path)
    result = CliRunner().invoke(cli, ["analyze", str(engagement), "--customers", str(customers)])
    assert result.exit_code == 1
    assert "customers.csv: missing required column(s)" in result.output
    assert "fix:" in result.output and "Traceback" not in result.output
