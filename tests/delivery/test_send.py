"""``cpo send`` against a real SMTP server (aiosmtpd on 127.0.0.1).

Each test copies one small completed run (80 customers) and sends it through
the real CLI: exactly one valid message per send-list row, retries of 4xx,
bounces of 5xx, suppressions, dry run, and the refusals.
"""

from __future__ import annotations

import json
import sqlite3
from email.message import EmailMessage

import pandas as pd
import pytest
from delivery_testkit import SENDER, cpo
from smtp_server import RecordingHandler, SmtpServer

from cpo.run_folder import read_send_list
from cpo.suppressions import SUPPRESSIONS_FILE, open_suppressions


def send_rows(run_dir) -> pd.DataFrame:
    """The run's send list as text, whatever its form."""
    parts = [part.to_pandas() for part in read_send_list(run_dir).parts()]
    return pd.concat(parts, ignore_index=True).astype(str)


def send(run_dir, server, *extra):
    result = cpo(
        "send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", server.port,
        "--retry-delay", "0.01", "--json", *extra,
    )  # fmt: skip
    return result


def summary_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def text_of(part) -> str:
    """A received text part's content (the wire's CRLF line ends read as newlines)."""
    return part.get_content().replace("\r\n", "\n").rstrip("\n")


def ledger_states(run_dir) -> dict[str, str]:
    with sqlite3.connect(run_dir / "send_ledger.sqlite") as db:
        return dict(db.execute("SELECT customer_id, state FROM sends"))


def test_one_valid_message_per_row_with_every_header(run_dir):
    rows = send_rows(run_dir)
    assert len(rows) > 20
    with SmtpServer(RecordingHandler()) as server:
        summary = summary_of(send(run_dir, server))
    received = server.handler.messages
    assert summary["sent"] == len(rows) == len(received)
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    by_id = rows.set_index("customer_id")
    message_ids = set()
    for message in received:
        row = by_id.loc[str(message["X-CPO-Customer"])]
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text_of(plain) == row["body"].rstrip("\n")
        assert text_of(html) == row["body_html"].rstrip("\n")
        assert message["To"] == row["email"]
        assert message["From"].addresses[0].addr_spec == SENDER
        assert message["Subject"] == row["subject"]
        assert message["X-CPO-Run"] == manifest["run_id"]
        assert message["X-CPO-Arm"] == row["experiment_arm"]
        assert message["X-CPO-Variant"] == row["variant_id"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = message["List-Unsubscribe"]
        assert (
            unsubscribe.startswith("<https://") and "mailto:leave@shop.example.com" in unsubscribe
        )
        assert message["Message-ID"].endswith("@shop.example.com>")
        message_ids.add(message["Message-ID"])
    assert len(message_ids) == len(received)
    assert set(ledger_states(run_dir).values()) == {"sent"}


def test_a_second_send_sends_nobody_again_and_message_ids_are_stable(run_dir):
    with SmtpServer(RecordingHandler()) as server:
        first = summary_of(send(run_dir, server))
        ids = {m["X-CPO-Customer"]: m["Message-ID"] for m in server.handler.messages}
        second = summary_of(send(run_dir, server, "--resend-unknown"))
    assert second["sent"] == 0 and second["already_sent"] == first["sent"]
    assert len(server.handler.messages) == first["sent"]
    # A new copy of the same run builds the same Message-IDs.
    assert all(m["Message-ID"] == ids[m["X-CPO-Customer"]] for m in server.handler.messages)


def test_transient_4xx_is_retried_until_accepted(run_dir):
    rows = send_rows(run_dir)
    flaky = dict.fromkeys(rows["email"].head(3), 2)  # two 451s each, then accepted
    with SmtpServer(RecordingHandler(transient_failures=flaky)) as server:
        summary = summary_of(send(run_dir, server))
    assert summary["sent"] == len(rows) and summary["deferred"] == 0
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])
    assert not any(server.handler.transient_failures.values())


def test_4xx_beyond_the_retries_is_deferred_and_sent_next_time(run_dir):
    rows = send_rows(run_dir)
    email = rows["email"].iloc[0]
    # Two attempts per send (--max-retries 1): refused 4 times = deferred by two sends.
    with SmtpServer(RecordingHandler(transient_failures={email: 4})) as server:
        first = summary_of(send(run_dir, server, "--max-retries", "1"))
        assert first["deferred"] == 1 and first["sent"] == len(rows) - 1
        second = summary_of(send(run_dir, server, "--max-retries", "1"))
        assert second["deferred"] == 1 and second["already_sent"] == len(rows) - 1
        third = summary_of(send(run_dir, server, "--max-retries", "1"))
    assert third["sent"] == 1 and third["already_sent"] == len(rows) - 1
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])


