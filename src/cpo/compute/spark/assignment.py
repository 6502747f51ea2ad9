"""Arm assignment on Spark: the local keyed hash on Arrow batches, blocks by a window.

``hash`` assigns each row from its own hash (the local code on each partition);
``stratified_block`` ranks customers within their segment by unsigned hash
(ties by input position, as the local stable sort) with a window function and
deals the ranks into the design's blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cpo.experiment.assignment import ASSIGNMENT_COLUMNS, assign, hash_ids
from cpo.experiment.design import Design
from cpo.experiment.settings import HOLDOUT_ARM


def assignment_schema(carried: Mapping[str, str]) -> str:
    """Spark schema of assignments.csv rows plus the ``carried`` columns (name -> type)."""
    columns = [f"{c} string" for c in ASSIGNMENT_COLUMNS]
    return ", ".join([*columns, *(f"{name} {kind}" for name, kind in carried.items())])


def check_segments(sizes: Mapping[str, int], design: Design) -> None:
    """Every segment is in the design and (stratified_block) has the size it apportioned.

    Raises:
        ValueError: as the local engine.
    """
    known = {plan.segment for plan in design.segments}
    unknown = sorted(set(sizes) - known)
    if unknown:
        raise ValueError(f"segments {unknown} are not in the design")
    if design.method != "stratified_block":
        return
    for plan in design.segments:
        expected = sum(int(n) for n in plan.expected_counts.values())
        found = int(sizes.get(plan.segment, 0))
        if found and expected != found:
            raise ValueError(
                f"segment '{plan.segment}': design expects {expected} customers, found {found}"
            )


def block_ranks(frame: Any, salt: str, ties: Sequence[str]) -> Any:
    """Add ``__rank``: position within the segment by unsigned hash, ties by input position.

    Args:
        frame: Spark frame of ``customer_id``, ``segment`` and the ``ties`` columns.
        salt: The experiment salt.
        ties: Columns giving the input position (ascending).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    @F.pandas_udf("long")  # type: ignore[call-overload]
    def order_key(ids: pd.Series) -> pd.Series:
        # Flipping the top bit makes signed order the unsigned order of the local sort.
        hashes = hash_ids(ids, salt) ^ np.uint64(1 << 63)
        return pd.Series(hashes.view(np.int64))

    window = Window.partitionBy("segment").orderBy("__key", *ties)
    keyed = frame.withColumn("__key", order_key(F.col("customer_id")))
    return keyed.withColumn("__rank", F.row_number().over(window) - 1).drop("__key")


def assign_mapper(design: Design, assigned_at: str, carried: Sequence[str]) -> Any:
    """Per partition: ``hash`` by the local code; ``stratified_block`` deals ranks into blocks."""
    plans = {plan.segment: plan for plan in design.segments}

    def deal(part: pd.DataFrame) -> pd.DataFrame:
        out = part[["customer_id", "segment"]].reset_index(drop=True)
        arm = np.empty(len(out), dtype=object)
        variant = np.empty(len(out), dtype=object)
        ranks = part["__rank"].to_numpy(dtype=np.int64)
        for name, rows in out.groupby("segment", sort=False).indices.items():
            plan = plans[str(name)]
            groups = [HOLDOUT_ARM, *plan.shares]
            edges = np.cumsum([int(plan.expected_counts.get(g, 0)) for g in groups])
            group = np.searchsorted(edges, ranks[rows], side="right")
            arm[rows] = np.array(groups, dtype=object)[group]
            names = ["", *(plan.variant_ids[g] for g in groups[1:])]
            variant[rows] = np.array(names, dtype=object)[group]
        out["experiment_arm"] = arm
        out["variant_id"] = variant
        out["assigned_at"] = assigned_at
        out["assignment_method"] = design.method
        return out

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            if design.method == "stratified_block":
                out = deal(part)
            else:
                out = assign(part[["customer_id", "segment"]], design, assigned_at)
            out = out[list(ASSIGNMENT_COLUMNS)].astype(str)
            for column in carried:
                out[column] = part[column].to_numpy()
            yield out

    return mapper
