"""Recognise an event file's provider from its content, and read its events.

A JSON file (one document, or one JSON value per line) is SendGrid when it is
an array of events with ``sg_event_id`` / ``sg_message_id``, Mailgun when it
has ``items`` (Events API) or ``event-data`` (webhook), SES when it holds SNS
``Notification`` objects. A CSV is a generic event file when it has an
``event`` column and a ``recipient``, ``email`` or ``message_id`` column
(cpo's own layouts, keyed by ``customer_id``, are left to
:mod:`cpo.experiment.engagement`). The file name's extension is not trusted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cpo.events import csvfile, mailgun, sendgrid, ses
from cpo.events.records import Event, EventFileError

JSON_PARSERS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, str, str], list[Event]]]] = {
    sendgrid.PROVIDER: (sendgrid.looks_like, sendgrid.parse),
    mailgun.PROVIDER: (mailgun.looks_like, mailgun.parse),
    ses.PROVIDER: (ses.looks_like, ses.parse),
}
PROVIDERS = (*JSON_PARSERS, csvfile.PROVIDER)
#: Bytes read to tell JSON from CSV.
_SNIFF_BYTES = 4096


def detect_format(path: Path | str) -> str | None:
    """The provider of an event file, or None when it is not one (cpo's own layouts).

    Raises:
        EventFileError: a JSON file that matches no provider's format.
    """
    path = Path(path)
    if not path.is_file() or path.suffix.lower() == ".parquet":
        return None
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"[", b"{"):
        return _json_provider(load_json(path), str(path))
    try:
        header = head.decode("utf-8", errors="replace").splitlines()[0]
    except IndexError:
        return None
    columns = [name.strip().strip('"').lower() for name in header.split(",")]
    return csvfile.PROVIDER if csvfile.looks_like(columns) else None


def load_json(path: Path) -> Any:
    """One JSON document, or the values of a JSON Lines file as a list.

    Values that are themselves lists (one webhook POST per line) are joined.

    Raises:
        EventFileError: neither form.
    """
    raw = path.read_text(encoding="utf-8-sig")
    try:
        return json.loads(raw)
    except ValueError:
        pass
    values: list[Any] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventFileError(
                f"{path}: line {number}: not JSON ({exc.msg})",
                hint="an event file is one JSON document or one JSON value per line",
            ) from None
        values.extend(value if isinstance(value, list) else [value])
    return values


def _json_provider(payload: Any, source: str) -> str:
    for provider, (looks_like, _parse) in JSON_PARSERS.items():
        if looks_like(payload):
            return provider
    raise EventFileError(
        f"{source}: a JSON file that is not a SendGrid, Mailgun or Amazon SES event export",
        hint="give the events unchanged: a SendGrid Event Webhook array, a Mailgun Events "
        "API page (items), or Amazon SES events as SNS notifications",
    )


def parse_payload(provider: str, payload: Any, source: str, conversion_event: str) -> list[Event]:
    """The events of a decoded JSON payload of ``provider`` (a file's, or a webhook post's).

    Raises:
        EventFileError: it is not in that provider's format (naming the item).
    """
    _looks_like, parse = JSON_PARSERS[provider]
    return parse(payload, source, conversion_event)


def read_events(path: Path | str, conversion_event: str) -> tuple[str, list[Event]]:
    """The provider and events of an event file.

    Raises:
        EventFileError: not an event file, or malformed (naming the item or line).
    """
    path = Path(path)
    provider = detect_format(path)
    if provider is None:
        raise EventFileError(
            f"{path}: not an email service event file",
            hint="give a SendGrid, Mailgun or Amazon SES (SNS) JSON export, or a CSV "
            "with recipient, event, timestamp",
        )
    if provider == csvfile.PROVIDER:
        return provider, csvfile.parse(path, conversion_event)
    return provider, parse_payload(provider, load_json(path), str(path), conversion_event)
