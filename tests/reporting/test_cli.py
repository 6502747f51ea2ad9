"""``cpo report RUN_DIR``."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from cpo.cli import cli


def test_cpo_report_regenerates_the_html(fixture_run: Path, tmp_path: Path) -> None:
    # PDF and notebook rendering are covered by the session fixtures and the pipeline test.
    run = tmp_path / "run"
    shutil.copytree(fixture_run, run)
    for name in ("report.html", "report.pdf", "report.ipynb"):
        (run / name).unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["report", str(run), "--no-pdf", "--no-notebook"])
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file()
    assert not (run / "report.pdf").exists() and not (run / "report.ipynb").exists()
    assert "wrote" in result.output and "SIMULATED" in result.output


def test_cpo_report_on_an_incomplete_run_names_the_missing_artifact(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"status": "completed", "stages": {}}')
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 1
    assert "metrics.json (written by the analysis stage)" in result.output
    assert "cpo run --resume" in result.output


def test_cpo_report_on_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such run folder" in result.output
