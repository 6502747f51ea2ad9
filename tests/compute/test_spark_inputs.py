"""``compute.engine: spark`` reads the customer file with Spark; local commands read its run.

* A Parquet customer file given as a ``file://`` URI gives the metrics, segments
  and assignments the local engine gives on the same file.
* The local commands work on the Spark run's folder (Parquet datasets instead of
  segments.csv and assignments.csv): ``cpo analyze`` with the assignments
  dataset, ``cpo report``, and ``cpo run --resume``, which finds every output.
* Bad customer files give the local loader's message (rows named by customer id
  instead of line number); a URI with the local engine is one clear error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result
from golden import normalized
from pandas.testing import assert_frame_equal

from cpo.cli import cli
from cpo.run_folder import read_assignments, read_engagement, read_segments
from cpo.sample_data import bundled_customers
from cpo.textcsv import read_text_csv


def _config(tmp_path: Path, engine: str) -> Path:
    """A config folder with ``compute.engine`` set."""
    folder = tmp_path / f"config-{engine}"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _typed_parquet(tmp_path: Path) -> Path:
    """The bundled customers as a Parquet file with numeric columns typed."""
    frame = read_text_csv(bundled_customers())
    for column in ("age", "last_engagement_days"):
        frame[column] = frame[column].astype("int64")
    for column in ("purchase_frequency", "avg_order_value"):
        frame[column] = frame[column].astype("float64")
    for column in ("historical_open_rate", "historical_click_rate"):
        frame[column] = frame[column].astype("float64")
    path = tmp_path / "customers.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


@pytest.mark.slow
def test_parquet_uri_on_spark_and_local_commands_on_its_run(spark: Any, tmp_path: Path) -> None:
    customers = _typed_parquet(tmp_path)
    local, on_spark = tmp_path / "local", tmp_path / "spark"
    ran = _invoke(
        "run", "--out", str(local), "--config", str(_config(tmp_path, "local")),
        "--customers", str(customers),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    ran = _invoke(
        "run", "--out", str(on_spark), "--config", str(_config(tmp_path, "spark")),
        "--customers", customers.resolve().as_uri(),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    left, right = normalized(local), normalized(on_spark)
    for name in ("metrics.json", "segment_profiles.json"):
        assert left[name] == right[name], name
    assert_frame_equal(read_engagement(on_spark), read_engagement(local), check_dtype=False)
    # Spark wrote the send list as a dataset: its CSV export is the local run's sends.csv
    exported = tmp_path / "spark-sends.csv"
    result = _invoke("export-sends", str(on_spark), "--out", str(exported))
    assert result.exit_code == 0, result.output
    assert exported.read_bytes() == (local / "sends.csv").read_bytes()
    assert_frame_equal(read_segments(on_spark), read_segments(local))
    assigned = [read_assignments(run).drop(columns="assigned_at") for run in (on_spark, local)]
    assert_frame_equal(*assigned)
    _local_commands_work(local, on_spark)


def _local_commands_work(local: Path, on_spark: Path) -> None:
    """analyze (with the assignments dataset), report and resume on the Spark run."""
    documents = []
    runs = (
        (local, "engagement.csv", "assignments.csv"),
        (on_spark, "engagement.parquet", "assignments.parquet"),
    )
    for run, engagement, assignments in runs:
        result = _invoke(
            "analyze", str(run / engagement), "--assignments", str(run / assignments), "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        documents.append(_without_timing(json.loads(result.output)))
    assert documents[0] == documents[1]
    # The analyze stage counted the assignments dataset (metrics.json's coverage).
    metrics = json.loads((on_spark / "metrics.json").read_text(encoding="utf-8"))
    assert sum(metrics["coverage"]["assigned"].values()) > 0
    report = _invoke("report", str(on_spark))
    assert report.exit_code == 0, report.output
    resumed = _invoke("run", "--resume", str(on_spark))
    assert resumed.exit_code == 0, resumed.output
    for stage in ("segment", "assign", "engage", "analyze"):
        assert re.search(rf"^{stage}\s+skipped", resumed.output, re.MULTILINE), resumed.output


def _without_timing(document: dict[str, Any]) -> dict[str, Any]:
    """A metrics document without the fields that hold the time of the analysis."""
    return {k: v for k, v in document.items() if k != "computed_at"}


BAD_ROWS = {
    "non-numeric age": ("C-2", "abc"),
    "blank id": ("", "40"),
    "duplicate id": ("C-1", "41"),
}


def _bad_file(tmp_path: Path) -> Path:
    """The bundled customers' first rows plus a row of each problem in BAD_ROWS."""
    frame = read_text_csv(bundled_customers()).head(6).copy()
    frame.loc[0, "customer_id"] = "C-1"
    frame.loc[1, "customer_id"], frame.loc[1, "age"] = BAD_ROWS["non-numeric age"]
    frame.loc[2, "customer_id"], frame.loc[2, "age"] = BAD_ROWS["blank id"]
    frame.loc[3, "customer_id"], frame.loc[3, "age"] = BAD_ROWS["duplicate id"]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


def test_bad_rows_give_the_local_loaders_message(spark: Any, tmp_path: Path) -> None:
    path = _bad_file(tmp_path)
    outputs = {}
    for engine in ("local", "spark"):
        result = _invoke(
            "run", "--out", str(tmp_path / engine), "--config", str(_config(tmp_path, engine)),
            "--customers", str(path),
        )  # fmt: skip
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        outputs[engine] = result.output
    assert "column 'age': not a number in 1 row(s)" in outputs["spark"]
    assert "column 'customer_id': missing value in 1 row(s)" in outputs["spark"]
    assert "duplicate id (first occurrence kept) in 1 row(s)" in outputs["spark"]
    assert _problems(outputs["spark"]) == _problems(outputs["local"])


def _problems(output: str) -> list[str]:
    """The message's problem lines, a row named as the Spark engine names it."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("column '")]
    return [re.sub(r"\bline \d+", "row", line) for line in lines]


def test_missing_column_is_the_local_loaders_error(spark: Any, tmp_path: Path) -> None:
    frame = read_text_csv(bundled_customers()).head(5).drop(columns=["tier"])
    path = tmp_path / "no-tier.csv"
    frame.to_csv(path, index=False)
    result = _invoke(
        "run", "--out", str(tmp_path / "run"), "--config", str(_config(tmp_path, "spark")),
        "--customers", str(path),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "missing required column(s): tier" in result.output
    assert "Traceback" not in result.output


def test_a_uri_with_the_local_engine_is_one_clear_error(tmp_path: Path) -> None:
    result = _invoke(
        "run", "--out", str(tmp_path / "run"), "--config", str(_config(tmp_path, "local")),
        "--customers", "s3a://bucket/customers.parquet",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "s3a://bucket/customers.parquet: a URI; the local engine reads local files only" in (
        result.output
    )
    assert "compute.engine: spark" in result.output
    assert "Traceback" not in result.output
