"""Resolve rule thresholds: quantiles of the run's customers become numbers.

A numeric rule condition may give its threshold as a quantile of the loaded
customers (``value: {quantile: 0.75}``; for ``between`` a pair). Each is
resolved once per run, before any customer is assigned, with
``numpy.nanquantile(values, q, method=segmentation.quantile_method)``; the default
method ``linear`` interpolates between the two nearest order statistics
(Hyndman & Fan type 7, as ``pandas.Series.quantile`` does). Missing values are
ignored. The resolved numbers are what every customer is compared with, what
``reason`` strings show and what ``segment_profiles.json`` records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpo.errors import ConfigError, DataValidationError
from cpo.segmentation.settings import (
    Quantile,
    QuantileMethod,
    RuleCondition,
    SegmentationSettings,
)
from cpo.settings_base import EXPERIMENT_CONFIG_FILE

NUMERIC_OPS = ("<", "<=", ">", ">=", "between")
CONFIG_FILE = EXPERIMENT_CONFIG_FILE

Level = float | None
#: ``(column, level) -> value`` or ``None``: an engine's exact quantile of a whole column
#: (``None`` = compute it from the values here, e.g. when the column has no value).
QuantileSource = Callable[[str, float], float | None]


@dataclass(frozen=True)
class Threshold:
    """One rule condition with its thresholds resolved for this run.

    Attributes:
        column: The customer column tested.
        op: The operator (``>=``, ``between``, ``in``, ...).
        value: A float for ``<, <=, >, >=``; a ``(low, high)`` pair of floats for
            ``between``; the configured value for text tests.
        quantile: The quantile level the value came from (``None`` for a literal);
            for ``between`` a ``(low, high)`` pair of levels or ``None``.
        literal: The configured value as written (shown for literal thresholds;
            for quantiles, the :class:`Quantile` itself).
    """

    column: str
    op: str
    value: object
    quantile: Level | tuple[Level, Level]
    literal: object = None

    @property
    def numeric(self) -> bool:
        """True for ``<, <=, >, >=, between``."""
        return self.op in NUMERIC_OPS

    @property
    def bound(self) -> float:
        """The resolved number of a ``<, <=, >, >=`` test."""
        if not isinstance(self.value, int | float):
            raise TypeError(f"'{self.column} {self.op}' has no single numeric bound")
        return float(self.value)

    @property
    def bounds(self) -> tuple[float, float]:
        """The resolved ``(low, high)`` of a ``between`` test."""
        if not isinstance(self.value, tuple):
            raise TypeError(f"'{self.column} {self.op}' has no (low, high) bounds")
        low, high = self.value
        return float(low), float(high)

    @property
    def level(self) -> Level:
        """The quantile level of a ``<, <=, >, >=`` test's bound (``None`` for a number)."""
        if isinstance(self.quantile, tuple):
            raise TypeError(f"'{self.column} {self.op}' has two quantile levels")
        return self.quantile

    @property
    def levels(self) -> tuple[Level, Level]:
        """The quantile levels of a ``between`` test's bounds (``(None, None)`` for numbers)."""
        return self.quantile if isinstance(self.quantile, tuple) else (None, None)

    def describe(self) -> str:
        """The test in words, e.g. ``>= 112.4 (q0.75)`` or ``in [Gold, Silver]``."""
        if self.op == "between":
            written = self.literal if isinstance(self.literal, list) else (None, None)
            pairs = zip(self.bounds, written, self.levels, strict=True)
            low, high = (_show(bound, text, level) for bound, text, level in pairs)
            return f"between [{low}, {high}]"
        if self.numeric:
            return f"{self.op} {_show(self.bound, self.literal, self.level)}"
        if isinstance(self.value, list):
            return f"{self.op} [{', '.join(str(v) for v in self.value)}]"
        return f"{self.op} {self.value}"

    def record(self) -> dict[str, object]:
        """The JSON form for ``segment_profiles.json``: column, op, quantile, value."""
        value = self.value
        if self.op == "between":
            value = list(self.bounds)
        elif self.numeric:
            value = self.bound
        quantile = list(self.quantile) if isinstance(self.quantile, tuple) else self.quantile
        return {"column": self.column, "op": self.op, "quantile": quantile, "value": value}


def format_number(value: float) -> str:
    """Short text for a threshold: 4 decimals (4 significant digits below 1), no trailing zeros."""
    if value != 0 and abs(value) < 1:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _show(bound: float, written: object, level: Level) -> str:
    """A bound as configured (``100``) or resolved with its tag (``112.4 (q0.75)``)."""
    if level is None:
        return str(written)
    return f"{format_number(float(bound))} (q{level:g})"


