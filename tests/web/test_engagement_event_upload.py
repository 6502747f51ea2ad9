"""The engagement page takes an email service's event export as it is (SendGrid JSON here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cpo.web.auth import database
from cpo.web.jobs import jobs_for_run

from .web_kit import RUN_ID, csrf_of

PAGE = f"/runs/{RUN_ID}/engagement"


def upload(client, name: str, data: bytes):
    token = csrf_of(client.get(PAGE).text)
    return client.post(
        PAGE,
        data={"csrf_token": token},
        files={"engagement": (name, data, "application/json")},
        follow_redirects=False,
    )


def sendgrid_export(run_dir: Path) -> list[dict]:
    sends = pd.read_csv(run_dir / "sends.csv", dtype=str, keep_default_na=False).head(40)
    events = []
    for n, row in enumerate(sends.itertuples()):
        events.append({"email": row.email, "timestamp": 1900000000, "event": "delivered",
                       "sg_event_id": f"d{n}", "sg_message_id": f"m{n}"})  # fmt: skip
        if n % 2:
            events.append({"email": row.email, "timestamp": 1900003600, "event": "open",
                           "sg_event_id": f"o{n}", "sg_message_id": f"m{n}"})  # fmt: skip
    events.append({"email": sends.email.iloc[0], "timestamp": 1900005000, "event": "unsubscribe",
                   "sg_event_id": "u0", "sg_message_id": "m0"})  # fmt: skip
    return events


def test_a_sendgrid_export_is_checked_then_queued_without_touching_the_suppressions(
    client_for, run_dir: Path, runs_dir: Path
) -> None:
    response = upload(
        client_for("marketer"), "events.json", json.dumps(sendgrid_export(run_dir)).encode()
    )
    assert response.status_code == 303, response.text
    with database(runs_dir) as conn:
        (job,) = jobs_for_run(conn, RUN_ID)
    assert "--engagement" in job.args
    # The check adds nothing to the list; the import job does, when it runs.
    assert not (runs_dir / "suppressions.sqlite").exists()


def test_a_malformed_export_is_shown_with_its_item(client_for, runs_dir: Path) -> None:
    bad = json.dumps([{"event": "open", "sg_event_id": "x", "timestamp": "yesterday"}]).encode()
    response = upload(client_for("marketer"), "events.json", bad)
    assert response.status_code == 422
    assert "events.json" in response.text and "item 1" in response.text
    assert str(runs_dir) not in response.text
    with database(runs_dir) as conn:
        assert jobs_for_run(conn, RUN_ID) == []
