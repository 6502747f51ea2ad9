"""Verifying that a webhook post comes from the email service.

SendGrid (Signed Event Webhook): the ``X-Twilio-Email-Event-Webhook-Signature``
header is a base64 ECDSA (P-256, SHA-256) signature of the
``X-Twilio-Email-Event-Webhook-Timestamp`` header's value followed by the raw
request body; it verifies with the public key SendGrid shows for the webhook
(base64 DER, or PEM).

Mailgun: the body's ``signature`` object has ``timestamp``, ``token`` and
``signature``, the hex HMAC-SHA256 of timestamp + token under the webhook
signing key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cpo.errors import ConfigError

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def sendgrid_public_key(text: str) -> Any:
    """Load SendGrid's verification key (base64 DER as SendGrid shows it, or PEM).

    Raises:
        ConfigError: the text is not an elliptic-curve public key.
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    raw = text.strip()
    try:
        if raw.startswith("-----BEGIN"):
            key = load_pem_public_key(raw.encode())
        else:
            key = load_der_public_key(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(
            "the SendGrid webhook verification key is not an elliptic-curve public key",
            hint="copy the Verification Key of the Signed Event Webhook (Mail Settings) "
            "unchanged into CPO_SENDGRID_WEBHOOK_PUBLIC_KEY",
        )
    return key


def verify_sendgrid(public_key: Any, signature: str, timestamp: str, body: bytes) -> bool:
    """True when ``signature`` signs ``timestamp`` + ``body`` under ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature or not timestamp:
        return False
    try:
        decoded = base64.b64decode(signature, validate=True)
        public_key.verify(decoded, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def verify_mailgun(signing_key: str, signature: Any) -> bool:
    """True when the body's ``signature`` object is signed with ``signing_key``."""
    if not isinstance(signature, Mapping):
        return False
    timestamp, token, given = (
        str(signature.get(k) or "") for k in ("timestamp", "token", "signature")
    )
    if not (timestamp and token and given):
        return False
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, given.lower())
