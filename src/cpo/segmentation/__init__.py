"""Segmentation stage: customers in, segment assignments and profiles out.

``segment(customers, settings, seed)`` dispatches to :mod:`.rules` (default) or
:mod:`.kmeans`. Both are columnar: no per-customer Python loops.
"""

from __future__ import annotations

import pandas as pd

from cpo.segmentation.advice import sparse_segment_warnings
from cpo.segmentation.base import ASSIGNMENT_COLUMNS, SegmentationResult
from cpo.segmentation.profiles import build_profiles, describe_centroid
from cpo.segmentation.rules import assign_by_rules
from cpo.segmentation.settings import Rule, SegmentationSettings
from cpo.segmentation.thresholds import Threshold

__all__ = ["ASSIGNMENT_COLUMNS", "SegmentationResult", "rules_result", "segment"]


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
        outcome = assign_by_rules(customers, settings)
        warnings = sparse_segment_warnings(customers, settings, outcome)
        return rules_result(customers, settings, outcome.assignments, outcome.thresholds, warnings)
    # k-means needs scikit-learn (and SciPy): imported only when used, so modules that
    # reach this package for its settings (retrieval, safety, the report) stay light.
    from cpo.segmentation.kmeans import assign_by_kmeans

    assignments, traits, details = assign_by_kmeans(customers, settings.kmeans, seed)
    profiles = build_profiles(customers, assignments, {}, traits)
    profiles = _with_centroid_definitions(profiles, customers)
    warnings = _share_warnings(profiles, settings)
    return SegmentationResult(assignments, profiles, settings.method, warnings, details)


def rules_result(
    customers: pd.DataFrame,
    settings: SegmentationSettings,
    assignments: pd.DataFrame,
    thresholds: list[list[Threshold]],
    warnings: list[str],
) -> SegmentationResult:
    """The result of rules segmentation from its assignments (profiles, definitions, details).

    Args:
        customers: The customers assigned.
        settings: The ``segmentation`` section.
        assignments: One row per customer in ``customers`` order.
        thresholds: Per rule, its conditions with thresholds resolved.
        warnings: Warnings about sparse segments (share warnings are added).
    """
    definitions = _rule_definitions(settings, thresholds)
    traits = {i: tuple(r.traits) for i, r in enumerate(settings.rules)}
    traits[len(settings.rules)] = tuple(settings.fallback.traits)
    details: dict[str, object] = {
        "rules": len(settings.rules),
        "quantile_method": settings.quantile_method,
        "thresholds": _threshold_records(settings, thresholds),
    }
    profiles = build_profiles(customers, assignments, definitions, traits)
    warnings = _share_warnings(profiles, settings) + warnings
    return SegmentationResult(assignments, profiles, settings.method, warnings, details)


def _threshold_records(
    settings: SegmentationSettings, thresholds: list[list[Threshold]]
) -> list[dict[str, object]]:
    """Per rule: its conditions with the thresholds resolved for this run."""
    return [
        {
            "rule": rule.name,
            "segment_id": index,
            "match": rule.match,
            "conditions": [threshold.record() for threshold in thresholds[index]],
        }
        for index, rule in enumerate(settings.rules)
    ]


def _rule_definitions(
    settings: SegmentationSettings, thresholds: list[list[Threshold]]
) -> dict[int, str]:
    """Each rule's description, or a sentence built from its resolved conditions."""
    definitions = {
        i: rule.description or _sentence(rule, thresholds[i])
        for i, rule in enumerate(settings.rules)
    }
    definitions[len(settings.rules)] = settings.fallback.description
    return definitions


def _sentence(rule: Rule, thresholds: list[Threshold]) -> str:
    """'Customers with a >= 1 and b in [x, y].' from a rule's resolved conditions."""
    parts = [f"{threshold.column} {threshold.describe()}" for threshold in thresholds]
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
