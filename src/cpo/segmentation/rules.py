"""Rule-based (RFM-style) segmentation: ordered conditions, first match wins.

Each customer also gets a ``confidence`` in [0.5, 1]: how far its values sit from
the decision boundary that put it in its segment, in units of each column's
standard deviation (``margin``), mapped by ``0.5 + 0.5 * (1 - exp(-3 * margin))``.
A customer exactly on a threshold scores 0.5; categorical tests (``in``, ``==``)
are crisp and score 1. For the fallback segment the margin is how clearly the
customer missed the closest rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpo.errors import ConfigError
from cpo.segmentation.base import ASSIGNMENT_COLUMNS
from cpo.segmentation.settings import Condition, Rule, SegmentationSettings

NUMERIC_OPS = ("<", "<=", ">", ">=", "between")
CONFIG_FILE = "experiment_config.yaml"


def assign_by_rules(frame: pd.DataFrame, settings: SegmentationSettings) -> pd.DataFrame:
    """Assign every customer to the first rule it matches, else the fallback.

    Masks and margins are computed for every rule over all rows (cheap numeric
    work); reason text is built only for the rows each rule actually won.

    Returns:
        A DataFrame with :data:`ASSIGNMENT_COLUMNS`, in input order.

    Raises:
        ConfigError: there are no rules, or a rule names a missing or wrongly typed column.
    """
    if not settings.rules:
        raise ConfigError(
            f"{CONFIG_FILE}: key 'segmentation.rules' is empty; rules segmentation needs rules",
            hint="add at least one rule, or set segmentation.method: kmeans",
        )
    count = len(frame)
    chosen = np.full(count, len(settings.rules), dtype=np.int64)
    margin = np.full(count, np.inf)
    unassigned = np.ones(count, dtype=bool)
    fallback_margin = np.full(count, np.inf)
    evaluations = []
    for index, rule in enumerate(settings.rules):
        evaluation = _evaluate_rule(frame, rule, index)
        take = evaluation.matched & unassigned
        chosen[take] = index
        margin[take] = evaluation.margin[take]
        fallback_margin = np.minimum(
            fallback_margin, np.where(evaluation.matched, np.inf, -evaluation.margin)
        )
        unassigned &= ~evaluation.matched
        evaluations.append(evaluation)
    margin[unassigned] = fallback_margin[unassigned]
    names = [rule.name for rule in settings.rules] + [settings.fallback.name]
    reasons = np.full(count, f"{settings.fallback.name}: no rule matched", dtype=object)
    for index, (rule, evaluation) in enumerate(zip(settings.rules, evaluations, strict=True)):
        rows = np.flatnonzero(chosen == index)
        if rows.size:
            reasons[rows] = _reason_text(frame, rows, rule, evaluation.masks)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "segment": np.asarray(names, dtype=object)[chosen],
            "segment_id": chosen,
            "confidence": np.round(margin_to_confidence(margin), 4),
            "reason": reasons,
        },
        columns=ASSIGNMENT_COLUMNS,
    )


def margin_to_confidence(margin: np.ndarray) -> np.ndarray:
    """Map a non-negative margin (in standard deviations) to a confidence in [0.5, 1]."""
    clipped = np.clip(np.nan_to_num(margin, nan=0.0, posinf=np.inf), 0, np.inf)
    return 0.5 + 0.5 * (1 - np.exp(-3 * clipped))


@dataclass(frozen=True)
class _RuleEvaluation:
    """Per-row outcome of one rule: matched, signed margin, each condition's mask."""

    matched: np.ndarray
    margin: np.ndarray
    masks: list[np.ndarray]


