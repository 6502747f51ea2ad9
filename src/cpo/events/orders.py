"""A separate orders file as the source of conversions.

One row per order: ``customer_id`` and/or ``email``, ``timestamp`` (ISO 8601,
no zone = UTC, or seconds since 1970) and optionally ``order_id`` (a repeated
order id counts once). Each order of a recipient after their send is a
conversion; orders of people who were not sent this campaign are counted, not
warned about (most orders come from elsewhere).
"""

from __future__ import annotations

import csv
from pathlib import Path

from cpo.events.records import CONVERSION, Event, EventFileError, address, epoch, text

PROVIDER = "orders"


def read_orders(path: Path | str) -> list[Event]:
    """The orders of an orders CSV, as conversion events.

    Raises:
        EventFileError: the file is missing or lacks its columns, or a row has
            no customer id and no email, or a bad timestamp (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise EventFileError(f"{path}: orders file not found", hint="check the --orders path")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [text(name).lower() for name in reader.fieldnames or []]
        reader.fieldnames = fields
        if "timestamp" not in fields or not ({"customer_id", "email"} & set(fields)):
            raise EventFileError(
                f"{path}: an orders file needs customer_id (or email) and timestamp columns; "
                f"found: {', '.join(fields) or '(none)'}",
                hint="one row per order: customer_id or email, timestamp[, order_id]",
            )
        return [_order(row, path, f"line {i + 2}") for i, row in enumerate(reader)]


def _order(row: dict[str, str], path: Path, where: str) -> Event:
    customer, email = text(row.get("customer_id")), address(row.get("email"))
    if not (customer or email):
        raise EventFileError(
            f"{path}: {where}: an order without customer_id or email",
            hint="every order needs the customer it belongs to",
        )
    return Event(
        provider=PROVIDER,
        kind=CONVERSION,
        name="order",
        at=epoch(row.get("timestamp"), str(path), where),
        recipient=email,
        event_id=text(row.get("order_id")),
        tags={"customer_id": customer} if customer else {},
        where=where,
    )
