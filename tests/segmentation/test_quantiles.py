"""Quantile thresholds in segmentation rules: resolution, reasons, record, errors, advice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import load_config
from cpo.errors import ConfigError
from cpo.pipeline import run_pipeline
from cpo.sample_data.customers import generate_customers
from cpo.segmentation import segment
from cpo.segmentation.settings import SegmentationSettings
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

#: Known values: linear interpolation falls between them (q0.3 = 2.1).
KNOWN = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 7.5, 0.5, 6.0])


def settings(rules: list[dict], **extra) -> SegmentationSettings:
    return SegmentationSettings.model_validate({"method": "rules", "rules": rules, **extra})


def rule(name: str, *conditions: dict, match: str = "all") -> dict:
    return {"name": name, "match": match, "conditions": list(conditions)}


def known_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(KNOWN.size)],
            "x": KNOWN,
            "tier": ["Gold", "Silver"] * (KNOWN.size // 2),
        }
    )


def recorded(result, name: str) -> list[dict]:
    (entry,) = [r for r in result.details["thresholds"] if r["rule"] == name]
    return entry["conditions"]


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "nearest", "median_unbiased"])
def test_quantiles_resolve_exactly_as_numpy(method: str):
    result = segment(
        known_frame(),
        settings(
            [
                rule("Top", {"column": "x", "op": ">=", "value": {"quantile": 0.75}}),
                rule("Low", {"column": "x", "op": "<", "value": {"quantile": 0.3}}),
                rule(
                    "Mid",
                    {"column": "x", "op": "between", "value": [{"quantile": 0.3}, 6]},
                ),
            ],
            quantile_method=method,
        ),
    )
    q75 = float(np.quantile(KNOWN, 0.75, method=method))
    q30 = float(np.quantile(KNOWN, 0.3, method=method))
    assert recorded(result, "Top") == [{"column": "x", "op": ">=", "quantile": 0.75, "value": q75}]
    assert recorded(result, "Low") == [{"column": "x", "op": "<", "quantile": 0.3, "value": q30}]
    assert recorded(result, "Mid") == [
        {"column": "x", "op": "between", "quantile": [0.3, None], "value": [q30, 6.0]}
    ]
    assert result.details["quantile_method"] == method
    segments, values = result.assignments["segment"].to_numpy(), KNOWN.copy()
    np.testing.assert_array_equal(segments == "Top", values >= q75)
    np.testing.assert_array_equal(segments == "Low", (values < q30) & (values < q75))


def test_linear_is_the_default_and_matches_pandas():
    result = segment(
        known_frame(),
        settings([rule("Top", {"column": "x", "op": ">", "value": {"quantile": 0.3}})]),
    )
    (condition,) = recorded(result, "Top")
    assert condition["value"] == pytest.approx(2.1, abs=1e-12)
    assert condition["value"] == pd.Series(KNOWN).quantile(0.3)


def test_missing_values_are_left_out_of_the_quantile():
    frame = known_frame().assign(x=np.append(KNOWN[:-1], np.nan))
    result = segment(
        frame, settings([rule("Top", {"column": "x", "op": ">=", "value": {"quantile": 0.5}})])
    )
    assert recorded(result, "Top")[0]["value"] == float(np.quantile(KNOWN[:-1], 0.5))
    assert result.assignments["segment"].iloc[-1] == "Standard"


def test_reasons_show_the_resolved_threshold_and_its_level():
    rules = [
        rule("Top", {"column": "x", "op": ">=", "value": {"quantile": 0.75}}),
        rule(
            "Band",
            {"column": "x", "op": "between", "value": [{"quantile": 0.3}, {"quantile": 0.6}]},
            {"column": "tier", "op": "==", "value": "Gold"},
        ),
        rule("Small", {"column": "x", "op": "<=", "value": 2}),
    ]
    reasons = segment(known_frame(), settings(rules)).assignments.set_index("customer_id")["reason"]
    # np.quantile(KNOWN, [.75, .3, .6]) = 6.375, 2.1, 4.4 (linear interpolation)
    assert reasons["c4"] == "Top: x=10 >= 6.375 (q0.75)"
    assert reasons["c2"] == "Band: x=3 between [2.1 (q0.3), 4.4 (q0.6)], tier=Gold == Gold"
    assert reasons["c1"] == "Small: x=2 <= 2"  # a literal threshold reads as before
    assert reasons["c3"] == "Standard: no rule matched"


def test_definition_without_description_states_the_resolved_thresholds():
    result = segment(
        known_frame(),
        settings([rule("Top", {"column": "x", "op": ">=", "value": {"quantile": 0.5}})]),
    )
    assert result.profiles[0].definition == "Customers with x >= 3.5 (q0.5)."


def test_segment_profiles_json_records_each_rules_thresholds(tmp_path: Path):
    customers = generate_customers(300, seed=21)
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False)
    config = load_config()
    run_dir = tmp_path / "run"
    manifest = run_pipeline(
        run_dir, config, RunOptions(customers=str(path)), stages=[SegmentStage()]
    )
    assert manifest["status"] == "completed"
    profiles = json.loads((run_dir / "segment_profiles.json").read_text("utf-8"))
    records = profiles["details"]["thresholds"]
    defaults = config.experiment.segmentation.rules
    assert [r["rule"] for r in records] == [r.name for r in defaults]
    for record, configured in zip(records, defaults, strict=True):
        for entry, condition in zip(record["conditions"], configured.conditions, strict=True):
            level = condition.value.quantile
            expected = float(np.quantile(customers[condition.column], level))
            assert entry == {
                "column": condition.column,
                "op": condition.op,
                "quantile": level,
                "value": pytest.approx(expected, rel=1e-12),
            }
    segments = pd.read_csv(run_dir / "segments.csv")
    at_risk = records[1]["conditions"][0]["value"]
    shown = f">= {at_risk:.4f}".rstrip("0").rstrip(".") + " (q0.75)"
    assert segments.loc[segments["segment"] == "At-Risk", "reason"].str.endswith(shown).all()


def write_config(tmp_path: Path, edit) -> Path:
    """`cpo init` a config folder and apply ``edit`` to its segmentation section."""
    folder = tmp_path / "config"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    edit(data["segmentation"])
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def segment_cli(tmp_path: Path, customers: pd.DataFrame, config: Path | None = None, *extra):
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False)
    args = ["segment", str(path), *extra]
    if config is not None:
        args += ["--config", str(config)]
    return CliRunner().invoke(cli, args)


def test_quantile_of_a_text_column_is_one_error_naming_the_key(tmp_path: Path):
    def edit(section: dict) -> None:
        section["rules"][2]["conditions"][1] = {
            "column": "location",
            "op": ">=",
            "value": {"quantile": 0.5},
        }

    config = write_config(tmp_path, edit)
    result = segment_cli(tmp_path, generate_customers(50, seed=2), config)
    assert result.exit_code == 1
    assert "segmentation.rules[2].conditions[1].value" in result.output
    assert "quantile of column 'location', which is not numeric" in result.output
    assert "fix:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("value", "op", "expected"),
    [
        ({"quantile": 1.5}, ">=", "quantile must be a number in [0, 1]"),
        ({"quantile": -0.1}, "<", "quantile must be a number in [0, 1]"),
        ({"quantile": "high"}, ">=", "quantile must be a number in [0, 1]"),
        ({"percentile": 75}, ">=", "must be a quantile threshold: {quantile: q}"),
        ([{"quantile": 0.2}, {"quantile": 7}], "between", "element 1: quantile must be"),
        ([{"quantile": 0.5}], "in", "a quantile threshold needs <, <=, >, >= or between"),
        (None, ">=", "expected a number, text, a list or {quantile: q}"),
        ([1, [2]], "between", "element 1: expected a number, text or {quantile: q}"),
    ],
)
def test_bad_quantile_in_the_config_names_the_key_path(tmp_path: Path, value, op, expected):
    def edit(section: dict) -> None:
        section["rules"][1]["conditions"][0].update(op=op, value=value)

    config = write_config(tmp_path, edit)
    result = segment_cli(tmp_path, generate_customers(50, seed=2), config)
    assert result.exit_code == 1
    assert "experiment_config.yaml: invalid configuration (1 problem(s))" in result.output
    assert "key 'segmentation.rules.1.conditions.0" in result.output
    assert expected in result.output and "Traceback" not in result.output


def test_quantile_of_a_text_column_in_the_library_raises_config_error():
    with pytest.raises(ConfigError, match=r"rules\[0\]\.conditions\[0\]\.value"):
        segment(
            known_frame(),
            settings([rule("T", {"column": "tier", "op": ">", "value": {"quantile": 0.5}})]),
        )


def test_literal_thresholds_are_recorded_without_a_quantile():
    result = segment(
        known_frame(),
        settings(
            [
                rule("Band", {"column": "x", "op": "between", "value": [1, 3]}),
                rule("Gold", {"column": "tier", "op": "in", "value": ["Gold"]}),
            ]
        ),
    )
    assert recorded(result, "Band") == [
        {"column": "x", "op": "between", "quantile": None, "value": [1.0, 3.0]}
    ]
    assert recorded(result, "Gold") == [
        {"column": "tier", "op": "in", "quantile": None, "value": ["Gold"]}
    ]


def test_quantile_of_an_extra_csv_column_with_blanks(tmp_path: Path):
    """Extra columns arrive as text; numbers in them work and blank cells are left out."""
    customers = generate_customers(40, seed=6)
    points = np.arange(40, dtype=float) * 10
    customers["loyalty_points"] = [f"{p:g}" for p in points]
    customers.loc[[0, 5], "loyalty_points"] = ""

    def edit(section: dict) -> None:
        section["rules"] = [
            {
                "name": "Loyal",
                "conditions": [{"column": "loyalty_points", "op": ">", "value": {"quantile": 0.8}}],
            }
        ]

    config = write_config(tmp_path, edit)
    out = tmp_path / "segments.csv"
    result = segment_cli(tmp_path, customers, config, "--out", str(out))
    assert result.exit_code == 0, result.output
    threshold = float(np.quantile(np.delete(points, [0, 5]), 0.8))
    segments = pd.read_csv(out)
    loyal = segments["segment"] == "Loyal"
    expected = (points > threshold) & ~np.isin(np.arange(40), [0, 5])
    np.testing.assert_array_equal(loyal.to_numpy(), expected)
    assert segments.loc[loyal, "reason"].str.endswith(f"> {threshold:g} (q0.8)").all()
