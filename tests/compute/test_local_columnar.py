"""Above ``compute.columnar_above`` the local engine writes its per-customer files as Parquet.

* The run writes ``segments.parquet/``, ``assignments.parquet/`` and
  ``engagement.parquet/`` instead of the CSVs and gives the same results as the
  same run written as CSV: the readers' frames, send list, design and metrics.
* Every command works on such a run folder: ``cpo run --resume`` (skips every
  stage; rewrites a removed dataset; imports engagement), ``cpo analyze`` on the
  datasets, ``cpo report``, ``cpo send`` and the web app.
* The run-folder writers: either form reads back as the same frame (formula-like
  text, empty and missing cells), a form replaces the other, and an interrupted
  write leaves no partial dataset.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from cpo_testkit import init_config
from fastapi.testclient import TestClient
from golden import normalized
from pandas.testing import assert_frame_equal
from smtp_server import RecordingHandler, SmtpServer

from cpo.cli import cli
from cpo.compute.settings import ComputeSettings
from cpo.run_folder import (
    ASSIGNMENTS,
    ASSIGNMENTS_DATASET,
    ENGAGEMENT,
    ENGAGEMENT_DATASET,
    SEGMENTS,
    SEGMENTS_DATASET,
    read_assignments,
    read_engagement,
    read_segments,
    write_assignments,
    write_segments,
)
from cpo.sample_data.customers import generate_customers
from cpo.web.accounts import add_user
from cpo.web.app import create_app
from cpo.web.auth import database

CUSTOMERS = 300
THRESHOLD = 100
SENDER = "news@shop.example.com"
MARKETER = ("maria", "marketer-pass-1")


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def _config(root: Path, columnar_above: int | None) -> Path:
    """A config that sends from :data:`SENDER`, with ``compute.columnar_above`` set."""

    def edit(document: dict[str, Any]) -> None:
        document["brand"]["from_address"] = SENDER
        document["brand"]["unsubscribe_mailto"] = "leave@shop.example.com"
        document["compute"]["columnar_above"] = columnar_above

    return init_config(root, edit)


def _run(root: Path, customers: Path, columnar_above: int | None) -> Path:
    out = root / "run"
    config = _config(root, columnar_above)
    result = _invoke("run", "--customers", customers, "--config", config, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 300 customers run with ``columnar_above: 100`` and with ``null`` (CSV)."""
    folder = tmp_path_factory.mktemp("columnar")
    customers = folder / "customers.csv"
    generate_customers(CUSTOMERS, seed=7).to_csv(customers, index=False)
    return {
        "parquet": _run(folder / "parquet", customers, THRESHOLD),
        "csv": _run(folder / "csv", customers, None),
    }


