"""Segmentation stage: customers in, segment assignments and profiles out.

``segment(customers, settings, seed)`` dispatches to :mod:`.rules` (default) or
:mod:`.kmeans`. Both are columnar: no per-customer Python loops.
"""

from __future__ import annotations

import pandas as pd

from cpo.segmentation.base import ASSIGNMENT_COLUMNS, SegmentationResult
from cpo.segmentation.kmeans import assign_by_kmeans
from cpo.segmentation.profiles import build_profiles, describe_centroid
from cpo.segmentation.rules import assign_by_rules
from cpo.segmentation.settings import Rule, SegmentationSettings

__all__ = ["ASSIGNMENT_COLUMNS", "SegmentationResult", "segment"]


def segment(
    customers: pd.DataFrame, settings: SegmentationSettings, seed: int = 42
) -> SegmentationResult:
    """Assign every customer to a segment and profile the segments.

    Args:
        customers: Validated customers (see :func:`cpo.customers.load_customers`).
        settings: The ``segmentation`` section of experiment_config.yaml.
        seed: Random seed (k-means only).
    """
    if settings.method == "rules":
        assignments = assign_by_rules(customers, settings)
        definitions = _rule_definitions(settings)
        traits = {i: tuple(r.traits) for i, r in enumerate(settings.rules)}
        traits[len(settings.rules)] = tuple(settings.fallback.traits)
        details: dict[str, object] = {"rules": len(settings.rules)}
    else:
        assignments, traits, details = assign_by_kmeans(customers, settings.kmeans, seed)
        definitions = {}
    profiles = build_profiles(customers, assignments, definitions, traits)
    if settings.method == "kmeans":
        profiles = _with_centroid_definitions(profiles, customers)
    warnings = _share_warnings(profiles, settings)
    warnings += _empty_segment_warnings(profiles, settings)
    return SegmentationResult(assignments, profiles, settings.method, warnings, details)


def _rule_definitions(settings: SegmentationSettings) -> dict[int, str]:
    """Each rule's description, or a sentence built from its conditions."""
    definitions = {i: rule.description or _sentence(rule) for i, rule in enumerate(settings.rules)}
    definitions[len(settings.rules)] = settings.fallback.description
    return definitions


def _sentence(rule: Rule) -> str:
    """'Customers with a >= 1 and b in [x, y].' from a rule's conditions."""
    parts = []
    for condition in rule.conditions:
        value = condition.value
        shown = f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)
        parts.append(f"{condition.column} {condition.op} {shown}")
    joiner = " and " if rule.match == "all" else " or "
    return f"Customers with {joiner.join(parts)}."


def _with_centroid_definitions(profiles: list, customers: pd.DataFrame) -> list:
    """Fill k-means profiles' definitions by contrast with the overall means."""
    from dataclasses import replace

    overall = (
        {f: float(customers[f].mean()) for f in profiles[0].means if f in customers.columns}
        if profiles
        else {}
    )
    return [replace(p, definition=describe_centroid(p.name, p.means, overall)) for p in profiles]


def _share_warnings(profiles: list, settings: SegmentationSettings) -> list[str]:
    """Warn about segments below the configured minimum share."""
    return [
        f"segment '{p.name}' holds {p.share:.1%} of customers (< {settings.min_share_warning:.0%});"
        " its results will be imprecise"
        for p in profiles
        if p.share < settings.min_share_warning
    ]


def _empty_segment_warnings(profiles: list, settings: SegmentationSettings) -> list[str]:
    """Warn about rule segments that no customer fell into."""
    if settings.method != "rules":
        return []
    present = {p.name for p in profiles}
    names = [r.name for r in settings.rules] + [settings.fallback.name]
    return [f"segment '{n}' is empty: no customer matched it" for n in names if n not in present]
