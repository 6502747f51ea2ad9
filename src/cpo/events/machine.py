"""Which opens and clicks a machine made, and by which rule.

Rules, in order (the first that applies names the reason):

``provider_flag``
    The email service flagged the open as a machine open (SendGrid's
    ``sg_machine_open``, a generic CSV's ``machine`` column).
``privacy_proxy``
    An open whose user agent matches ``proxy_user_agents`` or whose IP is in
    ``proxy_networks`` (Apple Mail Privacy Protection loads every image through
    Apple's proxies when the message arrives, opened or not).
``after_delivery``
    An open or click less than ``scanner_seconds`` after the recipient's
    delivery event (security gateways fetch and follow links on arrival).
``link_scanner``
    ``scanner_links`` or more different links clicked by one recipient within
    ``scanner_window_seconds`` (a scanner clicks every link; people do not).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Sequence

from cpo.events.records import CLICK, DELIVERED, OPEN, Event
from cpo.events.settings import EventSettings

RULES = ("provider_flag", "privacy_proxy", "after_delivery", "link_scanner")


def machine_reasons(
    events: Sequence[Event], customers: Sequence[str | None], settings: EventSettings
) -> list[str]:
    """The rule that marks each event a machine event ("" for a person's or other event).

    Args:
        events: Deduplicated events.
        customers: The customer id of each event (None when unknown).
        settings: The rules' settings.
    """
    reasons = [_single_event_reason(event, settings) for event in events]
    delivered: dict[str, float] = {}
    for event, customer in zip(events, customers, strict=True):
        if event.kind == DELIVERED and customer is not None:
            delivered[customer] = min(delivered.get(customer, event.at), event.at)
    if settings.scanner_seconds > 0:
        for i, (event, customer) in enumerate(zip(events, customers, strict=True)):
            start = delivered.get(customer) if customer is not None else None
            if reasons[i] or event.kind not in (OPEN, CLICK) or start is None:
                continue
            if 0 <= event.at - start < settings.scanner_seconds:
                reasons[i] = "after_delivery"
    if settings.scanner_links > 0:
        for i in _link_scanner_clicks(events, customers, settings):
            reasons[i] = reasons[i] or "link_scanner"
    return reasons


def _single_event_reason(event: Event, settings: EventSettings) -> str:
    if event.kind != OPEN:
        return ""
    if event.machine:
        return "provider_flag"
    agent = event.user_agent
    if agent and any(re.fullmatch(pattern, agent) for pattern in settings.proxy_user_agents):
        return "privacy_proxy"
    if event.ip and _in_networks(event.ip, settings.proxy_networks):
        return "privacy_proxy"
    return ""


def _in_networks(ip: str, networks: Sequence[str]) -> bool:
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(parsed in ipaddress.ip_network(net, strict=False) for net in networks)


def _link_scanner_clicks(
    events: Sequence[Event], customers: Sequence[str | None], settings: EventSettings
) -> list[int]:
    """Positions of clicks in a burst of ``scanner_links`` different links per recipient."""
    clicks: dict[str, list[int]] = defaultdict(list)
    for i, (event, customer) in enumerate(zip(events, customers, strict=True)):
        if event.kind == CLICK and event.url:
            clicks[customer or event.recipient].append(i)
    flagged: set[int] = set()
    for positions in clicks.values():
        positions.sort(key=lambda i: events[i].at)
        start = 0
        for end in range(len(positions)):
            while events[positions[end]].at - events[positions[start]].at > (
                settings.scanner_window_seconds
            ):
                start += 1
            window = positions[start : end + 1]
            if len({events[i].url for i in window}) >= settings.scanner_links:
                flagged.update(window)
    return sorted(flagged)
