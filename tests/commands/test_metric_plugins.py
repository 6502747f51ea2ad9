"""Metrics from installed packages: the ``cpo.metrics`` entry-point group, through ``cpo analyze``.

Each test puts a small distribution (a module plus its ``.dist-info`` with
``entry_points.txt``) on ``sys.path``, which is what ``pip install`` of a
package declaring ``[project.entry-points."cpo.metrics"]`` leaves behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment import catalog

NAME = "open_to_convert_rate"
PLUGIN_MODULE = """
from cpo.experiment.catalog import Metric

OPEN_TO_CONVERT = Metric(
    "open_to_convert_rate", "Open-to-convert rate", "Share of openers who converted.",
    "converted", "opened",
)
"""


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a fake distribution whose ``cpo.metrics`` entry point is ``target``."""

    def install(target: str) -> None:
        site = tmp_path / "site"
        (site / "acme_metrics-1.0.dist-info").mkdir(parents=True)
        (site / "acme_metrics.py").write_text(PLUGIN_MODULE, encoding="utf-8")
        info = site / "acme_metrics-1.0.dist-info"
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: acme-metrics\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[cpo.metrics]\n{NAME} = {target}\n", encoding="utf-8"
        )
        monkeypatch.syspath_prepend(str(site))
        # Entry points are read once per process; read them again with this package.
        monkeypatch.setattr(catalog, "_entry_points_loaded", False)

    yield install
    if NAME in catalog._CATALOG:
        catalog.unregister_metric(NAME)


def _engagement(tmp_path: Path) -> Path:
    """Two arms of 100: control 40 opened / 4 converted, treatment 50 opened / 10 converted."""
    rows = []
    for arm, opened, converted in (("control", 40, 4), ("treatment_1", 50, 10)):
        for i in range(100):
            flags = {"opened": int(i < opened), "converted": int(i < converted)}
            rows.append({"customer_id": f"{arm}-{i}", "experiment_arm": arm, "clicked": 0, **flags})
    frame = pd.DataFrame(rows)
    frame.loc[frame["converted"] == 1, "clicked"] = 1
    path = tmp_path / "engagement.csv"
    frame.to_csv(path, index=False)
    return path


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["analysis"]["secondary_metrics"] = ["open_rate", NAME]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def test_an_installed_metric_is_analysed_by_cpo_analyze(tmp_path: Path, install_plugin):
    install_plugin("acme_metrics:OPEN_TO_CONVERT")
    engagement, config = _engagement(tmp_path), _config(tmp_path)
    result = CliRunner().invoke(
        cli, ["analyze", str(engagement), "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["arms"]["control"]["metrics"][NAME] == pytest.approx(4 / 40)
    assert metrics["arms"]["treatment_1"]["metrics"][NAME] == pytest.approx(10 / 50)
    record = next(r for r in metrics["lift_analysis"] if r["metric"] == NAME)
    assert record["counts"] == {
        "treatment": {"events": 10, "trials": 50},
        "control": {"events": 4, "trials": 40},
    }
    tables = CliRunner().invoke(cli, ["analyze", str(engagement), "--config", str(config)])
    assert tables.exit_code == 0, tables.output
    assert NAME in tables.output


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("acme_missing_module:OPEN_TO_CONVERT", "cannot be loaded: No module named"),
        ("acme_metrics:PLUGIN_MODULE_DOES_NOT_DEFINE", "cannot be loaded"),
        ("acme_metrics:Metric", "not a Metric named 'open_to_convert_rate'"),
    ],
)
def test_a_broken_metric_plugin_is_one_clear_error(
    tmp_path: Path, install_plugin, target: str, fragment: str
):
    install_plugin(target)
    result = CliRunner().invoke(cli, ["analyze", str(_engagement(tmp_path))])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"metric entry point '{NAME} = {target}' (acme-metrics)" in result.output
    assert fragment in result.output
    assert "fix or uninstall acme-metrics" in result.output
