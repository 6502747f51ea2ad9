"""``compute.engine: spark`` builds the send list with Spark: the local engine's rows.

One set of generated customers, run once per engine through ``cpo run``: blank
first names (greeted with the fallback), a name that fails merge screening
(withheld), markup, invisible characters and two spellings of one name, a name
past the length cap, and more recipients than
``experiment.send_list.compact_above`` (the local engine writes its compact
``sends.parquet``; Spark writes the ``sends.parquet/`` dataset). The Spark run's
send list holds the local run's rows in the same order, withheld.csv and the
merge-screening audit entries are the same, and ``cpo export-sends`` and
``cpo send`` work on the Spark run. The Spark run uses the shared ``local[2]``
session of ``conftest.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from delivery_testkit import config_with_sender, cpo
from pandas.testing import assert_frame_equal
from smtp_server import RecordingHandler, SmtpServer

from cpo import run_folder
from cpo.experiment.sends import export_send_list
from cpo.merge_values import normalize_values
from cpo.run_folder import SENDS_PARQUET, SendListFile, read_assignments, read_send_list
from cpo.safety.merge import value_sha256
from cpo.sample_data.customers import generate_customers

CUSTOMERS = 240
COMPACT_ABOVE = 50
HOSTILE = "I will kill you http://phish.example 4111 1111 1111 1111"
#: Rows of the generated file and the first name each is given.
NAMES = {
    3: "",
    7: HOSTILE,
    11: "<script>alert(1)</script>",
    15: "Zo\u00eb\u200b O'Hara\t",
    19: "Zo\u00eb O'Hara",
    23: "A" * 80,
    30: "",
    41: HOSTILE,
    77: HOSTILE,
    150: HOSTILE,
    200: "",
}


def _config(folder: Path, engine: str) -> Path:
    """A config with a sender, ``compute.engine`` and a low compact threshold."""
    config_with_sender(folder)
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    data["experiment"]["send_list"]["compact_above"] = COMPACT_ABOVE
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same customers run by each engine: {"local": run, "spark": run, "customers": file}."""
    folder = tmp_path_factory.mktemp("spark_sends")
    customers = generate_customers(CUSTOMERS, seed=23)
    for row, name in NAMES.items():
        customers.loc[row, "first_name"] = name
    path = folder / "customers.csv"
    customers.to_csv(path, index=False)
    made: dict[str, Path] = {"customers": path}
    for engine in ("local", "spark"):
        out = folder / engine
        result = cpo(
            "run", "--customers", path, "--config", _config(folder / f"config-{engine}", engine),
            "--out", out, "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        made[engine] = out
    return made


def _rows(run: Path) -> pd.DataFrame:
    """The run's send list as one frame of text, in its order (whatever its form)."""
    parts = [part.to_pandas() for part in read_send_list(run).parts()]
    return pd.concat(parts, ignore_index=True).astype(str)


def test_spark_writes_the_local_send_list_rows(runs: dict[str, Path]) -> None:
    local, spark = runs["local"], runs["spark"]
    assert (local / "sends.parquet").is_file() and (spark / "sends.parquet").is_dir()
    assert not (spark / "sends.csv").exists()
    ours, theirs = _rows(spark), _rows(local)
    assert len(ours) > COMPACT_ABOVE
    assert_frame_equal(ours, theirs)
    withheld = (spark / "withheld.csv").read_text(encoding="utf-8")
    assert withheld == (local / "withheld.csv").read_text(encoding="utf-8")
    held = pd.read_csv(spark / "withheld.csv", dtype=str)
    assert len(held) >= 1 and set(held["reason"].str.split(";").explode()) >= {"violence"}
    assert "kill" not in withheld  # a reason code, never the value
    # the cases are there: blank names, markup (escaped in HTML), the length cap
    assert (ours["first_name"] == "").any()
    assert not ours["body"].str.contains("{first_name}", regex=False).any()
    assert not ours["body_html"].str.contains("<script>", regex=False).any()
    assert ours["first_name"].str.len().max() == 50
    assert _send_events(spark) == _send_events(local)


def _send_events(run: Path) -> list[dict[str, Any]]:
    """The assign stage's send-list log events (counts only), without their times."""
    events = []
    for line in (run / "logs" / "experiment.log").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("event") in {"assigned", "blank_first_names", "recipients_withheld"}:
            events.append({k: v for k, v in entry.items() if k != "timestamp"})
    return events


def test_the_manifest_and_the_merge_audit_match_the_local_run(runs: dict[str, Path]) -> None:
    local, spark = (_experiment(runs[engine]) for engine in ("local", "spark"))
    for key in ("assigned", "recipients", "withheld"):
        assert spark[key] == local[key], key
    assert spark["send_list"]["file"] == "sends.parquet"
    assert spark["send_list"]["recipients"] == local["recipients"]
    assert "compute.engine: spark" in spark["send_list"]["reason"]
    assert _merge_entries(runs["spark"]) == _merge_entries(runs["local"])
    assert _values_digest(runs["spark"]) == _expected_values_digest(runs)


def _experiment(run: Path) -> dict[str, Any]:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return manifest["experiment"]


def _audit(run: Path) -> list[dict[str, Any]]:
    lines = (run / "safety_audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [entry for entry in map(json.loads, lines) if entry["kind"].startswith("merge_")]


def _merge_entries(run: Path) -> list[dict[str, Any]]:
    """The merge-screening entries without what depends on the run (id, time, salted hashes)."""
    varying = {"run_id", "timestamp", "at", "hash", "prev_hash", "entry_hash", "previous_hash"}
    varying |= {"values_sha256", "content_sha256", "seq"}
    return [{k: v for k, v in entry.items() if k not in varying} for entry in _audit(run)]


def _values_digest(run: Path) -> str:
    (summary,) = [e for e in _audit(run) if e["kind"] == "merge_screening"]
    return str(summary["values_sha256"])


def _expected_values_digest(runs: dict[str, Path]) -> str:
    """The digest of the distinct normalized first names of the Spark run's recipients."""
    import hashlib

    customers = pd.read_csv(runs["customers"], dtype=str, keep_default_na=False)
    assigned = read_assignments(runs["spark"])
    recipients = assigned.loc[assigned["experiment_arm"] != "holdout", ["customer_id"]]
    names = recipients.merge(customers, on="customer_id")["first_name"]
    values = {v for v in normalize_values(names, max_chars=None) if v}
    run_id = json.loads((runs["spark"] / "manifest.json").read_text())["run_id"]
    hashes = sorted(value_sha256(v, run_id) for v in values)
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def test_export_sends_and_send_work_on_the_spark_run(runs: dict[str, Path], tmp_path: Path) -> None:
    exported = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.csv"
        result = cpo("export-sends", runs[engine], "--out", out)
        assert result.exit_code == 0, result.output
        assert "(from sends.parquet)" in result.output
        exported[engine] = out.read_bytes()
    assert exported["spark"] == exported["local"]
    rows = _rows(runs["spark"])
    with SmtpServer(RecordingHandler()) as server:
        sent = cpo(
            "send", runs["spark"], "--smtp-host", "127.0.0.1", "--smtp-port", server.port,
            "--retry-delay", "0.01", "--json",
        )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    summary = json.loads(sent.stdout[sent.stdout.index("{") :])
    assert summary["sent"] == len(rows) == len(server.handler.messages)
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])


