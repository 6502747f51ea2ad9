"""The send loop of ``cpo send``: checks, suppressions, pacing, ledger, summary.

:func:`send_run` refuses a run that is not completed (or, sending adaptive waves
for real, awaiting the current wave's events), still has variants in
review, or whose audit chain does not verify. It then streams the send list
(``sends.csv`` or ``sends.parquet``) in batches and, for each recipient, in
this order: skips one the ledger records as sent or bounced; skips (and
reports) one left in flight by an earlier send unless ``resend_unknown``;
skips (and counts) one whose address or customer id is suppressed; otherwise
commits the attempt to the ledger, hands the message to the SMTP server and
commits the outcome (:mod:`cpo.delivery.ledger`). A recipient the server
refuses with 5xx at ``RCPT`` is added to the suppression list as a hard bounce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.delivery.ledger import SendLedger, open_ledger
from cpo.delivery.message import Sender, build_message, sender_from_brand
from cpo.delivery.smtp import Outcome, SmtpClient, SmtpSettings
from cpo.errors import BackendError, RunDirError
from cpo.run_folder import SendListFile
from cpo.settings_base import EXPERIMENT_CONFIG_FILE
from cpo.suppressions import Suppressions, open_suppressions

#: Rows read from the send list at a time (ledger and suppression look-ups per batch).
BATCH_ROWS = 1000
_COMPLETED = "completed"
#: A run of adaptive waves sent for real, paused for a wave's events: its send
#: list holds that wave's recipients, so it may be sent.
_AWAITING_ENGAGEMENT = "awaiting_engagement"


@dataclass(frozen=True, slots=True)
class SendOptions:
    """What ``cpo send`` was asked to do.

    Attributes:
        smtp: Server settings (unused by a dry run).
        suppressions: The suppression list file.
        rate: At most this many messages per second; None = as fast as the server takes them.
        dry_run: Build every message and count, but connect to nothing and record nothing.
        resend_unknown: Send again to recipients left in flight by an earlier send.
        from_address: Sender address overriding the run's ``brand.from_address``.
    """

    smtp: SmtpSettings
    suppressions: Path
    rate: float | None = None
    dry_run: bool = False
    resend_unknown: bool = False
    from_address: str | None = None


@dataclass(slots=True)
class SendSummary:
    """The counts of one ``cpo send``.

    Attributes:
        total: Rows in the send list.
        sent: Accepted by the server in this send (a dry run: would be sent).
        bounced: Refused by the server (5xx) in this send.
        deferred: Not delivered after the retries (tried again next time).
        unknown: In flight when the connection was lost in this send.
        suppressed: Skipped: address or customer id on the suppression list.
        already_sent: Skipped: sent by an earlier ``cpo send``.
        already_bounced: Skipped: bounced in an earlier ``cpo send``.
        in_flight_earlier: Skipped: in flight when an earlier send stopped.
        resent_unknown: Of ``sent``, those in flight earlier (``--resend-unknown``).
        no_address: Skipped: the row has no email address.
        duplicate: Skipped: a customer id listed again in the send list.
        dry_run: True when nothing was sent.
    """

    total: int = 0
    sent: int = 0
    bounced: int = 0
    deferred: int = 0
    unknown: int = 0
    suppressed: int = 0
    already_sent: int = 0
    already_bounced: int = 0
    in_flight_earlier: int = 0
    resent_unknown: int = 0
    no_address: int = 0
    duplicate: int = 0
    dry_run: bool = False
    seen: set[str] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "seen"}


def check_sendable(run_dir: Path) -> tuple[dict[str, Any], set[str]]:
    """Refuse a run that must not be sent; return its manifest and sendable variant ids.

    Raises:
        RunDirError: not a run folder, or the run is not completed.
        AuditError: the audit chain does not verify.
        DataValidationError: variants still await review.
    """
    from cpo.decisions import pending_review, sendable_variants
    from cpo.errors import DataValidationError
    from cpo.run_folder import read_manifest

    manifest = read_manifest(run_dir)
    status = manifest.get("status")
    if status not in (_COMPLETED, _AWAITING_ENGAGEMENT):
        raise RunDirError(
            f"{run_dir}: the run is {status!r}, not completed; only a completed run (or a "
            "wave of adaptive waves awaiting its events) is sent",
            hint="finish it with `cpo run --resume RUN_DIR` (after `cpo approve` if it "
            "awaits approval), then cpo send again",
        )
    decisions = sendable_variants(run_dir)
    pending = pending_review(decisions)
    if pending:
        names = ", ".join(d.variant_id for d in pending[:5])
        raise DataValidationError(
            f"{run_dir}: {len(pending)} variant(s) still in review ({names})",
            hint="approve or reject them with `cpo approve RUN_DIR`, rerun "
            "`cpo run --resume RUN_DIR`, then cpo send again",
        )
    return manifest, {vid for vid, decision in decisions.items() if decision.sendable}


def check_send_list_variants(send_list: SendListFile, sendable: set[str]) -> None:
    """Refuse a send list naming a variant the verified audit log does not allow.

    The assign stage writes only sendable variants; a list edited by hand, or
    one older than a decision, could name another. Checked before any message.

    Raises:
        DataValidationError: a variant of the list is not sendable.
    """
    import pyarrow.compute as pc

    named: set[str] = set()
    for part in send_list.parts():
        named.update(str(v) for v in pc.unique(part["variant_id"]).to_pylist())
    stray = sorted(named - sendable)
    if stray:
        from cpo.errors import DataValidationError

        raise DataValidationError(
            f"{send_list.path}: variant(s) {', '.join(stray[:5])} are in the send list "
            "but not sendable according to the run's verified audit log",
            hint="the send list does not match the screening decisions: rebuild it with "
            "`cpo run --resume RUN_DIR` (or start a new run), then cpo send again",
        )


def run_sender(manifest: Mapping[str, Any], from_address: str | None) -> Sender:
    """The sender of a run, from the brand section of its config snapshot."""
    config = manifest.get("config") or {}
    brand = (config.get(EXPERIMENT_CONFIG_FILE) or {}).get("brand") or {}
    return sender_from_brand(brand, from_address)


def send_run(
    run_dir: Path | str,
    options: SendOptions,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> SendSummary:
    """Deliver the send list of the run in ``run_dir`` (see the module docstring).

    Args:
        run_dir: A completed run folder.
        options: Server, suppressions, pacing and flags.
        progress: Called with the number of rows handled after each row.
        on_start: Called once with (rows in the send list, rows found in flight
            by an earlier send) before the first message.

    Returns:
        The counts.

    Raises:
        CpoError: a refusal (see :func:`check_sendable`), a configuration
            problem, or a server that cannot be reached (everything sent so far
            is in the ledger: run again to resume).
    """
    from cpo.run_folder import read_send_list
    from cpo.runlock import run_dir_lock

    run_dir = Path(run_dir)
    hint = "another cpo process works on this run (e.g. cpo send); wait for it to finish"
    with run_dir_lock(run_dir, busy_hint=hint):
        manifest, sendable = check_sendable(run_dir)
        sender = run_sender(manifest, options.from_address)
        send_list = read_send_list(run_dir)
        check_send_list_variants(send_list, sendable)
        ledger_in = open_ledger(run_dir, create=not options.dry_run)
        with ledger_in as ledger, open_suppressions(options.suppressions) as blocked:
            summary = SendSummary(total=send_list.row_count(), dry_run=options.dry_run)
            if not options.dry_run:
                ledger.recover()
            if on_start is not None:
                counts = ledger.counts()
                on_start(summary.total, counts["unknown"] + counts["sending"])
            loop = _SendLoop(str(manifest.get("run_id", "")), sender, options, ledger, blocked)
            try:
                for batch in send_list.record_batches(BATCH_ROWS):
                    loop.send_batch(batch.to_pylist(), summary, progress)
            finally:
                loop.close()
    return summary


class _SendLoop:
    """Sends batches of rows; owns the SMTP client and the pacing clock."""

    def __init__(
        self,
        run_id: str,
        sender: Sender,
        options: SendOptions,
        ledger: SendLedger,
        blocked: Suppressions,
    ) -> None:
        self.run_id = run_id
        self.sender = sender
        self.options = options
        self.ledger = ledger
        self.blocked = blocked
        self.client = None if options.dry_run else SmtpClient(options.smtp)
        self._interval = 1.0 / options.rate if options.rate else 0.0
        self._next_at = time.monotonic()

    def send_batch(
        self,
        rows: list[dict[str, Any]],
        summary: SendSummary,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Handle one batch of send-list rows, counting into ``summary``."""
        ids = [str(row["customer_id"]) for row in rows]
        states = self.ledger.states(ids)
        keys = ids + [str(row.get("email") or "") for row in rows]
        suppressed = self.blocked.contains_many(k for k in keys if k.strip())
        for row, customer_id in zip(rows, ids, strict=True):
            state = states.get(customer_id)
            skip = self._skip_reason(row, customer_id, state, suppressed, summary.seen)
            summary.seen.add(customer_id)
            if skip:
                setattr(summary, skip, getattr(summary, skip) + 1)
            else:
                self._send_one(row, customer_id, state, summary)
            if progress is not None:
                progress(1)

    def _skip_reason(
        self,
        row: Mapping[str, Any],
        customer_id: str,
        state: str | None,
        suppressed: set[str],
        seen: set[str],
    ) -> str | None:
        """The summary counter of a skipped row, or None to send it."""
        if customer_id in seen:
            return "duplicate"
        if state == "sent":
            return "already_sent"
        if state == "bounced":
            return "already_bounced"
        if state in ("unknown", "sending") and not self.options.resend_unknown:
            return "in_flight_earlier"
        email = str(row.get("email") or "").strip()
        if not email:
            return "no_address"
        if customer_id in suppressed or str(row.get("email") or "") in suppressed:
            return "suppressed"
        return None

    def _send_one(
        self, row: Mapping[str, Any], customer_id: str, state: str | None, summary: SendSummary
    ) -> None:
        message = build_message(row, self.sender, self.run_id)
        if self.client is None:  # dry run
            summary.sent += 1
            return
        self._pace()
        email = str(row["email"]).strip()
        self.ledger.begin(customer_id, str(message["Message-ID"]))
        try:
            outcome = self.client.deliver(self.sender.address, email, message)
        except BackendError as exc:
            self.ledger.finish(customer_id, "deferred", exc.message)
            raise
        self.ledger.finish(customer_id, outcome.state, outcome.detail)
        self._count(outcome, state, summary)
        if outcome.hard_bounce:
            self.blocked.add(email, "hard_bounce", f"cpo send {self.run_id}")

    @staticmethod
    def _count(outcome: Outcome, state: str | None, summary: SendSummary) -> None:
        setattr(summary, outcome.state, getattr(summary, outcome.state) + 1)
        if outcome.state == "sent" and state in ("unknown", "sending"):
            summary.resent_unknown += 1

    def _pace(self) -> None:
        """Wait so that messages leave at most ``rate`` per second."""
        if not self._interval:
            return
        now = time.monotonic()
        if self._next_at > now:
            time.sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self._interval

    def close(self) -> None:
        """Close the SMTP connection."""
        if self.client is not None:
            self.client.close()
