"""The analysis (records -> sufficient statistics -> metrics.json) and calculate_metrics.

Reference values come from published sources, cited beside each test; the
statistics core itself is tested in test_stats.py, so these tests check that
the analysis feeds it the right counts and reports its results faithfully,
including every degenerate case.
"""

from __future__ import annotations

import json
import math

import pytest

from cpo.errors import ConfigError, DataValidationError
from cpo.experiment import calculate_lift, calculate_metrics
from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.analysis import AnalysisPlan, analyze, plan_from_design
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.stats import benjamini_hochberg, holm, mde_for_n, two_proportion_test

SETTINGS_PRIMARY_ONLY = {"analysis": {"primary_metric": "click_rate", "secondary_metrics": []}}


def recipients(arm, sent, clicked, *, opened=None, converted=0, segment=None, start=0):
    """``sent`` records for one arm: the first ``opened`` opened, first ``clicked`` clicked, ..."""
    opened = clicked if opened is None else opened
    rows = []
    for i in range(sent):
        row = {
            "customer_id": f"{arm}-{segment}-{start + i}",
            "experiment_arm": arm,
            "opened": int(i < opened),
            "clicked": int(i < clicked),
            "converted": int(i < converted),
        }
        if segment is not None:
            row["segment"] = segment
        rows.append(row)
    return rows


def lift_record(metrics, arm="treatment_1", metric="click_rate"):
    return next(
        r for r in metrics["lift_analysis"] if r["treatment_arm"] == arm and r["metric"] == metric
    )


def codes(metrics):
    return [w["code"] for w in metrics["warnings"]]


def assert_valid_json(metrics):
    text = json.dumps(metrics, allow_nan=False)
    assert json.loads(text) == metrics


def from_counts(counts, settings=None, **plan):
    statistics = SufficientStatistics.from_counts(counts)
    return analyze(statistics, AnalysisPlan(settings=settings or AnalysisSettings(), **plan))


# --------------------------------------------------------------------------
# Published reference values, through calculate_metrics
# --------------------------------------------------------------------------


def test_newcombe_1998_example_a_through_calculate_metrics():
    # Newcombe RG (1998) "Interval estimation for the difference between
    # independent proportions: comparison of eleven methods", Stat Med
    # 17:873-890, Table II example (a): 56/70 vs 48/80, method 10 (hybrid
    # score): 0.0524 to 0.3339.
    records = recipients("treatment_1", 70, 56) + recipients("control", 80, 48)
    metrics = calculate_metrics(records)
    record = lift_record(metrics)
    ci = record["statistical_significance"]["confidence_interval"]
    assert (round(ci["lower"], 4), round(ci["upper"], 4)) == (0.0524, 0.3339)
    assert ci["method"] == "newcombe-hybrid-score"
    assert record["treatment_value"] == 0.8 and record["control_value"] == 0.6
    assert record["lift_absolute"] == pytest.approx(0.2)
    assert record["lift_percent"] == pytest.approx(100 / 3)
    assert_valid_json(metrics)


def test_fisher_tea_tasting_through_calculate_metrics():
    # Fisher RA (1935) The Design of Experiments, lady tasting tea: table
    # [[3, 1], [1, 3]], two-sided exact p = 0.4857 (R fisher.test). Expected
    # cells are 2 < 5, so the analysis must use Fisher's exact test.
    records = recipients("treatment_1", 4, 3) + recipients("control", 4, 1)
    significance = lift_record(calculate_metrics(records))["statistical_significance"]
    assert significance["test"] == "fisher-exact"
    assert round(significance["p_value"], 4) == 0.4857