def test_5xx_is_a_bounce_and_the_address_is_suppressed(run_dir):
    rows = send_rows(run_dir)
    refused = rows.iloc[1]
    with SmtpServer(RecordingHandler(refuse={refused["email"]})) as server:
        summary = summary_of(send(run_dir, server))
        again = summary_of(send(run_dir, server))
    assert summary["bounced"] == 1 and summary["sent"] == len(rows) - 1
    assert refused["customer_id"] not in server.handler.customers()
    assert ledger_states(run_dir)[refused["customer_id"]] == "bounced"
    assert again["already_bounced"] == 1 and again["sent"] == 0
    with open_suppressions(run_dir.parent / SUPPRESSIONS_FILE) as suppressions:
        entries = {e.value: e.reason for e in suppressions.entries()}
    assert entries == {refused["email"].lower(): "hard_bounce"}


def test_suppressed_addresses_and_customers_are_never_sent_and_counted(run_dir, tmp_path):
    rows = send_rows(run_dir)
    by_address, by_customer = rows.iloc[0], rows.iloc[5]
    folder = tmp_path / "lists"
    with open_suppressions(folder) as suppressions:
        suppressions.add(f"  {by_address['email'].upper()} ", "unsubscribe", "earlier campaign")
        suppressions.add(by_customer["customer_id"], "complaint", "earlier campaign")
        suppressions.add("someone.else@example.org", "manual", "manual")
    with SmtpServer(RecordingHandler()) as server:
        summary = summary_of(send(run_dir, server, "--suppressions", folder))
    assert summary["suppressed"] == 2 and summary["sent"] == len(rows) - 2
    received = set(server.handler.customers())
    assert by_address["customer_id"] not in received
    assert by_customer["customer_id"] not in received
    assert not (run_dir.parent / SUPPRESSIONS_FILE).exists()  # the given list was used


def test_dry_run_builds_every_message_and_sends_nothing(run_dir):
    rows = send_rows(run_dir)
    with SmtpServer(RecordingHandler()) as server:
        dry = cpo("send", run_dir, "--smtp-port", server.port, "--dry-run")
        assert server.handler.messages == []
        assert not (run_dir / "send_ledger.sqlite").exists()  # nothing recorded
        summary = summary_of(send(run_dir, server))
    assert dry.exit_code == 0, dry.output
    assert f"would be sent: {len(rows):,}" in dry.stdout
    assert summary["sent"] == len(rows)  # the dry run recorded nobody as sent


def test_human_summary_and_progress_on_stderr(run_dir):
    with SmtpServer(RecordingHandler()) as server:
        result = cpo("send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", server.port)
    assert result.exit_code == 0, result.output
    assert "send finished" in result.stdout and "sent:" in result.stdout
    assert "sending" in result.stderr
    assert "@" not in result.stdout + result.stderr  # no address is printed


def test_unreachable_server_is_one_clear_error(run_dir):
    from smtp_server import free_port

    result = cpo(
        "send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", free_port(),
        "--max-retries", "1", "--retry-delay", "0",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "cannot connect to the SMTP server 127.0.0.1:" in result.output
    assert "fix:" in result.output and "Traceback" not in result.output


def _set_status(run_dir, status):
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["status"] = status
    path.write_text(json.dumps(manifest))


def _tamper_audit(run_dir):
    path = run_dir / "safety_audit.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["status"] = "pass" if entry.get("status") != "pass" else "block"
    lines[0] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")


def _stray_variant(run_dir):
    path = run_dir / "sends.csv"
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.loc[4, "variant_id"] = "v-not-screened"
    rows.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (_stray_variant, "v-not-screened are in the send list but not sendable"),
        (lambda d: _set_status(d, "awaiting_approval"), "not completed"),
        (lambda d: _set_status(d, "failed"), "not completed"),
        (_tamper_audit, "failed verification"),
    ],
)
def test_refuses_a_run_that_must_not_be_sent(run_dir, spoil, expected):
    spoil(run_dir)
    with SmtpServer(RecordingHandler()) as server:
        result = send(run_dir, server)
    assert result.exit_code == 1
    assert expected in result.output and "fix:" in result.output
    assert server.handler.messages == []
    assert not (run_dir / "send_ledger.sqlite").exists()


def test_no_sender_address_is_refused_with_the_fix(run_dir):
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["experiment_config.yaml"]["brand"]["from_address"] = None
    path.write_text(json.dumps(manifest))
    with SmtpServer(RecordingHandler()) as server:
        refused = send(run_dir, server)
        given = summary_of(send(run_dir, server, "--from-address", "team@other.example.net"))
    assert refused.exit_code == 1 and "--from-address" in refused.output
    assert given["sent"] == len(server.handler.messages) > 0
    assert server.handler.messages[0]["Message-ID"].endswith("@other.example.net>")


