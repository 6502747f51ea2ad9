"""Join per-customer tables on ``customer_id`` by hash lookup instead of a pandas merge.

A pandas merge of a million recipients with the customers hashes and
compares Python-level strings (1–2 s per join); the stages join the same ids
several times. :func:`row_positions` finds each id's row with
:func:`cpo.experiment.aggregate.locate_ids` (64-bit hashes of the Arrow
strings, matches verified on the strings) and the caller takes the columns it
needs by position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def row_positions(ids: Any, known: Any) -> np.ndarray:
    """Position of each id's first occurrence in ``known``, -1 where it is absent.

    Args:
        ids: The ids to look up (a Series or sequence; compared as text).
        known: The ids to find them in.

    Returns:
        int64 positions into ``known``.
    """
    from cpo.experiment.aggregate import locate_ids

    ids_text, known_text = text_array(ids), text_array(known)
    if _same_distinct_sequence(ids_text, known_text):
        return np.arange(len(ids_text), dtype=np.int64)
    return locate_ids(ids_text, known_text)


def _same_distinct_sequence(ids: pa.Array, known: pa.Array) -> bool:
    """Whether ``ids`` are ``known`` in the same order, without nulls or repeats.

    Then every id's first occurrence is its own position: the usual case, as
    the stages keep the customers' order (segments, assignments, engagement),
    found in a fraction of the lookup's time.
    """
    if len(ids) != len(known) or ids.null_count or not ids.equals(known):
        return False
    return not _hashes_meet(known)


def _hashes_meet(ids: pa.Array) -> bool:
    """Whether two ids share a 64-bit hash (a repeat, or rarely a collision); nulls as ``""``."""
    from cpo.experiment.aggregate import id_hashes

    hashes = np.sort(id_hashes(ids.fill_null("")))
    return bool((hashes[1:] == hashes[:-1]).any())


def has_repeats(ids: pd.Series) -> bool:
    """Whether any value occurs more than once: ``ids.duplicated().any()``, faster.

    Sorting 64-bit hashes of the ids as text (:func:`cpo.experiment.aggregate.id_hashes`)
    shows in a fraction of ``Series.duplicated``'s time that no two can be
    equal, the usual case; only when two hashes meet does ``duplicated`` decide.
    """
    if not _hashes_meet(text_array(ids)):
        return False
    return bool(ids.duplicated().any())


def inner_join(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``frame.merge(table, on="customer_id", how="inner")``, by hash lookup when it can.

    The rows of ``frame`` whose id ``table`` has, in ``frame``'s order, with
    ``table``'s other columns after ``frame``'s. When ``table`` repeats an id or
    the two share another column, pandas' merge runs instead.
    """
    shared = set(frame.columns) & set(table.columns) - {"customer_id"}
    if shared or has_repeats(table["customer_id"]):
        return frame.merge(table, on="customer_id", how="inner")
    position = row_positions(frame["customer_id"], table["customer_id"])
    found = position >= 0
    attributes = take_rows(table.drop(columns="customer_id"), position[found])
    return pd.concat([frame.loc[found].reset_index(drop=True), attributes], axis=1)


def take_rows(table: pd.DataFrame, position: np.ndarray) -> pd.DataFrame:
    """The rows of ``table`` at ``position`` (every position must be >= 0), index 0..n-1."""
    return table.iloc[position].reset_index(drop=True)


def text_array(ids: Any) -> pa.Array:
    """Ids as one Arrow string array (missing values stay null)."""
    if isinstance(ids, pd.Series) and not pd.api.types.is_string_dtype(ids.dtype):
        ids = ids.astype(str)
    array = pa.array(ids, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
