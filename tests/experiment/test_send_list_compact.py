"""The send list's compact form: ``sends.parquet`` above ``experiment.send_list.compact_above``.

Unit tests of the Parquet writer and the threshold, then one run of the real
CLI resumed with other thresholds: the form follows the config, the other form
is removed, a resume skips the stage only while one form is there, and the
manifest and report say which form was written and why.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cpo import run_folder
from cpo.cli import cli
from cpo.experiment.sends import export_send_list, write_send_list, write_send_list_parquet
from cpo.experiment.settings import SendListSettings
from cpo.runfiles import escape_formula, escape_formula_cells
from cpo.sample_data.customers import generate_customers


def cpo(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def send_frame() -> pd.DataFrame:
    """Three recipients; text columns categorical as build_send_list makes them."""
    frame = pd.DataFrame(
        {
            "customer_id": ["=1+2", "C2", "C3"],
            "email": ["a@example.org", "", "c@example.org"],
            "first_name": ["Ann", "", "@Bo"],
            "experiment_arm": ["control", "treatment_1", "control"],
            "variant_id": ["control", "v1", "control"],
        }
    )
    for column, values in {
        "subject": ["Hi Ann", "Hi there", "Hi @Bo"],
        "preheader": ["-10% today", "-10% today", "-10% today"],
        "body": ["Hi Ann,\nnews", "Hi there,\nnews", "Hi @Bo,\nnews"],
        "body_html": ["<p>Hi Ann</p>", "<p>Hi there</p>", "<p>Hi @Bo</p>"],
    }.items():
        frame[column] = pd.Categorical(values)
    return frame


def test_parquet_send_list_is_deterministic_dictionary_encoded_and_unescaped(tmp_path: Path):
    frame = send_frame()
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_send_list_parquet(first, frame)
    write_send_list_parquet(second, send_frame())
    assert first.read_bytes() == second.read_bytes()
    table = pq.read_table(first)
    assert table.column_names == list(frame.columns)
    for column in ("subject", "preheader", "body", "body_html"):
        assert pa.types.is_dictionary(table.schema.field(column).type), column
    assert table.schema.metadata is None or b"pandas" not in table.schema.metadata
    back = table.to_pandas()
    for column in frame.columns:  # values exactly as sent: no formula quote in Parquet
        assert back[column].astype(str).tolist() == frame[column].astype(str).tolist()
    assert pq.ParquetFile(first).metadata.row_group(0).column(0).compression == "ZSTD"


def test_both_forms_read_back_as_the_same_values(tmp_path: Path):
    frame = send_frame()
    (tmp_path / "manifest.json").write_text("{}")
    write_send_list(run_folder.SENDS.path(tmp_path), frame)
    from_csv = run_folder.read_send_list(tmp_path)
    assert from_csv.format == "csv" and from_csv.row_count() == 3
    csv_values = pa.Table.from_batches(list(from_csv.record_batches())).to_pydict()
    assert "'=1+2" in run_folder.SENDS.path(tmp_path).read_text()  # escaped on disk
    write_send_list_parquet(run_folder.SENDS_PARQUET.path(tmp_path), frame)
    compact = run_folder.read_send_list(tmp_path)  # Parquet wins when both are there
    assert compact.format == "parquet" and compact.row_count() == 3
    parquet_values = pa.Table.from_batches(list(compact.record_batches(batch_rows=2)))
    plain = parquet_values.cast(pa.schema([(n, pa.string()) for n in frame.columns]))
    assert plain.to_pydict() == csv_values
    assert csv_values["customer_id"][0] == "=1+2" and csv_values["first_name"][2] == "@Bo"


CELLS = ["=a", "'=a", "''+b", "x", "", None, "\tx", "-1", "@", "a=b", "\rz"]


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary"])
def test_arrow_escaping_matches_the_per_cell_rule(kind):
    cells = pa.array(CELLS, type=pa.large_string() if kind == "large_string" else pa.string())
    if kind == "dictionary":
        cells = cells.dictionary_encode()
    escaped = escape_formula_cells(cells)
    assert escaped.to_pylist() == [escape_formula(c) for c in CELLS]
    assert escape_formula_cells(pa.array(["x", "y"])).to_pylist() == ["x", "y"]
    assert escape_formula_cells(pa.array([-1, 2])).to_pylist() == [-1, 2]  # not text


@pytest.mark.parametrize("rows", [0, 3])
def test_export_of_a_parquet_list_equals_the_csv_writer(tmp_path: Path, rows: int):
    frame = send_frame().iloc[:rows].reset_index(drop=True)
    write_send_list(tmp_path / "sends.csv", frame)
    write_send_list_parquet(tmp_path / "sends.parquet", frame)
    calls = []
    source = run_folder.SendListFile(run_folder.SENDS_PARQUET, tmp_path / "sends.parquet")
    written = export_send_list(
        source, tmp_path / "out.csv", progress=lambda done, total: calls.append((done, total))
    )
    assert written == rows
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "sends.csv").read_bytes()
    assert calls == ([(rows, rows)] if rows else [])  # after each batch written


@pytest.mark.parametrize(
    ("compact_above", "recipients", "compact"),
    [(0, 0, False), (0, 1, True), (None, 10**9, False), (100, 100, False), (100, 101, True)],
)
def test_the_threshold_counts_recipients(compact_above, recipients, compact):
    assert SendListSettings(compact_above=compact_above).compact(recipients) is compact


def test_a_negative_threshold_is_a_config_error_naming_the_key(tmp_path: Path):
    config = tmp_path / "config"
    assert cpo("init", config).exit_code == 0
    set_threshold(config, "-1")
    result = cpo("run", "--config", config, "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert "experiment.send_list.compact_above" in result.output
    assert "Traceback" not in result.output


def set_threshold(config: Path, value: str) -> None:
    path = config / "experiment_config.yaml"
    text, count = re.subn(r"compact_above: \S+", f"compact_above: {value}", path.read_text())
    assert count == 1
    path.write_text(text)


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_resumes_follow_the_threshold_and_keep_one_form(tmp_path: Path):
    customers = tmp_path / "customers.csv"
    generate_customers(120, seed=5).to_csv(customers, index=False)
    config, run = tmp_path / "config", tmp_path / "run"
    assert cpo("init", config).exit_code == 0
    set_threshold(config, "null")
    first = cpo("run", "--customers", customers, "--config", config, "--out", run, "-q")
    assert first.exit_code == 0, first.output
    plain = (run / "sends.csv").read_bytes()
    assert not (run / "sends.parquet").exists()
    record = manifest(run)["experiment"]["send_list"]
    assert record["file"] == "sends.csv" and "null (always CSV)" in record["reason"]

    set_threshold(config, "0")
    resumed = cpo("run", "--resume", run, "--config", config)
    assert resumed.exit_code == 0, resumed.output
    assert re.search(r"assign\s+completed", resumed.output)
    assert (run / "sends.parquet").is_file() and not (run / "sends.csv").exists()
    record = manifest(run)["experiment"]["send_list"]
    recipients = record["recipients"]
    assert record == {
        "file": "sends.parquet",
        "format": "parquet",
        "recipients": recipients,
        "compact_above": 0,
        "reason": f"{recipients:,} recipients, more than experiment.send_list.compact_above (0)",
    }
    report = (run / "report.html").read_text(encoding="utf-8")
    assert f"sends.parquet holds {recipients:,} messages" in report
    assert "cpo export-sends RUN_DIR" in report

    again = cpo("run", "--resume", run, "--config", config)
    assert again.exit_code == 0 and re.search(r"assign\s+skipped", again.output)
    kept = run / "kept.parquet"
    shutil.move(run / "sends.parquet", kept)  # the send list is gone: assign must rerun
    rerun = cpo("run", "--resume", run, "--config", config)
    assert re.search(r"assign\s+completed", rerun.output), rerun.output
    assert (run / "sends.parquet").read_bytes() == kept.read_bytes()

    set_threshold(config, str(recipients))  # not more than the threshold: plain CSV again
    back = cpo("run", "--resume", run, "--config", config, "-q")
    assert back.exit_code == 0, back.output
    assert (run / "sends.csv").read_bytes() == plain and not (run / "sends.parquet").exists()
