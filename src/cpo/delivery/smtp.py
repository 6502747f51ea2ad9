"""The SMTP client of ``cpo send``: TLS, login, retries, and honest outcomes.

One connection is kept open and reused. Each recipient is one transaction
(``MAIL``, ``RCPT``, ``DATA``), driven step by step so the outcome says what
is known:

* a 4xx reply, or the connection lost before the message data was sent, is
  transient: the transaction is retried (on a new connection if needed) after
  an exponential backoff, up to ``max_retries`` times, then recorded
  ``deferred`` (not delivered; the next ``cpo send`` tries again);
* a 5xx reply to ``RCPT`` is a hard bounce (the address is refused), a 5xx to
  ``DATA`` or to the message a bounce of this message;
* the connection lost after the message data was sent and before the server's
  reply is ``unknown``: the server may have accepted it, so it is not retried.

The password comes from an environment variable and is never logged.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

from cpo.errors import BackendError

Security = Literal["none", "starttls", "ssl"]
OutcomeState = Literal["sent", "bounced", "deferred", "unknown"]
_LEADING_DOT = re.compile(rb"(?m)^\.")
_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, OSError)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP server.

    Attributes:
        host: Server host name.
        port: Server port (25, 587 with STARTTLS, 465 with SSL).
        security: ``none``, ``starttls`` or ``ssl`` (TLS from the first byte).
        user: Login user, or None for no login.
        password: Login password (from an environment variable), or None.
        timeout_s: Socket timeout per command.
        max_retries: Retries of a transient failure per recipient.
        backoff_s: First backoff; doubled on every retry.
        backoff_max_s: Longest backoff.
    """

    host: str
    port: int
    security: Security = "none"
    user: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    @property
    def server(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one message.

    Attributes:
        state: ``sent``, ``bounced``, ``deferred`` or ``unknown``.
        detail: The server's last reply (code and text), or the error.
        hard_bounce: True when the server refused the address itself (5xx to RCPT).
    """

    state: OutcomeState
    detail: str = ""
    hard_bounce: bool = False


class _Transient(Exception):
    """A failure worth retrying: 4xx reply or connection lost before the data."""


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message}".strip()


class SmtpClient:
    """Delivers messages one transaction at a time over one reused connection.

    Args:
        settings: Server, security, login and retry settings.
        sleep: The sleep function (tests may pass a fake).
    """

    def __init__(self, settings: SmtpSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._conn: smtplib.SMTP | None = None

    def connect(self) -> None:
        """Open (or reopen) the connection, retrying connection failures.

        Raises:
            BackendError: the server cannot be reached or refuses the login.
        """
        for attempt in range(self.settings.max_retries + 1):
            try:
                self._conn = self._open()
                return
            except smtplib.SMTPAuthenticationError as exc:
                raise BackendError(
                    f"SMTP server {self.settings.server} refused the login of "
                    f"user {self.settings.user!r}: {_reply(exc.smtp_code, exc.smtp_error)}",
                    hint="check --user and the password in the --password-env variable",
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                if attempt == self.settings.max_retries:
                    raise BackendError(
                        f"cannot connect to the SMTP server {self.settings.server}: {exc}",
                        hint="check --smtp-host, --smtp-port and --starttls/--ssl; "
                        "cpo send again resumes where it stopped",
                    ) from None
                self._backoff(attempt)

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        conn: smtplib.SMTP
        if settings.security == "ssl":
            context = ssl.create_default_context()
            conn = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_s, context=context
            )
        else:
            conn = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        conn.ehlo()
        if settings.security == "starttls":
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if settings.user:
            conn.login(settings.user, settings.password or "")
        return conn

    def deliver(self, sender: str, recipient: str, message: EmailMessage) -> Outcome:
        """Deliver ``message`` to ``recipient``; retries transient failures.

        Raises:
            BackendError: the connection cannot be restored, or the server
                refuses the sender itself (5xx to MAIL FROM).
        """
        payload = self._payload(message)
        last = ""
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self._backoff(attempt - 1)
            try:
                if self._conn is None:
                    self.connect()
                return self._transaction(sender, recipient, payload)
            except _Transient as exc:
                last = str(exc)
        return Outcome("deferred", f"gave up after {self.settings.max_retries} retries: {last}")

    def _transaction(self, sender: str, recipient: str, payload: bytes) -> Outcome:
        conn = self._conn
        assert conn is not None
        try:
            code, text = conn.mail(sender)
            self._check_envelope(code, text, "MAIL FROM")
            code, text = conn.rcpt(recipient)
            if code >= 500:
                self._reset()
                return Outcome("bounced", _reply(code, text), hard_bounce=True)
            self._check_envelope(code, text, "RCPT TO")
            code, text = conn.docmd("DATA")
            if code >= 500:
                self._reset()
                return Outcome("bounced", _reply(code, text))
            if code != 354:
                self._reset()
                raise _Transient(_reply(code, text))
        except _CONNECTION_ERRORS as exc:
            self._drop()
            raise _Transient(f"connection lost: {exc}") from None
        return self._send_data(payload)

    def _send_data(self, payload: bytes) -> Outcome:
        """Send the data; from here a lost connection leaves the outcome unknown."""
        conn = self._conn
        assert conn is not None
        try:
            conn.send(payload)
            code, text = conn.getreply()
        except _CONNECTION_ERRORS as exc:
            self._drop()
            return Outcome("unknown", f"connection lost after the message data: {exc}")
        if code == 250:
            return Outcome("sent", _reply(code, text))
        if code >= 500:
            return Outcome("bounced", _reply(code, text))
        raise _Transient(_reply(code, text))

    def _check_envelope(self, code: int, text: bytes, step: str) -> None:
        if 400 <= code < 500:
            self._reset()
            raise _Transient(f"{step}: {_reply(code, text)}")
        if code >= 500:
            self._reset()
            raise BackendError(
                f"SMTP server {self.settings.server} refused the sender ({step}): "
                f"{_reply(code, text)}",
                hint="check brand.from_address (or --from-address) and that --user may "
                "send as it; cpo send again resumes where it stopped",
            )

    @staticmethod
    def _payload(message: EmailMessage) -> bytes:
        data = _LEADING_DOT.sub(b"..", message.as_bytes())
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        return data + b".\r\n"

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except _CONNECTION_ERRORS:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    def _backoff(self, attempt: int) -> None:
        delay = min(self.settings.backoff_s * (2**attempt), self.settings.backoff_max_s)
        self._sleep(delay)

    def close(self) -> None:
        """Say QUIT and close the connection."""
        if self._conn is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                self._conn.quit()
            self._drop()
