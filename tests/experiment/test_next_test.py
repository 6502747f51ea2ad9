"""The next test's size is computed once by the analysis and only presented by the report."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cpo.experiment import stats
from cpo.experiment.next_test import NextTest, plan_next_test


def _comparison(arm: str, control: float, lift: float | None) -> dict[str, Any]:
    return {
        "metric": "conversion_rate",
        "treatment_arm": arm,
        "control_value": control,
        "lift_absolute": lift,
    }


def _metrics(*comparisons: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "primary_metric": "conversion_rate",
        "alpha": 0.05,
        "lift_analysis": [*comparisons, {**comparisons[0], "metric": "open_rate"}],
        "power": {"power": 0.8, "metrics": {}},
        **extra,
    }


DESIGN = {"power": {"power": 0.9, "expected_relative_lift": 0.25, "metrics": {}}}


def test_the_largest_observed_lift_sets_the_size_with_the_designs_power() -> None:
    metrics = _metrics(_comparison("t1", 0.04, 0.01), _comparison("t2", 0.04, 0.02))
    found = plan_next_test(metrics, DESIGN)
    assert found is not None and found.basis == "observed" and found.treatment_arm == "t2"
    # The statistics core reproduces R's power.prop.test (tests/experiment/test_stats.py);
    # here we check the analysis asks it the right question: the best arm's lift on the
    # observed control rate, alpha split over 2 comparisons, the design's power 0.9.
    expected = stats.n_for_effect(0.04, 0.02, alpha=0.05, power=0.9, n_comparisons=2)
    assert found.n_per_arm == expected.n_per_arm_ceil
    assert found.n_per_arm == 2946 and found.effect == 0.02 and found.baseline == 0.04
    assert found.total == found.n_per_arm * 3 and found.comparisons == 2
    assert (found.alpha, found.power) == (0.05, 0.9)


def test_without_a_usable_observed_lift_the_planned_lift_is_used() -> None:
    metrics = _metrics(_comparison("t1", 0.04, -0.01))
    found = plan_next_test(metrics, DESIGN)
    assert found is not None and found.basis == "planned"
    assert math.isclose(found.effect, 0.04 * 0.25)
    assert found.planned_relative_lift == 0.25


def test_a_zero_control_rate_falls_back_to_the_power_records_baseline() -> None:
    design = {
        "power": {
            **DESIGN["power"],
            "metrics": {"conversion_rate": {"mde_absolute": 0.02, "baseline": 0.05}},
        }
    }
    found = plan_next_test(_metrics(_comparison("t1", 0.0, 0.01)), design)
    assert found is not None and found.baseline == 0.05


@pytest.mark.parametrize(
    ("metrics", "design"),
    [
        (_metrics(_comparison("t1", 0.04, None)), {}),  # nothing comparable, nothing planned
        ({**_metrics(_comparison("t1", 0.04, 0.01)), "alpha": None}, DESIGN),  # no alpha
        ({**_metrics(_comparison("t1", 0.04, 0.01)), "power": {}}, {}),  # no power
        (_metrics(_comparison("t1", 1.0, 0.0)), {}),  # no usable baseline
    ],
)
def test_nothing_is_recorded_when_a_size_cannot_be_computed(metrics, design) -> None:
    assert plan_next_test(metrics, design) is None


def test_the_record_round_trips_through_its_json_form() -> None:
    found = plan_next_test(_metrics(_comparison("t1", 0.04, 0.01)), DESIGN)
    assert found is not None
    assert NextTest.from_dict(found.to_dict()) == found
