"""Each provider's documented event format is recognised from its content and parsed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cpo.events.formats import detect_format, read_events
from cpo.events.records import EventFileError

DATA = Path(__file__).parents[1] / "data" / "events"


def kinds(events) -> list[tuple[str, str]]:
    return [(e.recipient, e.kind) for e in events]


def test_sendgrid_events_are_recognised_without_trusting_the_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "export.txt"
    shutil.copy(DATA / "sendgrid_events.json", renamed)
    provider, events = read_events(renamed, "conversion")
    assert provider == "sendgrid" and len(events) == 14
    first = events[0]
    assert first.event_id == "sg-ev-1" and first.tags["cpo_customer_id"] == "C1"
    assert first.message_id == "<14c5d75ce93.dfd.64b469@ismtpd-555>"
    assert "category" not in first.tags and first.at == 1513299569.0
    by_id = {e.event_id: e for e in events}
    assert by_id["sg-ev-4"].url == "https://www.example.com/spring"
    assert by_id["sg-ev-6"].machine and not by_id["sg-ev-3"].machine
    assert by_id["sg-ev-7"].kind == "bounce"  # type bounce: permanent
    assert by_id["sg-ev-8"].kind == "soft_bounce"  # type blocked: temporary
    assert by_id["sg-ev-10"].kind == "complaint"
    assert by_id["sg-ev-11"].kind == by_id["sg-ev-12"].kind == "unsubscribe"
    assert by_id["sg-ev-13"].kind == "deferred" and by_id["sg-ev-9"].kind == "dropped"


def test_mailgun_events_api_page_and_webhook_body() -> None:
    provider, events = read_events(DATA / "mailgun_events.json", "conversion")
    assert provider == "mailgun"
    assert [e.kind for e in events] == [
        "delivered", "open", "click", "bounce", "soft_bounce", "unsubscribe", "complaint", "open",
    ]  # fmt: skip
    opened = events[1]
    assert opened.user_agent.startswith("Mozilla/5.0 (Windows") and opened.ip == "203.0.113.7"
    assert opened.message_id == "20180319151102.1.EAB8E9F0B9A6E1A5@example.com"
    assert opened.tags == {"cpo_customer_id": "C1", "cpo_run": "run-1"}
    assert opened.at == pytest.approx(1521475862.5)


def test_mailgun_webhook_body_is_one_event(tmp_path: Path) -> None:
    item = json.loads((DATA / "mailgun_events.json").read_text())["items"][2]
    body = {"signature": {"timestamp": "1", "token": "t", "signature": "s"}, "event-data": item}
    path = tmp_path / "hook.json"
    path.write_text(json.dumps(body))
    provider, events = read_events(path, "conversion")
    assert provider == "mailgun" and [e.kind for e in events] == ["click"]


def test_ses_notifications_through_sns() -> None:
    provider, events = read_events(DATA / "ses_sns_events.json", "conversion")
    assert provider == "ses"
    assert kinds(events)[:4] == [
        ("ana@example.com", "processed"),
        ("ana@example.com", "delivered"),
        ("ana@example.com", "open"),
        ("ana@example.com", "click"),
    ]
    opened = events[2]
    assert opened.tags["x-cpo-customer"] == "C1" and opened.tags["x-cpo-run"] == "run-1"
    assert opened.event_id == "sns-3:ana@example.com"
    assert opened.at == pytest.approx(1710864000.0)  # the open's own timestamp, not mail's
    assert events[3].url == "https://www.example.com/spring"
    assert ("cem@example.com", "bounce") in kinds(events)
    assert ("dee@example.com", "soft_bounce") in kinds(events)
    assert ("fay@example.com", "complaint") in kinds(events)


def test_ses_json_lines_file(tmp_path: Path) -> None:
    notes = json.loads((DATA / "ses_sns_events.json").read_text())
    path = tmp_path / "ses.jsonl"
    path.write_text("\n".join(json.dumps(n) for n in notes) + "\n")
    provider, events = read_events(path, "conversion")
    assert provider == "ses" and len(events) == len(notes)


def test_generic_csv_with_a_configured_conversion_event() -> None:
    provider, events = read_events(DATA / "generic_events.csv", "purchase")
    assert provider == "csv"
    assert [e.kind for e in events] == [
        "delivered", "open", "click", "conversion", "click", "bounce", "unsubscribe",
    ]  # fmt: skip
    assert events[5].at == 1710861002.0 and events[1].ip == "203.0.113.7"


def test_cpo_own_layouts_are_not_event_files(tmp_path: Path) -> None:
    own = tmp_path / "events.csv"
    own.write_text("customer_id,event,timestamp\nC1,open,2024-01-01T00:00:00Z\n")
    per_recipient = tmp_path / "engagement.csv"
    per_recipient.write_text("customer_id,opened,clicked,converted\nC1,1,0,0\n")
    assert detect_format(own) is None and detect_format(per_recipient) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"foo": 1}', "not a SendGrid, Mailgun or Amazon SES event export"),
        ('[{"event": "open", "sg_event_id": "x"}]', "item 1: a SendGrid event needs"),
        (
            '[{"event": "open", "sg_event_id": "x", "timestamp": "yesterday"}]',
            "item 1: timestamp 'yesterday'",
        ),
        ('{"Type": "Notification", "MessageId": "m", "Message": "not json"}', "notification 1"),
        ("[1,\n2", "line 1: not JSON"),
    ],
)
def test_malformed_event_files_name_the_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(EventFileError) as caught:
        read_events(path, "conversion")
    assert message in caught.value.message and caught.value.hint


def test_generic_csv_unknown_event_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("email,event,timestamp\na@example.com,delivered,1\na@example.com,read,2\n")
    with pytest.raises(EventFileError, match="line 3: unknown event 'read'"):
        read_events(path, "conversion")


def test_mailgun_pages_one_per_line(tmp_path: Path) -> None:
    page = json.loads((DATA / "mailgun_events.json").read_text())
    second = {"items": page["items"][:2], "paging": {}}
    path = tmp_path / "mailgun.jsonl"
    path.write_text(json.dumps(page) + "\n" + json.dumps(second) + "\n")
    provider, events = read_events(path, "conversion")
    assert provider == "mailgun" and len(events) == len(page["items"]) + 2