def test_kohavi_srm_example_through_the_analysis():
    # Kohavi, Tang & Xu (2020) Trustworthy Online Controlled Experiments, ch. 21:
    # 821,588 vs 815,482 users in a 50/50 design, chi-square p = 1.8e-6.
    metrics = from_counts(
        {"control": {"sent": 821_588}, "treatment_1": {"sent": 815_482}},
        allocation={"control": 0.5, "treatment_1": 0.5},
    )
    srm = metrics["srm"]
    assert srm["method"] == "chi-square" and srm["mismatch"] is True
    assert srm["p_value"] == pytest.approx(1.8e-6, rel=0.05)
    assert srm["expected"] == {"control": 818_535.0, "treatment_1": 818_535.0}
    assert "srm" in codes(metrics)


def test_wilson_intervals_per_arm_match_newcombe_1998a():
    # Newcombe RG (1998a) Stat Med 17:857-872, Table I, Wilson score method:
    # 81/263 -> 0.2553 to 0.3662 and 0/20 -> 0 to 0.1611.
    records = recipients("control", 263, 81) + recipients("treatment_1", 20, 0)
    arms = calculate_metrics(records)["arms"]
    control = arms["control"]["intervals"]["click_rate"]
    empty = arms["treatment_1"]["intervals"]["click_rate"]
    assert (round(control["lower"], 4), round(control["upper"], 4)) == (0.2553, 0.3662)
    assert (empty["lower"], round(empty["upper"], 4)) == (0.0, 0.1611)
    assert control["method"] == "wilson"


def test_chi_square_for_the_physicians_health_study():
    # Agresti (2007) An Introduction to Categorical Data Analysis, Table 2.3:
    # aspirin 104/11037 vs placebo 189/11034 myocardial infarctions, Pearson
    # X^2 = 25.01 without continuity correction.
    metrics = from_counts(
        {
            "treatment_1": {"sent": 11037, "opened": 104, "clicked": 104},
            "control": {"sent": 11034, "opened": 189, "clicked": 189},
        }
    )
    significance = lift_record(metrics)["statistical_significance"]
    assert significance["test"] == "chi-square" and round(significance["statistic"], 2) == 25.01


def test_relative_lift_interval_matches_koopman_1984():
    # Koopman (1984) Biometrics 40:513-517, 36/40 vs 16/80: ratio 2.940 to
    # 7.152 (Nam 1995), i.e. relative lift +194.0% to +615.2%.
    metrics = from_counts(
        {
            "treatment_1": {"sent": 40, "opened": 36, "clicked": 36},
            "control": {"sent": 80, "opened": 16, "clicked": 16},
        }
    )
    relative = lift_record(metrics)["statistical_significance"]["relative_confidence_interval"]
    assert (round(relative["lower"], 1), round(relative["upper"], 1)) == (194.0, 615.2)
    assert lift_record(metrics)["lift_percent"] == pytest.approx(350.0)


# Agresti (2013) Categorical Data Analysis, 3rd ed., p. 226-231: multicentre
# trial of an active drug vs placebo, 8 centres as strata; (successes, n) for
# drug and placebo per centre. CMH = 6.38 (P = 0.012), MH risk difference 0.130
# with 95% interval 0.0313 to 0.2284 (R cardx::ci_prop_diff_mh_strata, Sato).
AGRESTI_CENTRES = [(11, 36, 10, 37), (16, 20, 22, 32), (14, 19, 7, 19), (2, 16, 1, 17),
                   (6, 17, 0, 12), (1, 11, 0, 10), (1, 5, 1, 9), (4, 6, 6, 7)]  # fmt: skip


def agresti_counts():
    counts = {}
    for k, (x_t, n_t, x_c, n_c) in enumerate(AGRESTI_CENTRES, start=1):
        counts[("treatment_1", f"centre {k}")] = {"sent": n_t, "opened": x_t, "clicked": x_t}
        counts[("control", f"centre {k}")] = {"sent": n_c, "opened": x_c, "clicked": x_c}
    return counts


