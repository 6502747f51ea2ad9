"""``cpo analyze EXPORT --assignments ASSIGNMENTS`` on clean CSV files, without pandas frames.

The general path (:func:`cpo.experiment.engagement.import_engagement`, then
:func:`cpo.experiment.aggregate.aggregate_records`) reads every assignments column into
pandas, validates the export as pandas text columns and builds the per-recipient
``engagement.csv`` frame, only for the analysis to reduce it to a few dozen counts. For
a clean pair of CSV files this module reads only the columns it needs with pyarrow
(customer_id, experiment_arm, segment of the assignments; the export's columns), joins
the ids with :func:`cpo.experiment.aggregate.locate_ids` and counts per (arm, segment)
with ``np.bincount``.

It computes what the general path computes, with the same helpers where they are
column-free (combining repeated rows, the exclusion, duplicate, consistency and missing
recipient warnings), and gives the same sufficient statistics and warnings. Whenever the
input is anything the general path might read or judge differently (no arrow parse, a
header pandas would take otherwise, values with surrounding spaces, formula-escaped
cells, a flag value that is not 0/1/true/false, a blank label, no matching recipient,
customer data for the regression adjustment, ...) :func:`import_clean_export` returns
None and the caller takes the general path, so every message, warning and exit code
stays as it is. Tested: both paths give the same metrics document.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cpo.experiment.aggregate import SufficientStatistics, _sorted_table, locate_ids
from cpo.experiment.engagement import (
    _FALSE,
    _TRUE,
    FLAG_COLUMNS,
    SOURCE_IMPORTED,
    _combine_rows,
    _consistency,
    _exclusion_warnings,
    duplicate_warnings,
    missing_warnings,
)
from cpo.experiment.settings import HOLDOUT_ARM

#: The assignments columns the join and the counts need.
ASSIGNMENT_COLUMNS = ("customer_id", "experiment_arm", "segment")
#: Every character Python's ``str.strip()`` removes (``str.isspace``); tested against it.
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
#: First characters of a cell cpo's CSV writer may have formula-escaped (``runfiles``).
_ESCAPE_STARTS = frozenset(b"'=+-@\t\r")


@dataclass(frozen=True)
class CleanImport:
    """The export joined to the assignments, reduced to counts.

    Attributes:
        statistics: Counts per (arm, segment) of the recipients with a row.
        warnings: The engagement import's ``{code, message}`` warnings.
        counts: The engagement import's counts (as ``EngagementImport.counts``).
        source: ``imported``.
    """

    statistics: SufficientStatistics
    warnings: list[dict[str, str]]
    counts: dict[str, int]
    source: str = SOURCE_IMPORTED


@dataclass(frozen=True)
class _Labels:
    """A text column as integer codes into its distinct values."""

    codes: np.ndarray
    values: list[str]


@dataclass(frozen=True)
class _Assignments:
    """The assignments columns the join needs."""

    ids: pa.Array
    arms: _Labels
    segments: _Labels


def import_clean_export(export: Path, assignments: Path) -> CleanImport | None:
    """Join a clean per-recipient CSV export to a clean assignments.csv and count.

    Args:
        export: ``customer_id, opened, clicked, converted`` CSV (other columns ignored).
        assignments: ``assignments.csv`` with customer_id, experiment_arm and segment.

    Returns:
        The counts and the import's warnings, or None when the general path must
        decide (see the module docstring); never raises on bad input.
    """
    table = _read_assignments(assignments)
    raw = _read_export(export) if table is not None else None
    if table is None or raw is None:
        return None
    ids = raw.column("customer_id").combine_chunks()
    values = {column: _flags(raw.column(column)) for column in FLAG_COLUMNS}
    if not _plain_ids(ids, allow_escape_starts=True) or any(v is None for v in values.values()):
        return None
    return _join(ids, {c: v for c, v in values.items() if v is not None}, table)


def _join(ids: pa.Array, values: dict[str, np.ndarray], table: _Assignments) -> CleanImport | None:
    """``engagement._import_recipients`` on arrays, then the counts per (arm, segment)."""
    position = locate_ids(ids, table.ids)
    unknown = position < 0
    in_holdout = _is(table.arms, HOLDOUT_ARM)
    holdout = ~unknown & in_holdout[np.where(unknown, 0, position)]
    kept = ~(unknown | holdout)
    counts = {
        "unknown_customers": _distinct(ids, unknown),
        "unknown_customer_rows": int(unknown.sum()),
        "holdout_customers": int(np.unique(position[holdout]).size),
        "holdout_rows": int(holdout.sum()),
    }
    size = len(table.ids)
    flags, rows, disagree = _combine_rows(
        position[kept], {c: v[kept] for c, v in values.items()}, size
    )
    present = rows > 0
    counts["rows"] = len(ids)
    counts["duplicate_rows"] = int(kept.sum() - present.sum())
    counts["duplicate_conflicts"] = int(disagree.sum())
    warnings = [*_exclusion_warnings(counts, "row(s)"), *duplicate_warnings(counts)]
    warnings += _consistency(flags, counts)
    missing = ~in_holdout & ~present
    counts["missing_recipients"] = int(missing.sum())
    warnings += missing_warnings(counts, _count_by(table.arms, missing))
    included = ~in_holdout & present
    counts["recipients"] = int(included.sum())
    if not counts["recipients"] or _has_blank_label(table, included):
        return None  # the general path's error messages
    return CleanImport(_statistics(table, included, flags), warnings, counts)


def _statistics(
    table: _Assignments, included: np.ndarray, flags: dict[str, np.ndarray]
) -> SufficientStatistics:
    """Counts per (arm, segment) of the included rows, as ``aggregate_records`` gives them."""
    cells = len(table.segments.values)
    key = (table.arms.codes * cells + table.segments.codes)[included]
    size = len(table.arms.values) * cells

    def total(mask: np.ndarray | None) -> np.ndarray:
        return np.bincount(key, weights=None if mask is None else mask[included], minlength=size)

    # After _consistency every click is also an open: clicked_without_open is 0.
    opened, clicked = flags["opened"] | flags["clicked"], flags["clicked"]
    columns = [total(None), total(opened), total(clicked), total(flags["converted"])]
    columns.append(total(clicked & ~flags["opened"]))
    counts = {
        (table.arms.values[cell // cells], table.segments.values[cell % cells]): [
            int(column[cell]) for column in columns
        ]
        for cell in np.flatnonzero(columns[0])
    }
    return SufficientStatistics(_sorted_table(counts), (SOURCE_IMPORTED,), int(included.sum()))


# --------------------------------------------------------------------------
# Reading (None: let the general path read the file)
# --------------------------------------------------------------------------


def _read_assignments(path: Path) -> _Assignments | None:
    """customer_id, experiment_arm, segment, when read_text_csv + unescape would give them."""
    if not path.is_file():
        return None
    names = _header(path)
    if names is None or not set(ASSIGNMENT_COLUMNS) <= set(names):
        return None
    table = _read_csv(path, names, ASSIGNMENT_COLUMNS)
    if table is None or table.num_rows == 0:
        return None
    ids = table.column("customer_id").combine_chunks()
    arms, segments = (_labels(table.column(name)) for name in ("experiment_arm", "segment"))
    if arms is None or segments is None or not _plain_ids(ids, allow_escape_starts=False):
        return None
    return _Assignments(ids, arms, segments)


def _read_export(path: Path) -> pa.Table | None:
    """The export's columns as read_table reads a CSV, or None.

    The names are stripped and lower-cased as the engagement import does; the layout
    must be per recipient (no ``event`` column) with the id and flag columns.
    """
    if path.suffix.lower() not in (".csv", ".txt") or not path.is_file():
        return None
    if path.stat().st_size == 0:
        return None
    names = _header(path)
    if names is None:
        return None
    columns = [name.strip().lower() for name in names]
    needed = ("customer_id", *FLAG_COLUMNS)
    if len(set(columns)) != len(columns) or "event" in columns or not set(needed) <= set(columns):
        return None
    table = _read_csv(path, names, None)
    if table is None or table.num_rows == 0 or any(_starts_with_space(c) for c in table.columns):
        return None
    return table.rename_columns(columns)


def _header(path: Path) -> list[str] | None:
    """The header's names as :mod:`cpo.textcsv` takes them (None where pandas decides)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            names = next(csv.reader(handle), None)
    except (UnicodeError, csv.Error, OSError):
        return None
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        return None
    if any(name != name.lstrip(" ") for name in names):
        return None
    return names


