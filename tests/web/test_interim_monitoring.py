"""The run page's interim analysis of webhook events with ``analysis.sequential: true``.

The interim view shows the always-valid p-value and confidence sequence as the
next look after the run's recorded looks, and never records a look itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from cpo.run_folder import MANIFEST, MONITORING

from .test_hooks import HUMAN, recipients, sendgrid_key, sg_event, signed_post
from .web_kit import RUN_ID

__all__ = ["sendgrid_key"]  # the fixture, used by name below


def monitor_run(run_dir: Path) -> None:
    """Switch analysis.sequential on in the run's recorded configuration."""
    path = MANIFEST.path(run_dir)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["config"]["experiment_config.yaml"]["analysis"]["sequential"] = True
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_interim_view_shows_always_valid_p_without_recording_a_look(
    anonymous: TestClient, client_for, sendgrid_key, run_dir: Path
) -> None:
    """Look 1 of the webhook events (no look recorded before); viewing twice records none."""
    monitor_run(run_dir)
    events = []
    for n, row in enumerate(recipients(run_dir).itertuples()):
        events.append(sg_event(row, "delivered", 1900000000, f"d{n}"))
        if n % 3 == 0:
            events.append(sg_event(row, "open", 1900003600 + n, f"o{n}", useragent=HUMAN))
        if n % 6 == 0:
            events.append(sg_event(row, "click", 1900003700 + n, f"c{n}",
                                   url="https://example.com/a", useragent=HUMAN))  # fmt: skip
    assert signed_post(anonymous, sendgrid_key, events).status_code == 200
    marketer = client_for("marketer")
    for _ in range(2):
        page = marketer.get(f"/runs/{RUN_ID}?interim=1")
        assert page.status_code == 200
        assert "Always-valid p (look 1)" in page.text
        assert "viewing records none" in page.text
    assert not MONITORING.path(run_dir).exists()


def test_interim_view_without_sequential_has_no_always_valid_column(
    anonymous: TestClient, client_for, sendgrid_key, run_dir: Path
) -> None:
    """The default configuration: the interim table is unchanged."""
    row = next(recipients(run_dir).itertuples())
    events = [sg_event(row, "delivered", 1900000000, "d0"), sg_event(row, "open", 1900000100,
              "o0", useragent=HUMAN)]  # fmt: skip
    assert signed_post(anonymous, sendgrid_key, events).status_code == 200
    page = client_for("marketer").get(f"/runs/{RUN_ID}?interim=1")
    assert "Interim analysis (not final)" in page.text
    assert "Always-valid" not in page.text
