"""``cpo run --resume DIR --engagement FILE`` with email service event files (acceptance).

Acceptance: a SendGrid-format event file for the bundled send analyses to the
same metrics as the equivalent per-recipient file, machine opens, repeated
webhook posts and strangers' events notwithstanding.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.suppressions import open_suppressions

COMPARED = ("arms", "lift_analysis", "srm", "segment_breakdown")
HUMAN_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundled run (simulated engagement): the send whose events come back."""
    run = tmp_path_factory.mktemp("bundled") / "runs" / "base"
    result = invoke("run", "--out", str(run), "-q")
    assert result.exit_code == 0, result.output
    return run


def copy_run(bundled: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / "runs" / name
    shutil.copytree(bundled, target)
    return target


def truth(run: Path) -> pd.DataFrame:
    """Per recipient: email, outcome flags (the simulated ones, as if measured)."""
    sends = pd.read_csv(run / "sends.csv", dtype=str, keep_default_na=False)
    flags = pd.read_csv(run / "engagement.csv", dtype={"customer_id": str})
    merged = sends[["customer_id", "email"]].merge(flags, on="customer_id")
    merged["opened"] = merged["opened"] | merged["clicked"]
    return merged


def sendgrid_events(people: pd.DataFrame, sent_at: float, run_id: str) -> list[dict]:
    """What SendGrid would post for that engagement, plus noise a real export has."""
    events: list[dict] = []

    def add(row, kind: str, at: float, **extra) -> None:
        events.append(
            {"email": row.email, "timestamp": int(at), "event": kind,
             "sg_event_id": f"{row.customer_id}-{kind}-{len(events)}",
             "sg_message_id": f"msg-{row.customer_id}", "category": "spring",
             "cpo_run": run_id, **extra}
        )  # fmt: skip

    for n, row in enumerate(people.itertuples(index=False)):
        add(row, "processed", sent_at + 1)
        add(row, "delivered", sent_at + 60)
        if row.opened:
            add(row, "open", sent_at + 3600 + n, useragent=HUMAN_AGENT, ip="203.0.113.9",
                sg_machine_open=False)  # fmt: skip
        elif n % 3 == 0:  # Apple Mail Privacy Protection opens what nobody read
            add(row, "open", sent_at + 70, useragent="Mozilla/5.0", ip="17.58.1.2",
                sg_machine_open=True)  # fmt: skip
        if row.clicked:
            add(row, "click", sent_at + 3700 + n, url="https://fernleaf.example/a",
                useragent=HUMAN_AGENT, ip="203.0.113.9")  # fmt: skip
        elif n % 5 == 0:  # a security gateway follows the link on arrival
            add(row, "click", sent_at + 62, url="https://fernleaf.example/a", useragent="scanner")
        if row.converted:
            add(row, "conversion", sent_at + 7200 + n)
    events += events[:25]  # webhook retries: the same sg_event_id again
    stranger = {"email": "someone.else@example.net", "timestamp": int(sent_at + 99),
                "event": "open", "sg_event_id": "stranger-1", "sg_message_id": "x"}  # fmt: skip
    events.append(stranger)
    return events


@pytest.mark.slow
def test_sendgrid_file_analyses_to_the_same_metrics_as_the_per_recipient_file(
    bundled: Path, tmp_path: Path
) -> None:
    people = truth(bundled)
    per_recipient = tmp_path / "recipients.csv"
    people[["customer_id", "opened", "clicked", "converted"]].to_csv(per_recipient, index=False)
    assigned = pd.read_csv(bundled / "assignments.csv")["assigned_at"].max()
    sent_at = pd.Timestamp(assigned).timestamp() + 60
    run_id = json.loads((bundled / "manifest.json").read_text())["run_id"]
    events_file = tmp_path / "sendgrid_events.json"
    events_file.write_text(json.dumps(sendgrid_events(people, sent_at, run_id)))

    run_a, run_b = copy_run(bundled, tmp_path, "a"), copy_run(bundled, tmp_path, "b")
    first = invoke("run", "--resume", str(run_a), "--engagement", str(per_recipient), "-q")
    assert first.exit_code == 0, first.output
    second = invoke("run", "--resume", str(run_b), "--engagement", str(events_file), "-q")
    assert second.exit_code == 0, second.output

    metrics_a = json.loads((run_a / "metrics.json").read_text())
    metrics_b = json.loads((run_b / "metrics.json").read_text())
    assert metrics_b["engagement_source"] == "imported"
    for key in COMPARED:
        assert metrics_b[key] == metrics_a[key], key
    report = json.loads((run_b / "engagement_report.json").read_text())
    provider = report["provider_events"]
    assert provider["provider"] == "sendgrid" and provider["repeated_events"] == 25
    assert provider["unknown_recipient_events"] == 1 and provider["machine_opens"] > 0
    assert provider["machine_by_rule"]["after_delivery"] > 0
    codes = {w["code"] for w in report["warnings"]}
    assert {"machine_events", "unknown_event_recipients"} <= codes
    assert "someone.else" not in (run_b / "logs" / "experiment.log").read_text()


@pytest.mark.slow
def test_orders_file_unsubscribes_and_bounces_reach_the_suppression_list(
    bundled: Path, tmp_path: Path
) -> None:
    run = copy_run(bundled, tmp_path, "c")
    people = truth(bundled).head(6)
    sent = pd.Timestamp(pd.read_csv(run / "assignments.csv")["assigned_at"].max()) + pd.Timedelta(
        "1h"
    )
    stamp = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
    events = tmp_path / "events.csv"
    lines = ["recipient,event,timestamp,event_id"]
    lines += [f"{email},delivered,{stamp},d{i}" for i, email in enumerate(people["email"])]
    lines += [
        f"{people['email'].iloc[0]},opened,{stamp},o1",
        f"{people['email'].iloc[1].upper()},unsubscribed,{stamp},u1",
        f"{people['email'].iloc[2]},hard_bounce,{stamp},b1",
        f"{people['email'].iloc[3]},soft_bounce,{stamp},b2",
    ]
    events.write_text("\n".join(lines) + "\n")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,customer_id,email,timestamp\n"
        f"A1,{people['customer_id'].iloc[0]},,{stamp}\n"
        f"A1,{people['customer_id'].iloc[0]},,{stamp}\n"
        f"A2,,{people['email'].iloc[4]},{stamp}\n"
        f"A3,NOT-SENT,,{stamp}\n"
    )
    result = invoke(
        "run", "--resume", str(run), "--engagement", str(events), "--orders", str(orders), "-q"
    )
    assert result.exit_code == 0, result.output
    engagement = pd.read_csv(run / "engagement.csv", dtype={"customer_id": str})
    converted = set(engagement.loc[engagement["converted"] == 1, "customer_id"])
    assert converted == {people["customer_id"].iloc[0], people["customer_id"].iloc[4]}
    report = json.loads((run / "engagement_report.json").read_text())["provider_events"]
    assert report["orders"] == {
        "file": "orders.csv", "rows": 4, "repeated": 1, "of_recipients": 2, "of_others": 1,
    }  # fmt: skip
    assert report["suppressions_added"] == {"hard_bounce": 1, "unsubscribe": 1}
    with open_suppressions(run.parent / "suppressions.sqlite") as listed:
        assert listed.contains_many(people["email"]) == {
            people["email"].iloc[1],
            people["email"].iloc[2],
        }
    # Importing the same file again adds nothing new to the list.
    again = invoke("run", "--resume", str(run), "--engagement", str(events), "-q")
    assert again.exit_code == 0, again.output
    report = json.loads((run / "engagement_report.json").read_text())["provider_events"]
    assert report["suppressions_added"] == {} and "orders" not in report
    # --suppressions names another list (a team's shared one): the entries go there.
    shared = tmp_path / "shared"
    shared.mkdir()
    elsewhere = invoke(
        "run", "--resume", str(run), "--engagement", str(events), "--suppressions", str(shared)
    )
    assert elsewhere.exit_code == 0, elsewhere.output
    report = json.loads((run / "engagement_report.json").read_text())["provider_events"]
    assert report["suppressions_added"] == {"hard_bounce": 1, "unsubscribe": 1}
    assert (shared / "suppressions.sqlite").is_file()