def test_stratified_estimate_matches_agresti_multicentre_trial():
    metrics = from_counts(agresti_counts())
    cmh = metrics["stratified"]["click_rate"]["treatment_1"]
    assert cmh["test"] == "cochran-mantel-haenszel"
    assert round(cmh["statistic"], 2) == 6.38 and round(cmh["p_value"], 3) == 0.012
    assert round(cmh["risk_difference"], 3) == 0.130
    ci = cmh["confidence_interval"]
    assert (round(ci["lower"], 4), round(ci["upper"], 4)) == (0.0313, 0.2284)
    assert (cmh["strata_used"], cmh["strata_dropped"]) == (8, 0)
    assert cmh["adjustment"] == "holm" and cmh["p_value_adjusted"] == cmh["p_value"]
    assert len(metrics["segment_breakdown"]) == 8


def test_power_section_matches_r_power_prop_test():
    # R ?power.prop.test: power.prop.test(n = 50, p1 = .5, power = .90) gives
    # p2 = 0.8026; power.prop.test(n = 50, p1 = .5, p2 = .75) gives power 0.7401659.
    settings = AnalysisSettings(power=0.9, secondary_metrics=[])
    metrics = from_counts(
        {"control": {"sent": 50, "opened": 25, "clicked": 25}, "treatment_1": {"sent": 50}},
        settings,
        expected_relative_lift=0.5,
    )
    power = metrics["power"]["metrics"]["click_rate"]
    assert round(power["baseline"] + power["mde_absolute"], 4) == 0.8026
    assert power["achieved_power"] == pytest.approx(0.7401659, abs=1e-6)
    assert power["underpowered"] is True and "underpowered" in codes(metrics)


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------

LIFT_KEYS = {"treatment_arm", "metric", "control_value", "treatment_value", "lift_absolute",
             "lift_percent", "statistical_significance", "bayesian"}  # fmt: skip
SIGNIFICANCE_KEYS = {"test", "p_value", "p_value_adjusted", "adjustment", "significant", "alpha",
                     "confidence_interval", "relative_confidence_interval"}  # fmt: skip


def check_lift_schema(record):
    assert set(record) >= LIFT_KEYS
    significance = record["statistical_significance"]
    assert set(significance) >= SIGNIFICANCE_KEYS
    for key in ("confidence_interval", "relative_confidence_interval"):
        interval = significance[key]
        assert {"lower", "upper", "method"} <= set(interval) and interval["method"]
        if interval["lower"] is None or interval["upper"] is None:
            assert interval["reason"]
    if significance["p_value"] is None:
        assert significance["reason"] and significance["p_value_adjusted"] is None
    assert {"prob_beat_control", "expected_loss"} <= set(record["bayesian"])


def check_schema(metrics):
    top = {"experiment_id", "experiment_name", "computed_at", "engagement_source",
           "primary_metric", "total_customers", "arms", "lift_analysis", "stratified",
           "segment_breakdown", "srm", "power", "warnings"}  # fmt: skip
    assert top <= set(metrics)
    for name, arm in metrics["arms"].items():
        assert arm["arm_name"] == name
        assert set(arm["counts"]) == {"sent", "opened", "clicked", "converted"}
        assert set(arm["metrics"]) == set(arm["intervals"])
        assert set(arm["metrics"]) == {
            "open_rate", "click_rate", "conversion_rate", "click_to_open_rate"
        }  # fmt: skip
    for record in metrics["lift_analysis"]:
        check_lift_schema(record)
    for segment in metrics["segment_breakdown"]:
        assert {"segment", "sample_size", "best_performing_arm", "lift_percent", "arms",
                "lift_analysis"} <= set(segment)  # fmt: skip
        for record in segment["lift_analysis"]:
            check_lift_schema(record)
            assert record["exploratory"] is True
    assert {"method", "p_value", "expected", "observed", "mismatch"} <= set(metrics["srm"])
    for warning in metrics["warnings"]:
        assert warning["code"] and warning["message"]
    assert_valid_json(metrics)