@pytest.fixture
def large_run(runs: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the Parquet run (tests may change it)."""
    target = tmp_path / "runs" / "large"
    shutil.copytree(runs["parquet"], target)
    return target


@pytest.mark.parametrize(
    ("columnar_above", "customers", "columnar"),
    [(100, 100, False), (100, 101, True), (0, 1, True), (None, 10**9, False)],
)
def test_the_threshold_counts_customers(columnar_above, customers, columnar):
    assert ComputeSettings(columnar_above=columnar_above).columnar(customers) is columnar


@pytest.mark.slow
def test_a_large_run_writes_parquet_with_the_same_results(runs: dict[str, Path]) -> None:
    large, small = runs["parquet"], runs["csv"]
    assert (large / "segments.parquet" / "part-00000.parquet").is_file()
    assert (large / "assignments.parquet" / "part-00000.parquet").is_file()
    assert (large / "engagement.parquet" / "part-00000.parquet").is_file()
    for artifact in (SEGMENTS, ASSIGNMENTS, ENGAGEMENT):
        assert not artifact.path(large).exists(), artifact.name
    assert SEGMENTS.path(small).is_file() and not SEGMENTS_DATASET.path(small).exists()
    assert ASSIGNMENTS.path(small).is_file() and not ASSIGNMENTS_DATASET.path(small).exists()
    assert ENGAGEMENT.path(small).is_file() and not ENGAGEMENT_DATASET.path(small).exists()
    left, right = normalized(large), normalized(small)
    compared = ("metrics.json", "experiment_design.json", "sends.csv", "segment_profiles.json")
    for name in (*compared, "retrieval.json", "engagement_report.json"):
        assert left[name] == right[name], name
    assert_frame_equal(read_engagement(large), read_engagement(small), check_dtype=False)
    assert _without_times(large / "moderators.json") == _without_times(small / "moderators.json")
    assert_frame_equal(read_segments(large), read_segments(small))
    assigned = [read_assignments(run).drop(columns="assigned_at") for run in (large, small)]
    assert_frame_equal(*assigned)
    assert len(assigned[0]) == CUSTOMERS


def _analyze(*args: object) -> dict[str, Any]:
    """``cpo analyze ARGS --json``'s document without the time of the analysis."""
    result = _invoke("analyze", *args, "--json")
    assert result.exit_code == 0, result.output
    return {k: v for k, v in json.loads(result.output).items() if k != "computed_at"}


def _without_times(path: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if "_at" not in k}


@pytest.mark.slow
def test_resume_skips_every_stage(runs: dict[str, Path]) -> None:
    # in place: the resume fingerprints name the run folder's files by path
    resumed = _invoke("run", "--resume", runs["parquet"])
    assert resumed.exit_code == 0, resumed.output
    for stage in ("segment", "retrieve", "assign", "engage", "analyze", "report"):
        assert re.search(rf"^{stage}\s+skipped", resumed.output, re.MULTILINE), resumed.output


@pytest.mark.slow
def test_resume_rewrites_a_removed_dataset(large_run: Path) -> None:
    before = read_assignments(large_run)
    shutil.rmtree(ASSIGNMENTS_DATASET.path(large_run))
    again = _invoke("run", "--resume", large_run)
    assert again.exit_code == 0, again.output
    assert re.search(r"^assign\s+completed", again.output, re.MULTILINE), again.output
    assert not ASSIGNMENTS.path(large_run).exists()
    rewritten = read_assignments(large_run)
    assert_frame_equal(rewritten.drop(columns="assigned_at"), before.drop(columns="assigned_at"))


@pytest.mark.slow
def test_analyze_on_the_datasets_equals_the_csvs(runs: dict[str, Path]) -> None:
    large, small = runs["parquet"], runs["csv"]
    on_dataset = _analyze(large / "engagement.parquet")
    assert on_dataset == _analyze(small / "engagement.csv")
    joined = _analyze(small / "engagement.csv", "--assignments", large / "assignments.parquet")
    assert joined == _analyze(small / "engagement.csv", "--assignments", small / "assignments.csv")
    metrics = json.loads((runs["parquet"] / "metrics.json").read_text(encoding="utf-8"))
    assert sum(metrics["coverage"]["assigned"].values()) == CUSTOMERS


@pytest.mark.slow
def test_report_and_send_on_a_large_run(large_run: Path) -> None:
    for name in ("report.html", "report.pdf", "report.ipynb"):
        (large_run / name).unlink()
    report = _invoke("report", large_run)
    assert report.exit_code == 0, report.output
    assert all((large_run / name).is_file() for name in ("report.html", "report.pdf"))
    with SmtpServer(RecordingHandler()) as server:
        sent = _invoke(
            "send", large_run, "--smtp-host", "127.0.0.1", "--smtp-port", server.port,
            "--retry-delay", "0.01", "--json",
        )  # fmt: skip
        assert sent.exit_code == 0, sent.output
    summary = json.loads(sent.stdout[sent.stdout.index("{") :])
    recipients = read_assignments(large_run, ["experiment_arm"])
    assert summary["sent"] == len(server.handler.messages) == len(recipients) > 0


def _engagement_export(run_dir: Path) -> str:
    """One row per assigned customer (every third opened, every ninth clicked)."""
    ids = read_assignments(run_dir, ["customer_id"])["customer_id"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "opened", "clicked", "converted"])
    for index, customer in enumerate(ids):
        writer.writerow([customer, int(index % 3 == 0), int(index % 9 == 0), 0])
    return out.getvalue()


