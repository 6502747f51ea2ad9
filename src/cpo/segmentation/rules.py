"""Rule-based (RFM-style) segmentation: ordered conditions, first match wins.

Each customer also gets a ``confidence`` in [0.5, 1]: how far its values sit from
the decision boundary that put it in its segment, in units of each column's
standard deviation (``margin``), mapped by ``0.5 + 0.5 * (1 - exp(-3 * margin))``.
A customer exactly on a threshold scores 0.5; categorical tests (``in``, ``==``)
are crisp and score 1. For the fallback segment the margin is how clearly the
customer missed the closest rule.

Thresholds may be quantiles of the run's customers (``value: {quantile: 0.75}``);
:mod:`.thresholds` resolves them to numbers before anyone is assigned, and the
``reason`` of each customer shows the resolved number with its level, e.g.
``avg_order_value=130.2 >= 112.4 (q0.75)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cpo.errors import ConfigError
from cpo.segmentation.base import ASSIGNMENT_COLUMNS
from cpo.segmentation.settings import SegmentationSettings
from cpo.segmentation.thresholds import (
    CONFIG_FILE,
    Threshold,
    numeric_values,
    resolve_thresholds,
)


@dataclass(frozen=True)
class RulesOutcome:
    """Rule assignments plus what a later look at sparse segments needs.

    Attributes:
        assignments: One row per customer (:data:`ASSIGNMENT_COLUMNS`).
        thresholds: Per rule, its conditions with thresholds resolved for this run.
        condition_masks: Per rule, per condition: which customers meet it.
        available: Per rule: the customers no earlier rule had taken.
    """

    assignments: pd.DataFrame
    thresholds: list[list[Threshold]]
    condition_masks: list[list[np.ndarray]]
    available: list[np.ndarray]


@dataclass(frozen=True)
class ResolvedRules:
    """What rule assignment needs from all customers, computed once for a run.

    An engine that assigns customers in parts (the Spark engine, one partition
    at a time) computes these over every customer first, so each part is
    assigned as it would be in one piece.

    Attributes:
        thresholds: Per rule, its conditions with thresholds resolved.
        scales: Per numeric condition column: the standard deviation margins are
            measured in (NaN when the column has no value).
    """

    thresholds: list[list[Threshold]]
    scales: Mapping[str, float]


def assign_by_rules(
    frame: pd.DataFrame, settings: SegmentationSettings, resolved: ResolvedRules | None = None
) -> RulesOutcome:
    """Assign every customer to the first rule it matches, else the fallback.

    Quantile thresholds are resolved first (:mod:`.thresholds`), unless
    ``resolved`` gives them (with the columns' standard deviations). Masks and
    margins are computed for every rule over all rows (cheap numeric work);
    reason text is built only for the rows each rule actually won.

    Returns:
        The assignments (in input order) with the resolved thresholds and masks.

    Raises:
        ConfigError: there are no rules, or a rule names a missing or wrongly typed column.
    """
    if not settings.rules:
        raise ConfigError(
            f"{CONFIG_FILE}: key 'segmentation.rules' is empty; rules segmentation needs rules",
            hint="add at least one rule, or set segmentation.method: kmeans",
        )
    thresholds = resolved.thresholds if resolved else resolve_thresholds(frame, settings)
    scales = resolved.scales if resolved else None
    count = len(frame)
    chosen = np.full(count, len(settings.rules), dtype=np.int64)
    margin = np.full(count, np.inf)
    unassigned = np.ones(count, dtype=bool)
    fallback_margin = np.full(count, np.inf)
    evaluations, available = [], []
    for index, rule in enumerate(settings.rules):
        where = f"segmentation.rules[{index}]"
        evaluation = evaluate_rule(frame, thresholds[index], rule.match, rule.name, where, scales)
        available.append(unassigned.copy())
        take = evaluation.matched & unassigned
        chosen[take] = index
        margin[take] = evaluation.margin[take]
        fallback_margin = np.minimum(
            fallback_margin, np.where(evaluation.matched, np.inf, -evaluation.margin)
        )
        unassigned &= ~evaluation.matched
        evaluations.append(evaluation)
    margin[unassigned] = fallback_margin[unassigned]
    assignments = _assignment_frame(frame, settings, thresholds, evaluations, chosen, margin)
    masks = [evaluation.masks for evaluation in evaluations]
    return RulesOutcome(assignments, thresholds, masks, available)


def _assignment_frame(
    frame: pd.DataFrame,
    settings: SegmentationSettings,
    thresholds: list[list[Threshold]],
    evaluations: list[RuleEvaluation],
    chosen: np.ndarray,
    margin: np.ndarray,
) -> pd.DataFrame:
    """The assignments table: segment, id, confidence and reason per customer."""
    names = [rule.name for rule in settings.rules] + [settings.fallback.name]
    fallback = f"{settings.fallback.name}: no rule matched"
    parts: list[Any] = [pa.array([fallback], type=pa.large_string())]
    position = np.zeros(len(frame), dtype=np.int64)  # row -> index into the parts joined
    for index, rule in enumerate(settings.rules):
        rows = np.flatnonzero(chosen == index)
        if rows.size:
            text = _reason_text(
                frame, rows, rule.name, rule.match, thresholds[index], evaluations[index].masks
            )
            position[rows] = sum(len(part) for part in parts) + np.arange(rows.size)
            parts.append(text.cast(pa.large_string()))
    reasons: Any = pa.concat_arrays(parts).take(position)
    return pd.DataFrame(
        {
            # Arrow-backed text stays in Arrow: no Python string per customer
            "customer_id": frame["customer_id"].astype(str).array,
            "segment": np.asarray(names, dtype=object)[chosen],
            "segment_id": chosen,
            "confidence": np.round(margin_to_confidence(margin), 4),
            "reason": reasons.to_pandas().array,
        },
        columns=ASSIGNMENT_COLUMNS,
    )


def margin_to_confidence(margin: np.ndarray) -> np.ndarray:
    """Map a non-negative margin (in standard deviations) to a confidence in [0.5, 1]."""
    clipped = np.clip(np.nan_to_num(margin, nan=0.0, posinf=np.inf), 0, np.inf)
    return 0.5 + 0.5 * (1 - np.exp(-3 * clipped))


@dataclass(frozen=True)
class RuleEvaluation:
    """Per-row outcome of one rule: matched, signed margin, each condition's mask."""

    matched: np.ndarray
    margin: np.ndarray
    masks: list[np.ndarray]


def evaluate_rule(
    frame: pd.DataFrame,
    thresholds: list[Threshold],
    match: str,
    rule_name: str,
    where: str,
    scales: Mapping[str, float] | None = None,
) -> RuleEvaluation:
    """Evaluate every (resolved) condition of a rule and combine them by ``match``.

    ``scales`` gives each numeric column's standard deviation (``None``: computed on ``frame``).
    """
    masks, margins = [], []
    for position, threshold in enumerate(thresholds):
        scale = None if scales is None else scales.get(threshold.column)
        mask, cond_margin = evaluate_condition(
            frame, threshold, rule_name, f"{where}.conditions[{position}]", scale
        )
        masks.append(mask)
        margins.append(cond_margin)
    stacked = np.vstack(margins)
    if match == "all":
        return RuleEvaluation(np.logical_and.reduce(masks), stacked.min(axis=0), masks)
    return RuleEvaluation(np.logical_or.reduce(masks), stacked.max(axis=0), masks)


def evaluate_condition(
    frame: pd.DataFrame,
    threshold: Threshold,
    rule_name: str,
    where: str,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate one resolved condition: mask and signed margin (positive = satisfied)."""
    column = frame[threshold.column]
    if threshold.numeric:
        values = numeric_values(column, rule_name, where)
        return _numeric_condition(values, threshold, scale)
    mask = _categorical_condition(column, threshold)
    return mask, np.where(mask, np.inf, -np.inf)


def column_scale(values: np.ndarray) -> float:
    """The standard deviation margins are measured in (NaN-ignoring, ddof 0; 1 when 0)."""
    return (float(np.nanstd(values)) if values.size else 0.0) or 1.0


def _numeric_condition(
    values: np.ndarray, threshold: Threshold, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mask and margin for <, <=, >, >=, between, scaled by the column's std."""
    scale = column_scale(values) if scale is None else scale
    if threshold.op == "between":
        low, high = threshold.bounds
        distance = np.minimum(values - low, high - values)
        return (values >= low) & (values <= high), distance / scale
    bound = threshold.bound
    distance = values - bound if threshold.op in (">", ">=") else bound - values
    strict = threshold.op in ("<", ">")
    mask = distance > 0 if strict else distance >= 0
    return mask & ~np.isnan(values), np.nan_to_num(distance / scale, nan=-np.inf)


def _categorical_condition(column: pd.Series, threshold: Threshold) -> np.ndarray:
    """Mask for ==, !=, in, not_in (compared as text, case-sensitive)."""
    values = column.astype(str)
    options = threshold.value if isinstance(threshold.value, list) else [threshold.value]
    member = values.isin([str(v) for v in options]).to_numpy()
    return ~member if threshold.op in ("!=", "not_in") else member


def _format_values(values: pd.Series) -> pa.Array:
    """Values as short text (floats rounded to 4 decimals, no trailing '.0').

    Each distinct value is formatted once (NumPy's ``str``) and the texts are
    taken by code, so a million customers cost a sort, not a million strings.
    """
    if pd.api.types.is_float_dtype(values):
        rounded = values.round(4).to_numpy(dtype=float)
        unique, codes = np.unique(rounded, return_inverse=True)
        text = unique.astype(str)
        whole = np.isfinite(unique) & (np.floor(unique) == unique) & (np.abs(unique) < 2.0**63)
        text[whole] = unique[whole].astype(np.int64).astype(str)  # no int cast of NaN/inf
        return pa.array(text, type=pa.string()).take(codes.ravel())
    texts: Any = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())
    return texts


def _reason_text(
    frame: pd.DataFrame,
    rows: np.ndarray,
    rule_name: str,
    match: str,
    thresholds: list[Threshold],
    masks: list[np.ndarray],
) -> pa.Array:
    """``"Rule: a=130.2 >= 112.4 (q0.75), b=x in [x]"`` for the given rows (Arrow text).

    Built with Arrow's string kernels: a condition an ``any`` rule did not
    meet is a null piece, and nulls are skipped when the pieces are joined.
    """
    pieces: list[Any] = []
    for threshold, mask in zip(thresholds, masks, strict=True):
        shown: Any = _format_values(frame[threshold.column].iloc[rows])
        piece: Any = pc.binary_join_element_wise(
            f"{threshold.column}=", shown, f" {threshold.describe()}", ""
        )
        if match == "any":
            piece = pc.if_else(pa.array(mask[rows]), piece, pa.scalar(None, pa.string()))
        pieces.append(piece)
    joined: Any = pc.binary_join_element_wise(*pieces, ", ", null_handling="skip")
    reason: Any = pc.binary_join_element_wise(f"{rule_name}: ", joined, "")
    return reason