def test_full_document_schema_with_segments_and_three_arms():
    records = []
    for segment, scale in (("At-Risk", 1), ("Standard", 2)):
        records += recipients("control", 60 * scale, 6 * scale, opened=20 * scale,
                              converted=2, segment=segment)  # fmt: skip
        records += recipients("treatment_1", 60 * scale, 12 * scale, opened=25 * scale,
                              converted=3, segment=segment)  # fmt: skip
        records += recipients("treatment_2", 60 * scale, 7 * scale, opened=22 * scale,
                              converted=1, segment=segment)  # fmt: skip
        records += recipients("treatment_3", 60 * scale, 5 * scale, opened=30 * scale,
                              segment=segment)  # fmt: skip
    metrics = calculate_metrics(records)
    check_schema(metrics)
    assert metrics["total_customers"] == 720
    assert list(metrics["arms"]) == ["control", "treatment_1", "treatment_2", "treatment_3"]
    assert [a["tone"] for a in metrics["arms"].values()] == [
        "control", "urgent", "informational", "friendly"
    ]  # fmt: skip
    assert len(metrics["lift_analysis"]) == 3 * 4
    assert [r["metric"] for r in metrics["lift_analysis"][:3]] == ["click_rate"] * 3
    assert [s["segment"] for s in metrics["segment_breakdown"]] == ["At-Risk", "Standard"]
    at_risk = metrics["segment_breakdown"][0]
    assert at_risk["sample_size"] == 240 and at_risk["best_performing_arm"] == "treatment_1"
    assert at_risk["lift_percent"] == pytest.approx(100.0)
    assert set(metrics["srm"]["by_segment"]) == {"At-Risk", "Standard"}
    assert metrics["srm"]["mismatch"] is False


def test_click_to_open_rate_uses_opens_as_denominator():
    records = recipients("control", 100, 10, opened=40) + recipients(
        "treatment_1", 100, 10, opened=20
    )
    metrics = calculate_metrics(records)
    assert metrics["arms"]["control"]["metrics"]["click_to_open_rate"] == 0.25
    record = lift_record(metrics, metric="click_to_open_rate")
    assert record["treatment_value"] == 0.5 and record["control_value"] == 0.25
    assert record["counts"]["control"] == {"events": 10, "trials": 40}


def test_output_is_deterministic_apart_from_computed_at():
    records = []
    for segment in ("A", "B"):
        records += recipients("control", 50, 5, segment=segment)
        records += recipients("treatment_1", 50, 9, segment=segment)
        records += recipients("treatment_2", 50, 2, segment=segment)
    first, second = calculate_metrics(records), calculate_metrics(list(reversed(records)))
    first.pop("computed_at"), second.pop("computed_at")
    assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)


# --------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------


def three_arm_counts():
    return {
        "control": {"sent": 1000, "opened": 300, "clicked": 50, "converted": 10},
        "treatment_1": {"sent": 1000, "opened": 330, "clicked": 75, "converted": 20},
        "treatment_2": {"sent": 1000, "opened": 310, "clicked": 64, "converted": 13},
        "treatment_3": {"sent": 1000, "opened": 280, "clicked": 58, "converted": 9},
    }


def test_holm_across_arms_for_primary_and_bh_across_secondary_metrics():
    metrics = from_counts(three_arm_counts())
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == "click_rate"]
    secondary = [r for r in metrics["lift_analysis"] if r["metric"] != "click_rate"]
    raw = [r["statistical_significance"]["p_value"] for r in primary]
    assert [r["statistical_significance"]["p_value_adjusted"] for r in primary] == (
        pytest.approx(holm(raw))
    )
    raw_secondary = [r["statistical_significance"]["p_value"] for r in secondary]
    assert [r["statistical_significance"]["p_value_adjusted"] for r in secondary] == (
        pytest.approx(benjamini_hochberg(raw_secondary))
    )
    assert {r["statistical_significance"]["adjustment"] for r in primary} == {"holm"}
    assert {r["statistical_significance"]["adjustment"] for r in secondary} == {
        "benjamini-hochberg"
    }
    assert all(r["statistical_significance"]["family_size"] == 9 for r in secondary)
    for record in metrics["lift_analysis"]:
        significance = record["statistical_significance"]
        assert significance["significant"] == (significance["p_value_adjusted"] < 0.05)


