"""The experiment design: arms, allocation, renormalization when variants cannot be sent, power."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from cpo.errors import StageError
from cpo.experiment import stats
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.design import (
    apportion,
    build_arms,
    build_design,
    estimate_baselines,
    experiment_salt,
    resolve_tones,
)
from cpo.experiment.settings import ExperimentSettings, PowerSettings

TONES = ["urgent", "informational", "friendly"]
BASELINES = {
    "open_rate": 0.25,
    "click_rate": 0.04,
    "conversion_rate": 0.004,
    "click_to_open_rate": 0.16,
}


@pytest.fixture
def design_for(xkit):
    """Build a design for segment sizes, with statuses overriding 'pass' by variant id."""

    def build(sizes, statuses=None, settings=None, variants=None, analysis=None):
        variants = variants or xkit.variant_set(list(sizes))
        return _design(sizes, variants, xkit.decisions_for(variants, statuses), settings, analysis)

    return build


def _design(sizes, variants, decisions, settings=None, analysis=None):
    return build_design(
        experiment_name="test",
        settings=settings or ExperimentSettings(),
        tones=TONES,
        segment_sizes=sizes,
        variants=variants,
        decisions=decisions,
        salt="salt",
        analysis=analysis or AnalysisSettings(),
        baselines=BASELINES,
    )


def test_default_arms_are_control_plus_one_per_tone_with_equal_allocation():
    arms = build_arms(ExperimentSettings(), TONES)
    assert [(a.name, a.tone) for a in arms] == [
        ("control", "control"),
        ("treatment_1", "urgent"),
        ("treatment_2", "informational"),
        ("treatment_3", "friendly"),
    ]
    assert [a.weight for a in arms] == [0.25] * 4


def test_allocation_weights_are_normalized_and_missing_arms_get_zero():
    settings = ExperimentSettings(allocation={"control": 2, "treatment_1": 1, "treatment_3": 1})
    weights = {a.name: a.weight for a in build_arms(settings, TONES)}
    assert weights == {"control": 0.5, "treatment_1": 0.25, "treatment_2": 0.0, "treatment_3": 0.25}


def test_allocation_naming_an_arm_the_tones_do_not_create_is_an_error():
    settings = ExperimentSettings(allocation={"control": 1, "treatment_4": 1})
    with pytest.raises(StageError, match="treatment_4"):
        build_arms(settings, TONES)


@pytest.mark.parametrize(
    "allocation, message",
    [({"treatment_1": 1}, "control"), ({"control": 1, "arm_b": 1}, "not an arm")],
)
def test_allocation_is_validated_in_config(allocation, message):
    with pytest.raises(ValueError, match=message):
        ExperimentSettings(allocation=allocation)


def test_tones_come_from_config_then_generation_then_defaults():
    assert resolve_tones(ExperimentSettings(tones=["friendly"]), ["urgent"]) == ["friendly"]
    assert resolve_tones(ExperimentSettings(), ["urgent", "calm"]) == ["urgent", "calm"]
    assert resolve_tones(ExperimentSettings(), None) == TONES


def test_salt_defaults_to_campaign_and_seed_and_only_its_hash_is_written(design_for):
    assert experiment_salt(ExperimentSettings(), "spring", 7) == "spring:7"
    assert experiment_salt(ExperimentSettings(salt="fixed"), "spring", 7) == "fixed"
    written = design_for({"a": 40}).to_dict()
    assert "salt" not in written and len(written["salt_sha256"]) == 64
    assert "salt" not in str(written).replace("salt_sha256", "")


def test_a_blocked_variant_renormalizes_only_its_segment(design_for):
    design = design_for({"a": 90, "b": 90}, statuses={"s1-urgent": "block"})
    plan_a, plan_b = design.segments
    assert plan_a.arms_available == ["control", "treatment_1", "treatment_2", "treatment_3"]
    assert plan_b.arms_available == ["control", "treatment_2", "treatment_3"]
    assert plan_b.shares == pytest.approx(
        {"control": 1 / 3, "treatment_2": 1 / 3, "treatment_3": 1 / 3}
    )
    assert plan_b.dropped["treatment_1"].code == "blocked"
    assert plan_b.dropped["treatment_1"].variant_id == "s1-urgent"
    assert plan_b.expected_counts["treatment_1"] == 0
    assert sum(plan_b.expected_counts.values()) == 90
    assert {plan_b.expected_counts[a] for a in plan_b.arms_available} == {30}
    codes = [w["code"] for w in design.warnings]
    assert "arm_dropped_in_segment" in codes
    written = design.to_dict()["segments"][1]
    assert written["dropped"]["treatment_1"]["code"] == "blocked"
    assert written["arms_available"] == ["control", "treatment_2", "treatment_3"]


@pytest.mark.parametrize(
    "status, code",
    [("review-pending", "review-pending"), ("rejected", "rejected"), ("approved", None)],
)
def test_review_outcomes_decide_availability(status, code, design_for):
    design = design_for({"a": 40}, statuses={"s0-friendly": status})
    dropped = design.segments[0].dropped
    if code is None:
        assert "treatment_3" in design.segments[0].shares and not dropped
    else:
        assert dropped["treatment_3"].code == code


def test_failed_generation_missing_variant_and_changed_text_are_dropped(xkit):
    variants = xkit.variant_set(["a"])
    failed = [replace(v, status="failed") if v.variant_id == "s0-urgent" else v for v in variants]
    without = [v for v in failed if v.variant_id != "s0-informational"]
    decisions = xkit.decisions_for(without)
    changed = [
        replace(v, body=v.body + " edited") if v.variant_id == "s0-friendly" else v for v in without
    ]
    design = build_design(
        experiment_name="t",
        settings=ExperimentSettings(),
        tones=TONES,
        segment_sizes={"a": 30},
        variants=changed,
        decisions=decisions,
        salt="s",
        analysis=AnalysisSettings(),
        baselines=BASELINES,
    )
    dropped = design.segments[0].dropped
    assert dropped["treatment_1"].code == "generation-failed"
    assert dropped["treatment_2"].code == "missing"
    assert dropped["treatment_3"].code == "content-changed"
    assert design.segments[0].shares == {"control": 1.0}
    assert {w["code"] for w in design.warnings} >= {"arm_unavailable", "arm_dropped_in_segment"}


@pytest.mark.parametrize("status", ["block", "review-pending", "rejected"])
def test_no_experiment_without_a_sendable_control(status, design_for):
    with pytest.raises(StageError, match="control message cannot be sent"):
        design_for({"a": 40}, statuses={"control": status})


def test_missing_control_is_an_error(design_for, xkit):
    variants = [v for v in xkit.variant_set(["a"]) if v.variant_id != "control"]
    with pytest.raises(StageError, match="no control message"):
        design_for({"a": 40}, variants=variants)


@pytest.mark.parametrize(
    "total, weights, expected",
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (7, [0.5, 0.25, 0.25], [3, 2, 2]),  # quotas 3.5, 1.75, 1.75
        (0, [1, 1], [0, 0]),
        (5, [0, 1, 1], [0, 3, 2]),
    ],
)
def test_apportion_is_within_one_of_the_quota(total, weights, expected):
    counts = apportion(total, weights, list(range(len(weights))))
    assert counts == expected
    quotas = [total * w / sum(weights) for w in weights]
    assert all(abs(c - q) < 1 for c, q in zip(counts, quotas, strict=True))


def test_spare_customers_do_not_always_go_to_the_same_arm(design_for):
    # 1 spare customer per segment; a fixed tie order would give it to control every time.
    sizes = {f"seg{i}": 9 for i in range(40)}
    design = design_for(sizes)
    winners = {
        max(plan.expected_counts, key=lambda a: plan.expected_counts[a]) for plan in design.segments
    }
    assert len(winners) >= 3
    counts = design.expected_counts()
    assert counts["holdout"] == 0 and sum(counts.values()) == 360


def test_holdout_is_apportioned_first_and_excluded_from_recipient_shares(design_for):
    settings = ExperimentSettings(holdout_share=0.2)
    design = design_for({"a": 100}, settings=settings)
    counts = design.expected_counts()
    assert counts["holdout"] == 20
    assert [counts[a] for a in design.arm_names] == [20, 20, 20, 20]
    assert design.expected_shares() == pytest.approx(dict.fromkeys(design.arm_names, 0.25))


def test_hash_method_expected_counts_are_fractional_quotas(design_for):
    settings = ExperimentSettings(assignment_method="hash")
    design = design_for({"a": 10}, settings=settings)
    assert design.segments[0].expected_counts["control"] == pytest.approx(2.5)


def test_expected_shares_mix_segments_with_different_arms(design_for):
    design = design_for({"a": 100, "b": 300}, statuses={"s1-urgent": "block"})
    shares = design.expected_shares()
    assert shares["treatment_1"] == pytest.approx(25 / 400)
    assert shares["control"] == pytest.approx((25 + 100) / 400)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_design_mde_uses_stats_with_bonferroni_over_treatment_arms(design_for):
    design = design_for({"a": 4000})
    click = design.power["metrics"]["click_rate"]
    reference = stats.mde_for_n(1000, 0.04, alpha=0.05, power=0.8, n_comparisons=3)
    assert design.power["n_comparisons"] == 3
    assert click["mde_absolute"] == pytest.approx(reference.mde_absolute)
    assert click["by_arm"]["treatment_1"]["n_per_arm"] == 1000
    cto = design.power["metrics"]["click_to_open_rate"]["by_arm"]["treatment_1"]
    assert cto["n_per_arm"] == pytest.approx(1000 * 0.25)


def test_unequal_arms_use_the_harmonic_mean_of_arm_sizes(design_for):
    settings = ExperimentSettings(allocation={"control": 3, "treatment_1": 1})
    design = design_for({"a": 4000}, settings=settings)
    record = design.power["metrics"]["click_rate"]["by_arm"]["treatment_1"]
    assert record["n_per_arm"] == pytest.approx(2 / (1 / 3000 + 1 / 1000))
    assert design.power["n_comparisons"] == 1


def test_underpowered_warning_names_the_metric_and_the_expected_lift(design_for):
    small = design_for({"a": 400})
    warning = next(w for w in small.warnings if w["code"] == "underpowered")
    assert "click_rate" in warning["message"] and "10%" in warning["message"]
    big_settings = ExperimentSettings(power=PowerSettings(expected_relative_lift=5.0))
    assert not any(
        w["code"] == "underpowered" for w in design_for({"a": 400}, settings=big_settings).warnings
    )


def test_unreachable_power_is_reported_not_crashed(design_for):
    design = design_for({"a": 4})
    record = design.power["metrics"]["click_rate"]
    assert record["mde_absolute"] is None and record["reason"].startswith("unreachable")
    assert any(w["code"] == "underpowered" for w in design.warnings)


def test_baselines_estimated_from_history_or_configured():
    customers = pd.DataFrame(
        {"historical_open_rate": [0.2, 0.4], "historical_click_rate": [0.02, 0.06]}
    )
    estimated = estimate_baselines(customers, PowerSettings())
    assert estimated["open_rate"] == pytest.approx(0.3)
    assert estimated["click_rate"] == pytest.approx(0.04)
    assert estimated["conversion_rate"] == pytest.approx(0.004)
    assert estimated["click_to_open_rate"] == pytest.approx(0.04 / 0.3)
    configured = estimate_baselines(
        customers, PowerSettings(baseline_rates={"conversion_rate": 0.01})
    )
    assert configured["conversion_rate"] == 0.01


def test_design_json_is_complete_and_finite(design_for):
    written = design_for({"a": 120, "b": 80}, settings=ExperimentSettings(holdout_share=0.1))
    data = written.to_dict()
    assert set(data) >= {
        "arms",
        "tones",
        "allocation",
        "holdout_share",
        "segments",
        "expected_counts",
        "expected_shares",
        "assignment_method",
        "salt_sha256",
        "power",
        "warnings",
    }
    assert data["tones"] == TONES
    assert data["total_customers"] == 200
    for plan in data["segments"]:
        assert set(plan) >= {"arms_available", "shares", "dropped", "expected_counts"}
        assert math.isclose(sum(plan["shares"].values()), 1.0)


def test_only_control_everywhere_is_reported(design_for):
    statuses = {f"s0-{tone}": "block" for tone in ("urgent", "informational", "friendly")}
    design = design_for({"a": 50}, statuses=statuses)
    assert design.segments[0].shares == {"control": 1.0}
    assert design.expected_counts()["control"] == 50
    assert "no_treatment_arm" in {w["code"] for w in design.warnings}
    assert design.power["metrics"]["click_rate"]["mde_absolute"] is None
