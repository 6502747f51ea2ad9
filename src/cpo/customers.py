"""Load and validate customer data from CSV or Parquet.

Reading (encoding, delimiter, column mapping) is :mod:`cpo.customer_reader`;
this module validates what it returns. Only behavioural columns are required:
``first_name`` may be absent or blank (the greeting falls back to
``customers.greeting_fallback``) and ``email`` may be absent (the send list is
then keyed by ``customer_id``).

Validation is columnar: each rule yields a boolean mask of offending rows, so a
file of millions of customers is checked without a per-row Python loop. Errors
name the file, the column and the first offending rows by line number (CSV,
counting the header as line 1) or row number (Parquet). Values of personal
columns (names, emails) are never echoed in messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from cpo.customer_reader import read_customer_table, suggest_mapping
from cpo.customer_settings import CustomerSettings
from cpo.errors import ConfigError, DataValidationError

TEXT_COLUMNS = ("customer_id", "first_name", "email", "location", "tier")
#: Text columns that must be present and non-blank.
REQUIRED_TEXT_COLUMNS = ("customer_id", "location", "tier")
#: Numeric columns and their inclusive ranges (None = unbounded).
NUMERIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    "age": (18, 120),
    "purchase_frequency": (0, None),
    "avg_order_value": (0, None),
    "last_engagement_days": (0, None),
    "historical_open_rate": (0, 1),
    "historical_click_rate": (0, 1),
}
INTEGER_COLUMNS = ("age", "last_engagement_days")
REQUIRED_COLUMNS = (*REQUIRED_TEXT_COLUMNS, *NUMERIC_RANGES)
#: A number written with a decimal comma (European spreadsheet exports).
DECIMAL_COMMA = r"-?\d+,\d+"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: Python's ``\s`` (Unicode whitespace) spelled out for Arrow's RE2, whose ``\s`` is ASCII only.
_SPACE = (
    r"\x{09}-\x{0d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
#: :data:`EMAIL_PATTERN` in RE2 syntax, for Arrow's vectorized match (same verdict per value).
EMAIL_PATTERN_RE2 = f"^[^@{_SPACE}]+@[^@{_SPACE}]+\\.[^@{_SPACE}]+$"
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class LoadedCustomers:
    """Valid customers plus what was set aside.

    Attributes:
        frame: Valid rows, typed; extra columns kept; original order.
        rejected: Rejected rows as read, with ``line`` and ``reason`` columns.
        total_rows: Rows in the file.
        reading: How the file was read (column mapping, encoding, detected
            delimiter); recorded in the manifest for later readers.
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    total_rows: int
    reading: dict[str, Any] = field(default_factory=dict)

    @property
    def has_email(self) -> bool:
        """Whether the customers have email addresses (else sends are keyed by id)."""
        return "email" in self.frame.columns


def load_customers(
    path: Path | str, on_invalid: str = "error", settings: CustomerSettings | None = None
) -> LoadedCustomers:
    """Read and validate customers.

    Args:
        path: A ``.csv`` (``.tsv``, ``.txt``) or ``.parquet`` file.
        on_invalid: ``"error"`` raises on the first invalid column; ``"skip"``
            sets invalid rows aside in ``rejected`` and keeps going.
        settings: Encoding, delimiter and column mapping (defaults: UTF-8,
            detected delimiter, no mapping).

    Raises:
        DataValidationError: the file is missing, a directory, empty, not
            decodable, lacks columns, or (with ``on_invalid="error"``) holds
            invalid rows.
    """
    if on_invalid not in ("error", "skip"):
        raise ValueError("on_invalid must be 'error' or 'skip'")
    path = Path(path)
    table = read_customer_table(path, settings or CustomerSettings())
    raw, first_line = table.frame, table.first_line
    _check_columns(path, raw)
    raw = _with_optional_columns(raw)
    numbers = {column: parse_numbers(raw[column].str.strip()) for column in NUMERIC_RANGES}
    problems = _find_problems(raw, numbers)
    lines = pd.Series(np.arange(len(raw)) + first_line, index=raw.index)
    bad = np.zeros(len(raw), dtype=bool)
    for problem in problems:
        bad |= problem.mask
    if bad.any() and on_invalid == "error":
        raise DataValidationError(
            _describe(path, raw, lines, problems, first_line),
            sensitive=_shown_ids(raw, problems),
        )
    rejected = _rejected_rows(raw, lines, problems, bad)
    valid = _typed(raw, numbers, ~bad)
    if valid.empty:
        raise nothing_valid(str(path), rejected, len(raw))
    return LoadedCustomers(
        frame=valid, rejected=rejected, total_rows=len(raw), reading=table.reading
    )


