"""Exact order statistics of Spark columns without collecting the columns.

Spark's ``approxQuantile`` (Greenwald-Khanna, rank error at most
``RANK_ERROR * n``) brackets each rank wanted; the values inside the brackets
(about ``4 * RANK_ERROR * n`` per rank) are counted by distinct value, collected and
sorted, and the count
below each bracket turns positions into ranks. Every bracket is checked with
exact counts and widened to the whole column if the check fails, so the values
returned are exact whatever the approximation did. Three Spark jobs in all,
however many columns and ranks are asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RANK_ERROR = 1e-4
_SLACK = 2 * RANK_ERROR

Bracket = tuple[str, int, float, float]  # column, rank, low, high


def _brackets(
    frame: Any, wanted: Mapping[str, tuple[int, ...]], counts: Mapping[str, int]
) -> list[Bracket]:
    """Per (column, rank): values ``low <= high`` whose ranks should enclose the rank."""
    columns = list(wanted)
    levels = sorted(
        {
            min(1.0, max(0.0, (rank + shift) / counts[column] + slack))
            for column, ranks in wanted.items()
            for rank in ranks
            for shift, slack in ((0, -_SLACK), (1, _SLACK))
        }
    )
    found = frame.approxQuantile(columns, levels, RANK_ERROR)
    at = {
        column: dict(zip(levels, values, strict=True))
        for column, values in zip(columns, found, strict=True)
    }
    brackets = []
    for column, ranks in wanted.items():
        count = counts[column]
        for rank in ranks:
            low = at[column][min(1.0, max(0.0, rank / count - _SLACK))]
            high = at[column][min(1.0, max(0.0, (rank + 1) / count + _SLACK))]
            brackets.append((column, rank, float(low), float(high)))
    return brackets


def _checked(frame: Any, brackets: list[Bracket]) -> list[tuple[Bracket, int]]:
    """Each bracket with the exact count of values below it (widened when it missed its rank)."""
    from pyspark.sql import functions as F

    sums = []
    for position, (column, _rank, low, high) in enumerate(brackets):
        value = F.col(column)
        sums.append(F.sum(F.when(value < low, 1).otherwise(0)).alias(f"b{position}"))
        within = (value >= low) & (value <= high)
        sums.append(F.sum(F.when(within, 1).otherwise(0)).alias(f"i{position}"))
    row = frame.select(*sums).first()
    checked = []
    for position, (column, rank, low, high) in enumerate(brackets):
        below, inside = int(row[f"b{position}"] or 0), int(row[f"i{position}"] or 0)
        if below > rank or below + inside <= rank:  # the approximation missed: take all
            checked.append(((column, rank, float("-inf"), float("inf")), 0))
        else:
            checked.append(((column, rank, low, high), below))
    return checked


def order_statistics(
    frame: Any, wanted: Mapping[str, tuple[int, ...]], counts: Mapping[str, int]
) -> dict[str, dict[int, float]]:
    """The values at the 0-based ranks of each non-null column sorted ascending.

    Args:
        frame: A Spark DataFrame.
        wanted: Double column (nulls skipped, no NaN) -> the ranks wanted, each in ``[0, count)``.
        counts: Column -> how many non-null values it has.

    Returns:
        Column -> rank -> value.
    """
    from pyspark.sql import functions as F

    if not wanted:
        return {}
    checked = _checked(frame, _brackets(frame, wanted, counts))
    parts = [
        frame.where((F.col(column) >= low) & (F.col(column) <= high)).select(
            F.lit(position).alias("bracket"), F.col(column).alias("value")
        )
        for position, ((column, _rank, low, high), _below) in enumerate(checked)
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    # Distinct values with their counts: a bracket full of ties comes back as one row.
    tallies: dict[int, list[tuple[float, int]]] = {position: [] for position in range(len(checked))}
    for row in union.groupBy("bracket", "value").count().collect():
        tallies[int(row["bracket"])].append((float(row["value"]), int(row["count"])))
    result: dict[str, dict[int, float]] = {column: {} for column in wanted}
    for position, ((column, rank, _low, _high), below) in enumerate(checked):
        result[column][rank] = _value_at(sorted(tallies[position]), rank - below)
    return result


def _value_at(tally: list[tuple[float, int]], offset: int) -> float:
    """The value at 0-based ``offset`` of the sorted values that ``tally`` counts."""
    seen = 0
    for value, count in tally:
        seen += count
        if offset < seen:
            return value
    raise ValueError(f"offset {offset} is beyond the {seen} values in the bracket")