def _read_csv(path: Path, names: list[str], include: tuple[str, ...] | None) -> pa.Table | None:
    """Text columns, with :func:`cpo.textcsv.read_text_csv`'s options (``include``: a subset).

    Arrow checks the UTF-8 of the columns it converts only; read_text_csv converts them
    all (invalid UTF-8 anywhere sends it to pandas, which fails), so with ``include`` the
    whole file's UTF-8 is checked here first.
    """
    try:
        if include is not None and not _valid_utf8(path):
            return None
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, encoding="utf-8"),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                include_columns=list(include) if include else None,
            ),
        )
    except (pa.ArrowException, OSError):
        return None


def _valid_utf8(path: Path, block_size: int = 1 << 24) -> bool:
    """Whether the whole file is valid UTF-8, read in blocks (ASCII blocks are skipped)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(block_size):
                pending = decoder.getstate()[0]  # a character cut at the last block's end
                if pending or not block.isascii():
                    decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _starts_with_space(column: pa.ChunkedArray) -> bool:
    return bool(pc.any(pc.starts_with(column, " ")).as_py())


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


def _plain_ids(ids: pa.Array, *, allow_escape_starts: bool) -> bool:
    """No empty id, none with surrounding whitespace (and none that may be formula-escaped).

    Such ids are read as they are by both paths; the others (stripped, blank,
    unescaped) are left to the general path.
    """
    if len(ids) == 0 or ids.null_count:
        return False
    data, starts, ends = _bytes_of(ids)
    if bool((ends <= starts).any()):
        return False
    first, last = data[starts], data[ends - 1]
    if not allow_escape_starts and bool(np.isin(first, list(_ESCAPE_STARTS)).any()):
        return False
    # ASCII whitespace is checked on the bytes; any non-ASCII edge byte goes to Python.
    ascii_space = np.array([ord(c) for c in PYTHON_WHITESPACE if ord(c) < 128], dtype=np.uint8)
    if bool(np.isin(first, ascii_space).any() or np.isin(last, ascii_space).any()):
        return False
    unusual = np.flatnonzero((first >= 128) | (last >= 128))
    if unusual.size:
        edges = [str(value) for value in ids.take(unusual).to_pylist()]
        return not any(v[0] in PYTHON_WHITESPACE or v[-1] in PYTHON_WHITESPACE for v in edges)
    return True


def _bytes_of(ids: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array and each string's start and end in them."""
    offset_type = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    _, offset_buffer, data_buffer = ids.buffers()[:3]
    if offset_buffer is None or data_buffer is None:  # no strings, or only empty ones
        return np.zeros(0, np.uint8), np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
    offsets = np.frombuffer(memoryview(offset_buffer), dtype=offset_type)
    offsets = offsets[ids.offset : ids.offset + len(ids) + 1].astype(np.int64)
    return np.frombuffer(memoryview(data_buffer), dtype=np.uint8), offsets[:-1], offsets[1:]


