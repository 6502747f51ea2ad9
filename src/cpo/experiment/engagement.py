"""Import engagement from a real send and join it to the assignments.

Three layouts are accepted, as CSV or Parquet (the layout is recognised by its
columns):

(a) **one row per recipient**: ``customer_id, opened, clicked, converted`` with
    values 0/1/true/false (case-insensitive; Parquet booleans and 0.0/1.0 too);
(b) **one row per event**: ``customer_id, event, timestamp`` with ``event`` in
    delivered, open, click, conversion, unsubscribe, bounce (past forms such as
    ``opened`` are accepted) and an ISO 8601 timestamp (no zone = UTC);
(c) **counts per arm**: ``experiment_arm[, segment], sent, opened, clicked,
    converted`` (a ``sent`` column and no ``customer_id``), e.g. published
    per-arm results. :func:`import_counts` validates them (whole numbers >= 0,
    opened <= sent, clicked <= opened, converted <= clicked, one row per
    (arm, segment), arms and segments of the run) and they go straight to
    sufficient statistics; nothing is expanded to per-recipient rows. Inside a
    run the counts are written to ``engagement_counts.csv`` and
    ``engagement.csv`` keeps its header with no rows (there are no recipients to
    list). The table below is about (a) and (b).

What is checked, and what happens. Every case is counted in
:attr:`EngagementImport.counts` and, when it changes the data, reported as a
warning; nothing is dropped silently.

==========================  =====================================================
case                        handling
==========================  =====================================================
malformed value             error naming the file, column and lines
unknown customer            not in the assignments: excluded, counted, warning
holdout customer            received nothing, so its rows are excluded, counted,
                            warning
duplicate rows (a)          combined: a recipient opened if any of their rows
                            says so (same for clicks, conversions); counted,
                            warning, with how many disagreed
duplicate events (b)        identical (customer, event, timestamp): one kept,
                            counted; repeated opens at different times are
                            normal and simply mean "opened"
event before the send (b)   timestamp earlier than the customer's ``assigned_at``
                            (or the given send time): excluded, counted, warning
click without an open       counted as an open, warning (mail privacy proxies
                            and image blocking hide opens, so the click is the
                            better evidence)
conversion without a click  kept as a conversion, no click invented, warning
                            (attribution windows credit conversions made without
                            a tracked click; inventing clicks would inflate the
                            primary metric, click rate)
missing recipient (a)       an assigned recipient without a row is *excluded*
                            (unknown outcome, not "no engagement"), counted per
                            arm, warning; the analysis' sample-ratio check then
                            shows whether the loss differs between arms
missing recipient (b)       no events means no engagement: 0/0/0
==========================  =====================================================

``bounce``, ``unsubscribe`` and ``delivered`` events are counted; bounced
recipients stay in the denominator (the analysis is intent-to-treat: they were
sent the message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cpo import run_folder
from cpo.errors import DataValidationError
from cpo.experiment.aggregate import DEFAULT_SEGMENT, SufficientStatistics, locate_ids
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.textcsv import read_text_csv

ENGAGEMENT_COLUMNS = (
    "customer_id",
    "experiment_arm",
    "segment",
    "opened",
    "clicked",
    "converted",
    "engagement_source",
)
FLAG_COLUMNS = ("opened", "clicked", "converted")
LAYOUT_RECIPIENTS = "recipients"
LAYOUT_EVENTS = "events"
LAYOUT_COUNTS = "counts"
#: Written to the run folder by a counts import (engagement.csv then has no rows).
COUNT_COLUMNS = ("sent", "opened", "clicked", "converted")
COUNTS_REQUIRED = ("experiment_arm", *COUNT_COLUMNS)
#: Each count must not exceed the one before it (the recipients it is a subset of).
COUNT_SUBSETS = (("opened", "sent"), ("clicked", "opened"), ("converted", "clicked"))
EVENT_TYPES = ("delivered", "open", "click", "conversion", "unsubscribe", "bounce")
EVENT_ALIASES = {
    "delivery": "delivered",
    "opened": "open",
    "opens": "open",
    "clicked": "click",
    "clicks": "click",
    "converted": "conversion",
    "convert": "conversion",
    "conversions": "conversion",
    "unsubscribed": "unsubscribe",
    "bounced": "bounce",
}
_TRUE = frozenset({"1", "1.0", "true", "t"})
_FALSE = frozenset({"0", "0.0", "false", "f"})
MAX_EXAMPLES = 5
SOURCE_IMPORTED = "imported"


@dataclass(frozen=True)
class EngagementImport:
    """Engagement joined to the assignments, and what the import found.

    Attributes:
        frame: ``engagement.csv`` rows (recipients only), in assignment order.
        layout: ``recipients`` (a) or ``events`` (b).
        counts: Every validation count (zero when the case did not occur).
        warnings: ``{code, message}`` records for the cases that changed the data.
        source: ``imported``.
    """

    frame: pd.DataFrame
    layout: str
    counts: dict[str, int]
    warnings: list[dict[str, str]] = field(default_factory=list)
    source: str = SOURCE_IMPORTED


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def read_table(path: Path) -> tuple[pd.DataFrame, int, str]:
    """Read a CSV (as text columns) or a Parquet file (with its own column types).

    Returns:
        The frame, the line/row number of its first data row, and the unit
        (``line`` for CSV, counting the header as line 1; ``row`` for Parquet).

    Raises:
        DataValidationError: missing, empty, unreadable or of another type.
    """
    if path.is_dir():  # a Parquet dataset: a run's engagement.parquet/ (part files in order)
        try:
            return _strip_columns(run_folder.read_dataset(path)), 1, "row"
        except (OSError, pa.ArrowException) as exc:
            raise DataValidationError(f"{path}: cannot be read as parquet: {exc}") from None
    if not path.is_file():
        raise DataValidationError(f"{path}: engagement file not found")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the engagement file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _strip_columns(pd.read_parquet(path)), 1, "row"
        if suffix in (".csv", ".txt"):
            frame = read_text_csv(path, skip_initial_space=True)
            return _strip_columns(frame), 2, "line"
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    raise DataValidationError(
        f"{path}: unsupported engagement file type '{suffix}'", hint="use a .csv or .parquet file"
    )


def _strip_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def detect_layout(path: Path, columns: list[str]) -> str:
    """The layout of an engagement file, from its (lower-cased) column names.

    ``events`` when there is an ``event`` column; ``counts`` when there is a
    ``sent`` column and no ``customer_id``; ``recipients`` otherwise.

    Raises:
        DataValidationError: a column the layout needs is missing.
    """
    needed: tuple[str, ...]
    if "event" in columns:
        layout, needed = LAYOUT_EVENTS, ("customer_id", "timestamp")
    elif "sent" in columns and "customer_id" not in columns:
        layout, needed = LAYOUT_COUNTS, COUNTS_REQUIRED
    else:
        layout, needed = LAYOUT_RECIPIENTS, ("customer_id", *FLAG_COLUMNS)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)} for the {layout} layout",
            hint="use customer_id, opened, clicked, converted (one row per recipient), "
            "customer_id, event, timestamp (one row per event) or "
            "experiment_arm[, segment], sent, opened, clicked, converted (counts per arm); "
            f"found: {', '.join(columns) or '(none)'}",
        )
    return layout


def peek_columns(path: Path | str) -> list[str]:
    """The (lower-cased) column names of a CSV or Parquet file, reading only its header.

    Raises:
        DataValidationError: the file is missing, empty or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: engagement file not found")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the engagement file is empty")
    try:
        if path.suffix.lower() == ".parquet":
            names = pq.read_schema(path).names
        else:
            names = list(pd.read_csv(path, nrows=0, skipinitialspace=True).columns)
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        OSError,
        ValueError,
        pa.ArrowException,
    ) as exc:
        # EmptyDataError is a ValueError.
        raise DataValidationError(f"{path}: cannot be read: {exc}") from None
    return [str(c).strip().lower() for c in names]