def resolve_thresholds(
    frame: pd.DataFrame, settings: SegmentationSettings, source: QuantileSource | None = None
) -> list[list[Threshold]]:
    """Resolve every rule condition's thresholds on ``frame`` (one list per rule).

    ``source`` computes quantiles elsewhere (the Spark engine); the columns are
    still checked here, with the same errors.

    Raises:
        ConfigError: a condition names a missing column, tests a text column
            with a number, or takes a quantile of a non-numeric column.
        DataValidationError: a quantile is asked of a column with no values.
    """
    resolved = []
    for index, rule in enumerate(settings.rules):
        conditions = []
        for position, condition in enumerate(rule.conditions):
            where = f"segmentation.rules[{index}].conditions[{position}]"
            conditions.append(
                _resolve_condition(
                    frame, condition, rule.name, where, settings.quantile_method, source
                )
            )
        resolved.append(conditions)
    return resolved


def _resolve_condition(
    frame: pd.DataFrame,
    condition: RuleCondition,
    rule_name: str,
    where: str,
    method: QuantileMethod,
    source: QuantileSource | None = None,
) -> Threshold:
    """Check the column and turn any quantile of the condition into a number."""
    if condition.column not in frame.columns:
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}.column' in rule '{rule_name}' names column "
            f"'{condition.column}', which the customer data does not have",
            hint=f"use one of: {', '.join(map(str, frame.columns))}",
        )
    if condition.op not in NUMERIC_OPS:
        return Threshold(condition.column, condition.op, condition.value, None, condition.value)
    items = condition.value if isinstance(condition.value, list) else [condition.value]
    has_quantile = any(isinstance(item, Quantile) for item in items)
    values = numeric_values(frame[condition.column], rule_name, where, has_quantile)
    bounds: list[float] = []
    levels: list[Level] = []
    for item in items:
        if isinstance(item, Quantile):
            found = None if source is None else source(condition.column, item.quantile)
            if found is None:
                found = quantile_of(values, item.quantile, method, rule_name, where)
            bounds.append(found)
            levels.append(item.quantile)
        else:
            bounds.append(float(item))
            levels.append(None)
    if condition.op == "between":
        pair = (levels[0], levels[1]) if has_quantile else None
        return Threshold(condition.column, condition.op, tuple(bounds), pair, condition.value)
    return Threshold(condition.column, condition.op, bounds[0], levels[0], condition.value)


def numeric_values(
    column: pd.Series, rule_name: str, where: str, for_quantile: bool = False
) -> np.ndarray:
    """The column as floats (NaN where missing; blank text cells count as missing).

    Extra columns of a CSV customer file arrive as text; numbers written as
    text are read as numbers.

    Raises:
        ConfigError: the column holds no numbers, or (for a quantile) any value
            that is not a number.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=float, na_value=np.nan)
    cells = column.astype("string").str.strip()
    missing = (column.isna() | (cells == "")).to_numpy(dtype=bool)
    values = pd.to_numeric(cells.mask(missing), errors="coerce")
    if for_quantile and (values.isna().to_numpy(dtype=bool) & ~missing).any():
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}.value' in rule '{rule_name}' takes a quantile of "
            f"column '{column.name}', which is not numeric",
            hint="quantile thresholds need a numeric column; use 'in' or '==' for text columns",
        )
    array = values.to_numpy(dtype=float)
    if np.isnan(array).all() and len(array):
        raise ConfigError(
            f"{CONFIG_FILE}: key '{where}' in rule '{rule_name}' compares column "
            f"'{column.name}' with a number, but the column is not numeric",
            hint="use 'in' or '==' for text columns",
        )
    return array


def quantile_of(
    values: np.ndarray,
    level: float,
    method: QuantileMethod,
    rule_name: str = "",
    where: str = "",
) -> float:
    """The ``level`` quantile of the non-missing ``values`` by numpy's ``method``.

    Raises:
        DataValidationError: no value is present.
    """
    present = values[~np.isnan(values)]
    if not present.size:
        raise DataValidationError(
            f"{CONFIG_FILE}: key '{where}.value' in rule '{rule_name}' takes a quantile, "
            "but there are no customers with a value in that column",
            hint="check the customer file (every row may have been rejected)",
        )
    return float(np.quantile(present, level, method=method))