def merged_settings(
    base: CustomerSettings,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> CustomerSettings:
    """``base`` (the config's ``customers:``) with command-line values laid over it.

    ``columns`` is merged over ``base.columns`` (a key given on the command line
    wins); ``encoding`` and ``delimiter`` replace the config's when given.
    """
    merged = {
        **base.model_dump(),
        "columns": {**base.columns, **(columns or {})},
        "encoding": encoding or base.encoding,
        "delimiter": delimiter or base.delimiter,
    }
    try:
        return CustomerSettings.model_validate(merged)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(p) for p in problem["loc"])
        raise ConfigError(
            f"customers.{key}: {problem['msg'].removeprefix('Value error, ')}",
            hint="the command-line values (--map, --encoding, --delimiter) are merged over "
            "the customers section of experiment_config.yaml; make them agree",
        ) from None


@dataclass(frozen=True)
class _Problem:
    column: str
    reason: str
    mask: np.ndarray
    show_value: bool = True


def _check_columns(path: Path, raw: pd.DataFrame) -> None:
    """Fail when required columns are missing or when there are no rows."""
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        suggestions = suggest_mapping(missing, raw.columns)
        mapping = "; rename the file's columns with --map THEIRS=OURS (or customers.columns)"
        if suggestions:
            mapping += f", e.g. {' '.join(f'--map {s}' for s in suggestions)}"
        raise DataValidationError(
            f"{path}: missing required column(s): {', '.join(missing)}",
            hint=f"found columns: {', '.join(map(str, raw.columns)) or '(none)'}; "
            f"required: {', '.join(REQUIRED_COLUMNS)} (first_name and email are optional)"
            + mapping,
        )
    if raw.empty:
        raise DataValidationError(f"{path}: the file has a header but no customer rows")


def _with_optional_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """Add a blank ``first_name`` when absent; drop an ``email`` column that is all blank.

    A column of blank emails is what an export without addresses writes; it is
    the same as no email column, not one missing value per row.
    """
    if "first_name" not in raw.columns:
        raw = raw.assign(first_name="")
    if "email" in raw.columns and raw["email"].str.strip().eq("").all():
        raw = raw.drop(columns="email")
    return raw


def parse_numbers(stripped: pd.Series) -> np.ndarray:
    """Text cells as floats (NaN where not a number), parsed once per column.

    Arrow's cast parses a column of well-formed numbers about twice as fast as
    ``pandas.to_numeric``, to the same correctly rounded floats; a column with
    anything else (blanks, words, decimal commas) goes through pandas.
    """
    try:
        text = pa.array(stripped, type=pa.string(), from_pandas=True)
        numbers: Any = pc.cast(text, pa.float64())
        return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=float)


def nothing_valid(location: str, rejected: pd.DataFrame, total: int) -> DataValidationError:
    """The error for a customer file in which every row was rejected.

    Args:
        location: The file (or URI) named in the message.
        rejected: The rejected rows with their ``reason`` column.
        total: How many rows the file had.
    """
    common = rejected["reason"].str.split("; ").explode().value_counts()
    return DataValidationError(
        f"{location}: no valid customer rows ({total} rejected; most common reason: "
        f"{common.index[0]} in {int(common.iloc[0])} row(s))",
        hint="fix that column in the file (or map the right column onto it with --map); "
        "rejected.csv in the run folder has the reasons of every row",
    )


