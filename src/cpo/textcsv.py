"""Read a CSV file as text columns through pyarrow, as pandas would read it.

The customer file, the engagement import and ``cpo analyze --assignments`` read CSV files
with every column as text (``pandas.read_csv(dtype=str,
keep_default_na=False)``) and validate the values themselves. pandas parses
millions of rows into Python strings first (about 3.5 s per million
assignments); :func:`read_text_csv` parses with pyarrow's multi-threaded CSV
reader instead and returns the same frame.

The fast path is only taken where both readers agree. A file pyarrow cannot
parse (ragged rows, invalid UTF-8, quoted line breaks), a header with an
empty or repeated name, and, with ``skip_initial_space``, any value that
starts with a space (pandas drops the space and reads a quote after it as a
quote) are read by pandas exactly as before, so malformed input keeps its
error messages.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["read_text_csv"]


def read_text_csv(
    path: Path,
    *,
    skip_initial_space: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Every column of a CSV file as text; empty cells are ``""``.

    Args:
        path: The CSV file (header row).
        skip_initial_space: Drop spaces after a delimiter, as pandas'
            ``skipinitialspace``.
        delimiter: The column separator.
        encoding: The file's text encoding.

    Returns:
        The frame :func:`pandas.read_csv` returns for ``dtype=str,
        keep_default_na=False`` (and ``skipinitialspace``).

    Raises:
        The errors of :func:`pandas.read_csv` on input only pandas can decide.
    """
    table = _read_with_arrow(path, skip_initial_space, delimiter, encoding)
    if table is None:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=skip_initial_space,
            sep=delimiter,
            encoding=encoding,
        )
    return table.to_pandas()


def _read_with_arrow(
    path: Path, skip_initial_space: bool, delimiter: str, encoding: str
) -> pa.Table | None:
    """The file as a table of strings, or None where pandas must decide."""
    names = _header(path, delimiter, encoding)
    if names is None:
        return None
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    if skip_initial_space and any(_starts_with_space(column) for column in table.columns):
        return None
    return table


def _header(path: Path, delimiter: str, encoding: str) -> list[str] | None:
    """The header's names as pandas would take them, or None to let pandas read the file."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        with path.open(encoding=encoding, newline="") as handle:
            names = next(csv.reader(handle, delimiter=delimiter), None)
    except (UnicodeError, LookupError, csv.Error, OSError):
        return None
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        return None
    if any(name != name.lstrip(" ") for name in names):
        return None
    return names


def _starts_with_space(column: Any) -> bool:
    """True when any value of a string column starts with a space."""
    return bool(pc.any(pc.starts_with(column, " ")).as_py())
