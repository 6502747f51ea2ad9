"""The brand every email speaks for, and the guard against sending another brand's text.

``experiment_config.yaml`` has a ``brand:`` section (:class:`BrandSettings`).
The prompts are brand-neutral templates; their placeholders are filled from it
at generation time (:meth:`BrandSettings.values`):

==================== ==================================================
placeholder          value
==================== ==================================================
``{brand}``          ``brand.name``
``{site_url}``       ``brand.site_url``
``{unsubscribe_url}`` ``brand.unsubscribe_url``
``{sender_name}``    ``brand.sender_name`` (the brand name when null)
``{postal_address}`` ``brand.postal_address`` ("" when null: the line is dropped)
``{sign_off}``       ``brand.sign_off`` with ``{brand}`` / ``{sender_name}`` filled
==================== ==================================================

The packaged config carries the bundled sample brand (Fernleaf Outdoor Co.) so
the sample run works out of the box. :func:`cpo.brand_guard.check_brand_for_content`
stops a run whose approved content is not the sample's while the config still
speaks for the sample brand, before anything is generated.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated
from urllib.parse import urlparse

from pydantic import AfterValidator, Field, field_validator

from cpo.errors import ConfigError
from cpo.settings_base import StrictModel

#: Placeholders the brand fills in the control message, footer and tone sign-offs.
BRAND_PLACEHOLDERS = frozenset(
    {"brand", "site_url", "unsubscribe_url", "sender_name", "postal_address", "sign_off"}
)
#: Placeholders a ``sign_off`` setting may use.
SIGN_OFF_PLACEHOLDERS = frozenset({"brand", "sender_name"})
INIT_COMMAND = "cpo init NEW_DIR --brand NAME --site URL --unsubscribe-url URL"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def check_http_url(text: str) -> str:
    """Return ``text`` stripped when it is an absolute http(s) URL with a host.

    Raises:
        ValueError: the scheme is not http/https or there is no host.
    """
    url = text.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"{text!r} is not an http(s) URL; write it in full, e.g. https://www.example.com/page"
        )
    return url


HttpUrl = Annotated[str, AfterValidator(check_http_url)]


def check_email_address(text: str) -> str:
    """Validate a plain email address (``name@domain.tld``); return it stripped."""
    address = text.strip()
    if not _EMAIL_ADDRESS.fullmatch(address):
        raise ValueError(f"{text!r} is not an email address; write it as name@example.com")
    return address


_EMAIL_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
EmailAddress = Annotated[str, AfterValidator(check_email_address)]


class BrandSettings(StrictModel):
    """The ``brand:`` section: who every email (control and variants) is from.

    Attributes:
        name: The brand as customers know it ("Acme Cloud").
        site_url: The brand's website (http or https).
        unsubscribe_url: Where the footer's unsubscribe link points (http or https).
        sender_name: The sender's display name; null = the brand name.
        postal_address: The sender's postal address, printed in the footer
            (CAN-SPAM asks for one); null = no address line.
        sign_off: The signature under each email; may use ``{brand}`` and
            ``{sender_name}``.
        from_address: The address ``cpo send`` sends from; null = none
            configured (``cpo send --from-address`` then gives it).
        unsubscribe_mailto: An address that unsubscribes by email, added to the
            ``List-Unsubscribe`` header by ``cpo send``; null = the URL only.
    """

    name: Annotated[str, Field(min_length=1)]
    site_url: HttpUrl
    unsubscribe_url: HttpUrl
    sender_name: str | None = None
    postal_address: str | None = None
    sign_off: Annotated[str, Field(min_length=1)] = "The {brand} team"
    from_address: EmailAddress | None = None
    unsubscribe_mailto: EmailAddress | None = None

    @field_validator("name", "sender_name", "postal_address", "sign_off")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank (use null to leave an optional value out)")
        return value.strip() if value is not None else None

    @field_validator("sign_off")
    @classmethod
    def _sign_off_placeholders(cls, value: str) -> str:
        unknown = set(_PLACEHOLDER.findall(value)) - SIGN_OFF_PLACEHOLDERS
        if unknown:
            names = ", ".join("{" + u + "}" for u in sorted(unknown))
            raise ValueError(
                f"unknown placeholder {names}; sign_off may use {{brand}}, {{sender_name}}"
            )
        return value

    def values(self) -> dict[str, str]:
        """The value of every brand placeholder."""
        sender = self.sender_name or self.name
        names = {"brand": self.name, "sender_name": sender}
        sign_off = _PLACEHOLDER.sub(lambda m: names[m.group(1)], self.sign_off)
        return {
            **names,
            "site_url": self.site_url,
            "unsubscribe_url": self.unsubscribe_url,
            "postal_address": self.postal_address or "",
            "sign_off": sign_off,
        }


def slugify(name: str) -> str:
    """Lower-case ASCII, dash-separated ``name`` ("Café Nord, Inc." -> "cafe-nord-inc")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or "brand"


# ----------------------------------------------------------------------------- cpo init


def apply_brand(config_text: str, brand: BrandSettings) -> str:
    """experiment_config.yaml text with its ``brand:`` section and campaign name for ``brand``.

    Comments elsewhere in the file are kept. The campaign is named
    ``<brand-slug>-campaign``.
    """
    lines = config_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("brand:")), None)
    if start is None:
        lines += ["", *render_brand_section(brand)]
    else:
        end = start + 1
        while end < len(lines) and not _starts_section(lines[end]):
            end += 1
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1  # keep the blank line before the next section
        lines[start:end] = render_brand_section(brand)
    _set_section_key(lines, "campaign", "name", f"{slugify(brand.name)}-campaign")
    return "\n".join(lines) + "\n"


def render_brand_section(brand: BrandSettings) -> list[str]:
    """The ``brand:`` section as YAML lines (strings double-quoted, JSON style)."""

    def scalar(value: str | None) -> str:
        return "null" if value is None else json.dumps(value, ensure_ascii=False)

    return [
        "brand:",
        "  # Who every email is from. The control message, the footer and the tones'",
        "  # sign_offs (prompts/) are templates: {brand}, {site_url}, {unsubscribe_url},",
        "  # {sender_name}, {postal_address} and {sign_off} are filled from this section.",
        f"  name: {scalar(brand.name)}",
        f"  site_url: {scalar(brand.site_url)}",
        f"  unsubscribe_url: {scalar(brand.unsubscribe_url)}",
        f"  sender_name: {scalar(brand.sender_name)}  # display name; null = the brand name",
        f"  postal_address: {scalar(brand.postal_address)}  # footer line; null = none",
        f"  sign_off: {scalar(brand.sign_off)}  # may use {{brand}} and {{sender_name}}",
        f"  from_address: {scalar(brand.from_address)}  # cpo send's sender; null = --from-address",
        f"  unsubscribe_mailto: {scalar(brand.unsubscribe_mailto)}  # by mail; null = none",
    ]


def _starts_section(line: str) -> bool:
    """A top-level key (not indented, not a comment)."""
    return bool(line) and not line[0].isspace() and not line.startswith("#")


def _set_section_key(lines: list[str], section: str, key: str, value: str) -> None:
    """Set ``section.key`` in place (a two-space-indented line), keeping its comment."""
    inside = False
    for index, line in enumerate(lines):
        if _starts_section(line):
            inside = line.startswith(f"{section}:")
            continue
        if inside and line.startswith(f"  {key}:"):
            comment = line.partition("#")[2]
            text = f"  {key}: {json.dumps(value)}"
            lines[index] = f"{text:<33}#{comment}" if comment else text
            return
    raise ConfigError(f"experiment_config.yaml: no '{section}.{key}' line to set")
