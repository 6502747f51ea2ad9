"""JSON-lines logging for a run, with PII redaction.

Each line of ``logs/system.log`` (and ``logs/experiment.log`` for the
experiment's design, assignment and analysis events) is one JSON object::

    {"timestamp": "...Z", "level": "info", "stage": "segment", "event": "done", ...fields}

PII never reaches a log: fields named like personal columns are dropped, any
email address inside a string is replaced by ``<email>``, and customer ids are
written only through :func:`hash_customer_id` (a salted sha256 prefix).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
#: Field names whose values are personal data and are never logged.
PII_FIELDS = frozenset({"email", "first_name", "last_name", "name", "phone", "customer_email"})
CHANNELS = ("system", "experiment")

Listener = Callable[[dict[str, Any]], None]


def utc_now() -> str:
    """Current UTC time in ISO 8601 with a ``Z`` suffix, millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hash_customer_id(customer_id: str, salt: str) -> str:
    """Return a 12-hex-character salted hash of a customer id, safe for logs."""
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:12]


def mask_values(text: str, values: Iterable[str], salt: str) -> str:
    """Replace each listed value (e.g. a customer id) in ``text`` by ``<id:HASH>``."""
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, f"<id:{hash_customer_id(value, salt)}>")
    return text


def redact(value: Any) -> Any:
    """Remove PII from a value that is about to be logged (recursively)."""
    if isinstance(value, str):
        return EMAIL_IN_TEXT.sub("<email>", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if str(k).lower() not in PII_FIELDS}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class RunLog:
    """Writes JSON-lines events for one run and forwards them to a listener.

    Args:
        log_dir: Folder for ``system.log`` and ``experiment.log`` (created).
            ``None`` keeps events in memory only (library use without a run folder).
        listener: Called with every event dict (e.g. the CLI's terminal display).
    """

    def __init__(self, log_dir: Path | None = None, listener: Listener | None = None) -> None:
        self.log_dir = log_dir
        self.listener = listener
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def info(self, stage: str, event: str, channel: str = "system", **fields: Any) -> None:
        """Log an informational event."""
        self.write("info", stage, event, channel, fields)

    def warning(self, stage: str, event: str, channel: str = "system", **fields: Any) -> None:
        """Log a warning (shown on the terminal summary too)."""
        self.write("warning", stage, event, channel, fields)

    def error(self, stage: str, event: str, channel: str = "system", **fields: Any) -> None:
        """Log an error."""
        self.write("error", stage, event, channel, fields)

    def write(
        self, level: str, stage: str, event: str, channel: str, fields: dict[str, Any]
    ) -> None:
        """Redact and append one event to the channel's file."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown log channel '{channel}'")
        record = {"timestamp": utc_now(), "level": level, "stage": stage, "event": event}
        record.update(redact(fields))
        with self._lock:
            self.events.append(record)
            if self.log_dir is not None:
                line = json.dumps(record, ensure_ascii=False, default=str, sort_keys=False)
                with (self.log_dir / f"{channel}.log").open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        if self.listener is not None:
            self.listener(record)

    def warnings(self) -> list[dict[str, Any]]:
        """Warnings logged so far in this process."""
        return [e for e in self.events if e["level"] == "warning"]
