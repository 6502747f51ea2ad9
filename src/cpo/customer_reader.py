"""Read a customer file as text columns: encoding, delimiter and column mapping.

This is the part of loading that deals with other systems' exports: a CSV in
Latin-1 or Windows-1252, a semicolon- or tab-separated file, columns named
``CustID`` instead of ``customer_id``. :mod:`cpo.customers` validates what this
module returns. Parquet files carry their own types and names, so encoding and
delimiter do not apply to them; the column mapping does.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cpo.customer_settings import DETECTED_DELIMITERS, CustomerSettings
from cpo.errors import DataValidationError

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: UTF-8 that also accepts (and drops) a byte-order mark, as Excel writes one.
DEFAULT_ENCODING = "utf-8-sig"
DELIMITER_NAMES = {",": "comma ','", ";": "semicolon ';'", "\t": "tab"}
_SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class CustomerTable:
    """A customer file read as text, and how it was read.

    Attributes:
        frame: Text cells (``""`` for missing), columns renamed to ours.
        first_line: File line (CSV, header = line 1) or row (Parquet) of the first row.
        reading: ``columns``, ``encoding`` and ``delimiter`` actually used (the
            detected delimiter included; ``None`` for Parquet), so that a later
            reader (the report) can read the same file the same way.
    """

    frame: pd.DataFrame
    first_line: int
    reading: dict[str, Any] = field(default_factory=dict)


def read_customer_table(path: Path, settings: CustomerSettings) -> CustomerTable:
    """Read every column as text and apply the column mapping.

    Args:
        path: A ``.csv`` / ``.tsv`` / ``.txt`` or ``.parquet`` file.
        settings: Encoding, delimiter and column mapping.

    Raises:
        DataValidationError: the path is missing, a directory, empty, of an
            unsupported type, not decodable, has no recognizable delimiter, or
            the mapping does not fit its columns.
    """
    _check_path(path)
    suffix = path.suffix.lower()
    reading: dict[str, Any] = {"columns": dict(settings.columns), "encoding": None}
    if suffix in PARQUET_SUFFIXES:
        frame, first_line, reading["delimiter"] = _read_parquet(path), 1, None
    elif suffix in CSV_SUFFIXES:
        reading["encoding"] = settings.encoding or DEFAULT_ENCODING
        frame, reading["delimiter"] = _read_csv(path, reading["encoding"], settings.delimiter)
        first_line = 2
    else:
        raise DataValidationError(
            f"{path}: unsupported file type '{suffix}'",
            hint="use a .csv (or .tsv) or .parquet file",
        )
    frame = apply_column_mapping(path, frame, settings.columns)
    return CustomerTable(frame, first_line, reading)


def _check_path(path: Path) -> None:
    """Fail clearly on a missing path, a directory or an empty file."""
    if path.is_dir():
        inside = sorted(
            p.name for p in path.iterdir() if p.suffix.lower() in CSV_SUFFIXES + PARQUET_SUFFIXES
        )
        hint = "give the customer file itself, not its folder"
        if inside:
            hint += f"; customer-like files in it: {', '.join(inside[:5])}"
        raise DataValidationError(f"{path}: is a directory, not a customer file", hint=hint)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: customer file not found", hint="check the path given to --customers"
        )
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"{path}: the file is empty",
            hint="export the customers with a header row and at least one customer",
        )


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file as text cells (missing values become ``""``)."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise DataValidationError(f"{path}: cannot be read as parquet: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.astype(object).where(frame.notna(), "").astype(str)


def _read_csv(path: Path, encoding: str, delimiter: str | None) -> tuple[pd.DataFrame, str]:
    """A delimited text file as text cells and the delimiter used (clear errors).

    pyarrow's multi-threaded reader parses the file where it reads it exactly
    as pandas would (:func:`cpo.textcsv.read_text_csv`); pandas
    reads the rest, so malformed files keep their messages.
    """
    from cpo.textcsv import read_text_csv

    header = _header_line(path, encoding)
    chosen = delimiter or detect_delimiter(path, header)
    try:
        frame = read_text_csv(path, skip_initial_space=True, delimiter=chosen, encoding=encoding)
    except UnicodeDecodeError:
        raise encoding_error(path, encoding) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV: {exc}") from None
    frame.columns = [_clean_name(c) for c in frame.columns]
    if len(frame.columns) == 1:
        raise _single_column_error(path, header, chosen, given=delimiter is not None)
    return frame, chosen


def _clean_name(name: object) -> str:
    """A header name without a byte-order mark or surrounding spaces."""
    return str(name).lstrip("\ufeff").strip()


def read_customer_columns(
    path: Path, reading: Mapping[str, Any] | None, wanted: Collection[str]
) -> pd.DataFrame:
    """Read only ``wanted`` columns (our names) the way a run read the file.

    For consumers after the run (the report, its notebook): ``reading`` is what
    :class:`CustomerTable` recorded in the manifest, so a mapped, Latin-1 or
    semicolon file is read as the run read it, and no other column (names,
    emails) is read at all. Numeric-looking columns become numbers;
    ``customer_id`` stays text.

    Raises:
        OSError, ValueError: the file cannot be read that way any more.
    """
    reading = reading or {}
    mapping = dict(reading.get("columns") or {})

    def ours(name: object) -> str:
        return mapping.get(_clean_name(name), _clean_name(name))

    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        names = [n for n in pq.read_schema(path).names if ours(n) in wanted]
        frame = pd.read_parquet(path, columns=names)
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
    else:
        frame = pd.read_csv(
            path,
            sep=reading.get("delimiter") or ",",
            encoding=reading.get("encoding") or DEFAULT_ENCODING,
            usecols=lambda name: ours(name) in wanted,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    frame.columns = [ours(c) for c in frame.columns]
    for column in frame.columns:
        if column != "customer_id":
            text = frame[column].str.strip()
            numbers = pd.to_numeric(text, errors="coerce")
            if numbers.notna().sum() == text.ne("").sum():
                frame[column] = numbers
    return frame


def _header_line(path: Path, encoding: str) -> str:
    """The file's first line, decoded (an undecodable header is an encoding error)."""
    try:
        with path.open(encoding=encoding, newline="") as handle:
            return handle.readline().rstrip("\r\n").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise encoding_error(path, encoding) from None


