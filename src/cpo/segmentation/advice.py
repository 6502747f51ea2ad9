"""Advice for rule segments that (almost) nobody falls into.

A rule segment holding under 1% of customers (or none) gets a warning that says
which of its conditions match few customers and names thresholds from the data
that would fix it. The thresholds are found by a small search: for each
share ``s`` in :data:`KEEP_SHARES` (least change first), every numeric
condition that keeps fewer than ``s`` of the customers on its own is loosened
to the quantile that keeps ``s`` (``>=``/``>``: the ``1 - s`` quantile;
``<=``/``<``: the ``s`` quantile; ``between``: the central ``s``). The first ``s``
whose loosened rule, after the earlier rules have taken their customers,
would hold at least ``max(min_share_warning, 1%)`` is suggested, with the share
it would give. When no such thresholds exist (text-only conditions, or earlier
rules take the customers it matches) the warning suggests ``--method kmeans``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpo.segmentation.rules import RulesOutcome, evaluate_condition
from cpo.segmentation.settings import QuantileMethod, Rule, SegmentationSettings
from cpo.segmentation.thresholds import Threshold, format_number, numeric_values, quantile_of

#: A segment under this share of customers gets a warning with advice.
SPARSE_SHARE = 0.01
#: Shares of customers a loosened condition may keep, tried in this order.
KEEP_SHARES = (0.25, 0.4, 0.5, 0.6, 0.75, 0.9)
KMEANS_HINT = "or try `--method kmeans`"


@dataclass(frozen=True)
class _Fix:
    """Loosened conditions (by position) and the share the rule would then hold."""

    changes: dict[int, Threshold]
    share: float


def sparse_segment_warnings(
    frame: pd.DataFrame, settings: SegmentationSettings, outcome: RulesOutcome
) -> list[str]:
    """One warning per rule segment (or the fallback) under 1% of customers."""
    total = len(frame)
    if not total:
        return []
    sizes = np.bincount(
        outcome.assignments["segment_id"].to_numpy(dtype=np.int64),
        minlength=len(settings.rules) + 1,
    )
    warnings = []
    for index, rule in enumerate(settings.rules):
        if sizes[index] < SPARSE_SHARE * total:
            head = _headline(rule.name, int(sizes[index]), total)
            warnings.append(head + _rule_advice(frame, settings, outcome, index))
    if sizes[-1] < SPARSE_SHARE * total:
        head = _headline(settings.fallback.name, int(sizes[-1]), total)
        warnings.append(head + _fallback_advice(settings, sizes, total))
    return warnings


def _headline(name: str, size: int, total: int) -> str:
    """``segment 'X' is empty: ...; `` or ``segment 'X' holds 3 customers (0.6%, under 1%): ``."""
    if size == 0:
        return f"segment '{name}' is empty: no customer matched it; "
    noun = "customer" if size == 1 else "customers"
    share = f"{size / total:.1%}, under {SPARSE_SHARE:.0%}"
    return f"segment '{name}' holds {size} {noun} ({share}): "


def _rule_advice(
    frame: pd.DataFrame, settings: SegmentationSettings, outcome: RulesOutcome, index: int
) -> str:
    """What blocks a rule and which thresholds from the data would fix it."""
    rule = settings.rules[index]
    target = max(settings.min_share_warning, SPARSE_SHARE)
    fix = _search_fix(frame, settings, outcome, index, target)
    thresholds = outcome.thresholds[index]
    masks = outcome.condition_masks[index]
    if fix is not None:
        parts = [
            _suggestion(frame, thresholds[position], masks[position], changed)
            for position, changed in fix.changes.items()
        ]
        return "; ".join(parts) + f" (the segment would then hold {fix.share:.1%})"
    facts = [
        _match_fact(frame, threshold, mask)
        for threshold, mask in zip(thresholds, masks, strict=True)
        if threshold.numeric
    ]
    facts.append(f"no quantile thresholds on its numeric conditions give it {target:.0%}")
    claimed = _claimed_by_earlier(rule, outcome, index)
    if claimed:
        facts.append(f"earlier rules take {claimed} of the customers it matches (move it up)")
    return "; ".join(facts) + f" — change the rule {KMEANS_HINT}"


def _fallback_advice(settings: SegmentationSettings, sizes: np.ndarray, total: int) -> str:
    """The fallback is starved: name the broadest rule and suggest k-means."""
    broadest = int(np.argmax(sizes[:-1]))
    name = settings.rules[broadest].name
    return (
        f"the rules above take {1 - sizes[-1] / total:.1%} of customers, '{name}' alone "
        f"{sizes[broadest] / total:.1%}; narrow its conditions (a higher quantile "
        f"for >=, a lower one for <=) {KMEANS_HINT}"
    )


def _search_fix(
    frame: pd.DataFrame,
    settings: SegmentationSettings,
    outcome: RulesOutcome,
    index: int,
    target: float,
) -> _Fix | None:
    """The least loosening (see the module docstring) that gives the rule ``target``."""
    rule = settings.rules[index]
    thresholds, masks = outcome.thresholds[index], outcome.condition_masks[index]
    for keep in KEEP_SHARES:
        changes: dict[int, Threshold] = {}
        trial = list(masks)
        for position, (threshold, mask) in enumerate(zip(thresholds, masks, strict=True)):
            if threshold.numeric and mask.mean() < keep:
                changes[position] = _loosened(frame, threshold, keep, settings.quantile_method)
                where = f"segmentation.rules[{index}].conditions[{position}]"
                trial[position] = evaluate_condition(frame, changes[position], rule.name, where)[0]
        if not changes:
            continue
        combine = np.logical_and if rule.match == "all" else np.logical_or
        share = float((combine.reduce(trial) & outcome.available[index]).mean())
        if share >= target:
            return _Fix(changes, share)
    return None


def _loosened(
    frame: pd.DataFrame, threshold: Threshold, keep: float, method: QuantileMethod
) -> Threshold:
    """The condition with its bound(s) at the quantile(s) that keep ``keep`` of customers."""
    values = numeric_values(frame[threshold.column], "", "")
    if threshold.op == "between":
        levels = (round(0.5 - keep / 2, 4), round(0.5 + keep / 2, 4))
        bounds = tuple(quantile_of(values, level, method) for level in levels)
        return Threshold(threshold.column, "between", bounds, levels)
    level = round(1 - keep, 4) if threshold.op in (">", ">=") else keep
    bound = quantile_of(values, level, method)
    return Threshold(threshold.column, threshold.op, bound, level)


def _suggestion(frame: pd.DataFrame, old: Threshold, mask: np.ndarray, new: Threshold) -> str:
    """``x >= 90 matches none (...); its 75th percentile is 41 — try `value: ...` or 41``."""
    fact = _match_fact(frame, old, mask)
    if new.op == "between":
        low, high = new.levels
        if low is None or high is None:
            raise TypeError("a loosened 'between' threshold carries both quantile levels")
        values = [format_number(v) for v in new.bounds]
        return (
            f"{fact}; its {_ordinal(low)}-{_ordinal(high)} percentiles are {values[0]} and "
            f"{values[1]} — try `value: [{{quantile: {low:g}}}, {{quantile: {high:g}}}]` or "
            f"[{values[0]}, {values[1]}]"
        )
    level = new.level
    if level is None:
        raise TypeError("a loosened threshold carries its quantile level")
    shown = format_number(new.bound)
    return (
        f"{fact}; its {_ordinal(level)} percentile is {shown} — try "
        f"`value: {{quantile: {level:g}}}` or {shown}"
    )


def _match_fact(frame: pd.DataFrame, threshold: Threshold, mask: np.ndarray) -> str:
    """``x >= 90 matches none (values run from 0 to 40)`` or ``... matches 3 (0.6%)``."""
    test = f"{threshold.column} {threshold.describe()}"
    matched = int(mask.sum())
    if matched:
        return f"{test} matches {matched} ({matched / len(mask):.1%})"
    values = numeric_values(frame[threshold.column], "", "")
    if np.isnan(values).all():
        return f"{test} matches none"
    low, high = format_number(np.nanmin(values)), format_number(np.nanmax(values))
    return f"{test} matches none (values run from {low} to {high})"


def _claimed_by_earlier(rule: Rule, outcome: RulesOutcome, index: int) -> int:
    """How many customers who meet the rule an earlier rule took first."""
    combine = np.logical_and if rule.match == "all" else np.logical_or
    matched = combine.reduce(outcome.condition_masks[index])
    return int((matched & ~outcome.available[index]).sum())


def _ordinal(level: float) -> str:
    """0.75 -> '75th', 0.01 -> '1st', 0.225 -> '22.5th'."""
    percent = round(level * 100, 2)
    if percent != int(percent):
        return f"{percent:g}th"
    number = int(percent)
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"