def is_counts_file(path: Path | str) -> bool:
    """True when the file holds aggregated counts (a ``sent`` column, no ``customer_id``)."""
    if Path(path).is_dir():
        return False  # a run's engagement dataset: one row per recipient
    if Path(path).suffix.lower() not in (".csv", ".txt", ".parquet"):
        return False  # the reader of the other layouts names the unsupported type
    columns = peek_columns(path)
    return "sent" in columns and "customer_id" not in columns and "event" not in columns


def _examples(
    frame: pd.DataFrame, mask: np.ndarray, column: str, first: int, unit: str, show: bool = True
) -> str:
    """``line 3 value 'x'; line 9 value 'y' (+4 more)`` for the rows in ``mask``."""
    positions = np.flatnonzero(mask)
    shown = []
    for pos in positions[:MAX_EXAMPLES]:
        value = f" value {frame[column].iloc[pos]!r}" if show else ""
        shown.append(f"{unit} {pos + first}{value}")
    more = f" (+{len(positions) - MAX_EXAMPLES} more)" if len(positions) > MAX_EXAMPLES else ""
    return "; ".join(shown) + more


def _fail(path: Path, column: str, reason: str, detail: str, hint: str | None = None) -> None:
    raise DataValidationError(f"{path}: column '{column}': {reason}: {detail}", hint=hint)


def _check_ids(path: Path, frame: pd.DataFrame, first: int, unit: str) -> pd.Series:
    raw = frame["customer_id"]
    ids = raw.astype(str).str.strip()
    blank = (raw.isna() | ids.eq("")).to_numpy()
    if blank.any():
        _fail(
            path,
            "customer_id",
            f"missing value in {int(blank.sum())} row(s)",
            _examples(frame, blank, "customer_id", first, unit, show=False),
        )
    return ids


