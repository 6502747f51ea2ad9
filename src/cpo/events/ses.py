"""Amazon SES event publishing (and notifications) delivered through Amazon SNS.

An SNS delivery is ``{"Type": "Notification", "MessageId", "Message": "<JSON
text>", ...}``; the message holds ``eventType`` (event publishing) or
``notificationType`` (feedback notifications): Send, Delivery, Open, Click,
Bounce (``bounceType`` Permanent, Transient or Undetermined), Complaint,
Reject, DeliveryDelay, Subscription. ``mail`` has ``messageId``,
``destination`` (the recipients), ``timestamp`` and, unless truncated,
``headers`` (a list of ``{name, value}``: cpo's ``X-CPO-*`` headers come back
here) and ``tags``. Opens and clicks carry ``ipAddress``, ``userAgent`` and
``timestamp``, clicks ``link``. A bounce or complaint concerns only its
``bouncedRecipients`` / ``complainedRecipients``. A file holds one SNS
notification, a JSON array of them, or one per line.
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
    text,
)

PROVIDER = "ses"
KINDS = {
    "send": PROCESSED,
    "delivery": DELIVERED,
    "open": OPEN,
    "click": CLICK,
    "bounce": HARD_BOUNCE,
    "complaint": COMPLAINT,
    "reject": DROPPED,
    "deliverydelay": DEFERRED,
    "subscription": UNSUBSCRIBE,
}
#: The object of each event type that holds its details (and its timestamp).
DETAIL_KEYS = {
    "send": "send",
    "delivery": "delivery",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "complaint": "complaint",
    "reject": "reject",
    "deliverydelay": "deliveryDelay",
    "subscription": "subscription",
}


def looks_like(payload: Any) -> bool:
    """True for an SNS notification, or a list of them."""
    first = payload[0] if isinstance(payload, list) and payload else payload
    return isinstance(first, Mapping) and first.get("Type") == "Notification"


def parse(payload: Any, source: str, conversion_event: str) -> list[Event]:
    """The events of one SNS notification or a list of them (one event per recipient).

    Raises:
        EventFileError: not an SNS notification, its ``Message`` is not JSON,
            or the SES event lacks its type or ``mail``.
    """
    notes = payload if isinstance(payload, list) else [payload]
    events: list[Event] = []
    for i, note in enumerate(notes):
        events += _notification(note, source, f"notification {i + 1}", conversion_event)
    return events


def _notification(note: Any, source: str, where: str, conversion_event: str) -> list[Event]:
    import json

    body = require_mapping(note, source, where, "an SNS notification")
    if body.get("Type") != "Notification":
        raise EventFileError(
            f"{source}: {where}: not an SNS notification (Type {body.get('Type')!r})",
            hint="confirm the SNS subscription first; only Type Notification carries events",
        )
    try:
        message = json.loads(text(body.get("Message")))
    except ValueError:
        raise EventFileError(
            f"{source}: {where}: the SNS 'Message' is not the JSON text of an SES event",
            hint="turn off raw message delivery or save the SNS notification unchanged",
        ) from None
    return _ses_event(message, text(body.get("MessageId")), source, where, conversion_event)


def _ses_event(
    message: Any, note_id: str, source: str, where: str, conversion_event: str
) -> list[Event]:
    body = require_mapping(message, source, where, "an SES event")
    name = text(body.get("eventType") or body.get("notificationType"))
    mail = body.get("mail")
    if not name or not isinstance(mail, Mapping):
        raise EventFileError(
            f"{source}: {where}: an SES event needs 'eventType' (or 'notificationType') and 'mail'",
            hint="publish SES events to SNS with the configuration set's event destination",
        )
    key = name.lower()
    detail = body.get(DETAIL_KEYS.get(key, key))
    detail = detail if isinstance(detail, Mapping) else {}
    kind = CONVERSION if key == conversion_event else KINDS.get(key, OTHER)
    if kind == HARD_BOUNCE and text(detail.get("bounceType")) != "Permanent":
        kind = SOFT_BOUNCE
    stamp = detail.get("timestamp") or mail.get("timestamp")
    at = epoch(stamp, source, where)
    tags = _header_tags(mail)
    return [
        Event(
            provider=PROVIDER,
            kind=kind,
            name=name,
            at=at,
            recipient=recipient,
            event_id=f"{note_id}:{recipient}" if note_id else "",
            message_id=text(mail.get("messageId")),
            tags=tags,
            user_agent=text(detail.get("userAgent")),
            ip=text(detail.get("ipAddress")),
            url=text(detail.get("link")),
            where=where,
        )
        for recipient in _recipients(kind, detail, mail)
    ]


def _recipients(kind: str, detail: Mapping[str, Any], mail: Mapping[str, Any]) -> list[str]:
    """Who an event concerns: the bounced or complaining recipients, else the destination."""
    listed = {HARD_BOUNCE: "bouncedRecipients", SOFT_BOUNCE: "bouncedRecipients"}.get(kind)
    if kind == COMPLAINT:
        listed = "complainedRecipients"
    if listed and isinstance(detail.get(listed), list):
        return [
            address(entry.get("emailAddress"))
            for entry in detail[listed]
            if isinstance(entry, Mapping)
        ]
    destination = mail.get("destination")
    return [address(value) for value in destination] if isinstance(destination, list) else [""]


def _header_tags(mail: Mapping[str, Any]) -> dict[str, str]:
    """The message's headers (``{name, value}`` list) and SES tags, lower-cased keys."""
    tags: dict[str, str] = {}
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, Mapping) and header.get("name"):
            tags[text(header["name"]).lower()] = text(header.get("value"))
    ses_tags = mail.get("tags")
    if isinstance(ses_tags, Mapping):
        for key, values in ses_tags.items():
            if isinstance(values, list) and values:
                tags.setdefault(str(key).lower(), text(values[0]))
    return tags