@pytest.mark.slow
def test_bad_event_files_stop_with_one_clear_error(bundled: Path, tmp_path: Path) -> None:
    run = copy_run(bundled, tmp_path, "d")
    strangers = tmp_path / "strangers.json"
    strangers.write_text(
        json.dumps(
            [{"email": "x@example.net", "timestamp": 1, "event": "open", "sg_event_id": "1"}]
        )
    )
    failed = invoke("run", "--resume", str(run), "--engagement", str(strangers), "-q")
    assert failed.exit_code == 1
    assert "no sendgrid event of this file concerns a recipient of this run" in failed.output
    assert "Traceback" not in failed.output and "x@example.net" not in failed.output
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hello": "world"}')
    failed = invoke("run", "--resume", str(run), "--engagement", str(unknown), "-q")
    assert failed.exit_code == 1 and "not a SendGrid, Mailgun or Amazon SES" in failed.output
    per_recipient = tmp_path / "flags.csv"
    per_recipient.write_text("customer_id,opened,clicked,converted\nC000001,1,0,0\n")
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,timestamp\nC000001,2030-01-01T00:00:00Z\n")
    failed = invoke(
        "run", "--resume", str(run), "--engagement", str(per_recipient), "--orders", str(orders)
    )
    assert failed.exit_code == 1 and "--orders needs an email service event file" in failed.output
