"""``compute.engine: spark`` gives the local engine's segments, assignments and metrics.

Runs ``cpo run`` twice on the same customers — once per engine — through the
CLI, and compares the artifacts normalised as the golden test does (timestamps,
run ids and the config snapshot removed). The Spark runs use the shared
``local[2]`` session of ``conftest.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from golden import normalized
from pandas.testing import assert_frame_equal

from cpo.cli import cli
from cpo.compute.local import LocalEngine
from cpo.compute.settings import SparkSettings
from cpo.compute.spark.engine import SparkEngine
from cpo.customers import load_customers
from cpo.run_folder import read_assignments, read_customer_copy, read_engagement, read_segments
from cpo.sample_data import bundled_customers
from cpo.segmentation.settings import SegmentationSettings

COMPARED = (
    "segment_profiles.json",
    "experiment_design.json",
)


def _config(tmp_path: Path, name: str, engine: str, **experiment: Any) -> Path:
    """A config folder with ``compute.engine`` (and ``experiment`` keys) set."""
    folder = tmp_path / f"config-{name}"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    data["experiment"].update(experiment)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _run(tmp_path: Path, name: str, config: Path, *args: str) -> Path:
    """``cpo run`` into a new folder; returns it."""
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return out


def _same_artifacts(local: Path, spark: Path) -> None:
    """The compared artifacts of two runs are equal once normalised."""
    left, right = normalized(local), normalized(spark)
    for name in COMPARED:
        assert left[name] == right[name], f"{name} differs between the engines"
    differences = _differences(json.loads(left["metrics.json"]), json.loads(right["metrics.json"]))
    assert not differences, f"metrics.json differs between the engines: {differences[:10]}"
    assert left["metrics.json"] == right["metrics.json"]
    _same_datasets(local, spark)


def _differences(local: Any, spark: Any, path: str = "") -> list[str]:
    """Where two metrics documents differ (exactly: CUPED's sums are exact on both engines)."""
    if isinstance(local, dict) and isinstance(spark, dict):
        keys = sorted(set(local) | set(spark))
        return [d for k in keys for d in _differences(local.get(k), spark.get(k), f"{path}.{k}")]
    if isinstance(local, list) and isinstance(spark, list) and len(local) == len(spark):
        pairs = zip(local, spark, strict=True)
        return [d for i, (a, b) in enumerate(pairs) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if local == spark else [f"{path}: {local!r} != {spark!r}"]


def _same_datasets(local: Path, spark: Path) -> None:
    """The Spark run wrote Parquet datasets holding the local CSVs' rows, in the same order."""
    assert (spark / "segments.parquet").is_dir() and not (spark / "segments.csv").exists()
    assert (spark / "assignments.parquet").is_dir() and not (spark / "assignments.csv").exists()
    assert (spark / "customers.parquet").is_dir()
    assert (spark / "engagement.parquet").is_dir() and not (spark / "engagement.csv").exists()
    # the simulated engagement: the same rows, in assignment order, from either form
    assert_frame_equal(read_engagement(spark), read_engagement(local), check_dtype=False)
    assert_frame_equal(read_segments(spark), read_segments(local))
    assigned = [read_assignments(run).drop(columns="assigned_at") for run in (spark, local)]
    assert_frame_equal(*assigned)
    copy_local = read_customer_copy(local)
    copy_spark = read_customer_copy(spark)
    assert copy_local is not None and copy_spark is not None
    assert copy_spark.source == copy_local.source
    assert_frame_equal(copy_spark.frame, copy_local.frame, check_dtype=False)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["stratified_block", "hash"])
def test_bundled_run_is_the_same_on_both_engines(spark: Any, tmp_path: Path, method: str) -> None:
    local = _run(tmp_path, "local", _config(tmp_path, "local", "local", assignment_method=method))
    on_spark = _run(
        tmp_path, "spark", _config(tmp_path, "spark", "spark", assignment_method=method)
    )
    _same_artifacts(local, on_spark)


@pytest.mark.slow
def test_100k_generated_customers_are_the_same_on_both_engines(spark: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = CliRunner().invoke(
        cli, ["sample-data", "--customers", "100000", "--out", str(data), "--seed", "11"]
    )
    assert made.exit_code == 0, made.output
    customers = ("--customers", str(data / "customers.csv"))
    local = _run(tmp_path, "local", _config(tmp_path, "local", "local"), *customers)
    on_spark = _run(tmp_path, "spark", _config(tmp_path, "spark", "spark"), *customers)
    _same_artifacts(local, on_spark)


def test_rules_with_missing_values_and_every_kind_of_condition(spark: Any) -> None:
    """Missing numbers, ``not_in``, ``any`` and quantile ``between`` bounds: same segments."""
    frame = load_customers(bundled_customers()).frame.copy()
    frame.loc[frame.index[::5], "avg_order_value"] = np.nan
    rules = [
        {
            "name": "Not Gold, high order value",
            "conditions": [
                {"column": "tier", "op": "not_in", "value": ["Gold"]},
                {"column": "avg_order_value", "op": ">=", "value": {"quantile": 0.6}},
            ],
        },
        {
            "name": "Middle",
            "match": "any",
            "conditions": [
                {
                    "column": "avg_order_value",
                    "op": "between",
                    "value": [{"quantile": 0.2}, {"quantile": 0.7}],
                },
                {"column": "tier", "op": "==", "value": "Silver"},
            ],
        },
    ]
    for method in ("linear", "median_unbiased", "nearest"):
        settings = SegmentationSettings(rules=rules, quantile_method=method)
        local = LocalEngine().segment(frame, settings, 1)
        on_spark = SparkEngine(SparkSettings()).segment(frame, settings, 1)
        assert on_spark.assignments.to_csv(index=False) == local.assignments.to_csv(index=False)
        assert on_spark.details == local.details
        assert [p.size for p in on_spark.profiles] == [p.size for p in local.profiles]
