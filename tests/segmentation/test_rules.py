"""Rule segmentation: first match wins, reasons, confidence, errors, defaults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpo.config import load_config
from cpo.customers import load_customers
from cpo.errors import ConfigError
from cpo.sample_data import bundled_customers
from cpo.segmentation import segment
from cpo.segmentation.rules import margin_to_confidence
from cpo.segmentation.settings import SegmentationSettings


def settings(rules: list[dict], **extra) -> SegmentationSettings:
    return SegmentationSettings.model_validate({"method": "rules", "rules": rules, **extra})


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "tier": ["Gold", "Silver", "Gold", "Bronze"],
            "spend": [200.0, 150.0, 50.0, 10.0],
            "days": [5, 200, 10, 30],
        }
    )


def test_first_matching_rule_wins_and_fallback_catches_the_rest(small: pd.DataFrame):
    result = segment(
        small,
        settings(
            [
                {"name": "VIP", "conditions": [{"column": "spend", "op": ">=", "value": 100}]},
                {"name": "Lapsed", "conditions": [{"column": "days", "op": ">", "value": 90}]},
                {"name": "Gold", "conditions": [{"column": "tier", "op": "in", "value": ["Gold"]}]},
            ],
            fallback={"name": "Rest"},
        ),
    )
    frame = result.assignments
    # b matches both VIP and Lapsed; VIP is first.
    assert list(frame["segment"]) == ["VIP", "VIP", "Gold", "Rest"]
    assert list(frame["segment_id"]) == [0, 0, 2, 3]
    assert frame.loc[1, "reason"] == "VIP: spend=150 >= 100"
    assert frame.loc[2, "reason"] == "Gold: tier=Gold in [Gold]"
    assert frame.loc[3, "reason"] == "Rest: no rule matched"
    assert [p.name for p in result.profiles] == ["VIP", "Gold", "Rest"]
    (lapsed,) = [w for w in result.warnings if "'Lapsed'" in w]
    assert lapsed.startswith("segment 'Lapsed' is empty: no customer matched it; days > 90 ")


def test_all_and_any_matching(small: pd.DataFrame):
    rules = [
        {
            "name": "Both",
            "conditions": [
                {"column": "spend", "op": ">=", "value": 100},
                {"column": "days", "op": "<", "value": 90},
            ],
        },
        {
            "name": "Either",
            "match": "any",
            "conditions": [
                {"column": "tier", "op": "==", "value": "Bronze"},
                {"column": "days", "op": "between", "value": [100, 300]},
            ],
        },
    ]
    frame = segment(small, settings(rules)).assignments
    assert list(frame["segment"]) == ["Both", "Either", "Standard", "Either"]
    # "any" reasons list only the conditions that held.
    assert frame.loc[1, "reason"] == "Either: days=200 between [100, 300]"
    assert frame.loc[3, "reason"] == "Either: tier=Bronze == Bronze"


def test_confidence_grows_with_distance_from_threshold():
    frame = pd.DataFrame({"customer_id": list("abc"), "x": [10.0, 10.5, 20.0]})
    result = segment(
        frame, settings([{"name": "Big", "conditions": [{"column": "x", "op": ">=", "value": 10}]}])
    )
    confidence = result.assignments["confidence"].to_numpy()
    assert confidence[0] == 0.5  # exactly on the threshold
    assert 0.5 < confidence[1] < confidence[2] <= 1.0


def test_margin_to_confidence_bounds():
    values = margin_to_confidence(np.array([0.0, 0.1, 1.0, np.inf, -1.0]))
    assert values[0] == 0.5 and values[3] == 1.0 and values[4] == 0.5
    assert np.all(np.diff(values[:4]) > 0)


def test_unknown_column_is_a_config_error(small: pd.DataFrame):
    with pytest.raises(ConfigError) as info:
        segment(
            small,
            settings([{"name": "X", "conditions": [{"column": "nope", "op": ">", "value": 1}]}]),
        )
    message = str(info.value)
    assert "segmentation.rules[0].conditions[0].column" in message and "'nope'" in message


def test_numeric_test_on_text_column_is_a_config_error(small: pd.DataFrame):
    with pytest.raises(ConfigError, match="not numeric"):
        segment(
            small,
            settings([{"name": "X", "conditions": [{"column": "tier", "op": ">", "value": 1}]}]),
        )


def test_no_rules_is_a_config_error(small: pd.DataFrame):
    with pytest.raises(ConfigError, match="segmentation.rules' is empty"):
        segment(small, settings([]))


def test_default_rules_on_bundled_data_give_four_segments_none_small():
    config = load_config()
    frame = load_customers(bundled_customers()).frame
    result = segment(frame, config.experiment.segmentation)
    shares = {p.name: p.share for p in result.profiles}
    assert len(shares) == 4, shares
    assert min(shares.values()) >= 0.10, shares
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert result.warnings == []
    for profile in result.profiles:
        assert profile.definition and profile.traits
        assert set(profile.means) >= {"avg_order_value", "historical_open_rate"}


def test_small_segment_warning(customers_frame: pd.DataFrame):
    rules = [{"name": "Tiny", "conditions": [{"column": "age", "op": ">=", "value": 70}]}]
    result = segment(customers_frame, settings(rules))
    assert any("Tiny" in w and "1.5%" in w and "(< 10%)" in w for w in result.warnings), (
        result.warnings
    )


def test_profiles_match_the_assignments(customers_frame: pd.DataFrame):
    result = segment(customers_frame, load_config().experiment.segmentation)
    merged = customers_frame.assign(segment=result.assignments["segment"].to_numpy())
    for profile in result.profiles:
        members = merged[merged["segment"] == profile.name]
        assert profile.size == len(members)
        assert profile.means["age"] == pytest.approx(members["age"].mean(), abs=1e-4)
        assert profile.medians["avg_order_value"] == pytest.approx(
            members["avg_order_value"].median(), abs=1e-4
        )


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_reason_values_format_missing_and_huge_numbers_without_an_integer_cast():
    """Whole numbers print without '.0'; NaN and values beyond int64 keep their float text."""
    from cpo.segmentation.rules import _format_values

    values = pd.Series([1.0, 2.5, np.nan, 3.0, 1e20, -4.0, 0.123456])
    texts = _format_values(values).to_pylist()
    assert texts == ["1", "2.5", "nan", "3", "1e+20", "-4", "0.1235"]
