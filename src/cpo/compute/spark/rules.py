"""Rules segmentation on Spark: the local rules code with thresholds computed by Spark.

Each quantile threshold is resolved from the exact order statistics of its
column (:mod:`.order_statistics`, combined as ``numpy.quantile`` does,
:mod:`cpo.compute.quantiles`); each numeric column's standard deviation (the
confidence scale) is a Spark aggregate; then every partition is assigned by the
local rules code with those numbers (``mapInPandas``), so a customer gets the
segment, confidence and reason the local engine gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from cpo.compute.quantiles import needed_ranks, quantile_from_ranks
from cpo.compute.spark.order_statistics import order_statistics
from cpo.errors import ConfigError
from cpo.segmentation.rules import ResolvedRules, assign_by_rules
from cpo.segmentation.settings import Quantile, SegmentationSettings
from cpo.segmentation.thresholds import CONFIG_FILE, NUMERIC_OPS, resolve_thresholds

ROW = "__row"  # input position: results are returned in input order


def check_rules(settings: SegmentationSettings) -> None:
    """Refuse k-means: the Spark engine segments by rules only."""
    if settings.method != "rules":
        raise ConfigError(
            f"{CONFIG_FILE}: key 'segmentation.method' is '{settings.method}', which the "
            "Spark engine does not run (it segments by rules only)",
            hint="set segmentation.method: rules, or compute.engine: local for k-means",
        )


def check_columns(customers: pd.DataFrame, settings: SegmentationSettings) -> None:
    """The local engine's checks of every rule column, with its errors (no quantile yet)."""
    if not settings.rules:
        assign_by_rules(customers, settings)  # raises the local engine's error
    resolve_thresholds(customers, settings, lambda column, level: 0.0)


def numeric_columns(customers: pd.DataFrame, settings: SegmentationSettings) -> dict[str, str]:
    """Numeric rule column -> the name of its double copy in the Spark frame."""
    columns = [
        c.column
        for rule in settings.rules
        for c in rule.conditions
        if c.op in NUMERIC_OPS and c.column in customers.columns
    ]
    return {column: f"__num_{i}" for i, column in enumerate(dict.fromkeys(columns))}


def _used_columns(customers: pd.DataFrame, settings: SegmentationSettings) -> list[str]:
    """customer_id and the columns the rules read, in rule order."""
    used = list(dict.fromkeys(c.column for r in settings.rules for c in r.conditions))
    return ["customer_id", *(c for c in used if c in customers.columns and c != "customer_id")]


def _text_columns(customers: pd.DataFrame, settings: SegmentationSettings) -> pd.DataFrame:
    """The rule columns of a pandas frame with text read as the local rules read it."""
    frame = customers[_used_columns(customers, settings)].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    for column in frame.columns:
        cells = frame[column]
        if not pd.api.types.is_numeric_dtype(cells) or pd.api.types.is_bool_dtype(cells):
            # As the local rules read text (``astype(str)``), so a missing value
            # reads the same on both engines.
            frame[column] = cells.astype(str)
    return frame.reset_index(drop=True)


def rules_frame(
    data: Any,
    customers: pd.DataFrame,
    settings: SegmentationSettings,
    numeric: dict[str, str],
    extra: Sequence[str] = (),
) -> Any:
    """The Spark frame ``data`` (with ``ROW``) reduced to the rule columns plus doubles.

    Args:
        data: Customers as a Spark frame with their position in ``ROW``.
        customers: The customers (or a sample of them) as pandas, for the column types.
        settings: The ``segmentation`` section.
        numeric: :func:`numeric_columns`.
        extra: Other columns to keep (carried through :func:`rules_mapper`).
    """
    from pyspark.sql import functions as F

    used = _used_columns(customers, settings)
    columns = [F.col(f"`{c}`") for c in [*used, *(c for c in extra if c not in used)]]
    # Numbers written as text are read as numbers (as ``numeric_values``); NaN is missing.
    helpers = [
        F.nanvl(F.col(f"`{column}`").try_cast("double"), F.lit(None).cast("double")).alias(helper)
        for column, helper in numeric.items()
    ]
    return data.select(*columns, *helpers, ROW)


def resolve(
    frame: Any,
    customers: pd.DataFrame,
    rows: int,
    settings: SegmentationSettings,
    numeric: dict[str, str],
) -> ResolvedRules:
    """Thresholds (exact quantiles from Spark) and each numeric column's standard deviation."""
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("rows")]
    for helper in numeric.values():
        aggregates += [F.count(helper).alias(f"n{helper}"), F.stddev_pop(helper).alias(helper)]
    row = frame.select(*aggregates).first().asDict() if numeric else {"rows": rows}
    counts = {column: int(row[f"n{helper}"]) for column, helper in numeric.items()}
    method = settings.quantile_method
    wanted: dict[str, set[int]] = {}
    for column, level in _quantile_requests(settings, numeric):
        if counts[column]:
            wanted.setdefault(numeric[column], set()).update(
                needed_ranks(counts[column], level, method)
            )
    found = order_statistics(
        frame,
        {helper: tuple(sorted(ranks)) for helper, ranks in wanted.items()},
        {numeric[column]: count for column, count in counts.items()},
    )

    def quantile(column: str, level: float) -> float | None:
        if not counts.get(column):
            return None  # the local code reports the empty column
        return quantile_from_ranks(counts[column], level, method, found[numeric[column]])

    thresholds = resolve_thresholds(customers, settings, quantile)
    scales = {column: _scale(row[helper], int(row["rows"])) for column, helper in numeric.items()}
    return ResolvedRules(thresholds, scales)


def _quantile_requests(
    settings: SegmentationSettings, numeric: dict[str, str]
) -> list[tuple[str, float]]:
    """Every (column, level) a rule condition takes a quantile of."""
    requests = []
    for rule in settings.rules:
        for condition in rule.conditions:
            items = condition.value if isinstance(condition.value, list) else [condition.value]
            if condition.op in NUMERIC_OPS and condition.column in numeric:
                requests += [
                    (condition.column, i.quantile) for i in items if isinstance(i, Quantile)
                ]
    return requests


def _scale(deviation: float | None, rows: int) -> float:
    """The local engine's scale: NaN-ignoring std, 1 when 0 or there are no rows."""
    if rows == 0:
        return 1.0
    value = float("nan") if deviation is None else float(deviation)
    return value or 1.0


def rules_mapper(
    settings: SegmentationSettings, resolved: ResolvedRules, carry: Sequence[str] = ()
) -> Any:
    """Per partition: the local rules assignment with the run's thresholds and scales.

    The columns ``carry`` of the input are passed through beside the segments.
    """

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            outcome = assign_by_rules(part.reset_index(drop=True), settings, resolved)
            out = outcome.assignments.astype({"customer_id": str, "reason": str})
            out[ROW] = part[ROW].to_numpy()
            for column in carry:
                out[column] = part[column].to_numpy()
            yield out

    return mapper


def segment_schema(carry: Mapping[str, str] | None = None) -> str:
    """Spark schema of the segment assignments (and carried columns: name -> Spark type)."""
    carried = "".join(f", `{name}` {kind}" for name, kind in (carry or {}).items())
    return (
        "customer_id string, segment string, segment_id long, confidence double, "
        f"reason string, {ROW} long{carried}"
    )