def test_significance_uses_the_adjusted_p_value():
    # treatment_1 clicks 75/1000 vs 50/1000: raw p ~ 0.02; with Holm over three
    # arms the smallest p is multiplied by 3 and is no longer below 0.05.
    metrics = from_counts(three_arm_counts())
    significance = lift_record(metrics)["statistical_significance"]
    assert significance["p_value"] < 0.05 <= significance["p_value_adjusted"]
    assert significance["significant"] is False


def test_segment_breakdown_is_one_bh_family():
    counts = {}
    for segment, bump in (("A", 0), ("B", 10), ("C", 25)):
        counts[("control", segment)] = {"sent": 400, "opened": 100, "clicked": 20}
        counts[("treatment_1", segment)] = {"sent": 400, "opened": 100 + bump, "clicked": 20 + bump}
    metrics = from_counts(counts)
    records = [r for s in metrics["segment_breakdown"] for r in s["lift_analysis"]]
    raw = [r["statistical_significance"]["p_value"] for r in records]
    adjusted = [r["statistical_significance"]["p_value_adjusted"] for r in records]
    assert adjusted == pytest.approx(benjamini_hochberg(raw))
    assert len(records) == 3 * 4


# --------------------------------------------------------------------------
# Zero counts and degenerate data
# --------------------------------------------------------------------------


def test_arm_with_no_clicks():
    records = recipients("control", 200, 12, opened=50) + recipients(
        "treatment_1", 200, 0, opened=40
    )
    metrics = calculate_metrics(records)
    check_schema(metrics)
    record = lift_record(metrics)
    assert record["treatment_value"] == 0.0 and record["lift_percent"] == pytest.approx(-100.0)
    assert record["statistical_significance"]["p_value"] is not None
    relative = record["statistical_significance"]["relative_confidence_interval"]
    assert relative["lower"] == pytest.approx(-100.0) and relative["upper"] < 0
    assert "zero_counts" in codes(metrics)


def test_control_with_no_opens():
    records = recipients("control", 150, 0, opened=0) + recipients("treatment_1", 150, 6, opened=30)
    metrics = calculate_metrics(records)
    check_schema(metrics)
    assert metrics["arms"]["control"]["metrics"]["click_to_open_rate"] is None
    assert metrics["arms"]["control"]["intervals"]["click_to_open_rate"]["reason"]
    clicks = lift_record(metrics)
    assert clicks["lift_percent"] is None and clicks["lift_absolute"] == pytest.approx(0.04)
    relative = clicks["statistical_significance"]["relative_confidence_interval"]
    assert relative["upper"] is None and relative["reason"].startswith("unbounded")
    assert relative["lower"] is not None
    cto = lift_record(metrics, metric="click_to_open_rate")
    assert cto["control_value"] is None and cto["lift_absolute"] is None
    assert cto["statistical_significance"]["p_value"] is None
    assert cto["statistical_significance"]["confidence_interval"]["reason"].startswith("empty")
    assert {"control_rate_zero", "zero_counts", "test_not_computed"} <= set(codes(metrics))


def test_empty_arm_is_flagged_everywhere():
    metrics = from_counts(
        {
            "control": {"sent": 100, "opened": 30, "clicked": 5},
            "treatment_1": {"sent": 100, "opened": 25, "clicked": 7},
            "treatment_2": {"sent": 0},
        }
    )
    check_schema(metrics)
    assert metrics["arms"]["treatment_2"]["sample_size"] == 0
    assert metrics["arms"]["treatment_2"]["metrics"]["click_rate"] is None
    record = lift_record(metrics, arm="treatment_2")
    assert record["statistical_significance"]["p_value"] is None
    assert record["statistical_significance"]["confidence_interval"]["lower"] is None
    assert metrics["srm"]["mismatch"] is True and "empty-arm" in metrics["srm"]["reason"]
    assert {"empty_arm", "srm"} <= set(codes(metrics))
    assert record["bayesian"]["prob_beat_control"] is None and record["bayesian"]["reason"]


