"""Fixtures of the ``cpo send`` tests: one small completed run, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from delivery_testkit import config_with_sender, cpo

from cpo.sample_data.customers import generate_customers


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory) -> Path:
    """A completed run of 80 generated customers (every one has an email)."""
    folder = tmp_path_factory.mktemp("send_source")
    path = folder / "customers.csv"
    generate_customers(80, seed=5).to_csv(path, index=False)
    config = config_with_sender(folder / "config")
    run = folder / "run"
    result = cpo("run", "--customers", path, "--config", config, "--out", run, "-q")
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def run_dir(completed_run, tmp_path) -> Path:
    """A private copy of the completed run in ``tmp_path/runs/run``."""
    target = tmp_path / "runs" / "run"
    shutil.copytree(completed_run, target)
    return target
