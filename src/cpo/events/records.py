"""One provider event, normalised, and the error raised for an unreadable event file.

Every provider parser (:mod:`cpo.events.sendgrid`, :mod:`cpo.events.mailgun`,
:mod:`cpo.events.ses`, :mod:`cpo.events.csvfile`) turns its payload into
:class:`Event` records with one vocabulary of kinds (:data:`KINDS`), so the
join to the send list, the machine-open rules and the suppression updates are
written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cpo.errors import DataValidationError

#: Kinds an event is normalised to.
DELIVERED = "delivered"
OPEN = "open"
CLICK = "click"
CONVERSION = "conversion"
UNSUBSCRIBE = "unsubscribe"
HARD_BOUNCE = "bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
PROCESSED = "processed"
DROPPED = "dropped"
DEFERRED = "deferred"
OTHER = "other"
KINDS = (
    DELIVERED,
    OPEN,
    CLICK,
    CONVERSION,
    UNSUBSCRIBE,
    HARD_BOUNCE,
    SOFT_BOUNCE,
    COMPLAINT,
    PROCESSED,
    DROPPED,
    DEFERRED,
    OTHER,
)
#: Kinds that reach the engagement import (its event names).
ENGAGEMENT_KINDS = (DELIVERED, OPEN, CLICK, CONVERSION, UNSUBSCRIBE, HARD_BOUNCE)


class EventFileError(DataValidationError):
    """An event file or webhook payload cannot be read as its provider's format."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of an email service, normalised.

    Attributes:
        provider: ``sendgrid``, ``mailgun``, ``ses`` or ``csv``.
        kind: One of :data:`KINDS`.
        name: The provider's own event name (``open``, ``opened``, ``Open``, ...).
        at: When it happened, seconds since the epoch (UTC).
        recipient: The recipient address, stripped and lower-cased ("" if absent).
        event_id: The provider's event id ("" if it has none).
        message_id: The Message-ID or provider message id ("" if absent).
        tags: Custom arguments, user variables and ``X-CPO-*`` headers, with
            lower-cased keys (how cpo's run, arm, variant and customer id come back).
        user_agent: The user agent of an open or click ("" if absent).
        ip: The IP address of an open or click ("" if absent).
        url: The link of a click ("" if absent).
        machine: The provider itself flagged it as a machine open.
        where: Where it is in the file (``item 3``, ``line 7``) for messages.
    """

    provider: str
    kind: str
    name: str
    at: float
    recipient: str = ""
    event_id: str = ""
    message_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = ""
    ip: str = ""
    url: str = ""
    machine: bool = False
    where: str = ""


def text(value: Any) -> str:
    """``value`` as stripped text ("" for None)."""
    return "" if value is None else str(value).strip()


def address(value: Any) -> str:
    """An email address as the join and the suppression list use it."""
    return text(value).lower()


def epoch(value: Any, source: str, where: str) -> float:
    """Seconds since the epoch from a number (seconds) or an ISO 8601 text.

    Raises:
        EventFileError: the value is neither.
    """
    if isinstance(value, bool):
        value = None
    if isinstance(value, int | float):
        return float(value)
    raw = text(value)
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise EventFileError(
            f"{source}: {where}: timestamp {raw!r} is neither seconds since 1970 "
            "nor an ISO 8601 time",
            hint="export the events unchanged from the email service, or write "
            "timestamps like 2025-01-31T14:05:00Z",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def string_tags(values: Any) -> dict[str, str]:
    """The scalar entries of a mapping as ``{lower-cased key: text}`` (others skipped)."""
    if not isinstance(values, Mapping):
        return {}
    return {
        str(key).strip().lower(): text(value)
        for key, value in values.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }


def require_mapping(value: Any, source: str, where: str, what: str) -> Mapping[str, Any]:
    """``value`` when it is a JSON object.

    Raises:
        EventFileError: it is not.
    """
    if not isinstance(value, Mapping):
        raise EventFileError(
            f"{source}: {where}: expected {what} (a JSON object), found {type(value).__name__}",
            hint="export the events unchanged from the email service",
        )
    return value