def _evaluate_rule(frame: pd.DataFrame, rule: Rule, index: int) -> _RuleEvaluation:
    """Evaluate every condition of a rule and combine them by ``match``."""
    masks, margins = [], []
    for position, condition in enumerate(rule.conditions):
        where = f"segmentation.rules[{index}].conditions[{position}]"
        mask, cond_margin = _evaluate_condition(frame, condition, rule.name, where)
        masks.append(mask)
        margins.append(cond_margin)
    stacked = np.vstack(margins)
    if rule.match == "all":
        return _RuleEvaluation(np.logical_and.reduce(masks), stacked.min(axis=0), masks)
    return _RuleEvaluation(np.logical_or.reduce(masks), stacked.max(axis=0), masks)


def _evaluate_condition(
    frame: pd.DataFrame, condition: Condition, rule_name: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate one condition: mask and signed margin (positive = satisfied)."""
    if condition.column not in frame.columns:
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}.column' in rule '{rule_name}' names column "
            f"'{condition.column}', which the customer data does not have",
            hint=f"use one of: {', '.join(map(str, frame.columns))}",
        )
    column = frame[condition.column]
    if condition.op in NUMERIC_OPS:
        return _numeric_condition(column, condition, rule_name, where)
    mask = _categorical_condition(column, condition)
    return mask, np.where(mask, np.inf, -np.inf)


def _numeric_condition(
    column: pd.Series, condition: Condition, rule_name: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Mask and margin for <, <=, >, >=, between, scaled by the column's std."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).all() and len(values):
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}' in rule '{rule_name}' compares column "
            f"'{condition.column}' with a number, but the column is not numeric",
            hint="use 'in' or '==' for text columns",
        )
    scale = float(np.nanstd(values)) or 1.0
    if condition.op == "between":
        low, high = (float(v) for v in condition.value)  # type: ignore[union-attr]
        distance = np.minimum(values - low, high - values)
        return (values >= low) & (values <= high), distance / scale
    threshold = float(condition.value)  # type: ignore[arg-type]
    distance = values - threshold if condition.op in (">", ">=") else threshold - values
    strict = condition.op in ("<", ">")
    mask = distance > 0 if strict else distance >= 0
    return mask & ~np.isnan(values), np.nan_to_num(distance / scale, nan=-np.inf)


def _categorical_condition(column: pd.Series, condition: Condition) -> np.ndarray:
    """Mask for ==, !=, in, not_in (compared as text, case-sensitive)."""
    values = column.astype(str)
    options = condition.value if isinstance(condition.value, list) else [condition.value]
    member = values.isin([str(v) for v in options]).to_numpy()
    return ~member if condition.op in ("!=", "not_in") else member


def _describe_test(condition: Condition) -> str:
    """Human form of the test, e.g. '>= 100' or 'in [Gold, Silver]'."""
    if isinstance(condition.value, list):
        inner = ", ".join(str(v) for v in condition.value)
        return f"{condition.op} [{inner}]"
    return f"{condition.op} {condition.value}"


def _format_values(values: pd.Series) -> np.ndarray:
    """Values as short text (floats rounded to 4 decimals, no trailing '.0')."""
    if pd.api.types.is_float_dtype(values):
        rounded = values.round(4).to_numpy()
        whole = np.floor(rounded) == rounded
        text = np.where(whole, rounded.astype(np.int64).astype(str), rounded.astype(str))
        return text.astype(object)
    return values.astype(str).to_numpy(dtype=object)


def _reason_text(
    frame: pd.DataFrame, rows: np.ndarray, rule: Rule, masks: list[np.ndarray]
) -> np.ndarray:
    """``"Rule: a=1 >= 0, b=x in [x]"`` for the given rows (object array)."""
    joined = np.full(rows.size, "", dtype=object)
    for condition, mask in zip(rule.conditions, masks, strict=True):
        shown = _format_values(frame[condition.column].iloc[rows])
        piece = condition.column + "=" + shown + f" {_describe_test(condition)}"
        if rule.match == "any":
            piece = np.where(mask[rows], piece, "").astype(object)
        separator = np.where((joined != "") & (piece != ""), ", ", "").astype(object)
        joined = joined + separator + piece
    return f"{rule.name}: " + joined
