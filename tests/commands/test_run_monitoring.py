"""``analysis.sequential: true``: each analysis of a run is a look, recorded in monitoring.json.

Through the real entry point: ``cpo run`` (simulated engagement), then
``cpo run --resume RUN --engagement COUNTS`` as real counts arrive.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cpo.cli import cli


def invoke(*args: str) -> Result:
    """Run the cpo CLI in-process."""
    return CliRunner().invoke(cli, list(args))


def sequential_config(folder: Path) -> Path:
    """A `cpo init` config with analysis.sequential switched on."""
    assert invoke("init", str(folder)).exit_code == 0
    path = folder / "experiment_config.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  sequential: false\n" in text
    path.write_text(text.replace("  sequential: false\n", "  sequential: true\n"), "utf-8")
    return folder


def counts_file(run: Path, path: Path, share: float, clicks: float) -> Path:
    """Counts per arm after ``share`` of the recipients' engagement came back."""
    assignments = pd.read_csv(run / "assignments.csv", dtype=str, keep_default_na=False)
    recipients = assignments[assignments["experiment_arm"] != "holdout"]
    counts = recipients.groupby("experiment_arm").size().rename("sent").reset_index()
    counts["sent"] = (counts["sent"] * share).astype(int)
    counts["opened"] = counts["sent"] // 3
    counts["clicked"] = (counts["sent"] * clicks).astype(int)
    counts["converted"] = counts["clicked"] // 4
    counts.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_each_import_is_a_look_and_a_reanalysis_is_not(tmp_path: Path, customers_csv: Path):
    """A simulated look, then two imports (looks 1, 2 of real data); the same counts add none."""
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(400)
    frame.to_csv(customers_csv, index=False)
    run, config = tmp_path / "run", sequential_config(tmp_path / "config")
    first = invoke("run", "--out", str(run), "--customers", str(customers_csv),
                   "--config", str(config))  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "always-valid (look 1)" in first.output
    simulated = json.loads((run / "monitoring.json").read_text())
    assert [look["engagement_source"] for look in simulated["looks"]] == ["simulated"]

    early = counts_file(run, tmp_path / "day1.csv", 0.5, 0.10)
    later = counts_file(run, tmp_path / "day3.csv", 1.0, 0.12)
    for path, look in ((early, 1), (later, 2)):
        resumed = invoke("run", "--resume", str(run), "--engagement", str(path))
        assert resumed.exit_code == 0, resumed.output
        assert f"always-valid (look {look})" in resumed.output
    # The same counts again (under another name): no new look.
    again = tmp_path / "day3-again.csv"
    again.write_bytes(later.read_bytes())
    repeated = invoke("run", "--resume", str(run), "--engagement", str(again))
    assert repeated.exit_code == 0, repeated.output
    assert "always-valid (look 3)" not in repeated.output
    monitoring = json.loads((run / "monitoring.json").read_text())
    assert [look["look"] for look in monitoring["looks"]] == [1, 2]
    assert {look["engagement_source"] for look in monitoring["looks"]} == {"imported"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["sequential"]["look"] == 2
    assert metrics["sequential"]["looks"] == monitoring["looks"]
    first_look, second_look = (look["comparisons"] for look in monitoring["looks"])
    for before, after in zip(first_look, second_look, strict=True):
        assert after["p_value"] <= before["p_value"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["analysis"]["sequential"]["look"] == 2
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "Monitoring while the campaign runs (always-valid)" in report
    history = report.split('id="monitoring-table"')[1].split("</table>")[0]
    assert history.count("<tr>") == 1 + 2 * 3  # header + 2 looks x 3 treatment arms
    assert "How to read this: every time new engagement was imported" in report
    assert report.count("look 2</text>") == 3  # the chart: one panel per treatment arm
    notebook = json.loads((run / "report.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in notebook["cells"] if "monitoring.json" in "".join(c["source"])]
    assert cells and not [o for o in cells[0]["outputs"] if o["output_type"] == "error"]

    # cpo analyze reads the recorded looks but does not add one.
    before = (run / "monitoring.json").read_bytes()
    more = counts_file(run, tmp_path / "day5.csv", 1.0, 0.15)
    shown = invoke("analyze", str(run / "engagement_counts.csv"), "--config", str(config))
    assert shown.exit_code == 0, shown.output
    assert "Always-valid (mSPRT, tau 0.03), look 2" in shown.output
    ahead = invoke("analyze", str(more), "--config", str(config), "--json")
    assert ahead.exit_code == 0, ahead.output
    assert json.loads(ahead.output)["sequential"]["look"] == 1  # not a run folder: look 1
    assert (run / "monitoring.json").read_bytes() == before
    # Another tau mid-campaign voids the guarantees: one clear error, no new look.
    other = tmp_path / "other-tau"
    shutil.copytree(config, other)
    yaml = other / "experiment_config.yaml"
    yaml.write_text(yaml.read_text("utf-8").replace("sequential_tau: 0.03", "sequential_tau: 0.05"))
    refused = invoke("run", "--resume", str(run), "--engagement", str(more), "--config", str(other))
    assert refused.exit_code == 1, refused.output
    assert "monitoring.json: earlier looks used sequential_tau 0.03" in refused.output
    assert "fix: set analysis.sequential_tau: 0.03" in refused.output
    assert "Traceback" not in refused.output
    assert (run / "monitoring.json").read_bytes() == before


def test_a_run_without_sequential_writes_no_monitoring(tmp_path: Path, customers_csv: Path):
    """The default: no monitoring.json, no sequential section, no always-valid line."""
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(200)
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    result = invoke("run", "--out", str(run), "--customers", str(customers_csv))
    assert result.exit_code == 0, result.output
    assert not (run / "monitoring.json").exists()
    assert "sequential" not in json.loads((run / "metrics.json").read_text())
    assert "always-valid" not in result.output
    assert 'id="monitoring"' not in (run / "report.html").read_text(encoding="utf-8")
