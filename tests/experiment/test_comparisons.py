"""Lift records, multiplicity and the probability of being best (cpo.experiment.comparisons)."""

from __future__ import annotations

import numpy as np
import pytest

from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.comparisons import adjust, compare, prob_best, stratified_record
from cpo.experiment.stats import prob_beat_control

SETTINGS = AnalysisSettings()


def arm(sent, clicked, opened=None):
    opened = clicked if opened is None else opened
    return {"sent": sent, "opened": opened, "clicked": clicked, "converted": 0}


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_c", "n_c"),
    [(75, 1000, 50, 1000), (3, 4, 1, 4), (0, 10, 0, 10), (1, 1, 0, 1),
     (16_000, 815_482, 16_400, 821_588)],
)  # fmt: skip
def test_prob_best_of_two_arms_is_prob_beat_control(x_t, n_t, x_c, n_c):
    # With two arms, P(treatment best) = P(p_t > p_c), which stats computes by
    # exact finite sums: an independent reference for the grid sum.
    best = prob_best({"control": arm(n_c, x_c), "t": arm(n_t, x_t)}, "click_rate", SETTINGS)
    exact = prob_beat_control(x_t, n_t, x_c, n_c).prob_beat_control
    assert best["t"] == pytest.approx(exact, abs=5e-5)
    assert best["t"] + best["control"] == pytest.approx(1.0, abs=5e-5)


def test_prob_best_of_four_arms_matches_monte_carlo():
    counts = {name: arm(1000, x) for name, x in zip("abcd", (50, 75, 64, 58), strict=True)}
    best = prob_best(counts, "click_rate", SETTINGS)
    rng = np.random.default_rng(2024)
    draws = np.array([rng.beta(1 + c["clicked"], 1 + 1000 - c["clicked"], 400_000)
                      for c in counts.values()])  # fmt: skip
    monte_carlo = np.bincount(draws.argmax(axis=0), minlength=4) / 400_000
    # Monte Carlo standard error is at most 0.0008 here; allow 5 of them.
    assert list(best.values()) == pytest.approx(list(monte_carlo), abs=0.004)


def test_prob_best_skips_arms_without_denominator():
    best = prob_best({"control": arm(10, 0, opened=0), "t": arm(10, 1, opened=2)},
                     "click_to_open_rate", SETTINGS)  # fmt: skip
    assert best == {"control": None, "t": 1.0}


def test_compare_reports_units():
    record = compare("click_rate", "t", arm(70, 56), arm(80, 48), SETTINGS)
    assert record["lift_absolute"] == pytest.approx(0.2)
    assert record["lift_percent"] == pytest.approx(100 / 3)
    relative = record["statistical_significance"]["relative_confidence_interval"]
    assert relative["lower"] < record["lift_percent"] < relative["upper"]


def test_adjust_leaves_missing_p_values_out_of_the_family():
    records = [
        {"statistical_significance": {"p_value": 0.01}},
        {"statistical_significance": {"p_value": None}},
        {"statistical_significance": {"p_value": 0.04}},
    ]
    adjust(records, "holm", 0.05)
    blocks = [r["statistical_significance"] for r in records]
    assert [b["p_value_adjusted"] for b in blocks] == pytest.approx([0.02, None, 0.04])
    assert [b["significant"] for b in blocks] == [True, None, True]
    assert {b["family_size"] for b in blocks} == {2}


def test_stratified_record_drops_strata_without_an_arm():
    strata = [(arm(50, 10), arm(50, 5)), (arm(0, 0), arm(30, 3))]
    record = stratified_record("click_rate", "t", strata, SETTINGS)
    assert (record["strata_used"], record["strata_dropped"]) == (1, 1)
    assert record["confidence_interval"]["lower"] is not None
