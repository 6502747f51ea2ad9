"""Rule-based (RFM-style) segmentation: ordered conditions, first match wins.

Each customer also gets a ``confidence`` in [0.5, 1]: how far its values sit from
the decision boundary that put it in its segment, in units of each column's
standard deviation (``margin``), mapped by ``0.5 + 0.5 * (1 - exp(-3 * margin))``.
A customer exactly on a threshold scores 0.5; categorical tests (``in``, ``==``)
are crisp and score 1. For the fallback segment the margin is how clearly the
customer missed the closest rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cpo.errors import ConfigError
from cpo.segmentation.base import ASSIGNMENT_COLUMNS
from cpo.segmentation.settings import Condition, Rule, SegmentationSettings

NUMERIC_OPS = ("<", "<=", ">", ">=", "between")
CONFIG_FILE = "experiment_config.yaml"


def assign_by_rules(frame: pd.DataFrame, settings: SegmentationSettings) -> pd.DataFrame:
    """Assign every customer to the first rule it matches, else the fallback.

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
    reasons = pd.Series(
        f"{settings.fallback.name}: no rule matched", index=frame.index, dtype=object
    )
    for index, rule in enumerate(settings.rules):
        matched, rule_margin, reason = _evaluate_rule(frame, rule, index)
        take = matched & unassigned
        chosen[take] = index
        margin[take] = rule_margin[take]
        reasons[take] = reason[take]
        fallback_margin = np.minimum(fallback_margin, np.where(matched, np.inf, -rule_margin))
        unassigned &= ~matched
    margin[unassigned] = fallback_margin[unassigned]
    names = [rule.name for rule in settings.rules] + [settings.fallback.name]
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "segment": np.asarray(names, dtype=object)[chosen],
            "segment_id": chosen,
            "confidence": np.round(margin_to_confidence(margin), 4),
            "reason": reasons.to_numpy(),
        },
        columns=ASSIGNMENT_COLUMNS,
    )


def margin_to_confidence(margin: np.ndarray) -> np.ndarray:
    """Map a non-negative margin (in standard deviations) to a confidence in [0.5, 1]."""
    clipped = np.clip(np.nan_to_num(margin, nan=0.0, posinf=np.inf), 0, np.inf)
    return 0.5 + 0.5 * (1 - np.exp(-3 * clipped))


def _evaluate_rule(
    frame: pd.DataFrame, rule: Rule, index: int
) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Return (matched mask, signed margin, reason text) for one rule."""
    masks, margins, texts = [], [], []
    for position, condition in enumerate(rule.conditions):
        where = f"segmentation.rules[{index}].conditions[{position}]"
        mask, cond_margin, text = _evaluate_condition(frame, condition, rule.name, where)
        masks.append(mask)
        margins.append(cond_margin)
        texts.append(text)
    stacked = np.vstack(margins)
    if rule.match == "all":
        matched = np.logical_and.reduce(masks)
        rule_margin = stacked.min(axis=0)
    else:
        matched = np.logical_or.reduce(masks)
        rule_margin = stacked.max(axis=0)
    reason = _reason_text(frame.index, rule.name, masks, texts, rule.match)
    return matched, rule_margin, reason


def _evaluate_condition(
    frame: pd.DataFrame, condition: Condition, rule_name: str, where: str
) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Evaluate one condition: mask, signed margin (positive = satisfied), text."""
    if condition.column not in frame.columns:
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}.column' in rule '{rule_name}' names column "
            f"'{condition.column}', which the customer data does not have",
            hint=f"use one of: {', '.join(map(str, frame.columns))}",
        )
    column = frame[condition.column]
    if condition.op in NUMERIC_OPS:
        mask, margin = _numeric_condition(column, condition, rule_name, where)
    else:
        mask = _categorical_condition(column, condition)
        margin = np.where(mask, np.inf, -np.inf)
    shown = _format_values(column)
    text = condition.column + "=" + shown + f" {_describe_test(condition)}"
    return mask, margin, text


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


def _format_values(column: pd.Series) -> pd.Series:
    """Column values as short text (floats to at most 4 significant decimals)."""
    if pd.api.types.is_float_dtype(column):
        return column.round(4).astype(str).str.replace(r"\.0$", "", regex=True)
    return column.astype(str)


def _reason_text(
    index: pd.Index, name: str, masks: list[np.ndarray], texts: list[pd.Series], match: str
) -> pd.Series:
    """Join condition texts into ``"Rule: a=1 >= 0, b=x in [x]"`` per row."""
    joined = pd.Series("", index=index, dtype=object)
    for mask, text in zip(masks, texts, strict=True):
        include = np.ones(len(index), dtype=bool) if match == "all" else mask
        piece = text.where(include, "")
        separator = np.where((joined != "") & (piece != ""), ", ", "")
        joined = joined + separator + piece
    return f"{name}: " + joined
