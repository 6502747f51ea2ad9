"""Write a DataFrame as CSV with Arrow, byte for byte as ``DataFrame.to_csv`` would.

The run folder's per-customer files (segments, assignments, engagement) have a
row per customer; pandas' ``to_csv`` formats every cell in Python (about 3 s
per million rows and file). Here each column becomes an Arrow string column
formatted the way pandas formats it, the columns are joined by Arrow's
vectorized string kernels, and the bytes are written in blocks of rows.

The output is identical to ``frame.to_csv(index=False, lineterminator="\\n")``
(minimal quoting, ``""`` doubling, missing values empty, floats as NumPy's
shortest ``str``), which a property test checks. Frames whose formatting this
module does not reproduce exactly (a single column, text with a carriage
return, mixed-type or other dtypes) return ``False`` from :func:`write_frame`,
and the caller uses pandas.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Rows formatted and written at a time (bounds the memory of the text).
BLOCK_ROWS = 250_000
_NEEDS_QUOTES = r'[,"\n]'


class _Unsupported(Exception):
    """A column this writer cannot format exactly like pandas."""


def write_frame(handle: IO[bytes], frame: pd.DataFrame) -> bool:
    """Write ``frame`` as CSV to a seekable binary handle.

    Returns:
        False when the frame holds something this writer does not format
        exactly like pandas; the handle is then truncated back to where it
        started (nothing written).
    """
    if len(frame.columns) < 2 or not frame.columns.is_unique:
        return False
    start = handle.tell()
    try:
        handle.write(_header(frame))
        for first in range(0, len(frame), BLOCK_ROWS):
            handle.write(_block(frame.iloc[first : first + BLOCK_ROWS]))
    except _Unsupported:
        handle.seek(start)
        handle.truncate()
        return False
    return True


def _header(frame: pd.DataFrame) -> bytes:
    """The header line: column names quoted where needed."""
    names = pa.array([str(name) for name in frame.columns], type=pa.string())
    if pc.any(pc.match_substring(names, "\r")).as_py():
        raise _Unsupported
    quoted = [str(name) for name in _quote(names).to_pylist()]
    return (",".join(quoted) + "\n").encode("utf-8")


def _block(frame: pd.DataFrame) -> pa.Buffer:
    """The CSV lines of ``frame`` as one buffer."""
    columns: list[Any] = [
        _format(frame.iloc[:, index]).cast(pa.large_string()) for index in range(frame.shape[1])
    ]
    empty = pa.array([""] * len(frame), type=pa.large_string())
    comma, newline = pa.scalar(",", pa.large_string()), pa.scalar("\n", pa.large_string())
    rows: Any = pc.binary_join_element_wise(*columns, comma)
    lines: Any = pc.binary_join_element_wise(rows, empty, newline)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    start, stop = int(offsets[0]), int(offsets[len(lines)])
    return lines.buffers()[2][start:stop]


def _format(column: pd.Series) -> pa.Array:
    """One column as pandas' ``to_csv`` writes its cells."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _format(pd.Series(dtype.categories))
        codes = column.cat.codes.to_numpy()
        taken = categories.take(np.where(codes < 0, 0, codes))
        return pc.if_else(pa.array(codes < 0), "", taken) if (codes < 0).any() else taken
    if dtype == np.dtype(bool):
        return pc.if_else(pa.array(column.to_numpy()), "True", "False")
    if dtype.kind in "iu" and isinstance(dtype, np.dtype):
        return pc.cast(pa.array(column.to_numpy()), pa.string())
    if dtype == np.dtype(np.float64):
        return _floats(column.to_numpy())
    if pd.api.types.is_string_dtype(dtype):
        return _texts(column)
    raise _Unsupported


def _floats(values: np.ndarray) -> pa.Array:
    """Floats as NumPy's ``str`` (what pandas writes), missing values empty."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)  # keeps -0.0 apart
    unique_bits, codes = np.unique(bits, return_inverse=True)
    unique = unique_bits.view(np.float64)
    texts = unique.astype(str)
    texts[np.isnan(unique)] = ""
    return pa.array(texts, type=pa.string()).take(codes.ravel())


def _texts(column: pd.Series) -> pa.Array:
    """Text cells quoted where needed; missing values empty.

    Raises:
        _Unsupported: a cell is not text (an object column of mixed types) or
            holds a carriage return (quoted differently across Python versions).
    """
    try:
        text: Any = pa.array(column, type=pa.string(), from_pandas=True).fill_null("")
        if isinstance(text, pa.ChunkedArray):  # pandas' Arrow-backed strings
            text = text.combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _Unsupported from None
    if pc.any(pc.match_substring(text, "\r")).as_py():
        raise _Unsupported
    return _quote(text)


def _quote(text: pa.Array) -> pa.Array:
    """Enclose in quotes (doubling inner quotes) the cells with a comma, quote or newline."""
    needs = pc.match_substring_regex(text, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return text
    doubled: Any = pc.replace_substring(text, '"', '""')
    quoted: Any = pc.binary_join_element_wise('"', doubled, '"', "")
    return pc.if_else(needs, quoted, text)