def test_single_customer():
    metrics = calculate_metrics([{"experiment_arm": "control", "opened": 1, "clicked": 1,
                                  "converted": 0}])  # fmt: skip
    check_schema(metrics)
    assert metrics["total_customers"] == 1 and metrics["lift_analysis"] == []
    assert metrics["arms"]["control"]["intervals"]["click_rate"]["upper"] == 1.0
    assert metrics["srm"]["mismatch"] is None and "srm_skipped" in codes(metrics)


def test_single_customer_per_arm():
    records = recipients("control", 1, 0) + recipients("treatment_1", 1, 1)
    metrics = calculate_metrics(records)
    check_schema(metrics)
    significance = lift_record(metrics)["statistical_significance"]
    assert significance["test"] == "fisher-exact" and significance["p_value"] == pytest.approx(1.0)
    assert (
        significance["confidence_interval"]["lower"]
        < 0
        < significance["confidence_interval"]["upper"]
    )


def test_missing_control_arm():
    metrics = calculate_metrics(recipients("treatment_1", 30, 3) + recipients("treatment_2", 30, 4))
    check_schema(metrics)
    assert metrics["arms"]["control"]["sample_size"] == 0
    assert "missing_arm" in codes(metrics)
    for record in metrics["lift_analysis"]:
        assert record["control_value"] is None and record["lift_percent"] is None
        assert record["statistical_significance"]["p_value"] is None


def test_configured_arm_missing_from_records():
    config = {"experiment": {"tones": ["urgent", "friendly"]}}
    metrics = calculate_metrics(
        recipients("control", 40, 4) + recipients("treatment_1", 40, 6), config
    )
    check_schema(metrics)
    assert list(metrics["arms"]) == ["control", "treatment_1", "treatment_2"]
    assert metrics["arms"]["treatment_2"]["tone"] == "friendly"
    missing = [w for w in metrics["warnings"] if w["code"] == "missing_arm"]
    assert [w["arm"] for w in missing] == ["treatment_2"]
    assert metrics["srm"]["mismatch"] is True


def test_zero_events_everywhere():
    metrics = calculate_metrics(recipients("control", 25, 0) + recipients("treatment_1", 25, 0))
    check_schema(metrics)
    record = lift_record(metrics)
    significance = record["statistical_significance"]
    assert significance["p_value"] is None and significance["reason"].startswith("degenerate")
    assert significance["significant"] is None
    assert (
        significance["confidence_interval"]["lower"]
        < 0
        < significance["confidence_interval"]["upper"]
    )
    assert significance["relative_confidence_interval"]["reason"].startswith("undefined")
    cmh = metrics["stratified"]["click_rate"]["treatment_1"]
    assert cmh["p_value"] is None and cmh["reason"]


def test_no_records_at_all():
    metrics = calculate_metrics([])
    check_schema(metrics)
    assert metrics["total_customers"] == 0 and metrics["segment_breakdown"] == []


def test_json_has_no_nan_or_infinity_in_any_edge_case():
    cases = [
        {"control": {"sent": 0}, "treatment_1": {"sent": 0}},
        {"control": {"sent": 5, "opened": 5, "clicked": 5, "converted": 5},
         "treatment_1": {"sent": 5, "opened": 5, "clicked": 5, "converted": 5}},
        {"control": {"sent": 3}, "treatment_1": {"sent": 3, "opened": 3, "clicked": 3}},
    ]  # fmt: skip
    for counts in cases:
        check_schema(from_counts(counts))


# --------------------------------------------------------------------------
# Design, segments, sources, config
# --------------------------------------------------------------------------


