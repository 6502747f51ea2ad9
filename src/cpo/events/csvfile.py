"""A generic event CSV: ``recipient`` (or ``email``, ``message_id``), ``event``, ``timestamp``.

For email services without a dedicated parser: one row per event. Optional
columns: ``customer_id``, ``event_id`` (deduplicates), ``user_agent``, ``ip``,
``url``, ``machine`` (1/true when the service flagged a machine open) and any
``x-cpo-*`` column (cpo's headers, when the service exports them). ``event``
names: delivered, open, click, conversion (or the configured conversion event),
unsubscribe, bounce / hard_bounce, soft_bounce, complaint / spamreport,
processed, dropped, deferred (past forms such as ``opened`` are accepted).
``timestamp`` is ISO 8601 (no zone = UTC) or seconds since 1970.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cpo.events.records import (
    CLICK,
    COMPLAINT,
    CONVERSION,
    DEFERRED,
    DELIVERED,
    DROPPED,
    HARD_BOUNCE,
    OPEN,
    PROCESSED,
    SOFT_BOUNCE,
    UNSUBSCRIBE,
    Event,
    EventFileError,
    address,
    epoch,
    text,
)

PROVIDER = "csv"
KINDS = {
    "delivered": DELIVERED,
    "delivery": DELIVERED,
    "open": OPEN,
    "opened": OPEN,
    "click": CLICK,
    "clicked": CLICK,
    "conversion": CONVERSION,
    "converted": CONVERSION,
    "unsubscribe": UNSUBSCRIBE,
    "unsubscribed": UNSUBSCRIBE,
    "bounce": HARD_BOUNCE,
    "bounced": HARD_BOUNCE,
    "hard_bounce": HARD_BOUNCE,
    "soft_bounce": SOFT_BOUNCE,
    "complaint": COMPLAINT,
    "spamreport": COMPLAINT,
    "processed": PROCESSED,
    "sent": PROCESSED,
    "dropped": DROPPED,
    "deferred": DEFERRED,
}
#: Columns that identify the recipient of an event (at least one is needed).
RECIPIENT_COLUMNS = ("recipient", "email", "message_id")
_TRUE = frozenset({"1", "true", "t", "yes"})


def looks_like(columns: list[str]) -> bool:
    """True for an ``event`` column with a recipient or message id column."""
    return "event" in columns and any(column in columns for column in RECIPIENT_COLUMNS)


def parse(path: Path, conversion_event: str) -> list[Event]:
    """The events of a generic event CSV.

    Raises:
        EventFileError: a needed column is missing, or a row has an unknown
            event, no recipient or a bad timestamp (naming the line).
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [text(name).lower() for name in reader.fieldnames or []]
        reader.fieldnames = fields
        missing = [c for c in ("event", "timestamp") if c not in fields]
        if missing or not looks_like(fields):
            raise EventFileError(
                f"{path}: missing column(s) {', '.join(missing) or 'recipient'} for an event CSV",
                hint="use recipient (or email, or message_id), event, timestamp",
            )
        return [
            _event(row, path, f"line {i + 2}", conversion_event) for i, row in enumerate(reader)
        ]


def _event(row: dict[str, str], path: Path, where: str, conversion_event: str) -> Event:
    name = text(row.get("event"))
    key = name.lower()
    kind = CONVERSION if key == conversion_event else KINDS.get(key)
    if kind is None:
        raise EventFileError(
            f"{path}: {where}: unknown event {name!r}",
            hint=f"events must be one of: {', '.join(sorted(KINDS))} "
            f"or the conversion event {conversion_event!r}",
        )
    recipient = address(row.get("recipient") or row.get("email"))
    message_id = text(row.get("message_id"))
    customer = text(row.get("customer_id"))
    if not (recipient or message_id or customer):
        raise EventFileError(
            f"{path}: {where}: no recipient, message_id or customer_id",
            hint="every event row needs the address (or message id) it concerns",
        )
    tags = {k: text(v) for k, v in row.items() if k and k.startswith("x-cpo-") and text(v)}
    if customer:
        tags["customer_id"] = customer
    return Event(
        provider=PROVIDER,
        kind=kind,
        name=name,
        at=epoch(row.get("timestamp"), str(path), where),
        recipient=recipient,
        event_id=text(row.get("event_id")),
        message_id=message_id,
        tags=tags,
        user_agent=text(row.get("user_agent")),
        ip=text(row.get("ip")),
        url=text(row.get("url")),
        machine=text(row.get("machine")).lower() in _TRUE,
        where=where,
    )
