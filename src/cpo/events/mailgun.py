"""Mailgun events: Events API pages (``{"items": [...], "paging": ...}``) and webhooks.

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
    """True for an Events API page (``items``) or a webhook body (``event-data``), or a list."""
    first = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(first, Mapping):
        return False
    return isinstance(first.get("items"), list) or isinstance(first.get("event-data"), Mapping)


def items(payload: Any, source: str) -> list[Any]:
    """The event objects of Events API pages or webhook bodies (one, or a list of them).

    Raises:
        EventFileError: neither shape.
    """
    found: list[Any] = []
    for page in payload if isinstance(payload, list) else [payload]:
        if isinstance(page, Mapping) and isinstance(page.get("items"), list):
            found.extend(page["items"])
        elif isinstance(page, Mapping) and isinstance(page.get("event-data"), Mapping):
            found.append(page["event-data"])
        else:
            raise EventFileError(
                f"{source}: a Mailgun event file holds Events API pages with 'items' "
                "or webhook bodies with 'event-data'",
                hint="save the Events API responses (GET /v3/DOMAIN/events) unchanged",
            )
    return found


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
