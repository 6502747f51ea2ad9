"""The acceptance check on the bundled run: one message per row of sends.csv, and
killed halfway then run again, no customer twice and everyone but those in flight."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest
from delivery_testkit import cpo
from smtp_server import RecordingHandler, SmtpServer

FROM = "--from-address=news@fernleaf.example.com"  # the bundled config has no from_address


def start_send(run_dir, port):
    command = [
        sys.executable, "-m", "cpo", "send", str(run_dir), "--smtp-host", "127.0.0.1",
        "--smtp-port", str(port), FROM, "--json",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_bundled_run_sent_killed_halfway_and_resumed(tmp_path):
    run_dir = tmp_path / "runs" / "bundled"
    ran = cpo("run", "--out", run_dir, "-q")
    assert ran.exit_code == 0, ran.output
    rows = pd.read_csv(run_dir / "sends.csv", dtype=str, keep_default_na=False)
    expected = set(rows["customer_id"])
    assert len(expected) == len(rows)

    handler = RecordingHandler()
    with SmtpServer(handler) as server:
        first = start_send(run_dir, server.port)
        deadline = time.monotonic() + 120
        while len(handler.messages) < len(rows) // 2:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
        assert len(handler.messages) < len(rows)  # killed halfway, not at the end

        second = start_send(run_dir, server.port)
        out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    summary = json.loads(out)
    received = Counter(handler.customers())
    assert max(received.values()) == 1  # no customer twice
    with sqlite3.connect(run_dir / "send_ledger.sqlite") as db:
        unknown = {c for (c,) in db.execute("SELECT customer_id FROM sends WHERE state='unknown'")}
    assert summary["in_flight_earlier"] == len(unknown) <= 1
    assert set(received) | unknown == expected
    assert summary["already_sent"] + summary["sent"] + len(unknown) == len(rows)
