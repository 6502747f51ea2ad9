"""The pipeline check on simulated engagement: estimates beside the simulator's truth."""

from __future__ import annotations

import pytest

from cpo.reporting.simulated import TruthCheck, control_sentence, coverage_sentence


def metrics_with_control(clicked: int, sent: int) -> dict:
    """A metrics.json fragment with only the control arm's counts."""
    counts = {"sent": sent, "opened": sent, "clicked": clicked, "converted": 0}
    return {"control_arm": "control", "arms": {"control": {"counts": counts}}}


def truth(click_rate: float) -> dict:
    """An engagement_report.json ``true_effects`` fragment."""
    return {"control": {"click_rate": click_rate}, "arms": {"treatment_1": {}}}


def test_control_sentence_gives_the_exact_binomial_chance_of_the_draw():
    # Two-sided exact binomial test of 0 successes in 10 at p = 0.5:
    # P = 2 * 0.5**10 = 0.001953 (by hand; R: binom.test(0, 10, 0.5)$p.value).
    sentence = control_sentence(metrics_with_control(0, 10), truth(0.5), "click_rate")
    assert sentence is not None
    assert "0 of 10" in sentence and "50.0%" in sentence
    assert "0.2% of the time" in sentence


def test_a_typical_control_draw_is_common():
    # 40 of 100 at p = 0.4 is the mode: the two-sided p-value is 1.
    sentence = control_sentence(metrics_with_control(40, 100), truth(0.4), "click_rate")
    assert sentence is not None and "100.0% of the time" in sentence


@pytest.mark.parametrize(
    ("metrics", "effects"),
    [
        (metrics_with_control(3, 0), truth(0.1)),  # empty control
        (metrics_with_control(3, 30), None),  # truth not recorded (older run)
        (metrics_with_control(3, 30), {"control": {}, "arms": {}}),
    ],
)
def test_control_sentence_is_none_without_data(metrics, effects):
    assert control_sentence(metrics, effects, "click_rate") is None


def check(covered: bool) -> TruthCheck:
    """A truth check whose interval does or does not contain the true effect."""
    true = 0.01 if covered else 0.2
    return TruthCheck("t", "click_rate", 0.02, 0.0, 0.05, true, 0.1)


def test_several_misses_point_at_the_shared_control():
    text = coverage_sentence([check(False), check(False), check(True)], 0.95)
    assert text is not None and text.startswith("1 of 3 interval(s)")
    assert "shares the control arm" in text


def test_one_miss_does_not_blame_the_control():
    text = coverage_sentence([check(False), check(True), check(True)], 0.95)
    assert text is not None and "shares the control" not in text


def _lift_record(arm: str, lift: float, lower: float, upper: float) -> dict:
    return {
        "metric": "click_rate", "treatment_arm": arm, "lift_absolute": lift,
        "statistical_significance": {"confidence_interval": {"lower": lower, "upper": upper}},
    }  # fmt: skip


def test_truth_check_of_adaptive_waves_uses_the_wave_stratified_estimate():
    """With waves the decision's estimate (stratified) is checked, not the pooled lift."""
    from cpo.reporting.simulated import truth_checks

    truth = {"arms": {"treatment_1": {"click_rate": {"lift_absolute": 0.0, "lift_relative": 0.0}}}}
    metrics = {"lift_analysis": [_lift_record("treatment_1", 0.08, 0.01, 0.15)]}
    (pooled,) = truth_checks(metrics, truth, "click_rate")
    assert (pooled.estimate, pooled.covered) == (0.08, False)
    metrics["waves"] = {
        "metric": "click_rate",
        "comparisons": [
            {"arm": "treatment_1", "difference": 0.03, "ci_lower": -0.02, "ci_upper": 0.08}
        ],
    }
    (stratified,) = truth_checks(metrics, truth, "click_rate")
    assert (stratified.estimate, stratified.lower, stratified.upper) == (0.03, -0.02, 0.08)
    assert stratified.covered is True
    (other_metric,) = truth_checks(
        {
            **metrics,
            "lift_analysis": [
                {**_lift_record("treatment_1", 0.5, 0.4, 0.6), "metric": "open_rate"}
            ],
        },
        {"arms": {"treatment_1": {"open_rate": {"lift_absolute": 0.5}}}},
        "open_rate",
    )
    assert other_metric.estimate == 0.5
