"""``cpo export-sends RUN_DIR``: the CSV form of a run's send list, from either form.

Two runs of the real CLI on the same 150 customers and seed, one with
``experiment.send_list.compact_above: null`` (writes sends.csv) and one with
``0`` (writes sends.parquet). Some customer ids start with a formula character,
so the CSV holds escaped cells: the export must escape them exactly as the run does.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo import run_folder
from cpo.cli import cli
from cpo.sample_data.customers import generate_customers

FORMULA_IDS = ['=HYPERLINK("http://x","y")', "+C-plus", "-C-minus", "@C-at"]


def cpo(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def config_with(folder: Path, compact_above: str) -> Path:
    """A `cpo init` config folder whose send-list threshold is ``compact_above``."""
    result = cpo("init", folder)
    assert result.exit_code == 0, result.output
    path = folder / "experiment_config.yaml"
    text, count = re.subn(
        r"compact_above: \S+", f"compact_above: {compact_above}", path.read_text()
    )
    assert count == 1
    path.write_text(text)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(csv run, parquet run) of the same customers and seed."""
    folder = tmp_path_factory.mktemp("export")
    customers = generate_customers(150, seed=11)
    customers.loc[: len(FORMULA_IDS) - 1, "customer_id"] = FORMULA_IDS
    path = folder / "customers.csv"
    customers.to_csv(path, index=False)
    made = []
    for name, threshold in (("csv", "null"), ("parquet", "0")):
        config = config_with(folder / f"config_{name}", threshold)
        run = folder / f"run_{name}"
        result = cpo("run", "--customers", path, "--config", config, "--out", run, "-q")
        assert result.exit_code == 0, result.output
        made.append(run)
    return tuple(made)


@pytest.mark.slow
def test_the_export_of_a_compact_run_is_the_csv_the_run_writes_when_not_compact(runs, tmp_path):
    csv_run, parquet_run = runs
    assert not (parquet_run / "sends.csv").exists()
    assert not (csv_run / "sends.parquet").exists()
    expected = (csv_run / "sends.csv").read_bytes()
    assert b"\n\"'=HYPERLINK(" in expected or b"\n'+C-plus," in expected  # escaped cells
    out = tmp_path / "exported.csv"
    result = cpo("export-sends", parquet_run, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected
    rows = run_folder.read_send_list(parquet_run).row_count()
    assert f"wrote {rows:,} rows to {out} (from sends.parquet)" in result.output


@pytest.mark.slow
def test_gzipped_export_is_deterministic_and_holds_the_same_csv(runs, tmp_path):
    csv_run, parquet_run = runs
    first = tmp_path / "a.csv.gz"  # the suffix selects the format
    second = tmp_path / "b.gz"
    assert cpo("export-sends", parquet_run, "--out", first).exit_code == 0
    result = cpo("export-sends", parquet_run, "--out", second, "--format", "csv.gz")
    assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == (csv_run / "sends.csv").read_bytes()


@pytest.mark.slow
def test_export_of_a_plain_run_copies_its_csv_into_the_current_folder(runs, tmp_path, monkeypatch):
    csv_run, _ = runs
    monkeypatch.chdir(tmp_path)
    result = cpo("export-sends", csv_run)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sends.csv").read_bytes() == (csv_run / "sends.csv").read_bytes()
    assert "(from sends.csv)" in result.output


@pytest.mark.slow
def test_a_progress_line_goes_to_stderr_when_the_list_is_long(runs, tmp_path, monkeypatch):
    _, parquet_run = runs
    rows = run_folder.read_send_list(parquet_run).row_count()
    monkeypatch.setattr(run_folder, "SEND_LIST_BATCH_ROWS", rows - 1)  # "long" from here on
    result = cpo("export-sends", parquet_run, "--out", tmp_path / "x.csv")
    assert result.exit_code == 0, result.output
    assert f"export-sends: {rows:,} / {rows:,} rows (100%)" in result.stderr
    assert "export-sends:" not in result.stdout
    monkeypatch.setattr(run_folder, "SEND_LIST_BATCH_ROWS", rows)
    quiet = cpo("export-sends", parquet_run, "--out", tmp_path / "y.csv")
    assert quiet.exit_code == 0 and "export-sends:" not in quiet.stderr


@pytest.mark.slow
def test_an_existing_output_needs_force_and_the_send_list_is_never_overwritten(runs, tmp_path):
    csv_run, parquet_run = runs
    out = tmp_path / "sends.csv"
    out.write_text("mine")
    refused = cpo("export-sends", parquet_run, "--out", out)
    assert refused.exit_code == 1
    assert f"{out}: already exists" in refused.output and "--force" in refused.output
    assert out.read_text() == "mine"
    forced = cpo("export-sends", parquet_run, "--out", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes() == (csv_run / "sends.csv").read_bytes()
    itself = cpo("export-sends", csv_run, "--out", csv_run / "sends.csv", "--force")
    assert itself.exit_code == 1 and "is the run's send list itself" in itself.output


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    result = cpo("export-sends", tmp_path, "--out", tmp_path / "x.csv")
    assert result.exit_code == 1
    assert f"{tmp_path}: not a run folder" in result.output and "fix:" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_a_run_without_a_send_list_yet_is_one_clear_error(runs, tmp_path):
    _, parquet_run = runs
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(parquet_run / "manifest.json", early / "manifest.json")
    result = cpo("export-sends", early, "--out", tmp_path / "x.csv")
    assert result.exit_code == 1
    assert "no send list yet (neither sends.csv nor sends.parquet)" in result.output
    assert "cpo run --resume" in result.output and "Traceback" not in result.output


def test_an_unknown_format_is_a_usage_error(tmp_path):
    result = cpo("export-sends", tmp_path, "--format", "xlsx")
    assert result.exit_code == 2 and "--format" in result.output