def parse_flags(path: Path, frame: pd.DataFrame, column: str, first: int, unit: str) -> np.ndarray:
    """Parse a 0/1/true/false column into a boolean array, or fail naming the lines."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        # Parquet booleans and integers: no text round trip; nulls are errors.
        number = values.astype("float64").to_numpy()
        truthy, bad = number == 1, ~np.isin(number, (0.0, 1.0))
    else:
        text = values.astype(str).str.strip().str.lower()
        truthy = text.isin(_TRUE).to_numpy()
        bad = ~(truthy | text.isin(_FALSE).to_numpy())
    if bad.any():
        _fail(
            path,
            column,
            f"not 0/1/true/false in {int(bad.sum())} row(s)",
            _examples(frame, bad, column, first, unit),
        )
    return truthy


def parse_events(path: Path, frame: pd.DataFrame, first: int, unit: str) -> pd.Series:
    """Normalise event names, or fail naming the lines with unknown ones."""
    events = frame["event"].astype(str).str.strip().str.lower().replace(EVENT_ALIASES)
    bad = ~events.isin(EVENT_TYPES).to_numpy()
    if bad.any():
        _fail(
            path,
            "event",
            f"unknown event in {int(bad.sum())} row(s)",
            _examples(frame, bad, "event", first, unit),
            hint=f"events must be one of: {', '.join(EVENT_TYPES)}",
        )
    return events


def parse_timestamps(path: Path, frame: pd.DataFrame, first: int, unit: str) -> pd.Series:
    """Parse ISO 8601 timestamps (naive = UTC), or fail naming the lines."""
    values = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps
        zone = values.dt.tz
        parsed = values.dt.tz_localize("UTC") if zone is None else values.dt.tz_convert("UTC")
    else:
        text = values.astype(str).str.strip()
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        _fail(
            path,
            "timestamp",
            f"not an ISO 8601 timestamp in {int(bad.sum())} row(s)",
            _examples(frame, bad, "timestamp", first, unit),
            hint="write timestamps like 2025-01-31T14:05:00Z",
        )
    return parsed


# --------------------------------------------------------------------------
# Joining to the assignments (integer positions, no per-row Python)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    """Where each file row's customer is in the assignments.

    Attributes:
        position: Row of the customer in the assignments, -1 when unknown.
        unknown: The customer is not in the assignments.
        holdout: The customer is in the holdout.
    """

    position: np.ndarray
    unknown: np.ndarray
    holdout: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Rows of recipients (known and not held out)."""
        return ~(self.unknown | self.holdout)


def _locate(ids: pd.Series, assignments: pd.DataFrame) -> _Located:
    # Sorted 64-bit hashes: much faster than pandas get_indexer or Arrow's index_in.
    known = pa.array(assignments["customer_id"].astype(str), type=pa.large_string())
    position = locate_ids(pa.array(ids, type=pa.large_string()), known)
    unknown = position < 0
    in_holdout = (assignments["experiment_arm"] == HOLDOUT_ARM).to_numpy(dtype=bool)
    holdout = ~unknown & in_holdout[np.where(unknown, 0, position)]
    return _Located(position, unknown, holdout)


def _excluded_counts(ids: pd.Series, located: _Located) -> dict[str, int]:
    return {
        "unknown_customers": int(ids[located.unknown].nunique()),
        "unknown_customer_rows": int(located.unknown.sum()),
        "holdout_customers": int(np.unique(located.position[located.holdout]).size),
        "holdout_rows": int(located.holdout.sum()),
    }


def _exclusion_warnings(counts: dict[str, int], unit: str) -> list[dict[str, str]]:
    warnings = []
    if counts["unknown_customers"]:
        warnings.append(
            {
                "code": "unknown_customers",
                "message": f"{counts['unknown_customers']} customer(s) in the engagement file are "
                f"not in the assignments; their {counts['unknown_customer_rows']} {unit} "
                "were excluded",
            }
        )
    if counts["holdout_customers"]:
        warnings.append(
            {
                "code": "holdout_engagement",
                "message": f"{counts['holdout_customers']} holdout customer(s) have engagement "
                f"although they were sent nothing; their {counts['holdout_rows']} {unit} "
                "were excluded",
            }
        )
    return warnings


def _consistency(flags: dict[str, np.ndarray], counts: dict[str, int]) -> list[dict[str, str]]:
    """Click without open -> open; conversion without click is kept. Count both."""
    click_no_open = flags["clicked"] & ~flags["opened"]
    conv_no_click = flags["converted"] & ~flags["clicked"]
    counts["click_without_open"] = int(click_no_open.sum())
    counts["conversion_without_click"] = int(conv_no_click.sum())
    flags["opened"] = flags["opened"] | click_no_open
    return consistency_warnings(counts)