def test_user_without_password_env_is_a_usage_error(run_dir):
    result = cpo("send", run_dir, "--user", "team")
    assert result.exit_code == 2 and "--password-env" in result.output


def test_message_is_plain_ascii_on_the_wire_for_any_text():
    from cpo.delivery.message import Sender, build_message

    row = {"customer_id": "c1", "email": "a@example.com", "experiment_arm": "control",
           "variant_id": "control", "subject": "Grüße — été", "body": "Zoë ☃ .\n.dot",
           "body_html": "<p>Zoë ☃</p>"}  # fmt: skip
    sender = Sender("Café Nord", "hi@cafe.example.com", "https://cafe.example.com/u?x=1")
    message: EmailMessage = build_message(row, sender, "run-1")
    wire = message.as_bytes()
    assert wire.isascii()
    assert "x=1&run=run-1&cid=c1" in message["List-Unsubscribe"]
    assert message.get_body(("plain",)).get_content() == "Zoë ☃ .\n.dot\n"


@pytest.mark.slow
def test_refuses_a_completed_run_with_variants_still_in_review(completed_run, tmp_path):
    import yaml
    from delivery_testkit import config_with_sender

    variants = json.loads((completed_run / "variants.json").read_text())["variants"]
    subject = next(v["subject"] for v in variants if v["variant_id"] != "control")
    config = config_with_sender(tmp_path / "config")
    thresholds = config / "safety_thresholds.yaml"
    text = thresholds.read_text()
    # A banned phrase sends one variant to review; the run completes without it.
    banned = "      - guaranteed\n"
    assert banned in text
    thresholds.write_text(text.replace(banned, banned + f"      - {json.dumps(subject)}\n"))
    assert yaml.safe_load(thresholds.read_text())
    run_dir = tmp_path / "runs" / "run"
    customers = completed_run.parent / "customers.csv"
    ran = cpo("run", "--customers", customers, "--config", config, "--out", run_dir, "-q")
    assert ran.exit_code == 0, ran.output
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    with SmtpServer(RecordingHandler()) as server:
        result = send(run_dir, server)
    assert result.exit_code == 1, result.output
    assert "still in review" in result.output and "cpo approve" in result.output
    assert server.handler.messages == []


def test_connection_lost_before_the_data_is_retried_on_a_new_connection(run_dir):
    rows = send_rows(run_dir)
    dropped = rows["email"].iloc[2]
    with SmtpServer(RecordingHandler(drop_at_rcpt={dropped})) as server:
        summary = summary_of(send(run_dir, server))
    assert summary["sent"] == len(rows) and summary["unknown"] == 0
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])


def test_connection_lost_after_the_data_is_unknown_and_not_resent(run_dir):
    rows = send_rows(run_dir)
    lost = rows.iloc[3]
    with SmtpServer(RecordingHandler(drop_after_data={lost["email"]})) as server:
        first = summary_of(send(run_dir, server))
        second = summary_of(send(run_dir, server))
        assert first["unknown"] == 1 and first["sent"] == len(rows) - 1
        assert second["in_flight_earlier"] == 1 and second["sent"] == 0
        assert ledger_states(run_dir)[lost["customer_id"]] == "unknown"
        resent = summary_of(send(run_dir, server, "--resend-unknown"))
    assert resent["sent"] == resent["resent_unknown"] == 1
    # The server did keep it: with --resend-unknown that recipient gets it twice,
    # with the same Message-ID for the receiving side to drop the copy.
    copies = [m for m in server.handler.messages if m["X-CPO-Customer"] == lost["customer_id"]]
    assert len(copies) == 2 and copies[0]["Message-ID"] == copies[1]["Message-ID"]
    assert len(server.handler.messages) == len(rows) + 1


@pytest.mark.slow
def test_a_compact_send_list_is_sent_the_same_way(completed_run, tmp_path):
    import re

    from delivery_testkit import config_with_sender

    config = config_with_sender(tmp_path / "config")
    path = config / "experiment_config.yaml"
    text, found = re.subn(r"compact_above: \S+", "compact_above: 0", path.read_text())
    assert found == 1
    path.write_text(text)
    run_dir = tmp_path / "runs" / "run"
    customers = completed_run.parent / "customers.csv"
    ran = cpo("run", "--customers", customers, "--config", config, "--out", run_dir, "-q")
    assert ran.exit_code == 0, ran.output
    assert (run_dir / "sends.parquet").is_file() and not (run_dir / "sends.csv").exists()
    rows = send_rows(run_dir)
    with SmtpServer(RecordingHandler()) as server:
        summary = summary_of(send(run_dir, server))
    assert summary["sent"] == len(rows) == len(server.handler.messages)
    assert sorted(server.handler.customers()) == sorted(rows["customer_id"])
