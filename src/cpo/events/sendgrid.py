"""SendGrid Event Webhook payloads: a JSON array of events.

Each event has ``email``, ``timestamp`` (seconds), ``event``, ``sg_event_id``,
``sg_message_id``, often ``smtp-id`` and ``category``; opens and clicks carry
``useragent`` and ``ip``, clicks ``url``, and opens ``sg_machine_open`` (true
for opens SendGrid attributes to a machine, such as Apple Mail Privacy
Protection). Custom arguments (``custom_args`` / unique args) arrive as extra
top-level keys; a nested ``custom_args`` or ``unique_args`` object is read too.
A ``bounce`` of ``type`` ``blocked`` is temporary, any other bounce permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpo.events.records import (
    CLICK,
    COMPLAINT,
    CONVERSION,
    DEFERRED,
    DELIVERED,
    DROPPED,
    HARD_BOUNCE,
    OPEN,
    OTHER,
    PROCESSED,
    SOFT_BOUNCE,
    UNSUBSCRIBE,
    Event,
    EventFileError,
    address,
    epoch,
    require_mapping,
    string_tags,
    text,
)

PROVIDER = "sendgrid"
KINDS = {
    "processed": PROCESSED,
    "delivered": DELIVERED,
    "open": OPEN,
    "click": CLICK,
    "bounce": HARD_BOUNCE,
    "dropped": DROPPED,
    "deferred": DEFERRED,
    "spamreport": COMPLAINT,
    "unsubscribe": UNSUBSCRIBE,
    "group_unsubscribe": UNSUBSCRIBE,
}
#: Keys of SendGrid's own; every other scalar key is a custom argument.
STANDARD_KEYS = frozenset(
    {
        "email",
        "timestamp",
        "event",
        "sg_event_id",
        "sg_message_id",
        "smtp-id",
        "category",
        "useragent",
        "ip",
        "url",
        "url_offset",
        "sg_machine_open",
        "reason",
        "status",
        "response",
        "attempt",
        "type",
        "bounce_classification",
        "asm_group_id",
        "tls",
        "cert_err",
        "marketing_campaign_id",
        "marketing_campaign_name",
        "pool",
        "sg_content_type",
        "sg_template_id",
        "sg_template_name",
    }
)


def looks_like(payload: Any) -> bool:
    """True for a JSON array whose first object has SendGrid's keys."""
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], Mapping):
        return False
    first = payload[0]
    return "event" in first and ("sg_event_id" in first or "sg_message_id" in first)


def parse(payload: Any, source: str, conversion_event: str) -> list[Event]:
    """The events of a SendGrid webhook payload.

    Args:
        payload: The decoded JSON (a list of event objects).
        source: The file name or webhook, for messages.
        conversion_event: The event name counted as a conversion.

    Raises:
        EventFileError: the payload is not a list of event objects, or an
            event lacks its ``event`` or ``timestamp``.
    """
    if not isinstance(payload, list):
        raise EventFileError(
            f"{source}: a SendGrid event file is a JSON array of events",
            hint="save the Event Webhook POST bodies unchanged (one array per file)",
        )
    return [
        _event(item, source, f"item {i + 1}", conversion_event) for i, item in enumerate(payload)
    ]


def _event(item: Any, source: str, where: str, conversion_event: str) -> Event:
    body = require_mapping(item, source, where, "an event")
    name = text(body.get("event"))
    if not name or body.get("timestamp") is None:
        raise EventFileError(
            f"{source}: {where}: a SendGrid event needs 'event' and 'timestamp'",
            hint="export the events unchanged from SendGrid",
        )
    kind = CONVERSION if name.lower() == conversion_event else KINDS.get(name.lower(), OTHER)
    if kind == HARD_BOUNCE and text(body.get("type")).lower() == "blocked":
        kind = SOFT_BOUNCE
    custom = body.keys() - STANDARD_KEYS  # custom arguments are SendGrid's extra keys
    tags = string_tags({key: body[key] for key in custom}) if custom else {}
    for nested in ("custom_args", "unique_args"):
        tags.update(string_tags(body.get(nested)))
    return Event(
        provider=PROVIDER,
        kind=kind,
        name=name,
        at=epoch(body.get("timestamp"), source, where),
        recipient=address(body.get("email")),
        event_id=text(body.get("sg_event_id")),
        message_id=text(body.get("smtp-id") or body.get("sg_message_id")),
        tags=tags,
        user_agent=text(body.get("useragent")),
        ip=text(body.get("ip")),
        url=text(body.get("url")),
        machine=body.get("sg_machine_open") is True,
        where=where,
    )
