"""The command line as a user meets it: help, version, clean errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cpo import __version__
from cpo.cli import cli


def cpo(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from cpo.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def commands() -> list[str]:
    return sorted(cli.commands)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help_and_version(command: str):
    runner = CliRunner()
    help_result = runner.invoke(cli, [command, "--help"])
    assert help_result.exit_code == 0
    assert len(help_result.output.split("\n\n")[1].strip()) > 20  # a real description
    version = runner.invoke(cli, [command, "--version"])
    assert version.exit_code == 0 and __version__ in version.output


def test_top_level_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def _bad_customers(tmp_path: Path, customers_csv: Path, kind: str) -> Path:
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    if kind == "missing column":
        frame = frame.drop(columns=["tier"])
    elif kind == "duplicate id":
        frame.loc[5, "customer_id"] = frame.loc[4, "customer_id"]
    elif kind == "rate 1.7":
        frame.loc[5, "historical_click_rate"] = "1.7"
    if kind == "empty file":
        customers_csv.write_text("")
    else:
        frame.to_csv(customers_csv, index=False)
    return customers_csv


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing column", "missing required column(s): tier"),
        ("duplicate id", "duplicate id"),
        ("rate 1.7", "out of range, must be [0, 1]"),
        ("empty file", "the file is empty"),
    ],
)
def test_bad_customer_file_exits_1_with_one_clear_message(tmp_path, customers_csv, kind, expected):
    path = _bad_customers(tmp_path, customers_csv, kind)
    result = cpo("run", "--out", str(tmp_path / "run"), "--customers", str(path))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("error:") == 1


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    return folder


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda p: p.joinpath("experiment_config.yaml").write_text("campaign: [1,\n"),
            "malformed YAML",
        ),
        (
            lambda p: p.joinpath("azure_config.yaml").write_text(
                yaml.safe_dump({"services": {"safety": {"backend": "local", "colour": "red"}}})
            ),
            "key 'services.safety.colour': unknown key",
        ),
        (lambda p: p.joinpath("safety_thresholds.yaml").unlink(), "config file not found"),
    ],
)
def test_bad_config_exits_1_without_traceback(tmp_path: Path, edit, expected):
    folder = _config(tmp_path)
    edit(folder)
    result = cpo("run", "--out", str(tmp_path / "run"), "--config", str(folder))
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_debug_env_shows_traceback(tmp_path: Path, customers_csv: Path):
    customers_csv.write_text("")
    result = cpo(
        "run",
        "--out",
        str(tmp_path / "run"),
        "--customers",
        str(customers_csv),
        env={"CPO_DEBUG": "1"},
    )
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_run_refuses_non_empty_out(tmp_path: Path):
    (tmp_path / "x.txt").write_text("x")
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "not empty" in result.output


def test_run_needs_out_or_resume():
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1 and "--out" in result.output


def test_segment_command_prints_profiles_and_writes_csv(tmp_path: Path, customers_csv: Path):
    out = tmp_path / "seg.csv"
    result = CliRunner().invoke(cli, ["segment", str(customers_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "500 customers, 4 segments (rules)" in result.output
    assert "High-Value Recent" in result.output
    assert len(pd.read_csv(out)) == 500
    kmeans = CliRunner().invoke(cli, ["segment", str(customers_csv), "--method", "kmeans"])
    assert kmeans.exit_code == 0 and "(kmeans)" in kmeans.output


def test_sample_data_command_is_deterministic(tmp_path: Path):
    for name in ("a", "b"):
        result = CliRunner().invoke(
            cli, ["sample-data", "--customers", "50", "--out", str(tmp_path / name), "--seed", "3"]
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a/customers.csv").read_bytes() == (
        tmp_path / "b/customers.csv"
    ).read_bytes()
    assert len(list((tmp_path / "a/content").glob("*.json"))) >= 30


def test_resume_with_engagement_keeps_the_stored_customer_file(tmp_path: Path, customers_csv: Path):
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(300)
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    first = CliRunner().invoke(
        cli, ["run", "--out", str(run), "--customers", str(customers_csv), "-q"]
    )
    assert first.exit_code == 0, first.output
    measured = pd.read_csv(run / "engagement.csv")[
        ["customer_id", "opened", "clicked", "converted"]
    ]
    measured["clicked"] = 0  # a real send in which nobody clicked
    measured["converted"] = 0
    events = tmp_path / "measured.csv"
    measured.to_csv(events, index=False)
    resumed = CliRunner().invoke(
        cli, ["run", "--resume", str(run), "--engagement", str(events), "-q"]
    )
    assert resumed.exit_code == 0, resumed.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["options"]["customers"] == str(customers_csv.resolve())
    assert manifest["options"]["engagement"] == str(events.resolve())
    assert manifest["inputs"]["customers"]["rows"] == 300
    assert manifest["stages"]["segment"]["status"] == "completed"
    engagement = pd.read_csv(run / "engagement.csv")
    assert len(engagement) == 300 and engagement["clicked"].sum() == 0
    assert set(engagement["engagement_source"]) != {"simulated"}
