"""No PII ever reaches a log: not emails, not names, not raw customer ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from cpo.logs import RunLog, hash_customer_id, redact


def test_redact_drops_pii_fields_and_masks_emails():
    record = redact(
        {
            "email": "a@b.co",
            "note": "write to jane.doe@example.com now",
            "n": 3,
            "nested": {"first_name": "Jane", "ok": ["x@y.org"]},
        }
    )
    assert record == {"note": "write to <email> now", "n": 3, "nested": {"ok": ["<email>"]}}


def test_hash_customer_id_is_salted_and_short():
    assert hash_customer_id("C1", "s1") != hash_customer_id("C1", "s2")
    assert len(hash_customer_id("C1", "s1")) == 12


def test_runlog_writes_json_lines(tmp_path: Path):
    seen = []
    log = RunLog(tmp_path / "logs", listener=seen.append)
    log.info("segment", "done", count=3)
    log.warning("analyze", "srm", channel="experiment", message="check")
    system = [json.loads(line) for line in (tmp_path / "logs/system.log").read_text().splitlines()]
    experiment = (tmp_path / "logs/experiment.log").read_text().splitlines()
    assert (
        system[0]["event"] == "done"
        and system[0]["count"] == 3
        and system[0]["timestamp"].endswith("Z")
    )
    assert len(experiment) == 1 and len(seen) == 2 and log.warnings()[0]["event"] == "srm"


def test_full_run_leaks_no_pii_to_logs_or_terminal(tmp_path: Path, customers_csv: Path):
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    # Distinctive names and emails, plus invalid rows whose values must not be echoed either.
    frame["first_name"] = [f"Zebulonia{i}" for i in range(len(frame))]
    frame["email"] = [f"secret.person{i}@example.org" for i in range(len(frame))]
    frame.loc[3, "historical_open_rate"] = "1.7"
    frame.loc[4, "email"] = "not-an-email-zebulonia"
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cpo.cli import main; main()",
            "run",
            "--out",
            str(run),
            "--customers",
            str(customers_csv),
            "--on-invalid",
            "skip",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    logs = "".join(p.read_text() for p in (run / "logs").glob("*.log"))
    terminal = result.stdout + result.stderr
    assert logs.strip(), "the run wrote no log lines"
    for text in (logs, terminal):
        assert "Zebulonia" not in text and "zebulonia" not in text
        assert "secret.person" not in text and "@example.org" not in text
    ids = set(frame["customer_id"])
    logged_tokens = set(logs.replace('"', " ").replace(",", " ").split())
    assert not ids & logged_tokens, "raw customer ids reached the log"


def test_failed_run_masks_customer_ids_in_log_and_manifest(tmp_path: Path, customers_csv: Path):
    from cpo.errors import StageError
    from cpo.pipeline import run_pipeline
    from cpo.segmentation.stage import SegmentStage
    from cpo.stage_api import RunOptions

    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    frame.loc[5, "customer_id"] = "CUSTX-4242"
    frame.loc[6, "customer_id"] = "CUSTX-4242"
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    try:
        run_pipeline(run, options=RunOptions(customers=customers_csv), stages=[SegmentStage()])
    except StageError as error:
        assert "CUSTX-4242" in str(error)  # the user sees which row to fix
    else:
        raise AssertionError("the duplicate id did not fail the run")
    log = (run / "logs/system.log").read_text()
    manifest = (run / "manifest.json").read_text()
    assert "duplicate id" in log and "duplicate id" in manifest
    assert "CUSTX-4242" not in log and "CUSTX-4242" not in manifest
    assert "<id:" in log
