"""``POST /hooks/{provider}/{run_id}``: signed SendGrid and Mailgun webhooks; the interim look."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from cpo.suppressions import open_suppressions
from cpo.web.auth import database

from .web_kit import RUN_ID

MAILGUN_KEY = "key-0123456789abcdef-signing"
HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"


@pytest.fixture
def sendgrid_key(monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair; the app is given the public half as SendGrid shows it (base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("CPO_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(der).decode())
    monkeypatch.setenv("CPO_MAILGUN_WEBHOOK_SIGNING_KEY", MAILGUN_KEY)
    return private


def signed_post(client: TestClient, key, events: list[dict], run: str = RUN_ID, **change):
    body = json.dumps(events).encode()
    timestamp = "1700000000"
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }
    headers.update(change.pop("headers", {}))
    return client.post(f"/hooks/sendgrid/{run}", content=change.get("body", body), headers=headers)


def mailgun_body(event: dict, key: str = MAILGUN_KEY, token: str = "a" * 50) -> dict:
    timestamp = "1700000000"
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": digest},
        "event-data": event,
    }


def recipients(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "sends.csv", dtype=str, keep_default_na=False)


def stored_count(runs_dir: Path) -> int:
    with database(runs_dir) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM hook_events").fetchone()[0])


def sg_event(row, kind: str, at: int, event_id: str, **extra) -> dict:
    return {"email": row.email, "timestamp": at, "event": kind, "sg_event_id": event_id,
            "sg_message_id": f"m-{row.customer_id}", **extra}  # fmt: skip


def test_sendgrid_signed_events_are_stored_once_and_unsigned_ones_refused(
    anonymous: TestClient, sendgrid_key, runs_dir: Path, run_dir: Path
) -> None:
    row = next(recipients(run_dir).itertuples())
    events = [sg_event(row, "delivered", 1900000000, "e1"), sg_event(row, "open", 1900003600, "e2")]
    first = signed_post(anonymous, sendgrid_key, events)  # no login, no CSRF token
    assert first.status_code == 200 and first.json() == {"received": 2, "stored": 2, "repeated": 0}
    again = signed_post(anonymous, sendgrid_key, events)  # SendGrid retries a post
    assert again.json() == {"received": 2, "stored": 0, "repeated": 2}
    assert stored_count(runs_dir) == 2

    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = signed_post(anonymous, other_key, [sg_event(row, "open", 1900000001, "e3")])
    assert forged.status_code == 401 and "invalid SendGrid signature" in forged.json()["detail"]
    tampered = signed_post(
        anonymous, sendgrid_key, events, body=json.dumps(events).replace("open", "click").encode()
    )
    assert tampered.status_code == 401
    missing = anonymous.post(f"/hooks/sendgrid/{RUN_ID}", json=events)
    assert missing.status_code == 401
    assert stored_count(runs_dir) == 2


def test_refusals_unconfigured_unknown_run_oversized_malformed(
    anonymous: TestClient, sendgrid_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert signed_post(anonymous, sendgrid_key, [], run="no-such-run").status_code == 404
    assert anonymous.post("/hooks/postmark/demo", json=[]).status_code == 404
    bad = signed_post(anonymous, sendgrid_key, [{"hello": 1}])
    assert bad.status_code == 400 and "item 1" in bad.json()["detail"]
    not_array = signed_post(anonymous, sendgrid_key, {"event": "open"})  # type: ignore[arg-type]
    assert not_array.status_code == 400
    from cpo.web.routes import hooks

    monkeypatch.setattr(hooks, "MAX_HOOK_BYTES", 100)
    big = [{"email": "x@example.com", "event": "open", "timestamp": 1, "sg_event_id": str(i)}
           for i in range(10)]  # fmt: skip
    assert signed_post(anonymous, sendgrid_key, big).status_code == 413
    monkeypatch.delenv("CPO_SENDGRID_WEBHOOK_PUBLIC_KEY")
    unconfigured = signed_post(anonymous, sendgrid_key, [])
    assert unconfigured.status_code == 503 and "not configured" in unconfigured.json()["detail"]


def test_mailgun_hmac_valid_invalid_missing_and_duplicates(
    anonymous: TestClient, sendgrid_key, runs_dir: Path, run_dir: Path
) -> None:
    row = next(recipients(run_dir).itertuples())
    event = {"id": "mg-1", "event": "opened", "timestamp": 1900003600.5, "recipient": row.email,
             "client-info": {"user-agent": HUMAN}, "ip": "203.0.113.7",
             "message": {"headers": {"message-id": "x@example.com"}}}  # fmt: skip
    ok = anonymous.post(f"/hooks/mailgun/{RUN_ID}", json=mailgun_body(event))
    assert ok.status_code == 200 and ok.json()["stored"] == 1
    retried = mailgun_body(event, token="b" * 50)  # a retry is signed with a new token
    assert anonymous.post(f"/hooks/mailgun/{RUN_ID}", json=retried).json()["repeated"] == 1
    # The signature covers timestamp + token only: a captured one cannot carry other events.
    forged = mailgun_body({**event, "id": "mg-2", "event": "unsubscribed"})
    replay = anonymous.post(f"/hooks/mailgun/{RUN_ID}", json=forged)
    assert replay.status_code == 200 and replay.json()["stored"] == 0
    assert not (runs_dir / "suppressions.sqlite").exists()
    wrong = anonymous.post(f"/hooks/mailgun/{RUN_ID}", json=mailgun_body(event, key="other"))
    assert wrong.status_code == 401
    unsigned = anonymous.post(f"/hooks/mailgun/{RUN_ID}", json={"event-data": event})
    assert unsigned.status_code == 401
    assert stored_count(runs_dir) == 1


def test_unsubscribes_bounces_and_complaints_reach_the_suppression_list(
    anonymous: TestClient, sendgrid_key, runs_dir: Path, run_dir: Path
) -> None:
    rows = list(recipients(run_dir).head(4).itertuples())
    events = [
        sg_event(rows[0], "unsubscribe", 1900000100, "u1"),
        sg_event(rows[1], "bounce", 1900000100, "b1", type="bounce"),
        sg_event(rows[2], "bounce", 1900000100, "b2", type="blocked"),  # temporary
        sg_event(rows[3], "spamreport", 1900000100, "c1"),
    ]
    assert signed_post(anonymous, sendgrid_key, events).status_code == 200
    with open_suppressions(runs_dir / "suppressions.sqlite") as listed:
        found = listed.contains_many([r.email for r in rows])
        assert found == {rows[0].email, rows[1].email, rows[3].email}
        assert listed.counts() == {"unsubscribe": 1, "hard_bounce": 1, "complaint": 1, "manual": 0}


def test_run_page_analyses_the_events_so_far_as_interim(
    anonymous: TestClient, client_for, sendgrid_key, run_dir: Path
) -> None:
    marketer = client_for("marketer")
    assert "Events received so far" not in marketer.get(f"/runs/{RUN_ID}").text
    people = list(recipients(run_dir).itertuples())
    events = []
    for n, row in enumerate(people):
        events.append(sg_event(row, "delivered", 1900000000, f"d{n}"))
        if n % 4 == 0:
            events.append(sg_event(row, "open", 1900003600 + n, f"o{n}", useragent=HUMAN))
        if n % 8 == 0:
            events.append(sg_event(row, "click", 1900003700 + n, f"c{n}",
                                   url="https://example.com/a", useragent=HUMAN))  # fmt: skip
        if n % 4 == 1:  # Apple Mail Privacy Protection
            events.append(sg_event(row, "open", 1900000050, f"m{n}", sg_machine_open=True,
                                   useragent="Mozilla/5.0", ip="17.1.2.3"))  # fmt: skip
    assert signed_post(anonymous, sendgrid_key, events).status_code == 200
    page = marketer.get(f"/runs/{RUN_ID}")
    assert "Events received so far" in page.text and "?interim=1" in page.text
    assert "Interim analysis (not final)" not in page.text
    interim = marketer.get(f"/runs/{RUN_ID}?interim=1")
    assert interim.status_code == 200
    text = interim.text
    assert "Interim analysis (not final)" in text and "INTERIM" in text
    assert f"{(len(people) + 3) // 4} machine open(s)" in text
    for arm in ("control", "treatment_1"):
        assert f"<td>{arm}" in text
    assert "@" not in text.split("Events received so far")[1].split("Manifest")[0]
