"""``cpo send`` on adaptive waves sent for real: each send mails the current wave only."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import yaml
from delivery_testkit import config_with_sender, cpo
from smtp_server import RecordingHandler, SmtpServer

from cpo.sample_data.customers import generate_customers


def send(run_dir, server):
    result = cpo(
        "send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", server.port,
        "--retry-delay", "0.01", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_each_send_mails_the_current_wave_only_and_never_the_holdout(tmp_path):
    customers = tmp_path / "customers.csv"
    generate_customers(160, seed=5).to_csv(customers, index=False)
    config = config_with_sender(tmp_path / "config")
    path = config / "experiment_config.yaml"
    document = yaml.safe_load(path.read_text())
    document["experiment"]["holdout_share"] = 0.1
    path.write_text(yaml.safe_dump(document))
    run = tmp_path / "runs" / "run"
    started = cpo(
        "run", "--customers", customers, "--config", config, "--out", run,
        "--waves", "2", "--await-engagement", "-q",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    with SmtpServer(RecordingHandler()) as server:
        wave1 = pd.read_csv(run / "sends.csv", dtype=str, keep_default_na=False)
        first = send(run, server)
        assert sorted(server.handler.customers()) == sorted(wave1["customer_id"])
        events = tmp_path / "wave1.csv"
        pd.DataFrame(
            {"customer_id": wave1["customer_id"], "opened": 1, "clicked": 0, "converted": 0}
        ).to_csv(events, index=False)
        resumed = cpo("run", "--resume", run, "--engagement", events, "-q")
        assert resumed.exit_code == 0, resumed.output
        wave2 = pd.read_csv(run / "sends.csv", dtype=str, keep_default_na=False)
        second = send(run, server)
    received = Counter(server.handler.customers())
    assert max(received.values()) == 1  # no customer mailed twice across waves
    assert first["sent"] == len(wave1) and second["sent"] == len(wave2)
    assert set(received) == set(wave1["customer_id"]) | set(wave2["customer_id"])
    assert set(wave1["customer_id"]).isdisjoint(wave2["customer_id"])
    assignments = pd.read_csv(run / "assignments.csv", dtype=str, keep_default_na=False)
    held = set(assignments.loc[assignments["experiment_arm"] == "holdout", "customer_id"])
    assert held and held.isdisjoint(received)