def _flags(column: pa.ChunkedArray) -> np.ndarray | None:
    """A 0/1/true/false text column as booleans (``parse_flags``' rule), None if any is not."""
    labels = _labels(column, check_escape=False)
    if labels is None:
        return None
    text = [value.strip().lower() for value in labels.values]
    if any(value not in _TRUE and value not in _FALSE for value in text):
        return None
    truthy = np.array([value in _TRUE for value in text], dtype=bool)
    return truthy[labels.codes]


def _labels(column: pa.ChunkedArray, *, check_escape: bool = True) -> _Labels | None:
    """Codes and distinct values of a text column; None when a value may be formula-escaped."""
    encoded = cast(pa.DictionaryArray, pc.dictionary_encode(column.combine_chunks()))
    values = [str(value) for value in encoded.dictionary.to_pylist()]
    if check_escape and any(value[:1] and ord(value[0]) in _ESCAPE_STARTS for value in values):
        return None
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return _Labels(codes, values)


def _is(labels: _Labels, value: str) -> np.ndarray:
    """Mask of the rows whose label is ``value``."""
    matches = np.array([v == value for v in labels.values], dtype=bool)
    return matches[labels.codes] if len(matches) else np.zeros(len(labels.codes), dtype=bool)


def _count_by(labels: _Labels, mask: np.ndarray) -> dict[str, int]:
    """Rows in ``mask`` per label (labels with none left out)."""
    counts = np.bincount(labels.codes[mask], minlength=len(labels.values))
    return {labels.values[i]: int(counts[i]) for i in np.flatnonzero(counts)}


def _distinct(ids: pa.Array, mask: np.ndarray) -> int:
    """Number of distinct ids among the rows in ``mask``."""
    if not mask.any():
        return 0
    return int(pc.count_distinct(ids.filter(pa.array(mask))).as_py())


def _has_blank_label(table: _Assignments, included: np.ndarray) -> bool:
    """Whether an included row has an arm or segment that is empty after ``strip()``."""
    for labels in (table.arms, table.segments):
        blank = np.array([not value.strip() for value in labels.values], dtype=bool)
        if blank[labels.codes[included]].any():
            return True
    return False