def _find_problems(raw: pd.DataFrame, numbers: Mapping[str, np.ndarray]) -> list[_Problem]:
    """Evaluate every validation rule as a vectorized mask."""
    problems: list[_Problem] = []
    required_text = [*REQUIRED_TEXT_COLUMNS, *(["email"] if "email" in raw.columns else [])]
    for column in required_text:
        blank = raw[column].str.strip().eq("").to_numpy()
        problems.append(_Problem(column, "missing value", blank, False))
    if "email" in raw.columns:
        email = raw["email"].str.strip()
        bad_email = ~_matches_email(email) & (email != "").to_numpy()
        problems.append(_Problem("email", "not a valid email address", bad_email, False))
    ids = raw["customer_id"].str.strip()
    problems.append(_Problem("customer_id", "duplicate id (first occurrence kept)", _repeats(ids)))
    for column, (low, high) in NUMERIC_RANGES.items():
        problems.extend(_numeric_problems(raw[column], numbers[column], column, low, high))
    return problems


def _repeats(ids: pd.Series) -> np.ndarray:
    """Rows whose non-blank id occurred on an earlier row.

    Sorting 64-bit hashes of the ids (:func:`cpo.experiment.aggregate.id_hashes`)
    shows in a fraction of ``Series.duplicated``'s time that no two ids can be
    equal, the usual case; only when two hashes meet are the strings compared.
    """
    from cpo.experiment.aggregate import id_hashes
    from cpo.idjoin import text_array

    hashes = np.sort(id_hashes(text_array(ids).fill_null("")))
    if len(hashes) < 2 or not bool((hashes[1:] == hashes[:-1]).any()):
        return np.zeros(len(ids), dtype=bool)
    return (ids.duplicated(keep="first") & (ids != "")).to_numpy()


def _has_surrounding_space(column: pd.Series) -> bool:
    """Whether any value starts or ends with whitespace (what ``str.strip`` removes)."""
    text: Any = pa.array(column, type=pa.string(), from_pandas=True)
    found: Any = pc.match_substring_regex(text, f"^[{_SPACE}]|[{_SPACE}]$")
    return bool(pc.any(found).as_py())


def _matches_email(email: pd.Series) -> np.ndarray:
    """Which stripped values look like an email address (:data:`EMAIL_PATTERN`)."""
    text: Any = pa.array(email, type=pa.string(), from_pandas=True).fill_null("")
    found: Any = pc.match_substring_regex(text, EMAIL_PATTERN_RE2)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _numeric_problems(
    text: pd.Series, values: np.ndarray, column: str, low: float | None, high: float | None
) -> list[_Problem]:
    """Missing, non-numeric, non-integer and out-of-range checks for one column."""
    stripped = text.str.strip()
    missing = (stripped.str.lower().isin(["", "nan", "na", "null", "none"])).to_numpy()
    not_number = np.isnan(values) & ~missing
    decimal_comma = np.zeros_like(not_number)
    if not_number.any():  # the pattern runs on the bad cells only
        decimal_comma[not_number] = (
            stripped[not_number].str.fullmatch(DECIMAL_COMMA).to_numpy(dtype=bool)
        )
    finite = np.isfinite(values)
    problems = [
        _Problem(column, "missing value", missing),
        _Problem(
            column,
            "not a number",
            (not_number & ~decimal_comma) | (~finite & ~np.isnan(values)),
        ),
        _Problem(
            column, "decimal comma: write numbers with a point (12.5, not 12,5)", decimal_comma
        ),
    ]
    if column in INTEGER_COLUMNS:
        fractional = finite & (np.floor(values) != values)
        problems.append(_Problem(column, "must be a whole number", fractional))
    if low is not None or high is not None:
        with np.errstate(invalid="ignore"):
            below = finite & (values < low) if low is not None else np.zeros_like(finite)
            above = finite & (values > high) if high is not None else np.zeros_like(finite)
        bounds = f"[{_fmt(low)}, {_fmt(high)}]" if high is not None else f">= {_fmt(low)}"
        problems.append(_Problem(column, f"out of range, must be {bounds}", below | above))
    return problems


