"""Provider events joined to a run's send list, ready for the engagement import.

:func:`normalise` takes parsed :class:`~cpo.events.records.Event` records and

1. drops repeated events: the same provider event id, or, without one, the
   same (recipient, kind, time, link);
2. finds each event's customer: cpo's customer id header / custom argument
   (``X-CPO-Customer``, ``cpo_customer_id``, ``customer_id``), else the
   recipient address in the send list, else cpo's stable Message-ID; events of
   another run (``X-CPO-Run`` differs) and of unknown recipients are counted
   and left out;
3. flags machine opens and clicks (:mod:`cpo.events.machine`), left out unless
   ``exclude_machine_events`` is false, and always counted;
4. lists unsubscribes, hard bounces and complaints for the suppression list
   (whether or not the recipient is known: they must never be mailed again);
5. returns one row per remaining engagement event: ``customer_id, event,
   timestamp`` in the event layout of :mod:`cpo.experiment.engagement`, which
   then applies its own checks (events before the send, clicks without an
   open, ...).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cpo import run_folder
from cpo.events.machine import RULES, machine_reasons
from cpo.events.records import (
    CLICK,
    COMPLAINT,
    ENGAGEMENT_KINDS,
    HARD_BOUNCE,
    OPEN,
    UNSUBSCRIBE,
    Event,
)
from cpo.events.settings import EventSettings

#: Tag names (lower-case) that carry the customer id and the run id back.
CUSTOMER_TAGS = ("x-cpo-customer", "cpo_customer_id", "cpo_customer", "customer_id")
RUN_TAGS = ("x-cpo-run", "cpo_run", "cpo_run_id")
#: Event kinds that put the recipient on the suppression list, and the reason.
SUPPRESSING = {UNSUBSCRIBE: "unsubscribe", HARD_BOUNCE: "hard_bounce", COMPLAINT: "complaint"}
_MESSAGE_DIGEST = re.compile(r"\.([0-9a-f]{32})@")


@dataclass(frozen=True)
class SendIndex:
    """Who a run sent to: customer ids, addresses and cpo's Message-ID digests.

    Attributes:
        run_id: The run's id (events tagged with another run are not its).
        by_email: Normalised address -> customer id.
        customers: Every customer id of the send list.
    """

    run_id: str
    by_email: dict[str, str]
    customers: frozenset[str]

    @classmethod
    def from_run(cls, run_dir: Path | str) -> SendIndex:
        """The send list of a run folder (``sends.csv`` or ``sends.parquet``)."""
        send_list = run_folder.read_send_list(run_dir)
        by_email: dict[str, str] = {}
        customers: set[str] = set()
        for part in send_list.parts():
            ids = [str(v) for v in part.column("customer_id").to_pylist()]
            customers.update(ids)
            if "email" in part.column_names:
                emails = part.column("email").to_pylist()
                by_email.update(
                    (str(e).strip().lower(), c) for e, c in zip(emails, ids, strict=True) if e
                )
        run_id = str(run_folder.read_manifest(run_dir).get("run_id", ""))
        return cls(run_id, by_email, frozenset(customers))

    def by_message_digest(self) -> dict[str, str]:
        """cpo's Message-ID digest (see :func:`cpo.delivery.message.message_id`) -> customer."""
        return {
            hashlib.sha256(f"{self.run_id}\0{c}".encode()).hexdigest()[:32]: c
            for c in self.customers
        }


@dataclass
class Normalised:
    """Events ready for the engagement import, and what normalising found.

    Attributes:
        frame: ``customer_id, event, timestamp`` rows (timestamps ISO 8601 UTC).
        counts: Every count (zero when the case did not occur).
        warnings: ``{code, message}`` records.
        suppress: ``(address or customer id, reason, when)`` to add to the list.
    """

    frame: pd.DataFrame
    counts: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)
    suppress: list[tuple[str, str, datetime]] = field(default_factory=list)


