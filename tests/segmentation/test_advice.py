"""Segments under 1% of customers: warnings that name thresholds from the data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.sample_data.customers import generate_customers
from cpo.segmentation import segment
from cpo.segmentation.settings import SegmentationSettings

TRY = re.compile(r"try `value: \{quantile: ([0-9.]+)\}` or ([0-9.]+)")


def settings(rules: list[dict], **extra) -> SegmentationSettings:
    return SegmentationSettings.model_validate({"method": "rules", "rules": rules, **extra})


@pytest.fixture(scope="module")
def recent_customers() -> pd.DataFrame:
    """Customers who all engaged in the last 40 days (an app with daily users)."""
    frame = generate_customers(400, seed=5)
    rng = np.random.default_rng(5)
    frame["last_engagement_days"] = rng.integers(0, 41, len(frame))
    return frame


def at_risk_rules(threshold: object) -> list[dict]:
    return [
        {
            "name": "At-Risk",
            "conditions": [{"column": "last_engagement_days", "op": ">=", "value": threshold}],
        }
    ]


def test_empty_segment_names_the_quantile_that_would_fill_it(recent_customers: pd.DataFrame):
    result = segment(recent_customers, settings(at_risk_rules(90)))
    (warning,) = [w for w in result.warnings if "'At-Risk'" in w]
    q75 = float(np.quantile(recent_customers["last_engagement_days"], 0.75))
    shown = f"{q75:g}"
    assert warning.startswith(
        "segment 'At-Risk' is empty: no customer matched it; "
        "last_engagement_days >= 90 matches none (values run from 0 to 40); "
        f"its 75th percentile is {shown} — try `value: {{quantile: 0.75}}` or {shown}"
    )
    # The promised share is what the suggested rule really gives.
    promised = float(re.search(r"would then hold ([0-9.]+)%", warning).group(1))
    fixed = segment(recent_customers, settings(at_risk_rules({"quantile": 0.75})))
    share = {p.name: p.share for p in fixed.profiles}["At-Risk"]
    assert promised == pytest.approx(100 * share, abs=0.051)  # printed to 0.1%
    assert share >= 0.10
    assert not [w for w in fixed.warnings if "'At-Risk'" in w]


def test_tiny_segment_gets_advice_and_the_share_warning(recent_customers: pd.DataFrame):
    frame = recent_customers.copy()
    frame["last_engagement_days"] = np.minimum(frame["last_engagement_days"], 39)
    frame.loc[[3, 77], "last_engagement_days"] = 45
    result = segment(frame, settings(at_risk_rules(40)))
    advice = [w for w in result.warnings if "under 1%" in w]
    assert len(advice) == 1
    assert advice[0].startswith(
        "segment 'At-Risk' holds 2 customers (0.5%, under 1%): "
        "last_engagement_days >= 40 matches 2 (0.5%); its 75th percentile is "
    )
    assert TRY.search(advice[0])
    # min_share_warning keeps working as before, next to the advice.
    assert any("(< 10%); its results will be imprecise" in w for w in result.warnings)


def test_advice_loosens_only_the_conditions_that_block():
    frame = generate_customers(600, seed=8)
    rules = [
        {
            "name": "Whales",
            "conditions": [
                {"column": "avg_order_value", "op": ">=", "value": 10_000},
                {"column": "purchase_frequency", "op": ">=", "value": 0},
            ],
        }
    ]
    result = segment(frame, settings(rules))
    (warning,) = [w for w in result.warnings if "'Whales'" in w]
    assert "avg_order_value >= 10000 matches none" in warning
    assert "purchase_frequency" not in warning  # it matches everyone: not the problem
    level, value = TRY.search(warning).groups()
    assert float(value) == pytest.approx(
        np.quantile(frame["avg_order_value"], float(level)), abs=1e-4
    )


def test_between_gets_a_central_quantile_pair(recent_customers: pd.DataFrame):
    rules = [
        {
            "name": "Band",
            "conditions": [{"column": "last_engagement_days", "op": "between", "value": [50, 60]}],
        }
    ]
    (warning,) = segment(recent_customers, settings(rules)).warnings[-1:]
    assert "its 37.5th-62.5th percentiles are" in warning
    assert "try `value: [{quantile: 0.375}, {quantile: 0.625}]`" in warning


def test_text_only_rule_suggests_kmeans(recent_customers: pd.DataFrame):
    rules = [{"name": "Platinum", "conditions": [{"column": "tier", "op": "==", "value": "Plat"}]}]
    (warning,) = [w for w in segment(recent_customers, settings(rules)).warnings if "Plat" in w]
    assert warning.startswith("segment 'Platinum' is empty: no customer matched it; ")
    assert warning.endswith("change the rule or try `--method kmeans`")


def test_rule_shadowed_by_an_earlier_rule_says_so():
    frame = generate_customers(300, seed=4)
    rules = [
        {"name": "Everyone", "conditions": [{"column": "age", "op": ">=", "value": 0}]},
        {"name": "Seniors", "conditions": [{"column": "age", "op": ">=", "value": 60}]},
    ]
    result = segment(frame, settings(rules))
    (warning,) = [w for w in result.warnings if "'Seniors'" in w]
    seniors = int((frame["age"] >= 60).sum())
    assert f"earlier rules take {seniors} of the customers it matches (move it up)" in warning
    assert "try `--method kmeans`" in warning
    (starved,) = [w for w in result.warnings if "'Standard'" in w]
    assert "'Everyone' alone 100.0%" in starved and "--method kmeans" in starved


def test_cli_prints_the_advice_as_a_warning(tmp_path: Path, recent_customers: pd.DataFrame):
    path = tmp_path / "customers.csv"
    old_style = recent_customers.copy()
    old_style["last_engagement_days"] = old_style["last_engagement_days"] // 10
    old_style.to_csv(path, index=False)
    config = tmp_path / "config"
    assert CliRunner().invoke(cli, ["init", str(config)]).exit_code == 0
    yaml_file = config / "experiment_config.yaml"
    text = yaml_file.read_text("utf-8")
    text = text.replace(
        '{column: last_engagement_days, op: ">=", value: {quantile: 0.75}}',
        '{column: last_engagement_days, op: ">=", value: 90}',
    )
    yaml_file.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["segment", str(path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning: segment 'At-Risk' is empty: no customer matched it; " in result.stderr
    assert "last_engagement_days >= 90 matches none (values run from 0 to 4)" in result.stderr
    assert "try `value: {quantile: 0.75}`" in result.stderr
