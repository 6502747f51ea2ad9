"""Small, safe file helpers shared by every stage.

Artifacts are written atomically (to a temporary file in the same folder, then
renamed), so an interrupted run never leaves a half-written artifact behind.

CSV files are safe to open in a spreadsheet (OWASP "CSV injection"): every
writer passes its rows through :func:`escape_formulas` (or
:func:`escape_formula` per cell), which prefixes a single quote to each *text*
cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return,
so ``=HYPERLINK(...)`` in a name is shown as text instead of run as a formula.
Numeric columns are never touched (``-3.5`` stays a number). A text cell that
already begins with quotes followed by one of those characters gets one more
quote, so the escaping can be undone exactly: :func:`read_csv` (used to read
cpo's own artifacts back, e.g. assignments.csv) removes one leading quote from
such cells, and an id such as ``=A1`` round-trips.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HASH_CHUNK = 1 << 20
#: A cell to escape: optional quotes, then a character that makes a spreadsheet treat
#: the cell as a formula (OWASP: = + - @ tab, carriage return).
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
#: An escaped cell: the added quote, then optional quotes and a trigger character.
_ESCAPED = re.compile(r"^''*[=+\-@\t\r]")


def _file_mode() -> int:
    """The mode a normally created file gets under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes.

    Several stages of one run check the same customer file; a digest is
    remembered for the process as long as the file's size, modification time
    and inode are unchanged (a rewritten file is hashed again).
    """
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns, status.st_ino)
    cached = _DIGESTS.get(key)
    if cached is None:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(HASH_CHUNK), b""):
                digest.update(block)
        cached = _DIGESTS[key] = digest.hexdigest()
    return cached


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def sha256_json(data: Any) -> str:
    """Return the sha256 hex digest of canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(descriptor, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write pretty, key-ordered-as-given JSON atomically (UTF-8, trailing newline)."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False, default=str)
        handle.write("\n")


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically (no index, ``\\n`` line endings).

    Text cells that a spreadsheet would run as a formula are escaped
    (:func:`escape_formulas`). Arrow formats the rows (:mod:`cpo.fastcsv`,
    the same bytes as pandas, ten times faster on a million rows); pandas
    writes what it does not support.
    """
    from cpo.fastcsv import write_frame

    safe = escape_formulas(frame)
    with atomic_open(path, "wb") as handle:
        if write_frame(handle, safe):
            return
    with atomic_open(path) as handle:
        safe.to_csv(handle, index=False, lineterminator="\n")


def escape_formula(value: Any) -> Any:
    """One cell made formula-safe: a text starting with ``= + - @`` tab or CR gets a ``'``.

    Anything that is not text (numbers, ``None``) is returned unchanged.
    """
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def escape_formula_cells(cells: pa.Array) -> pa.Array:
    """Arrow cells made formula-safe as :func:`escape_formulas` does a column.

    Only text is looked at; a dictionary array is escaped through its
    dictionary, so each distinct text is checked once. Cells that need no
    escape are returned as they are (the same array when none does).
    """
    if isinstance(cells, pa.DictionaryArray):
        original = cells.dictionary
        dictionary = escape_formula_cells(original)
        if dictionary is original:
            return cells
        return pa.DictionaryArray.from_arrays(cells.indices, dictionary)
    if not (pa.types.is_string(cells.type) or pa.types.is_large_string(cells.type)):
        return cells
    text: Any = cells
    found: Any = pc.match_substring_regex(text, _FORMULA.pattern).fill_null(False)
    if not pc.any(found).as_py():
        return cells
    quote, none = pa.scalar("'", type=cells.type), pa.scalar("", type=cells.type)
    quoted: Any = pc.binary_join_element_wise(quote, text, none)
    return pc.if_else(found, quoted, text)


def _is_text(column: pd.Series) -> bool:
    dtype = column.dtype
    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype)


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells are formula-safe (see :func:`escape_formula`).

    Only text columns (object, string and categorical) are looked at; a
    categorical column is escaped through its categories, so a million rows
    sharing a few thousand texts cost a few thousand checks.
    """
    escaped: dict[str, pd.Series] = {}
    for name in frame.columns:
        column = frame[name]
        if not _is_text(column):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = column.cat.categories
            if _needs_escape(pd.Series(categories, dtype=object)).any():
                escaped[name] = column.cat.rename_categories(
                    [escape_formula(c) for c in categories]
                )
            continue
        mask = _needs_escape(column)
        if mask.any():
            escaped[name] = column.where(~mask, "'" + column[mask].astype(str))
    if not escaped:
        return frame
    return frame.assign(**escaped)


def _needs_escape(column: pd.Series) -> np.ndarray:
    """True for text cells that begin (after optional quotes) with a formula trigger."""
    return _matches(column, _FORMULA.pattern)


def _matches(column: pd.Series, pattern: str) -> np.ndarray:
    """Boolean mask of the text cells matching ``pattern`` (missing and non-text: False).

    Arrow's vectorized regex is used when the column converts to Arrow strings
    (several times faster than pandas' per-value loop on a million ids).
    """
    try:
        text = pa.array(column, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed text and numbers
        try:
            found = column.str.match(pattern)
        except AttributeError:  # an object column without any text
            return np.zeros(len(column), dtype=bool)
        return found.fillna(False).to_numpy(dtype=bool)
    matched = pc.match_substring_regex(text, pattern).fill_null(False)
    return matched.to_numpy(zero_copy_only=False)


def unescape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`escape_formulas` on text columns read back from cpo's own CSV files."""
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            frame[name] = _unescape_categories(column)
        elif _is_text(column):
            quoted = _matches(column, _ESCAPED.pattern)
            if quoted.any():
                frame[name] = column.where(~quoted, column[quoted].str.slice(1))
    return frame


def _unescape_categories(column: pd.Series) -> pd.Series:
    """A categorical column with its escaped categories restored."""
    categories = pd.Series(column.cat.categories, dtype=object)
    quoted = _matches(categories, _ESCAPED.pattern)
    if not quoted.any():
        return column
    restored = categories.where(~quoted, categories[quoted].str.slice(1))
    if restored.duplicated().any():  # the file mixed escaped and unescaped spellings
        return column.astype(object).map(dict(zip(categories, restored, strict=True)))
    return column.cat.rename_categories(list(restored))


def read_csv(path: Path | str, **options: Any) -> pd.DataFrame:
    """Read one of cpo's own CSV artifacts, undoing the formula escaping of its text cells.

    Args:
        path: The CSV file (e.g. a run folder's assignments.csv).
        **options: Passed to :func:`pandas.read_csv` (``dtype``, ``usecols``, ...).
    """
    return unescape_formulas(pd.read_csv(path, **options))


def read_columns(
    path: Path | str, columns: Sequence[str], *, text: Sequence[str] = ()
) -> pd.DataFrame:
    """Some columns of one of cpo's own CSV artifacts, parsed by Arrow.

    The frame ``read_csv(path, usecols=columns, dtype=dict.fromkeys(text, str),
    keep_default_na=False)`` gives (columns in file order), in about half its
    time; a file Arrow cannot parse, or one without a requested column, is read
    by pandas, with pandas' errors.

    Args:
        path: The CSV file.
        columns: The columns to read.
        text: Of those, the ones kept as text (empty cells ``""``); the others
            are typed from their values.
    """
    import pyarrow.csv as pacsv

    header = csv_header(path)
    ordered = [name for name in header if name in set(columns)]
    options = pacsv.ConvertOptions(
        include_columns=ordered,
        column_types=dict.fromkeys(text, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    arrow_reads_it = len(ordered) == len(set(columns)) and len(set(header)) == len(header)
    try:
        if arrow_reads_it:
            return unescape_formulas(pacsv.read_csv(path, convert_options=options).to_pandas())
    except (pa.ArrowInvalid, OSError):
        pass
    return read_csv(
        path, usecols=list(columns), dtype=dict.fromkeys(text, str), keep_default_na=False
    )


def csv_header(path: Path | str) -> list[str]:
    """The column names on the first line of a CSV artifact (a BOM is skipped)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def read_text_artifact(path: Path | str) -> pd.DataFrame:
    """One of cpo's own CSV artifacts with every column as text (empty cells ``""``).

    The same frame as ``read_csv(path, dtype=str, keep_default_na=False)``,
    parsed by pyarrow (:func:`cpo.textcsv.read_text_csv`): a million
    assignments in a fraction of pandas' time.
    """
    from cpo.textcsv import read_text_csv

    return unescape_formulas(read_text_csv(Path(path)))
