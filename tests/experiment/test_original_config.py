"""calculate_metrics as users of the original specification call it.

The original's users pass the experiment_config dict they already have; cpo
uses what maps (name, id, metrics, alpha, power, MDE, allocation), lists the
rest in a ``config_keys_ignored`` warning, and still rejects unknown keys.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cpo.errors import ConfigError
from cpo.experiment import calculate_metrics
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.original_config import metric_name, translate


def four_records():
    """Control opened 1 of 2, treatment_1 opened 2 of 2; no segment column."""
    return [
        {"experiment_arm": "control", "opened": 1, "clicked": 0, "converted": 0},
        {"experiment_arm": "control", "opened": 0, "clicked": 0, "converted": 0},
        {"experiment_arm": "treatment_1", "opened": 1, "clicked": 0, "converted": 0},
        {"experiment_arm": "treatment_1", "opened": 1, "clicked": 0, "converted": 0},
    ]


def recipients(arm, sent, clicked, opened):
    return [
        {"experiment_arm": arm, "opened": int(i < opened), "clicked": int(i < clicked),
         "converted": 0, "segment": "Anglers"}
        for i in range(sent)
    ]  # fmt: skip


def lift(metrics, metric, arm="treatment_1"):
    return next(
        r for r in metrics["lift_analysis"] if r["metric"] == metric and r["treatment_arm"] == arm
    )


def ignored_warning(metrics):
    return [w for w in metrics["warnings"] if w["code"] == "config_keys_ignored"]


ORIGINAL = {
    "experiment": {
        "name": "Spring kayak tone test",
        "description": "Three tones against the generic email",
        "experiment_id": "exp-2025-017",
        "design": "A/B/n",
        "sample_allocation": {"control": 0.5, "treatment_1": 0.5},
        "arms": [{"name": "control"}, {"name": "treatment_1", "tone": "urgent"}],
    },
    "metrics": {"primary": "open_rate", "secondary": ["ctr", "conversion_rate"]},
    "statistical_testing": {"alpha": 0.10, "power": 0.9, "minimum_detectable_effect": 0.25},
}


def test_the_original_call_works_with_records_without_segment():
    metrics = calculate_metrics(four_records(), {"experiment": {"name": "test"}})
    assert metrics["arms"]["control"]["metrics"]["open_rate"] == 0.5
    assert metrics["arms"]["treatment_1"]["metrics"]["open_rate"] == 1.0
    assert lift(metrics, "open_rate")["lift_percent"] == pytest.approx(100.0)
    assert metrics["experiment_name"] == "test"
    assert [entry["segment"] for entry in metrics["segment_breakdown"]] == ["all"]
    assert ignored_warning(metrics) == []  # the name was used, nothing ignored


def test_a_full_original_config_maps_what_it_can():
    records = recipients("control", 200, 20, 60) + recipients("treatment_1", 200, 30, 80)
    metrics = calculate_metrics(records, ORIGINAL)
    assert metrics["experiment_name"] == "Spring kayak tone test"
    assert metrics["experiment_id"] == "exp-2025-017"
    assert metrics["primary_metric"] == "open_rate"
    assert metrics["secondary_metrics"] == ["click_rate", "conversion_rate"]
    assert metrics["alpha"] == 0.10
    assert metrics["confidence_level"] == pytest.approx(0.90)
    assert metrics["power"]["expected_relative_lift"] == 0.25
    assert metrics["srm"]["expected_from"] == "sample_allocation"
    # The primary metric is Holm-adjusted, the secondaries BH-adjusted, at alpha 0.10.
    assert lift(metrics, "open_rate")["statistical_significance"]["adjustment"] == "holm"
    (warning,) = ignored_warning(metrics)
    for key in ("experiment.description", "experiment.design", "experiment.arms"):
        assert key in warning["message"]
    assert "experiment.name" not in warning["message"]


def test_alpha_changes_the_decision_and_the_interval_level():
    # 30/200 vs 46/200 clicks: two-sided p is between 0.01 and 0.10.
    records = recipients("control", 200, 30, 60) + recipients("treatment_1", 200, 46, 80)
    loose = calculate_metrics(records, {"statistical_testing": {"alpha": 0.10}})
    strict = calculate_metrics(records, {"statistical_testing": {"alpha": 0.01}})
    p = lift(loose, "click_rate")["statistical_significance"]["p_value"]
    assert 0.01 < p < 0.10
    assert lift(loose, "click_rate")["statistical_significance"]["significant"] is True
    assert lift(strict, "click_rate")["statistical_significance"]["significant"] is False
    assert strict["confidence_level"] == pytest.approx(0.99)
    loose_ci = lift(loose, "click_rate")["statistical_significance"]["confidence_interval"]
    strict_ci = lift(strict, "click_rate")["statistical_significance"]["confidence_interval"]
    assert strict_ci["lower"] < loose_ci["lower"] and strict_ci["upper"] > loose_ci["upper"]


def test_original_keys_at_top_level_and_a_dataframe():
    frame = pd.DataFrame(four_records())
    config = {
        "experiment_id": "abc",
        "description": "top-level form",
        "metrics": {"primary": "opens"},
    }
    metrics = calculate_metrics(frame, config)
    assert metrics["experiment_id"] == "abc"
    assert metrics["primary_metric"] == "open_rate"
    assert "click_rate" in metrics["secondary_metrics"]
    assert "description" in ignored_warning(metrics)[0]["message"]


def test_cpo_keys_still_work_and_win_over_the_original_ones():
    config = {
        "experiment": {"name": "mixed", "holdout_share": 0.0},
        "analysis": {"alpha": 0.02},
        "statistical_testing": {"alpha": 0.2},
    }
    metrics = calculate_metrics(four_records(), config)
    assert metrics["alpha"] == 0.02
    assert metrics["experiment_name"] == "mixed"
    assert calculate_metrics(four_records(), {"alpha": 0.01})["alpha"] == 0.01
    assert calculate_metrics(four_records(), AnalysisSettings(alpha=0.2))["alpha"] == 0.2


def test_unknown_keys_still_fail_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        calculate_metrics(four_records(), {"experiment": {"name": "t"}, "colour": "blue"})
    assert "colour" in str(caught.value) and "docs/api.md" in str(caught.value.hint)
    with pytest.raises(ConfigError, match="experiment.tonez"):
        calculate_metrics(four_records(), {"experiment": {"name": "t", "tonez": ["urgent"]}})


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"metrics": {"primary": "revenue"}}, "metrics.primary"),
        ({"statistical_testing": {"alpha": "five percent"}}, "statistical_testing.alpha"),
        ({"statistical_testing": "strict"}, "statistical_testing"),
        ({"statistical_testing": {"alpha": 0.7}}, "alpha"),
    ],
)
def test_bad_original_values_fail_naming_the_key(config, key):
    with pytest.raises(ConfigError, match=key):
        calculate_metrics(four_records(), config)


def test_allocation_that_does_not_name_arms_is_ignored_not_guessed():
    config = {"experiment": {"sample_allocation": {"A": 50, "B": 50}}}
    translation = translate(config)
    assert translation.allocation is None
    assert translation.ignored == ["experiment.sample_allocation"]
    metrics = calculate_metrics(four_records(), config)
    assert metrics["srm"]["expected_from"] == "equal allocation"


def test_primary_listed_again_as_secondary_is_dropped():
    config = {"metrics": {"primary": "click_rate", "secondary": ["click_rate", "open_rate"]}}
    assert translate(config).config["analysis"]["secondary_metrics"] == ["open_rate"]


def test_metric_aliases():
    assert metric_name("CTR", "k") == "click_rate"
    assert metric_name("Click-Through Rate", "k") == "click_rate"
    assert metric_name("conversions", "k") == "conversion_rate"


def test_sample_allocation_sets_expected_shares_and_arm_order():
    records = (
        recipients("treatment_10", 30, 3, 9)
        + recipients("control", 60, 3, 12)
        + recipients("treatment_2", 30, 4, 10)
    )
    allocation = {"treatment_10": 1, "control": 2, "treatment_2": 1}
    metrics = calculate_metrics(records, {"experiment": {"sample_allocation": allocation}})
    assert list(metrics["arms"]) == ["control", "treatment_2", "treatment_10"]
    assert metrics["srm"]["expected_shares"] == {
        "control": 0.5, "treatment_2": 0.25, "treatment_10": 0.25,
    }  # fmt: skip
    assert metrics["srm"]["mismatch"] is False
