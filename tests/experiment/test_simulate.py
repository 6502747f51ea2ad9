"""The simulator: documented model, seeded, consistent outcomes, recoverable effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpo.experiment.settings import Lifts, SimulationSettings
from cpo.experiment.simulate import (
    customer_baselines,
    default_arm_tones,
    expected_rates,
    response_probabilities,
    simulate_engagement,
    true_differences,
)

ARMS = ["control", "treatment_1", "treatment_2", "treatment_3"]


def population(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` customers with varied history, dealt round-robin into arms, in two segments."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "historical_open_rate": rng.uniform(0.05, 0.6, n),
            "historical_click_rate": rng.uniform(0.0, 0.12, n),
        }
    )
    assignments = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": np.where(np.arange(n) % 3 == 0, "north", "south"),
            "experiment_arm": [ARMS[i % 4] for i in range(n)],
        }
    )
    return customers, assignments


def test_baselines_are_shrunk_toward_the_population_mean():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "historical_open_rate": [0.0, 0.6],
            "historical_click_rate": [0.1, 0.0],
        }
    )
    base = customer_baselines(customers, SimulationSettings(history_emails=20, prior_strength=10))
    # w = 20 / 30; mean open 0.3 -> 2/3 * 0 + 1/3 * 0.3 = 0.1
    assert base["base_open"].tolist() == pytest.approx([0.1, 0.5])
    assert base["base_click"].tolist() == pytest.approx([0.1 * 2 / 3 + 0.05 / 3, 0.05 / 3])
    none = customer_baselines(customers, SimulationSettings(prior_strength=0))
    assert none["base_open"].tolist() == pytest.approx([0.0, 0.6])


def test_probabilities_follow_the_documented_formulas():
    customers, assignments = population(8)
    settings = SimulationSettings(
        effects={"urgent": Lifts(open_rate=0.5, click_rate=-0.5, conversion_per_click=1.0)},
        segment_effects={},
        conversion_per_click=0.2,
    )
    probs = response_probabilities(customers, assignments, default_arm_tones(), settings)
    base = customer_baselines(customers, settings).set_index("customer_id")
    for row in probs.itertuples():
        b_open, b_click = base.loc[row.customer_id, ["base_open", "base_click"]]
        if row.experiment_arm == "treatment_1":
            assert row.p_open == pytest.approx(min(1, b_open * 1.5))
            assert row.p_click == pytest.approx(min(row.p_open, b_click * 0.5))
            assert row.p_convert == pytest.approx(row.p_click * 0.4)
        else:  # control, and tones without configured effects
            assert row.p_open == pytest.approx(b_open)
            assert row.p_convert == pytest.approx(row.p_click * 0.2)


def test_segment_overrides_replace_only_the_fields_given():
    settings = SimulationSettings(
        effects={"urgent": Lifts(open_rate=0.1, click_rate=0.2)},
        segment_effects={"north": {"urgent": {"click_rate": -0.3}}},
    )
    assert settings.lifts_for("urgent", "north") == Lifts(open_rate=0.1, click_rate=-0.3)
    assert settings.lifts_for("urgent", "south") == Lifts(open_rate=0.1, click_rate=0.2)
    assert settings.lifts_for("calm", "north") == Lifts()


def test_same_seed_same_outcomes_and_a_new_seed_differs():
    customers, assignments = population(3000)
    settings = SimulationSettings()
    a = simulate_engagement(customers, assignments, default_arm_tones(), settings, seed=5)
    b = simulate_engagement(customers, assignments, default_arm_tones(), settings, seed=5)
    c = simulate_engagement(customers, assignments, default_arm_tones(), settings, seed=6)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not a.frame["opened"].equals(c.frame["opened"])
    assert set(a.frame["engagement_source"]) == {"simulated"} and a.source == "simulated"
    assert any(w["code"] == "simulated_data" for w in a.warnings)


def test_outcomes_are_nested_and_holdout_is_excluded():
    customers, assignments = population(5000)
    assignments.loc[assignments.index % 10 == 0, "experiment_arm"] = "holdout"
    result = simulate_engagement(
        customers, assignments, default_arm_tones(), SimulationSettings(), seed=1
    )
    frame = result.frame
    assert "holdout" not in set(frame["experiment_arm"])
    assert len(frame) == 4500
    assert (frame["converted"] <= frame["clicked"]).all()
    assert (frame["clicked"] <= frame["opened"]).all()
    assert frame["converted"].sum() > 0


def test_large_sample_recovers_the_configured_effects():
    customers, assignments = population(200_000, seed=3)
    settings = SimulationSettings(
        effects={
            "urgent": Lifts(click_rate=0.30),
            "informational": Lifts(open_rate=-0.20),
            "friendly": Lifts(conversion_per_click=0.50),
        },
        segment_effects={},
    )
    result = simulate_engagement(customers, assignments, default_arm_tones(), settings, seed=11)
    observed = result.frame.groupby("experiment_arm")[["opened", "clicked", "converted"]].mean()
    truth = expected_rates(customers, assignments, settings).set_index("experiment_arm")
    for arm in ARMS:
        assert observed.loc[arm, "opened"] == pytest.approx(truth.loc[arm, "open_rate"], abs=0.006)
        assert observed.loc[arm, "clicked"] == pytest.approx(
            truth.loc[arm, "click_rate"], abs=0.003
        )
    lift = observed / observed.loc["control"] - 1
    assert lift.loc["treatment_1", "clicked"] == pytest.approx(0.30, abs=0.05)
    assert lift.loc["treatment_2", "opened"] == pytest.approx(-0.20, abs=0.03)
    assert lift.loc["treatment_3", "converted"] == pytest.approx(0.50, abs=0.15)
    assert abs(lift.loc["treatment_3", "clicked"]) < 0.05


def test_expected_rates_by_segment_and_true_differences():
    customers, assignments = population(4000)
    settings = SimulationSettings(
        effects={"urgent": Lifts(click_rate=0.2)},
        segment_effects={"north": {"urgent": {"click_rate": 0.0}}},
    )
    by_segment = expected_rates(customers, assignments, settings, by_segment=True)
    assert set(by_segment.columns) >= {"experiment_arm", "segment", "n", "click_to_open_rate"}
    assert by_segment["n"].sum() == 4000
    overall = expected_rates(customers, assignments, settings)
    diffs = true_differences(overall).set_index("experiment_arm")
    assert list(diffs.index) == ["treatment_1", "treatment_2", "treatment_3"]
    # Only the south customers of treatment_1 have a lift, so it is positive but below +20%.
    control_click = overall.set_index("experiment_arm").loc["control", "click_rate"]
    assert diffs.loc["treatment_1", "click_rate"] > 0
    probs = response_probabilities(customers, assignments, default_arm_tones(), settings)
    t1 = probs[probs["experiment_arm"] == "treatment_1"]
    assert overall.set_index("experiment_arm").loc["treatment_1", "click_rate"] == pytest.approx(
        t1["p_click"].mean()
    )
    assert control_click > 0


def test_warnings_for_segments_and_tones_that_do_not_exist():
    customers, assignments = population(40)
    settings = SimulationSettings(
        effects={"shouty": Lifts(click_rate=0.1)},
        segment_effects={"Atlantis": {"urgent": {"click_rate": 0.1}}},
    )
    result = simulate_engagement(customers, assignments, default_arm_tones(), settings, seed=0)
    found = {w["code"] for w in result.warnings}
    assert {"simulated_data", "simulation_unknown_segments", "simulation_unknown_tones"} <= found
    assert result.model["shrinkage_weight"] == pytest.approx(2 / 3)


def test_recipient_without_history_is_an_error():
    customers, assignments = population(10)
    with pytest.raises(ValueError, match="no customer record"):
        simulate_engagement(
            customers.iloc[1:], assignments, default_arm_tones(), SimulationSettings(), seed=0
        )