@pytest.mark.slow
def test_an_engagement_import_reads_the_assignments_dataset(large_run: Path) -> None:
    export = large_run.parent / "export.csv"
    export.write_text(_engagement_export(large_run), encoding="utf-8")
    resumed = _invoke("run", "--resume", large_run, "--engagement", export)
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((large_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["engagement_source"] == "imported"
    assert metrics["total_customers"] == CUSTOMERS
    imported = read_engagement(large_run, ["customer_id", "opened"], text=["customer_id"])
    assert ENGAGEMENT_DATASET.path(large_run).is_dir() and not ENGAGEMENT.path(large_run).exists()
    assert int(imported["opened"].sum()) == len(range(0, CUSTOMERS, 3))


@pytest.mark.slow
def test_the_web_app_shows_and_checks_a_large_run(large_run: Path) -> None:
    runs_dir = large_run.parent
    with database(runs_dir) as conn:
        add_user(conn, MARKETER[0], "marketer", MARKETER[1])
    client = TestClient(create_app(runs_dir))
    _sign_in(client)
    overview = client.get(f"/runs/{large_run.name}")
    assert overview.status_code == 200
    assert client.get(f"/runs/{large_run.name}/report").status_code == 200
    page = f"/runs/{large_run.name}/engagement"
    token = _csrf(client.get(page).text)
    upload = client.post(
        page,
        data={"csrf_token": token},
        files={"engagement": ("export.csv", _engagement_export(large_run).encode(), "text/csv")},
        follow_redirects=False,
    )
    assert upload.status_code == 303, upload.text  # checked against the assignments dataset


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def _sign_in(client: TestClient) -> None:
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={"name": MARKETER[0], "password": MARKETER[1], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


# --- the run-folder writers and readers --------------------------------------------


def _segments() -> pd.DataFrame:
    """Segments with formula-like text, an empty and a missing reason."""
    return pd.DataFrame(
        {
            "customer_id": ["C-1", "=2+3", "C-3"],
            "segment": ["At-Risk", "Standard", "+Loyal"],
            "segment_id": [1, 3, 0],
            "confidence": [0.5, 0.899, 1.0],
            "reason": ["At-Risk: days >= 91", "", None],
        }
    )


def _assignments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C-1", "=2+3", "C-3"],
            "segment": ["At-Risk", "Standard", "+Loyal"],
            "experiment_arm": ["control", "holdout", "treatment_1"],
            "variant_id": ["control", "", "@v-1"],
            "assigned_at": ["2026-12-01T00:00:00Z"] * 3,
            "assignment_method": ["hash"] * 3,
        }
    )


def test_both_forms_of_the_segments_read_the_same(tmp_path: Path) -> None:
    csv_run, parquet_run = tmp_path / "csv", tmp_path / "parquet"
    for run in (csv_run, parquet_run):
        run.mkdir()
        write_segments(run, _segments(), columnar=run is parquet_run)
    assert SEGMENTS.path(csv_run).is_file() and SEGMENTS_DATASET.path(parquet_run).is_dir()
    assert_frame_equal(read_segments(parquet_run), read_segments(csv_run))
    assert read_segments(parquet_run)["reason"].tolist() == ["At-Risk: days >= 91", "", ""]
    assert read_segments(parquet_run)["customer_id"].tolist()[1] == "=2+3"
    columns = ["segment", "customer_id"]
    picked = read_segments(parquet_run, columns)
    assert list(picked.columns) == columns
    assert_frame_equal(picked, read_segments(csv_run, columns))


def test_both_forms_of_the_assignments_read_the_same(tmp_path: Path) -> None:
    csv_run, parquet_run = tmp_path / "csv", tmp_path / "parquet"
    for run in (csv_run, parquet_run):
        run.mkdir()
        write_assignments(run, _assignments(), columnar=run is parquet_run)
    assert_frame_equal(read_assignments(parquet_run), read_assignments(csv_run))
    picked = read_assignments(parquet_run, ["experiment_arm"])
    assert picked["experiment_arm"].tolist() == ["control", "holdout", "treatment_1"]
    stored = pq.read_table(ASSIGNMENTS_DATASET.path(parquet_run) / "part-00000.parquet")
    assert stored.column("variant_id").to_pylist() == ["control", "", "@v-1"]  # not escaped


def test_a_form_replaces_the_other(tmp_path: Path) -> None:
    write_segments(tmp_path, _segments())
    write_segments(tmp_path, _segments(), columnar=True)
    assert not SEGMENTS.path(tmp_path).exists() and SEGMENTS_DATASET.path(tmp_path).is_dir()
    write_assignments(tmp_path, _assignments(), columnar=True)
    write_assignments(tmp_path, _assignments())
    assert ASSIGNMENTS.path(tmp_path).is_file() and not ASSIGNMENTS_DATASET.path(tmp_path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignments.csv", "segments.parquet"]


def test_an_interrupted_write_leaves_no_partial_dataset(tmp_path: Path, monkeypatch) -> None:
    write_segments(tmp_path, _segments())

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_segments(tmp_path, _segments(), columnar=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segments.csv"]  # no staging left
    assert read_segments(tmp_path)["customer_id"].tolist() == ["C-1", "=2+3", "C-3"]


@pytest.mark.slow
def test_adaptive_waves_keep_their_csv_files(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    generate_customers(CUSTOMERS, seed=7).to_csv(customers, index=False)
    out = tmp_path / "waves"
    config = _config(tmp_path, THRESHOLD)
    ran = _invoke(
        "run", "--customers", customers, "--config", config, "--out", out, "--waves", "2", "-q"
    )
    assert ran.exit_code == 0, ran.output
    assert SEGMENTS_DATASET.path(out).is_dir()  # segmented as any large run
    # the wave analysis reads assignments.csv and engagement.csv with their wave column
    assert ASSIGNMENTS.path(out).is_file() and ENGAGEMENT.path(out).is_file()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["waves"] is not None
