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

    return locate_ids(text_array(ids), text_array(known))


def take_rows(table: pd.DataFrame, position: np.ndarray) -> pd.DataFrame:
    """The rows of ``table`` at ``position`` (every position must be >= 0), index 0..n-1."""
    return table.iloc[position].reset_index(drop=True)


def text_array(ids: Any) -> pa.Array:
    """Ids as one Arrow string array (missing values stay null)."""
    if isinstance(ids, pd.Series) and not pd.api.types.is_string_dtype(ids.dtype):
        ids = ids.astype(str)
    array = pa.array(ids, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
