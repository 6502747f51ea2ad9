"""Events joined to a send list: repeats, unknown recipients, machine opens, suppressions."""

from __future__ import annotations

from pathlib import Path

from cpo.events.formats import read_events
from cpo.events.normalise import SendIndex, deduplicate, normalise
from cpo.events.records import Event
from cpo.events.settings import EventSettings

DATA = Path(__file__).parents[1] / "data" / "events"
NAMES = ["ana", "ben", "cem", "dee", "eve", "fay", "gus", "hal", "ivy"]
INDEX = SendIndex(
    run_id="run-1",
    by_email={f"{name}@example.com": f"C{i}" for i, name in enumerate(NAMES, start=1)},
    customers=frozenset(f"C{i}" for i in range(1, 10)),
)


def rows(result) -> list[tuple[str, str]]:
    return list(result.frame[["customer_id", "event"]].itertuples(index=False, name=None))


def test_sendgrid_file_normalised() -> None:
    _, events = read_events(DATA / "sendgrid_events.json", "conversion")
    result = normalise(events, INDEX, EventSettings())
    counts = result.counts
    assert counts["repeated_events"] == 1  # sg-ev-4 posted twice
    assert counts["machine_opens"] == 1 and counts["machine_by_rule"]["provider_flag"] == 1
    assert ("C2", "open") not in rows(result)  # machine open left out
    assert rows(result).count(("C1", "click")) == 1
    assert ("C3", "bounce") in rows(result) and ("C7", "unsubscribe") in rows(result)
    assert not any(c == "C4" for c, _ in rows(result))  # soft bounce: not engagement
    reasons = sorted((value, reason) for value, reason, _ in result.suppress)
    assert reasons == [
        ("cem@example.com", "hard_bounce"),
        ("fay@example.com", "complaint"),
        ("gus@example.com", "unsubscribe"),
        ("hal@example.com", "unsubscribe"),
    ]
    assert [w["code"] for w in result.warnings] == ["machine_events"]


def test_machine_events_kept_when_exclusion_is_off_but_still_reported() -> None:
    _, events = read_events(DATA / "sendgrid_events.json", "conversion")
    result = normalise(events, INDEX, EventSettings(exclude_machine_events=False))
    assert ("C2", "open") in rows(result) and result.counts["machine_opens"] == 1
    assert "kept (exclusion is off)" in result.warnings[0]["message"]


def test_privacy_proxy_open_by_agent_and_by_network() -> None:
    _, events = read_events(DATA / "ses_sns_events.json", "conversion")
    result = normalise(events, INDEX, EventSettings(scanner_seconds=0))
    assert result.counts["machine_by_rule"]["privacy_proxy"] == 1  # ben: bare agent, Apple IP
    assert ("C1", "open") in rows(result) and ("C2", "open") not in rows(result)
    by_network = normalise(events, INDEX, EventSettings(proxy_user_agents=[], scanner_seconds=0))
    assert by_network.counts["machine_by_rule"]["privacy_proxy"] == 1
    neither = normalise(
        events, INDEX, EventSettings(proxy_user_agents=[], proxy_networks=[], scanner_seconds=0)
    )
    assert neither.counts["machine_opens"] == 0 and ("C2", "open") in rows(neither)
    assert result.counts["repeated_events"] == 1  # sns-3 delivered twice


def event(kind: str, at: float, who: str = "ana@example.com", url: str = "") -> Event:
    return Event(provider="csv", kind=kind, name=kind, at=at, recipient=who, url=url)


def test_scanner_rules_after_delivery_and_every_link() -> None:
    events = [
        event("delivered", 1000.0),
        event("click", 1003.0, url="https://x.example/a"),  # 3 s after delivery: scanner
        event("delivered", 1000.0, "ben@example.com"),
        event("click", 5000.0, "ben@example.com", "https://x.example/a"),
        event("click", 5001.0, "ben@example.com", "https://x.example/b"),
        event("click", 5002.0, "ben@example.com", "https://x.example/c"),  # 3 links in 2 s
        event("delivered", 1000.0, "cem@example.com"),
        event("open", 4000.0, "cem@example.com"),
        event("click", 4100.0, "cem@example.com", "https://x.example/a"),
        event("click", 4200.0, "cem@example.com", "https://x.example/b"),
    ]
    result = normalise(events, INDEX, EventSettings())
    assert result.counts["machine_by_rule"]["after_delivery"] == 1
    assert result.counts["machine_by_rule"]["link_scanner"] == 3
    assert result.counts["machine_clicks"] == 4
    assert not any(kind == "click" for c, kind in rows(result) if c in ("C1", "C2"))
    assert rows(result).count(("C3", "click")) == 2  # a person clicking two links, minutes apart
    off = normalise(events, INDEX, EventSettings(scanner_seconds=0, scanner_links=0))
    assert off.counts["machine_clicks"] == 0


def test_unknown_recipients_and_other_runs_are_counted_and_warned() -> None:
    events = [
        event("open", 10.0, "stranger@example.com"),
        event("click", 11.0, "stranger@example.com", "https://x.example/a"),
        Event(provider="ses", kind="open", name="Open", at=12.0, recipient="ana@example.com",
              tags={"x-cpo-run": "run-0", "x-cpo-customer": "C1"}),
        event("open", 13.0),
    ]  # fmt: skip
    result = normalise(events, INDEX, EventSettings())
    assert result.counts["unknown_recipient_events"] == 2
    assert result.counts["unknown_recipients"] == 1 and result.counts["other_run_events"] == 1
    assert rows(result) == [("C1", "open")]
    assert [w["code"] for w in result.warnings] == ["unknown_event_recipients", "other_run_events"]
    assert "stranger" not in str(result.warnings)  # addresses never reach messages


def test_customer_header_wins_over_address_and_message_id_is_a_fallback() -> None:
    import hashlib

    digest = hashlib.sha256(b"run-1\0C5").hexdigest()[:32]
    events = [
        Event(provider="sendgrid", kind="open", name="open", at=1.0,
              recipient="forwarded@example.net", tags={"cpo_customer_id": "C4"}),
        Event(provider="mailgun", kind="open", name="opened", at=2.0,
              message_id=f"run-1.{digest}@news.example.com"),
    ]  # fmt: skip
    assert rows(normalise(events, INDEX, EventSettings())) == [("C4", "open"), ("C5", "open")]


def test_deduplicate_without_event_ids_uses_recipient_kind_time() -> None:
    events = [event("open", 1.0), event("open", 1.0), event("open", 2.0)]
    assert len(deduplicate(events)) == 2