def detect_delimiter(path: Path, header: str) -> str:
    """The delimiter among ``,`` ``;`` and tab that splits the header into most columns.

    Quoted names are respected (a comma inside ``"Last, First"`` does not count).
    Ties go to the earlier candidate, so a header with no separator at all is
    reported rather than guessed.

    Raises:
        DataValidationError: no candidate splits the header into two or more columns.
    """
    counts = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DETECTED_DELIMITERS}
    best = max(DETECTED_DELIMITERS, key=lambda d: counts[d])
    if counts[best] < 2:
        raise _single_column_error(path, header, None, given=False)
    return best


def _single_column_error(
    path: Path, header: str, delimiter: str | None, given: bool
) -> DataValidationError:
    """The file reads as one column: name the delimiter problem and the fix."""
    shown = header if len(header) <= 80 else header[:77] + "..."
    if given and delimiter is not None:
        what = f"splitting the header line on the {_delimiter_name(delimiter)} gives one column"
    else:
        what = "could not detect the delimiter: the header line has no comma, semicolon or tab"
    return DataValidationError(
        f"{path}: {what} (header: {shown!r})",
        hint="pass --delimiter with the character that separates the columns "
        "(e.g. --delimiter ';', --delimiter tab, --delimiter '|'), "
        "or set customers.delimiter in experiment_config.yaml",
    )


def _delimiter_name(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, f"delimiter {delimiter!r}")


def encoding_error(path: Path, encoding: str) -> DataValidationError:
    """An error naming the line of the first byte that is not valid in ``encoding``."""
    found = first_undecodable(path, encoding)
    name = "utf-8" if encoding == DEFAULT_ENCODING else encoding
    if found is None:
        where = "is not valid"
    else:
        line, byte = found
        where = f"line {line} has a byte (0x{byte:02x}) that is not valid"
    others = [e for e in ("latin-1", "cp1252") if codecs.lookup(e).name != codecs.lookup(name).name]
    suggestion = " (or ".join(f"--encoding {e}" for e in others) + (")" if len(others) > 1 else "")
    return DataValidationError(
        f"{path}: {where} {name} text",
        hint=f"the file was saved in another encoding; pass {suggestion}, "
        "or set customers.encoding in experiment_config.yaml",
    )


def first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """Line number (1-based) and value of the first byte ``encoding`` cannot decode.

    The file is scanned in chunks with an incremental decoder, so a large file
    is never held in memory. ``None`` when the whole file decodes.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK):
            pending = len(_buffered(decoder))
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                offset = max(exc.start - pending, 0)
                return line + chunk[:offset].count(b"\n"), exc.object[exc.start]
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return line, exc.object[exc.start]
    return None


def _buffered(decoder: codecs.IncrementalDecoder) -> bytes:
    """Bytes an incremental decoder holds back from the previous chunk."""
    state = decoder.getstate()
    return state[0] if isinstance(state[0], bytes) else b""


def apply_column_mapping(
    path: Path, frame: pd.DataFrame, mapping: Mapping[str, str]
) -> pd.DataFrame:
    """Rename ``{their name: our name}``; every mismatch is an error naming both columns.

    Raises:
        DataValidationError: a mapped column is not in the file, a target column
            already exists (and is not itself renamed away), or two columns are
            mapped onto the same name.
    """
    if not mapping:
        return frame
    columns = [str(c) for c in frame.columns]
    for theirs, ours in mapping.items():
        if theirs not in columns:
            raise DataValidationError(
                f"{path}: column mapping {theirs}={ours}: the file has no column '{theirs}'",
                hint=f"found columns: {', '.join(columns)}; fix the name in --map or "
                "customers.columns",
            )
        if ours in columns and ours != theirs and ours not in mapping:
            raise DataValidationError(
                f"{path}: column mapping {theirs}={ours}: the file already has a column "
                f"'{ours}', so '{theirs}' cannot be renamed to it",
                hint=f"drop the mapping, or also rename the existing column (--map {ours}=OTHER)",
            )
    targets: dict[str, str] = {}
    for theirs, ours in mapping.items():
        if ours in targets:
            raise DataValidationError(
                f"{path}: columns '{targets[ours]}' and '{theirs}' are both mapped onto '{ours}'",
                hint="map each of our columns from one of the file's columns",
            )
        targets[ours] = theirs
    return frame.rename(columns=dict(mapping))


def suggest_mapping(missing: Iterable[str], found: Iterable[str]) -> list[str]:
    """``THEIRS=OURS`` suggestions for missing columns that look like found ones.

    ``CustomerID`` and ``customer-id`` both look like ``customer_id``: names are
    compared without case and punctuation, then by similarity.
    """
    found = [str(f) for f in found]
    by_key = {_key(f): f for f in found}
    suggestions = []
    for ours in missing:
        match = by_key.get(_key(ours))
        if match is None:
            close = difflib.get_close_matches(_key(ours), list(by_key), n=1, cutoff=0.8)
            match = by_key[close[0]] if close else None
        if match is not None and match != ours:
            suggestions.append(f"{match}={ours}")
    return suggestions


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())