def normalise(events: Sequence[Event], index: SendIndex, settings: EventSettings) -> Normalised:
    """Deduplicate, join, flag machine events and list suppressions (see the module doc)."""
    unique = deduplicate(events)
    customers, unknown, other_run = _resolve(unique, index)
    reasons = machine_reasons(unique, customers, settings)
    counts: dict[str, Any] = {
        "events": len(events),
        "repeated_events": len(events) - len(unique),
        "unknown_recipient_events": len(unknown),
        "unknown_recipients": len({unique[i].recipient or unique[i].message_id for i in unknown}),
        "other_run_events": other_run,
        "machine_opens": sum(
            1 for e, r in zip(unique, reasons, strict=True) if r and e.kind == OPEN
        ),
        "machine_clicks": sum(
            1 for e, r in zip(unique, reasons, strict=True) if r and e.kind == CLICK
        ),
        "machine_by_rule": {rule: reasons.count(rule) for rule in RULES},
        "machine_events_excluded": settings.exclude_machine_events,
        "by_kind": dict(sorted(Counter(e.kind for e in unique).items())),
    }
    rows = [
        (customer, event.kind, _iso(event.at))
        for event, customer, reason in zip(unique, customers, reasons, strict=True)
        if customer is not None
        and event.kind in ENGAGEMENT_KINDS
        and not (reason and settings.exclude_machine_events)
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "event", "timestamp"])
    suppress = suppressions_of(unique, customers)
    counts["suppression_candidates"] = len(suppress)
    return Normalised(frame, counts, _warnings(counts), suppress)


def deduplicate(events: Iterable[Event]) -> list[Event]:
    """The events with repeats removed (first kept), in their order."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for event in events:
        key: tuple[str, ...]
        if event.event_id:
            key = (event.provider, event.event_id)
        else:
            who = event.recipient or event.message_id or event.tags.get("customer_id", "")
            key = (event.provider, who, event.kind, repr(event.at), event.url)
        if key not in seen:
            seen.add(key)
            kept.append(event)
    return kept


def _resolve(events: Sequence[Event], index: SendIndex) -> tuple[list[str | None], list[int], int]:
    """Each event's customer id (None when unknown or of another run)."""
    customers: list[str | None] = []
    unknown: list[int] = []
    other_run = 0
    digests: dict[str, str] | None = None
    for i, event in enumerate(events):
        run = next((event.tags[t] for t in RUN_TAGS if event.tags.get(t)), "")
        if run and index.run_id and run != index.run_id:
            customers.append(None)
            other_run += 1
            continue
        customer = next(
            (event.tags[t] for t in CUSTOMER_TAGS if event.tags.get(t) in index.customers), None
        )
        if customer is None and event.recipient:
            customer = index.by_email.get(event.recipient)
        if customer is None and event.message_id:
            match = _MESSAGE_DIGEST.search(event.message_id)
            if match:
                digests = index.by_message_digest() if digests is None else digests
                customer = digests.get(match.group(1))
        if customer is None:
            unknown.append(i)
        customers.append(customer)
    return customers, unknown, other_run


def suppressions_of(
    events: Sequence[Event], customers: Sequence[str | None]
) -> list[tuple[str, str, datetime]]:
    """Unsubscribes, hard bounces and complaints: by address, else by customer id."""
    listed = []
    for event, customer in zip(events, customers, strict=True):
        reason = SUPPRESSING.get(event.kind)
        value = event.recipient or customer
        if reason and value:
            listed.append((value, reason, datetime.fromtimestamp(event.at, UTC)))
    return listed


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _warnings(counts: dict[str, Any]) -> list[dict[str, str]]:
    """Warnings for the cases that change what is analysed."""
    warnings = []
    if counts["unknown_recipient_events"]:
        warnings.append(
            {
                "code": "unknown_event_recipients",
                "message": f"{counts['unknown_recipient_events']} event(s) of "
                f"{counts['unknown_recipients']} recipient(s) not in this run's send list "
                "were left out (is the export filtered to this campaign?)",
            }
        )
    if counts["other_run_events"]:
        warnings.append(
            {
                "code": "other_run_events",
                "message": f"{counts['other_run_events']} event(s) carry another run's "
                "X-CPO-Run and were left out",
            }
        )
    machine = counts["machine_opens"] + counts["machine_clicks"]
    if machine:
        rules = ", ".join(f"{r} {n}" for r, n in counts["machine_by_rule"].items() if n)
        done = "left out" if counts["machine_events_excluded"] else "kept (exclusion is off)"
        warnings.append(
            {
                "code": "machine_events",
                "message": f"{counts['machine_opens']} machine open(s) and "
                f"{counts['machine_clicks']} machine click(s) were {done} ({rules})",
            }
        )
    return warnings
