"""Settings of event imports (``experiment.events`` in experiment_config.yaml).

See ``docs/send.md`` ("Machine opens and clicks") for what each rule catches.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Field, field_validator

from cpo.settings_base import StrictModel

#: Apple Mail Privacy Protection fetches images through proxies that send this bare agent.
DEFAULT_PROXY_USER_AGENTS = [r"Mozilla/5\.0"]
#: Apple's own network (its proxies' opens come from it).
DEFAULT_PROXY_NETWORKS = ["17.0.0.0/8"]


class EventSettings(StrictModel):
    """How email service events become engagement.

    Attributes:
        conversion_event: Event name (case-insensitive) counted as a conversion,
            e.g. ``purchase`` when the service tracks orders as events.
        exclude_machine_events: Leave machine opens and clicks out of the
            engagement (they are always counted and reported).
        proxy_user_agents: Regular expressions; an open whose whole user agent
            matches one is a privacy-proxy (machine) open.
        proxy_networks: IP networks (CIDR); an open from one is a machine open.
        scanner_seconds: An open or click less than this many seconds after the
            message was delivered is a security scanner's (0 = rule off).
        scanner_links: A recipient clicking this many different links within
            ``scanner_window_seconds`` is a link scanner: those clicks are
            machine clicks (0 = rule off).
        scanner_window_seconds: The window of the ``scanner_links`` rule.
    """

    conversion_event: Annotated[str, Field(min_length=1)] = "conversion"
    exclude_machine_events: bool = True
    proxy_user_agents: list[str] = Field(default_factory=lambda: list(DEFAULT_PROXY_USER_AGENTS))
    proxy_networks: list[str] = Field(default_factory=lambda: list(DEFAULT_PROXY_NETWORKS))
    scanner_seconds: Annotated[float, Field(ge=0)] = 10.0
    scanner_links: Annotated[int, Field(ge=0)] = 3
    scanner_window_seconds: Annotated[float, Field(gt=0)] = 10.0

    @field_validator("conversion_event")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("proxy_user_agents")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return values

    @field_validator("proxy_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP network such as 17.0.0.0/8") from None
        return values