def _fmt(value: float | None) -> str:
    """Format a bound without a spurious '.0'."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _describe(
    path: Path, raw: pd.DataFrame, lines: pd.Series, problems: list[_Problem], first_line: int
) -> str:
    """One message naming each failing column and its first offending rows."""
    unit = "line" if first_line == 2 else "row"
    parts = [f"{path}: invalid customer data"]
    for problem in problems:
        if not problem.mask.any():
            continue
        positions = np.flatnonzero(problem.mask)
        examples = []
        for pos in positions[:MAX_EXAMPLES]:
            value = raw[problem.column].iloc[pos] if problem.show_value else None
            shown = f" value {value!r}" if value is not None else ""
            customer = _customer_ref(raw, pos)
            examples.append(f"{unit} {lines.iloc[pos]}{customer}{shown}")
        more = f" (+{len(positions) - MAX_EXAMPLES} more)" if len(positions) > MAX_EXAMPLES else ""
        parts.append(
            f"  column '{problem.column}': {problem.reason} in {len(positions)} row(s): "
            + "; ".join(examples)
            + more
        )
    message = "\n".join(parts)
    return message + "\n  fix: correct these rows, or pass --on-invalid skip to set them aside"


def _shown_ids(raw: pd.DataFrame, problems: list[_Problem]) -> list[str]:
    """The customer ids an error message names (logs mask them)."""
    shown: list[str] = []
    for problem in problems:
        for pos in np.flatnonzero(problem.mask)[:MAX_EXAMPLES]:
            shown.append(str(raw["customer_id"].iloc[pos]).strip())
    return shown


def _customer_ref(raw: pd.DataFrame, position: int) -> str:
    """`` (customer_id=X)`` when the row has an id."""
    customer_id = str(raw["customer_id"].iloc[position]).strip()
    return f" (customer_id={customer_id})" if customer_id else ""


def _rejected_rows(
    raw: pd.DataFrame, lines: pd.Series, problems: list[_Problem], bad: np.ndarray
) -> pd.DataFrame:
    """Rejected rows as read, with their line number and every reason."""
    reasons = pd.Series("", index=raw.index, dtype=object)
    for problem in problems:
        if problem.mask.any():
            label = f"{problem.column}: {problem.reason}"
            reasons[problem.mask] = (
                reasons[problem.mask].where(
                    reasons[problem.mask] == "", reasons[problem.mask] + "; "
                )
                + label
            )
    rejected = raw.loc[bad].copy()
    rejected.insert(0, "reason", reasons[bad])
    rejected.insert(0, "line", lines[bad])
    return rejected.reset_index(drop=True)


def _typed(raw: pd.DataFrame, numbers: Mapping[str, np.ndarray], keep: np.ndarray) -> pd.DataFrame:
    """The rows in ``keep`` with validated columns typed; extra columns stay text.

    When every row is kept the text columns are shared with ``raw``, not copied,
    and a column is stripped only when a value has surrounding whitespace (a
    10M-row file would otherwise be held twice at the peak of the run).
    """
    typed = raw.copy(deep=False) if keep.all() else raw.loc[keep].reset_index(drop=True)
    for column in TEXT_COLUMNS:
        if column in typed.columns and _has_surrounding_space(typed[column]):
            typed[column] = typed[column].str.strip()
    for column in NUMERIC_RANGES:
        values = numbers[column][keep]
        typed[column] = values.astype("int64") if column in INTEGER_COLUMNS else values
    return typed
