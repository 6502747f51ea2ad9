"""Engagement imported on Spark, and the analysis reduced by Spark, give the local results.

One local and one Spark ``cpo run`` on the bundled customers import the same
per-recipient file (with repeated, conflicting, unknown and missing rows, and
clicks without an open): the Spark run's ``engagement.parquet/`` holds the
local ``engagement.csv``'s rows, and engagement_report.json and metrics.json
are the same. A bad file gives the local import's message on either engine
(rows named by customer id when Spark alone reads it, from a URI). ``cpo
analyze`` and ``cpo report`` work on the Spark run folder. (The simulated
engagement is compared in ``test_spark_engine.py``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result
from golden import normalized
from pandas.testing import assert_frame_equal

from cpo.cli import cli
from cpo.customers import load_customers
from cpo.run_folder import read_engagement
from cpo.sample_data import bundled_customers


def _config(folder: Path, engine: str) -> Path:
    """A config folder with ``compute.engine`` set."""
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _engagement_file(path: Path) -> Path:
    """Per-recipient engagement of most bundled customers, with every case the import handles."""
    ids = load_customers(bundled_customers()).frame["customer_id"].astype(str).tolist()
    draws = np.random.default_rng(7).random((len(ids), 3))
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "opened": np.where(draws[:, 0] < 0.4, "1", "0"),
            "clicked": np.where(draws[:, 1] < 0.1, "true", "false"),  # some without an open
            "converted": (draws[:, 2] < 0.03).astype(int).astype(str),
        }
    )
    kept = frame.iloc[10:]  # the first ten recipients have no row (missing)
    repeated = kept.head(5).assign(opened="1")  # conflicting repeats, combined
    unknown = pd.DataFrame([{"customer_id": "NOT-A-CUSTOMER", "opened": "1"}])
    rows = pd.concat([kept, repeated, unknown.assign(clicked="0", converted="0")])
    rows.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The local and the Spark run, both importing the same engagement file."""
    work = tmp_path_factory.mktemp("engage")
    engagement = _engagement_file(work / "engagement-export.csv")
    folders = {"work": work, "engagement": engagement}
    for engine in ("local", "spark"):
        out = work / engine
        config = _config(work / f"config-{engine}", engine)
        ran = _invoke(
            "run", "--out", str(out), "--config", str(config), "--engagement", str(engagement)
        )
        assert ran.exit_code == 0, ran.output
        folders[engine] = out
    yield folders


def test_imported_engagement_is_the_local_import(runs: dict[str, Path]) -> None:
    local, on_spark = runs["local"], runs["spark"]
    assert (on_spark / "engagement.parquet").is_dir() and not (on_spark / "engagement.csv").exists()
    assert_frame_equal(read_engagement(on_spark), read_engagement(local), check_dtype=False)
    left, right = normalized(local), normalized(on_spark)
    for name in ("engagement_report.json", "metrics.json"):
        assert left[name] == right[name], f"{name} differs between the engines"
    report = json.loads((on_spark / "engagement_report.json").read_text(encoding="utf-8"))
    codes = {warning["code"] for warning in report["warnings"]}
    assert {"unknown_customers", "duplicate_rows", "missing_recipients"} <= codes
    assert "click_without_open" in codes
    manifest = json.loads((on_spark / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"]["engagement"]["rows"] == report["counts"]["rows"]


def test_local_commands_read_the_spark_run(runs: dict[str, Path]) -> None:
    on_spark = runs["spark"]
    analyzed = _invoke("analyze", str(on_spark / "engagement.parquet"), "--json")
    assert analyzed.exit_code == 0, analyzed.output
    document = json.loads(analyzed.output)
    metrics = json.loads((on_spark / "metrics.json").read_text(encoding="utf-8"))
    assert document["arms"] == metrics["arms"]
    assert document["regression_adjustment"] == metrics["regression_adjustment"]
    (on_spark / "report.html").unlink()
    report = _invoke("report", str(on_spark), "--no-pdf")
    assert report.exit_code == 0, report.output
    assert (on_spark / "report.html").is_file() and (on_spark / "report.ipynb").is_file()


def _bad_copy(runs: dict[str, Path], name: str) -> Path:
    """The engagement file with one malformed flag."""
    frame = pd.read_csv(runs["engagement"], dtype=str, keep_default_na=False)
    frame.loc[3, "clicked"] = "maybe"
    path = runs["work"] / name
    frame.to_csv(path, index=False)
    return path


def test_a_bad_file_gives_the_local_imports_message(runs: dict[str, Path]) -> None:
    bad = _bad_copy(runs, "bad.csv")
    messages = []
    for engine in ("local", "spark"):
        result = _invoke("run", "--resume", str(runs[engine]), "--engagement", str(bad))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        messages.append(result.output.split("error:", 1)[1].strip())
    assert messages[0] == messages[1]
    assert "column 'clicked': not 0/1/true/false in 1 row(s): line 5 value 'maybe'" in messages[1]
    # Given as a URI, only Spark reads the file: the row is named by its customer id.
    uri = _bad_copy(runs, "bad-uri.csv").resolve().as_uri()
    result = _invoke("run", "--resume", str(runs["spark"]), "--engagement", uri)
    assert result.exit_code == 1, result.output
    ids = pd.read_csv(runs["engagement"], dtype=str)["customer_id"]
    assert f"row (customer_id={ids[3]}) value 'maybe'" in result.output
