"""Email service webhooks: ``POST /hooks/{provider}/{run_id}`` (SendGrid, Mailgun).

Machines call these, so there is no login and no CSRF token; instead every
post must carry its service's signature, verified with the key configured for
the app in the environment of ``cpo serve``:

* SendGrid (Signed Event Webhook): ``CPO_SENDGRID_WEBHOOK_PUBLIC_KEY``, the
  webhook's verification key; the ECDSA signature and its timestamp come in the
  ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp`` headers.
* Mailgun: ``CPO_MAILGUN_WEBHOOK_SIGNING_KEY``; the HMAC is in the body.

Mailgun signs only the timestamp and token, not the body, so each token is
accepted once: a replayed signature stores nothing, whatever body it carries.
A provider without a configured key answers 503 (the service retries later;
nothing is accepted unsigned), a bad or missing signature 401, a body over
:data:`MAX_HOOK_BYTES` 413, a malformed payload 400, an unknown run 404. Good
events are stored in the app database (``hook_events``), one row per provider
event id, so a retried post stores nothing twice; unsubscribes, hard bounces
and complaints go onto the suppression list beside the runs at once. Addresses
are never logged. The run page analyses the stored events as an interim result
(:mod:`cpo.events.interim`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from cpo.errors import CpoError
from cpo.events import mailgun, sendgrid
from cpo.events.formats import parse_payload
from cpo.events.imports import apply_suppressions
from cpo.events.normalise import suppressions_of
from cpo.events.settings import EventSettings
from cpo.events.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    sendgrid_public_key,
    verify_mailgun,
    verify_sendgrid,
)
from cpo.suppressions import resolve_suppressions_path
from cpo.web.auth import db
from cpo.web.runs import RunNotFound
from cpo.web.workflow import manifest_run_dir

router = APIRouter()

#: Largest webhook body accepted (SendGrid batches up to a few MB of events).
MAX_HOOK_BYTES = 8 * 1024 * 1024
SENDGRID_KEY_ENV = "CPO_SENDGRID_WEBHOOK_PUBLIC_KEY"
MAILGUN_KEY_ENV = "CPO_MAILGUN_WEBHOOK_SIGNING_KEY"
KEY_ENVS = {sendgrid.PROVIDER: SENDGRID_KEY_ENV, mailgun.PROVIDER: MAILGUN_KEY_ENV}


class HookRefused(Exception):
    """A webhook post is refused with ``status`` and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@router.post("/hooks/{provider}/{run_id}", response_model=None)
async def receive_events(request: Request, provider: str, run_id: str) -> Response:
    """Verify, store and act on one webhook post (see the module docstring)."""
    try:
        if provider not in KEY_ENVS:
            raise HookRefused(404, f"no webhook for {provider!r}; use sendgrid or mailgun")
        key = os.environ.get(KEY_ENVS[provider], "").strip()
        if not key:
            raise HookRefused(503, f"the {provider} webhook is not configured on this server")
        body = await _read_body(request)
        items, token = _verified_items(provider, key, request, body)
        run_dir = manifest_run_dir(request, run_id)
        conversion = EventSettings().conversion_event  # parsed here to check and suppress
        events = parse_payload(
            provider, _payload(provider, items), f"{provider} webhook", conversion
        )
        stored = store_events(db(request), provider, run_id, items, token)
        if stored is None:  # a signature seen before: a replay stores and suppresses nothing
            return JSONResponse({"received": len(items), "stored": 0, "repeated": len(items)})
        source = f"webhook:{provider}:{run_id}"
        entries = suppressions_of(events, [None] * len(events))
        apply_suppressions(entries, resolve_suppressions_path(None, run_dir), source)
    except HookRefused as refused:
        return JSONResponse({"detail": refused.detail}, status_code=refused.status)
    except RunNotFound as exc:
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=404)
    except CpoError as exc:
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=400)
    return JSONResponse({"received": len(items), "stored": stored, "repeated": len(items) - stored})


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) as soon as it is larger than :data:`MAX_HOOK_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_HOOK_BYTES:
        raise HookRefused(413, f"the body is larger than {MAX_HOOK_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_HOOK_BYTES:
            raise HookRefused(413, f"the body is larger than {MAX_HOOK_BYTES} bytes")
    return bytes(body)


def _verified_items(
    provider: str, key: str, request: Request, body: bytes
) -> tuple[list[Any], str]:
    """The event objects of a post whose signature verifies (401 otherwise), and its token.

    The token is Mailgun's signature token ("" for SendGrid, which signs the body).
    """
    if provider == sendgrid.PROVIDER:
        signature = request.headers.get(SENDGRID_SIGNATURE_HEADER, "")
        timestamp = request.headers.get(SENDGRID_TIMESTAMP_HEADER, "")
        if not verify_sendgrid(sendgrid_public_key(key), signature, timestamp, body):
            raise HookRefused(401, "missing or invalid SendGrid signature")
        payload = _json(body)
        if not isinstance(payload, list):
            raise HookRefused(400, "a SendGrid event webhook post is a JSON array of events")
        return payload, ""
    payload = _json(body)
    if not isinstance(payload, dict) or not verify_mailgun(key, payload.get("signature")):
        raise HookRefused(401, "missing or invalid Mailgun signature")
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise HookRefused(400, "a Mailgun webhook post needs its event-data object")
    return [data], str(payload["signature"]["token"])


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HookRefused(400, "the body is not JSON") from None


def _payload(provider: str, items: list[Any]) -> Any:
    return items if provider == sendgrid.PROVIDER else {"items": items}


def event_key(provider: str, item: Any) -> str:
    """The provider's event id, else the sha256 of the event's canonical JSON."""
    field = "sg_event_id" if provider == sendgrid.PROVIDER else "id"
    given = item.get(field) if isinstance(item, dict) else None
    if given:
        return str(given)
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def store_events(
    conn: sqlite3.Connection, provider: str, run_id: str, items: list[Any], token: str = ""
) -> int | None:
    """Store each event once; returns how many were new.

    With a signature ``token`` (Mailgun's), the token is recorded in the same
    transaction, and a token seen before stores nothing and returns None.
    """
    now = time.time()
    rows = [
        (provider, run_id, event_key(provider, item), json.dumps(item, sort_keys=True), now)
        for item in items
    ]
    conn.execute("BEGIN IMMEDIATE")
    try:
        if token and not _first_use(conn, provider, token, now):
            conn.execute("COMMIT")
            return None
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO hook_events (provider, run_id, event_key, event, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        added = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return added


def _first_use(conn: sqlite3.Connection, provider: str, token: str, now: float) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO hook_tokens (provider, token, seen_at) VALUES (?, ?, ?)",
        (provider, token, now),
    )
    return cursor.rowcount == 1


def stored_events(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, str]]:
    """The ``(provider, event JSON)`` pairs stored for ``run_id``, in arrival order."""
    rows = conn.execute(
        "SELECT provider, event FROM hook_events WHERE run_id = ? ORDER BY received_at, rowid",
        (run_id,),
    )
    return [(str(provider), str(event)) for provider, event in rows]
