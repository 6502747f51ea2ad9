"""A real SMTP server for the ``cpo send`` tests: aiosmtpd on 127.0.0.1, a free port.

:class:`RecordingHandler` keeps every accepted message and can answer like a
troubled server: a 4xx to the first N DATA commands of chosen recipients, a
5xx to RCPT of chosen addresses, and a delay before accepting each message.
"""

from __future__ import annotations

import email
import socket
import threading
import time
from email.message import Message
from email.policy import default

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RecordingHandler:
    """An aiosmtpd handler that records accepted messages."""

    def __init__(
        self,
        transient_failures: dict[str, int] | None = None,
        refuse: set[str] | None = None,
        delay_s: float = 0.0,
        drop_at_rcpt: set[str] | None = None,
        drop_after_data: set[str] | None = None,
    ) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.transient_failures = dict(transient_failures or {})
        self.refuse = set(refuse or ())
        self.delay_s = delay_s
        #: Recipients whose first RCPT drops the connection (before any data).
        self.drop_at_rcpt = set(drop_at_rcpt or ())
        #: Recipients whose message is accepted, then the connection dropped unanswered.
        self.drop_after_data = set(drop_after_data or ())
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        recipient = envelope.rcpt_tos[0]
        with self.lock:
            left = self.transient_failures.get(recipient, 0)
            if left:
                self.transient_failures[recipient] = left - 1
                return "451 4.3.0 try again later"
        if self.delay_s:
            time.sleep(self.delay_s)  # blocks the server's loop: a slow server
        parsed = email.message_from_bytes(envelope.original_content, policy=default)
        with self.lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if recipient in self.drop_after_data:
            self.drop_after_data.discard(recipient)
            server.transport.abort()  # the message is kept, the reply never sent
        return "250 2.0.0 queued"

    def customers(self) -> list[str]:
        """The X-CPO-Customer header of every accepted message, in order."""
        with self.lock:
            return [str(m["X-CPO-Customer"]) for m in self.messages]


class SmtpServer:
    """A started aiosmtpd Controller around a :class:`RecordingHandler`."""

    def __init__(self, handler: RecordingHandler, **options: object) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
