"""Mailgun events: the Events API page (``{"items": [...], "paging": ...}``) and webhooks.

Each item has ``event`` (accepted, delivered, opened, clicked, failed,
unsubscribed, complained, rejected, stored), ``timestamp`` (seconds, with a
fraction), ``id``, ``recipient``, ``message.headers.message-id`` and
``user-variables`` (the ``X-Mailgun-Variables`` of the message); opens and clicks
carry ``ip`` and ``client-info.user-agent``, clicks ``url``. A ``failed`` event
with ``severity`` ``permanent`` is a hard bounce, ``temporary`` a soft one. A
webhook POST body is ``{"signature": {...}, "event-data": {item}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpo.events.records import (
    CLICK,
    COMPLAINT,
    CONVERSION,
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

PROVIDER = "mailgun"
KINDS = {
    "accepted": PROCESSED,
    "delivered": DELIVERED,
    "opened": OPEN,
    "clicked": CLICK,
    "failed": HARD_BOUNCE,
    "rejected": DROPPED,
    "unsubscribed": UNSUBSCRIBE,
    "complained": COMPLAINT,
}


def looks_like(payload: Any) -> bool:
    """True for an Events API page (``items``) or a webhook body (``event-data``)."""
    if not isinstance(payload, Mapping):
        return False
    return isinstance(payload.get("items"), list) or isinstance(payload.get("event-data"), Mapping)


def items(payload: Any, source: str) -> list[Any]:
    """The event objects of an Events API page, or the one of a webhook body.

    Raises:
        EventFileError: neither shape.
    """
    if isinstance(payload, Mapping) and isinstance(payload.get("items"), list):
        return list(payload["items"])
    if isinstance(payload, Mapping) and isinstance(payload.get("event-data"), Mapping):
        return [payload["event-data"]]
    raise EventFileError(
        f"{source}: a Mailgun event file is an Events API page with 'items' "
        "or a webhook body with 'event-data'",
        hint="save the Events API responses (GET /v3/DOMAIN/events) unchanged",
    )


def parse(payload: Any, source: str, conversion_event: str) -> list[Event]:
    """The events of a Mailgun Events API page or webhook body.

    Raises:
        EventFileError: the payload has neither shape, or an event lacks its
            ``event`` or ``timestamp``.
    """
    return [
        _event(item, source, f"item {i + 1}", conversion_event)
        for i, item in enumerate(items(payload, source))
    ]


def _event(item: Any, source: str, where: str, conversion_event: str) -> Event:
    body = require_mapping(item, source, where, "an event")
    name = text(body.get("event"))
    if not name or body.get("timestamp") is None:
        raise EventFileError(
            f"{source}: {where}: a Mailgun event needs 'event' and 'timestamp'",
            hint="save the Events API responses unchanged",
        )
    kind = CONVERSION if name.lower() == conversion_event else KINDS.get(name.lower(), OTHER)
    if kind == HARD_BOUNCE and text(body.get("severity")).lower() != "permanent":
        kind = SOFT_BOUNCE
    message = _mapping(body.get("message"))
    headers = _mapping(message.get("headers"))
    client = _mapping(body.get("client-info"))
    return Event(
        provider=PROVIDER,
        kind=kind,
        name=name,
        at=epoch(body.get("timestamp"), source, where),
        recipient=address(body.get("recipient")),
        event_id=text(body.get("id")),
        message_id=text(headers.get("message-id")),
        tags=string_tags(body.get("user-variables")),
        user_agent=text(client.get("user-agent")),
        ip=text(body.get("ip")),
        url=text(body.get("url")),
        where=where,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}