def small_design():
    return {
        "experiment_name": "Spring Sale",
        "salt_sha256": "ab" * 32,
        "arms": [
            {"name": "control", "tone": "control", "allocation": 0.5},
            {"name": "treatment_1", "tone": "urgent", "allocation": 0.5},
        ],
        "expected_shares": {"control": 0.5, "treatment_1": 0.5},
        "segments": [
            {"segment": "Loyal", "expected_shares": {"control": 0.5, "treatment_1": 0.5}},
            # treatment_1's variant was blocked in this segment: control only.
            {"segment": "Lapsed", "expected_shares": {"control": 1.0, "treatment_1": 0.0}},
        ],
        "power": {"expected_relative_lift": 0.2, "metrics": {"click_rate": {"baseline": 0.05}}},
    }


def test_design_gives_expected_shares_tones_and_id():
    counts = {
        ("control", "Loyal"): {"sent": 100, "opened": 30, "clicked": 5},
        ("treatment_1", "Loyal"): {"sent": 100, "opened": 30, "clicked": 9},
        ("control", "Lapsed"): {"sent": 40, "opened": 8, "clicked": 1},
    }
    plan = plan_from_design(small_design(), AnalysisSettings())
    metrics = analyze(SufficientStatistics.from_counts(counts), plan)
    assert metrics["experiment_id"] == "spring-sale-" + "ab" * 6
    assert metrics["arms"]["treatment_1"]["tone"] == "urgent"
    assert metrics["srm"]["expected_from"] == "experiment_design.json"
    lapsed = metrics["srm"]["by_segment"]["Lapsed"]
    assert lapsed["observed"] == {"control": 40} and lapsed["mismatch"] is None
    lapsed_breakdown = metrics["segment_breakdown"][1]
    assert lapsed_breakdown["segment"] == "Lapsed" and list(lapsed_breakdown["arms"]) == ["control"]
    assert lapsed_breakdown["lift_analysis"] == []
    assert metrics["power"]["expected_relative_lift"] == 0.2
    # Overall 140 vs 100 against the design's 50/50: X^2 = 2 * 20^2 / 120 = 6.67,
    # p = 0.0098, not below the SRM threshold of 0.001.
    assert metrics["srm"]["observed"] == {"control": 140, "treatment_1": 100}
    assert metrics["srm"]["statistic"] == pytest.approx(20**2 / 120 * 2)
    assert metrics["srm"]["mismatch"] is False


def test_recipients_in_an_arm_the_design_excluded_are_a_mismatch():
    counts = {
        ("control", "Lapsed"): {"sent": 40},
        ("treatment_1", "Lapsed"): {"sent": 3},
    }
    plan = plan_from_design(small_design(), AnalysisSettings())
    srm = analyze(SufficientStatistics.from_counts(counts), plan)["srm"]["by_segment"]["Lapsed"]
    assert srm["mismatch"] is True and srm["reason"].startswith("impossible")


def test_arm_outside_the_design_is_analysed_and_flagged():
    counts = {
        ("control", "Loyal"): {"sent": 100, "opened": 30, "clicked": 5},
        ("treatment_1", "Loyal"): {"sent": 100, "opened": 30, "clicked": 9},
        ("treatment_9", "Loyal"): {"sent": 7, "opened": 2, "clicked": 1},
    }
    plan = plan_from_design(small_design(), AnalysisSettings())
    metrics = analyze(SufficientStatistics.from_counts(counts), plan)
    assert list(metrics["arms"]) == ["control", "treatment_1", "treatment_9"]
    assert "unexpected_arm" in codes(metrics)
    assert metrics["srm"]["mismatch"] is True and metrics["srm"]["reason"].startswith("impossible")
    assert lift_record(metrics, arm="treatment_9")["treatment_value"] == pytest.approx(1 / 7)


def test_small_segments_and_simulated_source_are_warned():
    records = recipients("control", 10, 1, segment="Tiny") + recipients(
        "treatment_1", 10, 2, segment="Tiny"
    )
    for row in records:
        row["engagement_source"] = "simulated"
    metrics = calculate_metrics(records)
    assert metrics["engagement_source"] == "simulated"
    assert codes(metrics)[0] == "simulated_data"
    small = [w for w in metrics["warnings"] if w["code"] == "small_segment"]
    assert small and small[0]["segment"] == "Tiny"