def test_resume_finds_the_send_list_dataset(runs: dict[str, Path]) -> None:
    result = cpo("run", "--resume", runs["spark"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^assign\s+skipped", result.output, re.MULTILINE), result.output


def test_adaptive_waves_on_spark_are_refused_with_the_fix(tmp_path: Path) -> None:
    result = cpo(
        "run", "--config", _config(tmp_path / "config", "spark"), "--out", tmp_path / "run",
        "--waves", "2",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "adaptive waves (2) with compute.engine: spark" in result.output
    assert "compute.engine: local" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "segments.parquet").exists()


def test_a_send_list_dataset_is_read_in_part_file_order(tmp_path: Path) -> None:
    """Part files (and their row groups) in name order; row count and CSV export over all."""
    run = tmp_path / "run"
    dataset = SENDS_PARQUET.path(run)
    dataset.mkdir(parents=True)
    (run / "manifest.json").write_text("{}", encoding="utf-8")
    frames = [
        pd.DataFrame({"customer_id": ["C3", "C4", "C5"], "body": ["=1+1", "b", "c"]}),
        pd.DataFrame({"customer_id": ["C1", "C2"], "body": ["d", "e"]}),
    ]
    for name, frame in zip(("part-00001-x.parquet", "part-00000-x.parquet"), frames, strict=True):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), dataset / name)
    (dataset / "_SUCCESS").write_text("", encoding="utf-8")
    found = run_folder.find_send_list(run)
    assert found is not None and found.dataset and found.compact
    assert found.row_count() == 5
    assert list(_rows(run)["customer_id"]) == ["C1", "C2", "C3", "C4", "C5"]
    out = tmp_path / "sends.csv"
    assert export_send_list(found, out) == 5
    assert out.read_text(encoding="utf-8").splitlines() == [
        '"customer_id","body"', '"C1","d"', '"C2","e"', '"C3","\'=1+1"', '"C4","b"', '"C5","c"',
    ]  # fmt: skip
    run_folder.remove_send_lists(run)
    assert run_folder.find_send_list(run) is None and not dataset.exists()


def test_an_empty_send_list_dataset_exports_its_header(tmp_path: Path) -> None:
    dataset = tmp_path / "sends.parquet"
    dataset.mkdir()
    empty = pa.table({"customer_id": pa.array([], pa.string()), "body": pa.array([], pa.string())})
    pq.write_table(empty, dataset / "part-00000-x.parquet")
    out = tmp_path / "sends.csv"
    assert export_send_list(SendListFile(SENDS_PARQUET, dataset), out) == 0
    assert out.read_text(encoding="utf-8").splitlines() == ['"customer_id","body"']


@pytest.mark.parametrize(("role", "allowed"), [("reviewer", False), ("marketer", True)])
def test_the_compact_send_list_is_customer_data_in_the_web_app(role: str, allowed: bool) -> None:
    from cpo.web.auth import User
    from cpo.web.routes.runs import may_download

    assert may_download(User(1, "someone", role), SENDS_PARQUET.name) is allowed
