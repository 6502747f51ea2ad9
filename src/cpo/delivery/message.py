"""One email per send-list row: multipart/alternative, with the headers events need.

Each message has the plain-text ``body`` and the ``body_html`` of the send list
as two alternatives, comes From the brand's sender (``brand.sender_name`` or
the brand name, at ``brand.from_address``), and carries:

* ``Message-ID``: stable, derived from (run id, customer id) and the sender's
  domain, so a resent message has the same id and a receiving service can drop
  the duplicate;
* ``List-Unsubscribe`` (the brand's ``unsubscribe_url`` with the run and
  customer id as query parameters, plus ``mailto:`` when
  ``brand.unsubscribe_mailto`` is set) and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058);
* ``X-CPO-Run``, ``X-CPO-Arm``, ``X-CPO-Variant`` and ``X-CPO-Customer``: the
  campaign, arm, variant and recipient, which email services return in events.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cpo.errors import ConfigError, DataValidationError

RUN_HEADER = "X-CPO-Run"
ARM_HEADER = "X-CPO-Arm"
VARIANT_HEADER = "X-CPO-Variant"
CUSTOMER_HEADER = "X-CPO-Customer"
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the messages are from and where recipients unsubscribe.

    Attributes:
        name: Display name in ``From``.
        address: The sender's email address.
        unsubscribe_url: The brand's unsubscribe page (http or https).
        unsubscribe_mailto: An address that unsubscribes by email, or None.
    """

    name: str
    address: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None = None

    @property
    def domain(self) -> str:
        """The domain of the sender's address (the right side of Message-IDs)."""
        return self.address.rpartition("@")[2].lower()


def sender_from_brand(brand: Mapping[str, object], from_address: str | None) -> Sender:
    """The :class:`Sender` of a run's ``brand`` config section.

    Args:
        brand: The ``brand`` section of the run's experiment config snapshot.
        from_address: ``--from-address`` given on the command line, or None.

    Raises:
        ConfigError: no sender address is configured or given.
    """
    address = from_address or brand.get("from_address")
    if not address or "@" not in str(address):
        raise ConfigError(
            "no sender address: the run's brand config has no from_address",
            hint="set brand.from_address in experiment_config.yaml, or pass "
            "--from-address ADDRESS to cpo send",
        )
    name = brand.get("sender_name") or brand.get("name") or ""
    mailto = brand.get("unsubscribe_mailto")
    return Sender(
        name=str(name),
        address=str(address),
        unsubscribe_url=str(brand.get("unsubscribe_url") or ""),
        unsubscribe_mailto=str(mailto) if mailto else None,
    )


def message_id(run_id: str, customer_id: str, domain: str) -> str:
    """The stable Message-ID of the message of ``customer_id`` in run ``run_id``."""
    digest = hashlib.sha256(f"{run_id}\0{customer_id}".encode()).hexdigest()[:32]
    run_part = _MSGID_UNSAFE.sub("-", run_id)[:64] or "run"
    return f"<{run_part}.{digest}@{domain}>"


def unsubscribe_targets(sender: Sender, run_id: str, customer_id: str) -> str:
    """The ``List-Unsubscribe`` value: the per-recipient URL, then the mailto (if any)."""
    parts = urlsplit(sender.unsubscribe_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("run", run_id), ("cid", customer_id)]
    url = urlunsplit(parts._replace(query=urlencode(query)))
    targets = [f"<{url}>"]
    if sender.unsubscribe_mailto:
        targets.append(f"<mailto:{sender.unsubscribe_mailto}?subject=unsubscribe>")
    return ", ".join(targets)


def build_message(row: Mapping[str, str], sender: Sender, run_id: str) -> EmailMessage:
    """The email for one send-list row.

    Args:
        row: A send-list row (customer_id, email, experiment_arm, variant_id,
            subject, body, body_html).
        sender: The sender and unsubscribe targets.
        run_id: The run's id.

    Raises:
        DataValidationError: the row's address cannot be used in a header.
    """
    customer_id = str(row["customer_id"])
    msg = EmailMessage(policy=SMTP)
    try:
        msg["To"] = Address(addr_spec=str(row["email"]).strip())
    except (ValueError, IndexError) as exc:
        raise DataValidationError(
            f"send list: the email address of customer {customer_id} is not valid ({exc})",
            hint="fix the address in the customer file and start a new run",
            sensitive=[customer_id],
        ) from None
    msg["From"] = Address(display_name=sender.name, addr_spec=sender.address)
    msg["Subject"] = str(row["subject"])
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(run_id, customer_id, sender.domain)
    msg["List-Unsubscribe"] = unsubscribe_targets(sender, run_id, customer_id)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg[RUN_HEADER] = run_id
    msg[ARM_HEADER] = str(row["experiment_arm"])
    msg[VARIANT_HEADER] = str(row["variant_id"])
    msg[CUSTOMER_HEADER] = customer_id
    msg.set_content(str(row["body"]), cte="quoted-printable")
    msg.add_alternative(str(row["body_html"]), subtype="html", cte="quoted-printable")
    return msg