def test_holdout_records_are_left_out_with_a_warning():
    records = (
        recipients("control", 20, 2)
        + recipients("treatment_1", 20, 3)
        + recipients("holdout", 7, 0)
    )
    metrics = calculate_metrics(records)
    assert "holdout" not in metrics["arms"] and metrics["total_customers"] == 40
    assert "holdout_excluded" in codes(metrics)


def test_click_without_open_is_reported():
    records = recipients("control", 20, 2, opened=0) + recipients("treatment_1", 20, 3)
    metrics = calculate_metrics(records)
    assert metrics["arms"]["control"]["counts"]["opened"] == 2
    assert "click_without_open" in codes(metrics)


def test_config_forms():
    records = recipients("control", 50, 5, converted=2) + recipients(
        "treatment_1", 50, 8, converted=4
    )
    analysis = {"primary_metric": "conversion_rate", "secondary_metrics": ["click_rate"]}
    by_dict = calculate_metrics(records, {"analysis": analysis})
    assert by_dict["primary_metric"] == "conversion_rate"
    assert [r["metric"] for r in by_dict["lift_analysis"]] == ["conversion_rate", "click_rate"]
    flat = calculate_metrics(records, {"alpha": 0.01, "secondary_metrics": []})
    assert lift_record(flat)["statistical_significance"]["alpha"] == 0.01
    settings = calculate_metrics(records, AnalysisSettings(confidence_level=0.9))
    assert settings["confidence_level"] == 0.9
    with pytest.raises(ConfigError, match="alpha"):
        calculate_metrics(records, {"alpha": 2})
    with pytest.raises(ConfigError):
        calculate_metrics(records, 42)


def test_invalid_records_raise_data_validation_error():
    with pytest.raises(DataValidationError, match="'opened'"):
        calculate_metrics(
            [{"experiment_arm": "control", "opened": 5, "clicked": 0, "converted": 0}]
        )


def test_bayesian_readout():
    metrics = from_counts(three_arm_counts())
    best = metrics["bayesian"]["prob_best"]["click_rate"]
    assert sum(best.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(best, key=best.get) == "treatment_1"
    record = lift_record(metrics)
    assert record["bayesian"]["prob_beat_control"] > 0.95
    assert record["bayesian"]["prob_best"] == best["treatment_1"]
    assert metrics["bayesian"]["integration_points"] == 8  # Gauss-Legendre nodes per panel


def test_power_mde_uses_the_observed_sample_and_bonferroni():
    metrics = from_counts(three_arm_counts())
    power = metrics["power"]
    assert power["n_comparisons"] == 3 and power["alpha_per_comparison"] == pytest.approx(0.05 / 3)
    click = power["metrics"]["click_rate"]
    expected = mde_for_n(1000, 0.05, alpha=0.05, power=0.8, n_comparisons=3)
    assert click["mde_absolute"] == pytest.approx(expected.mde_absolute)
    assert click["baseline_source"] == "observed control rate"


def test_p_value_is_never_a_silent_one():
    metrics = from_counts({"control": {"sent": 10}, "treatment_1": {"sent": 10}})
    for record in metrics["lift_analysis"]:
        significance = record["statistical_significance"]
        assert significance["p_value"] is None and significance["reason"]
    # ...whereas a real test that happens to give 1.0 reports it with its test.
    assert two_proportion_test(1, 2, 1, 2).p_value == pytest.approx(1.0)


def test_calculate_lift():
    assert calculate_lift(0.12, 0.10) == pytest.approx(20.0)
    assert calculate_lift(0.05, 0.10) == pytest.approx(-50.0)
    assert math.isnan(calculate_lift(0.1, 0.0))
    assert math.isnan(calculate_lift(float("nan"), 0.1))