def consistency_warnings(counts: dict[str, int]) -> list[dict[str, str]]:
    """The warnings of the ``click_without_open`` and ``conversion_without_click`` counts."""
    warnings = []
    if counts["click_without_open"]:
        warnings.append(
            {
                "code": "click_without_open",
                "message": f"{counts['click_without_open']} recipient(s) clicked without a "
                "recorded open; counted as opened "
                "(mail privacy proxies and image blocking hide opens)",
            }
        )
    if counts["conversion_without_click"]:
        warnings.append(
            {
                "code": "conversion_without_click",
                "message": f"{counts['conversion_without_click']} recipient(s) converted without a "
                "recorded click; kept as conversions, no click was added",
            }
        )
    return warnings


def _finish(
    assignments: pd.DataFrame, include: np.ndarray, flags: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The included assignment rows (in order) with their flags as 0/1 and the source."""
    out = assignments.loc[include, ["customer_id", "experiment_arm", "segment"]]
    out = out.reset_index(drop=True)
    out["customer_id"] = out["customer_id"].astype(str)
    for column in FLAG_COLUMNS:
        out[column] = flags[column][include].astype("int8")
    out["engagement_source"] = SOURCE_IMPORTED
    return out[list(ENGAGEMENT_COLUMNS)]


def _is_recipient(assignments: pd.DataFrame) -> np.ndarray:
    return (assignments["experiment_arm"] != HOLDOUT_ARM).to_numpy(dtype=bool)


# --------------------------------------------------------------------------
# The two layouts
# --------------------------------------------------------------------------


def _combine_rows(
    position: np.ndarray, values: dict[str, np.ndarray], size: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Combine repeated rows per customer: a flag is set if any row sets it.

    Returns:
        The flags per assignment row, the rows-per-customer count, and the mask of
        customers whose rows disagree on some flag.
    """
    rows = np.bincount(position, minlength=size)
    flags, disagree = {}, np.zeros(size, dtype=bool)
    for column, value in values.items():
        trues = np.bincount(position, weights=value, minlength=size)
        flags[column] = trues > 0
        disagree |= (trues > 0) & (trues < rows)
    return flags, rows, disagree


def _import_recipients(
    path: Path, raw: pd.DataFrame, first: int, unit: str, assignments: pd.DataFrame
) -> EngagementImport:
    ids = _check_ids(path, raw, first, unit)
    values = {c: parse_flags(path, raw, c, first, unit) for c in FLAG_COLUMNS}
    located = _locate(ids, assignments)
    kept = located.kept
    counts = _excluded_counts(ids, located)
    flags, rows, disagree = _combine_rows(
        located.position[kept], {c: v[kept] for c, v in values.items()}, len(assignments)
    )
    present = rows > 0
    counts["rows"] = len(raw)
    counts["duplicate_rows"] = int(kept.sum() - present.sum())
    counts["duplicate_conflicts"] = int(disagree.sum())
    warnings = [*_exclusion_warnings(counts, "row(s)"), *duplicate_warnings(counts)]
    warnings += _consistency(flags, counts)
    recipient = _is_recipient(assignments)
    missing = recipient & ~present
    counts["missing_recipients"] = int(missing.sum())
    by_arm = assignments.loc[missing, "experiment_arm"].value_counts().sort_index()
    warnings += missing_warnings(counts, {str(arm): int(n) for arm, n in by_arm.items()})
    frame = _finish(assignments, recipient & present, flags)
    counts["recipients"] = len(frame)
    return EngagementImport(frame, "recipients", counts, warnings)


def exclusion_warnings(counts: dict[str, int]) -> list[dict[str, str]]:
    """The warnings of a per-recipient import's unknown and holdout customers."""
    return _exclusion_warnings(counts, "row(s)")


def duplicate_warnings(counts: dict[str, int]) -> list[dict[str, str]]:
    """The warning of a per-recipient import's combined duplicate rows (none without)."""
    if not counts["duplicate_rows"]:
        return []
    return [
        {
            "code": "duplicate_rows",
            "message": f"{counts['duplicate_rows']} duplicate row(s) combined (a recipient "
            "engaged if any of their rows says so); "
            f"{counts['duplicate_conflicts']} recipient(s) had rows that disagreed",
        }
    ]


def missing_warnings(counts: dict[str, int], by_arm: dict[str, int]) -> list[dict[str, str]]:
    """The warning of assigned recipients without a row (``by_arm``: their count per arm)."""
    if not counts["missing_recipients"]:
        return []
    detail = ", ".join(f"{arm} {n}" for arm, n in sorted(by_arm.items()))
    return [
        {
            "code": "missing_recipients",
            "message": f"{counts['missing_recipients']} recipient(s) have no row in the "
            f"engagement file ({detail}); they are excluded from the analysis "
            "(outcome unknown)",
        }
    ]


def _import_events(
    path: Path,
    raw: pd.DataFrame,
    first: int,
    unit: str,
    assignments: pd.DataFrame,
    send_time: pd.Timestamp | None,
) -> EngagementImport:
    ids = _check_ids(path, raw, first, unit)
    codes = pd.Categorical(parse_events(path, raw, first, unit), categories=EVENT_TYPES).codes
    stamps = parse_timestamps(path, raw, first, unit).to_numpy(dtype="datetime64[ns]")
    located = _locate(ids, assignments)
    counts = _excluded_counts(ids, located)
    counts["rows"] = len(raw)
    kept = np.flatnonzero(located.kept)
    events = pd.DataFrame(
        {"p": located.position[kept], "e": codes[kept], "t": stamps[kept].view("int64")}
    )
    unique = ~events.duplicated().to_numpy()
    counts["duplicate_events"] = int((~unique).sum())
    early = _before_send(events, assignments, send_time) & unique
    counts["events_before_send"] = int(early.sum())
    events = events.loc[unique & ~early]
    warnings = _event_warnings(counts)
    table = np.zeros((len(assignments), len(EVENT_TYPES)), dtype=bool)
    table[events["p"].to_numpy(), events["e"].to_numpy()] = True
    for index, event in enumerate(EVENT_TYPES):
        counts[f"{event}_events"] = int((events["e"] == index).sum())
    recipient = _is_recipient(assignments)
    has_events = np.bincount(events["p"].to_numpy(), minlength=len(assignments)) > 0
    column = {event: table[:, i] for i, event in enumerate(EVENT_TYPES)}
    counts["recipients_without_events"] = int((recipient & ~has_events).sum())
    counts["bounced_recipients"] = int((recipient & column["bounce"]).sum())
    counts["unsubscribed_recipients"] = int((recipient & column["unsubscribe"]).sum())
    flags = {
        "opened": column["open"],
        "clicked": column["click"],
        "converted": column["conversion"],
    }
    warnings += _consistency(flags, counts)
    frame = _finish(assignments, recipient, flags)
    counts["recipients"] = len(frame)
    return EngagementImport(frame, "events", counts, warnings)


def _event_warnings(counts: dict[str, int]) -> list[dict[str, str]]:
    warnings = _exclusion_warnings(counts, "event(s)")
    if counts["duplicate_events"]:
        warnings.append(
            {
                "code": "duplicate_events",
                "message": f"{counts['duplicate_events']} identical duplicate event(s) "
                "(same customer, event and timestamp) counted once",
            }
        )
    if counts["events_before_send"]:
        warnings.append(
            {
                "code": "events_before_send",
                "message": f"{counts['events_before_send']} event(s) are timestamped before the "
                "send and were excluded",
            }
        )
    return warnings


def _before_send(
    events: pd.DataFrame, assignments: pd.DataFrame, send_time: pd.Timestamp | None
) -> np.ndarray:
    """Mask of events timestamped before the send (each customer's ``assigned_at``)."""
    if send_time is not None:
        moment = send_time.tz_localize("UTC") if send_time.tzinfo is None else send_time
        return events["t"].to_numpy() < moment.value
    # assigned_at repeats (one value per run): parse each distinct text once.
    codes, texts = pd.factorize(assignments["assigned_at"].astype(str))
    parsed = pd.to_datetime(pd.Series(texts), utc=True, errors="coerce", format="ISO8601")
    sent = parsed.to_numpy(dtype="datetime64[ns]").view("int64")[codes]
    sent_for_event = sent[events["p"].to_numpy()]
    valid = sent_for_event != np.iinfo(np.int64).min  # NaT: no send time, no check
    return valid & (events["t"].to_numpy() < sent_for_event)


# --------------------------------------------------------------------------
# Counts per arm (and segment): straight to sufficient statistics
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementCounts:
    """Aggregated engagement per (arm, segment), validated; no per-recipient rows.

    Attributes:
        table: Columns ``experiment_arm, segment, sent, opened, clicked,
            converted, engagement_source`` (what ``engagement_counts.csv``
            holds), sorted by arm then segment.
        counts: Validation counts (rows, arms, segments, holdout rows, ...).
        warnings: ``{code, message}`` records for the cases that changed the data.
        has_segments: The file had a ``segment`` column (else every row is ``all``).
        layout: ``counts``.
        source: ``imported``.
    """

    table: pd.DataFrame
    counts: dict[str, int]
    warnings: list[dict[str, str]] = field(default_factory=list)
    has_segments: bool = False
    layout: str = LAYOUT_COUNTS
    source: str = SOURCE_IMPORTED

    @property
    def frame(self) -> pd.DataFrame:
        """``engagement.csv`` of a counts import: the columns, no rows (no recipient is known)."""
        return pd.DataFrame({name: pd.Series(dtype=str) for name in ENGAGEMENT_COLUMNS})

    def statistics(self) -> SufficientStatistics:
        """The sufficient statistics of the analysis, built directly from the counts."""
        return counts_statistics(self.table)

    def by_arm(self) -> dict[str, dict[str, int]]:
        """Counts summed per arm (``sent``, ``opened``, ``clicked``, ``converted``)."""
        summed = self.table.groupby("experiment_arm", sort=True)[list(COUNT_COLUMNS)].sum()
        return {
            str(arm): {str(k): int(v) for k, v in row.items()} for arm, row in summed.iterrows()
        }


def counts_statistics(table: pd.DataFrame) -> SufficientStatistics:
    """Sufficient statistics from a counts table (``engagement_counts.csv`` rows)."""
    rows = table.to_dict("records")
    counts = {
        (str(row["experiment_arm"]), str(row["segment"])): {c: int(row[c]) for c in COUNT_COLUMNS}
        for row in rows
    }
    sources = {str(row.get("engagement_source") or SOURCE_IMPORTED) for row in rows}
    return SufficientStatistics.from_counts(counts, engagement_sources=sources)


def import_counts(
    path: Path | str,
    assignments: pd.DataFrame | None = None,
    arms: Sequence[str] | None = None,
) -> EngagementCounts:
    """Read and validate an aggregated counts file (CSV or Parquet).

    Columns ``experiment_arm[, segment], sent, opened, clicked, converted``:
    non-negative whole numbers with ``opened <= sent``, ``clicked <= opened``
    and ``converted <= clicked``, one row per (arm, segment). Rows of the
    ``holdout`` arm are excluded with a warning (the holdout was sent nothing).

    Args:
        path: The counts file.
        assignments: The run's ``assignments.csv``: arms and segments must be
            the run's, and ``sent`` may not exceed the customers assigned
            (fewer is a ``missing_recipients`` warning).
        arms: Known arm names (e.g. from ``experiment_design.json``) when there
            are no assignments; None = any arm.

    Raises:
        DataValidationError: naming the file, the lines and the fix.
    """
    path = Path(path)
    raw, first, unit = read_table(path)
    if raw.empty:
        raise DataValidationError(f"{path}: the engagement file has a header but no rows")
    layout = detect_layout(path, list(raw.columns))
    if layout != LAYOUT_COUNTS:
        raise DataValidationError(
            f"{path}: expected counts (experiment_arm[, segment], sent, opened, clicked, "
            f"converted) but the columns are those of the {layout} layout",
            hint="per-recipient and event files need the run's assignments "
            "(`cpo analyze FILE --assignments assignments.csv`)",
        )
    has_segments = "segment" in raw.columns
    table = _parse_counts(path, raw, first, unit)
    lines = np.arange(len(table)) + first
    table, lines, counts, warnings = _drop_holdout(table, lines, unit)
    if assignments is not None:
        recipients = assignments.loc[_is_recipient(assignments)]
        known_arms = sorted(set(recipients["experiment_arm"].astype(str)))
        _check_known(path, table, lines, unit, "experiment_arm", known_arms, "the run's arms")
        if has_segments:
            segments = sorted(set(recipients["segment"].astype(str)))
            _check_known(path, table, lines, unit, "segment", segments, "the run's segments")
        warnings += _check_sent(path, table, lines, unit, recipients, has_segments, counts)
    elif arms is not None:
        known_arms = sorted(set(arms) - {HOLDOUT_ARM})
        _check_known(path, table, lines, unit, "experiment_arm", known_arms, "the design's arms")
    if table.empty:
        raise DataValidationError(f"{path}: no row left after excluding the holdout arm")
    counts.update(
        rows=len(raw),
        arms=int(table["experiment_arm"].nunique()),
        segments=int(table["segment"].nunique()),
        recipients=int(table["sent"].sum()),
    )
    table = table.sort_values(["experiment_arm", "segment"], kind="stable").reset_index(drop=True)
    return EngagementCounts(table, counts, warnings, has_segments)


def _parse_counts(path: Path, raw: pd.DataFrame, first: int, unit: str) -> pd.DataFrame:
    """Labels, whole-number counts, subset order and unique (arm, segment) rows."""
    arms = _parse_labels(path, raw, "experiment_arm", first, unit).str.lower()
    if "segment" in raw.columns:
        segments = _parse_labels(path, raw, "segment", first, unit)
    else:
        segments = pd.Series(DEFAULT_SEGMENT, index=raw.index)
    table = pd.DataFrame({"experiment_arm": arms.to_numpy(), "segment": segments.to_numpy()})
    for column in COUNT_COLUMNS:
        table[column] = _parse_count(path, raw, column, first, unit)
    for part, whole in COUNT_SUBSETS:
        _check_subset(path, table, part, whole, first, unit)
    _check_unique_keys(path, table, first, unit)
    table["engagement_source"] = SOURCE_IMPORTED
    return table


def _parse_labels(path: Path, frame: pd.DataFrame, column: str, first: int, unit: str) -> pd.Series:
    text = frame[column].astype(str).str.strip()
    blank = (frame[column].isna() | text.eq("")).to_numpy()
    if blank.any():
        _fail(
            path,
            column,
            f"missing value in {int(blank.sum())} row(s)",
            _examples(frame, blank, column, first, unit, show=False),
            hint=f"every row needs its {column}",
        )
    return text


def _parse_count(path: Path, frame: pd.DataFrame, column: str, first: int, unit: str) -> np.ndarray:
    """A column of non-negative whole numbers, or fail naming the lines."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        number = np.full(len(values), np.nan)
    elif pd.api.types.is_numeric_dtype(values):
        number = values.astype("float64").to_numpy()
    else:
        text = values.astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(number) | (number < 0) | (number != np.floor(number))
    if bad.any():
        _fail(
            path,
            column,
            f"not a non-negative whole number in {int(bad.sum())} row(s)",
            _examples(frame, bad, column, first, unit),
            hint=f"'{column}' counts recipients: write a whole number >= 0 such as 1000 "
            "(no thousands separators, no blanks)",
        )
    return number.astype(np.int64)


_SUBSET_HINTS = {
    "opened": "count recipients who opened at least once (not open events), out of those sent",
    "clicked": "a recipient who clicked also opened: count clickers among the openers "
    "(add clickers without a tracked open to opened)",
    "converted": "count recipients who clicked and converted (at most one conversion each)",
}


def _check_subset(
    path: Path, table: pd.DataFrame, part: str, whole: str, first: int, unit: str
) -> None:
    bad = (table[part] > table[whole]).to_numpy()
    if not bad.any():
        return
    positions = np.flatnonzero(bad)
    shown = "; ".join(
        f"{unit} {pos + first} ({part} {table[part].iloc[pos]} > {whole} {table[whole].iloc[pos]})"
        for pos in positions[:MAX_EXAMPLES]
    )
    more = f" (+{len(positions) - MAX_EXAMPLES} more)" if len(positions) > MAX_EXAMPLES else ""
    raise DataValidationError(
        f"{path}: column '{part}': larger than '{whole}' in {len(positions)} row(s): {shown}{more}",
        hint=_SUBSET_HINTS[part],
    )


def _check_unique_keys(path: Path, table: pd.DataFrame, first: int, unit: str) -> None:
    keys = table[["experiment_arm", "segment"]]
    repeated = keys.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    groups = keys.loc[repeated].groupby(["experiment_arm", "segment"], sort=False).groups
    pairs: list[tuple[Any, Any]] = [cast(tuple[Any, Any], key) for key in groups]
    shown = "; ".join(
        f"({arm}, {segment}) on {unit}s {', '.join(str(i + first) for i in groups[(arm, segment)])}"
        for arm, segment in pairs[:MAX_EXAMPLES]
    )
    raise DataValidationError(
        f"{path}: {len(groups)} (experiment_arm, segment) pair(s) appear more than once: {shown}",
        hint="keep one row per arm and segment: add the rows' counts together",
    )


def _drop_holdout(
    table: pd.DataFrame, lines: np.ndarray, unit: str
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int], list[dict[str, str]]]:
    holdout = (table["experiment_arm"] == HOLDOUT_ARM).to_numpy()
    counts = {"holdout_rows": int(holdout.sum())}
    warnings = []
    if holdout.any():
        warnings.append(
            {
                "code": "holdout_engagement",
                "message": f"{int(holdout.sum())} {unit}(s) of the holdout arm "
                f"({int(table.loc[holdout, 'sent'].sum())} sent) were excluded: "
                "the holdout is sent nothing",
            }
        )
    return table.loc[~holdout].reset_index(drop=True), lines[~holdout], counts, warnings


def _check_known(
    path: Path,
    table: pd.DataFrame,
    lines: np.ndarray,
    unit: str,
    column: str,
    known: Sequence[str],
    what: str,
) -> None:
    unknown = ~table[column].isin(known).to_numpy()
    if not unknown.any():
        return
    positions = np.flatnonzero(unknown)
    shown = "; ".join(
        f"{unit} {lines[pos]} value {table[column].iloc[pos]!r}" for pos in positions[:MAX_EXAMPLES]
    )
    raise DataValidationError(
        f"{path}: column '{column}': not one of {what} in {len(positions)} row(s): {shown}",
        hint=f"use {what}: {', '.join(known) or '(none)'}",
    )


def _check_sent(
    path: Path,
    table: pd.DataFrame,
    lines: np.ndarray,
    unit: str,
    recipients: pd.DataFrame,
    has_segments: bool,
    counts: dict[str, int],
) -> list[dict[str, str]]:
    """``sent`` may not exceed the customers assigned; fewer is a warning per arm."""
    keys = ["experiment_arm", "segment"] if has_segments else ["experiment_arm"]
    assigned = recipients.groupby(keys).size()
    index = pd.MultiIndex.from_frame(table[keys]) if has_segments else table["experiment_arm"]
    expected = assigned.reindex(index).fillna(0).to_numpy(dtype=np.int64)
    over = table["sent"].to_numpy() > expected
    if over.any():
        pos = int(np.flatnonzero(over)[0])
        raise DataValidationError(
            f"{path}: {unit} {lines[pos]}: sent {table['sent'].iloc[pos]} is more than the "
            f"{expected[pos]} customer(s) assigned to "
            f"{' / '.join(str(v) for v in table.loc[pos, keys])} "
            f"in this run ({int(over.sum())} row(s) like this)",
            hint="is this the export of this run's send? counts are of recipients in its "
            f"send list ({run_folder.SENDS.name}, or {run_folder.SENDS_PARQUET.name} for a "
            "large run)",
        )
    per_arm = recipients.groupby("experiment_arm").size()
    sent = table.groupby("experiment_arm")["sent"].sum()
    missing = (per_arm - sent.reindex(per_arm.index).fillna(0)).astype(int)
    missing = missing[missing > 0]
    counts["missing_recipients"] = int(missing.sum())
    if missing.empty:
        return []
    detail = ", ".join(f"{arm} {n}" for arm, n in missing.sort_index().items())
    return [
        {
            "code": "missing_recipients",
            "message": f"{counts['missing_recipients']} assigned recipient(s) are not counted in "
            f"the engagement file ({detail}); they are excluded from the analysis "
            "(outcome unknown)",
        }
    ]


def import_engagement(
    path: Path | str,
    assignments: pd.DataFrame,
    send_time: pd.Timestamp | str | None = None,
) -> EngagementImport:
    """Read an engagement file (either layout), validate it and join it to the assignments.

    Args:
        path: CSV or Parquet file.
        assignments: ``assignments.csv`` rows (customer_id, segment, experiment_arm,
            variant_id, assigned_at, ...).
        send_time: Events before this moment are excluded; ``None`` = each
            customer's ``assigned_at`` (events format only).

    Returns:
        The engagement of every recipient found, with counts and warnings.

    Raises:
        DataValidationError: a column is missing or a value is malformed (the
            message names the file, column and lines), or no recipient matched.
    """
    path = Path(path)
    raw, first, unit = read_table(path)
    if raw.empty:
        raise DataValidationError(f"{path}: the engagement file has a header but no rows")
    layout = detect_layout(path, list(raw.columns))
    if layout == LAYOUT_COUNTS:
        raise DataValidationError(
            f"{path}: holds counts per arm, not per-recipient engagement",
            hint="read it with import_counts (cpo analyze and cpo run --engagement do so)",
        )
    if layout == LAYOUT_RECIPIENTS:
        result = _import_recipients(path, raw, first, unit, assignments)
    else:
        when = pd.Timestamp(send_time) if send_time is not None else None
        result = _import_events(path, raw, first, unit, assignments, when)
    if result.frame.empty:
        raise DataValidationError(
            f"{path}: no row matches a recipient of this experiment "
            f"({result.counts['unknown_customers']} unknown customer(s))",
            hint="is this the engagement export of this campaign's send?",
        )
    return result


def import_event_rows(
    path: Path | str, events: pd.DataFrame, assignments: pd.DataFrame
) -> EngagementImport:
    """Import ``customer_id, event, timestamp`` rows made from an email service's events.

    The rows of :func:`cpo.events.normalise.normalise` go through the checks of
    the events layout (b) above; ``path`` is the event file, for messages.

    Raises:
        DataValidationError: a value is malformed (the rows are numbered from 1).
    """
    return _import_events(Path(path), events, 1, "event", assignments, None)


def summarize(result: EngagementImport | EngagementCounts) -> dict[str, Any]:
    """The import report recorded in the manifest and engagement_report.json.

    A counts import also records ``counts_file`` (``engagement_counts.csv``,
    which the analysis then reads) and the counts per arm in ``by_arm``.
    """
    report = {
        "engagement_source": result.source,
        "layout": result.layout,
        "counts": result.counts,
        "warnings": result.warnings,
    }
    if isinstance(result, EngagementCounts):
        report.update(counts_file=run_folder.ENGAGEMENT_COUNTS.name, by_arm=result.by_arm())
    return report


def engagement_totals(frame: pd.DataFrame, report: dict[str, Any]) -> tuple[dict[str, int], int]:
    """Opened / clicked / converted totals and the number of recipients of an engage result.

    From the per-arm counts of a counts import (``frame`` has no rows then),
    otherwise from the per-recipient ``frame``.
    """
    if report.get("layout") == LAYOUT_COUNTS:
        arms = report["by_arm"].values()
        totals = {c: sum(int(arm[c]) for arm in arms) for c in FLAG_COLUMNS}
        return totals, sum(int(arm["sent"]) for arm in arms)
    return {c: int(frame[c].sum()) for c in FLAG_COLUMNS}, len(frame)
