"""The send list: what an email service imports.

``sends.csv`` has one row per recipient: customer_id, email, first_name,
experiment_arm, variant_id, subject, preheader, body, body_html. Only variants
the design made available (screened ``pass`` or approved, with the exact
screened text) appear; holdout customers are not in it.

What the customer receives is the *customer copy* of the screened variant
(:mod:`cpo.customer_text`): citation markers removed (or numbered
footnotes, with ``generation.citations_in_email: footnotes``), a preheader from
the first quoted fact sentence, and an HTML version (:mod:`cpo.emailhtml`)
in which every merged value is HTML-escaped. ``email`` is empty when the
customer file has no email column: the list is then keyed by ``customer_id``.

Merge values are screened (:mod:`cpo.safety.merge`): each distinct first name
is normalized (one line, at most 50 characters) and screened once; a recipient
whose name fails is withheld (left out of the send list and listed in
``withheld.csv`` with a reason code, never the value).

Merge fields: ``{first_name}`` in the subject or body is replaced by the
customer's first name, or by the greeting fallback (``customers.greeting_fallback``,
default ``there``) when the name is blank (``Hi there,``).
``{{`` and ``}}`` stand for literal braces. Templates are never passed to
``str.format``: a brace in the copy cannot break rendering or reach Python
attributes, and a customer's name is inserted once and never re-scanned, so a
name containing ``{first_name}`` stays literal. Any other ``{name}`` token is
left as is and reported, so an unknown merge field is never sent silently.

Rendering is vectorized and deduplicated: each template is rendered once per
distinct first name among its recipients, and the text columns are
categoricals pointing at those texts (a million recipients share a few thousand
distinct messages).

Above ``experiment.send_list.compact_above`` recipients the same rows are
written as ``sends.parquet`` (:func:`write_send_list_parquet`: zstd, the
categoricals as dictionary columns, no formula escaping); :func:`export_send_list`
(``cpo export-sends``) writes the CSV form from either file, byte for byte what
:func:`write_send_list` writes.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cpo import run_folder
from cpo.customer_text import (
    DEFAULT_FOOTER_PATTERN,
    CitationsInEmail,
    CustomerMessage,
    SourceLink,
    customer_message,
)
from cpo.emailhtml import escape_merge_value, html_template
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.idjoin import row_positions, take_rows
from cpo.merge_values import MergeResult, cap_values, normalize_values
from cpo.models import Variant
from cpo.run_folder import SendListFile
from cpo.runfiles import atomic_open, escape_formula_cells, escape_formulas

#: Screens distinct merge values; returns reason codes per value (empty = passed).
MergeScreen = Callable[[Sequence[str]], list[tuple[str, ...]]]

SEND_COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "experiment_arm",
    "variant_id",
    "subject",
    "preheader",
    "body",
    "body_html",
)
WITHHELD_COLUMNS = ("customer_id", "field", "reason")
CONTACT_COLUMNS = ("email", "first_name")
MERGE_FIELD = "first_name"
NAME_FALLBACK = "there"
#: How both the send list and its export are written as CSV (quoted where needed).
CSV_WRITE_OPTIONS = pacsv.WriteOptions(quoting_style="needed")
PARQUET_ZSTD_LEVEL = 3
#: Rows per Parquet row group: each stores its distinct messages once, and a
#: reader (``cpo export-sends``) holds one row group in memory at a time.
PARQUET_ROW_GROUP_ROWS = 1 << 20
#: Largest dictionary page kept dictionary-encoded (bytes of distinct texts per row group).
PARQUET_DICTIONARY_LIMIT = 1 << 30
COPY_CHUNK = 1 << 20
#: Columns with a value per recipient: stored plain, not dictionary-encoded.
UNIQUE_COLUMNS = ("customer_id", "email")
_TOKENS = re.compile(r"(\{\{|\}\}|\{first_name\})")
_OTHER_FIELDS = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


@dataclass(frozen=True)
class SendList:
    """The rendered send list and what rendering noticed.

    Attributes:
        frame: ``sends.csv`` rows, in assignment order.
        unknown_fields: Variant id -> merge-field names left unrendered.
        missing_names: Recipients whose blank first name rendered as the fallback.
        withheld: ``withheld.csv`` rows (customer_id, field, reason).
        merge_results: One screening result per distinct non-blank merge value.
    """

    frame: pd.DataFrame
    unknown_fields: dict[str, list[str]]
    missing_names: int
    withheld: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=WITHHELD_COLUMNS))
    merge_results: list[MergeResult] = field(default_factory=list)


def template_parts(template: str) -> list[str | None]:
    """Split a template into literal text and ``None`` slots for ``{first_name}``."""
    parts: list[str | None] = []
    literal: list[str] = []
    for token in _TOKENS.split(template):
        if token == "{first_name}":
            parts.append("".join(literal))
            parts.append(None)
            literal = []
        elif token in ("{{", "}}"):
            literal.append(token[0])
        else:
            literal.append(token)
    parts.append("".join(literal))
    return parts


def unknown_merge_fields(template: str) -> list[str]:
    """Names of ``{field}`` tokens other than ``{first_name}`` (braces escaped are ignored)."""
    unescaped = template.replace("{{", "").replace("}}", "")
    return sorted({name for name in _OTHER_FIELDS.findall(unescaped) if name != MERGE_FIELD})


def render(template: str, names: pd.Series) -> pd.Series:
    """Render ``template`` once per name (vectorized string concatenation)."""
    parts = template_parts(template)
    if len(parts) == 1:
        return pd.Series(parts[0], index=names.index, dtype=object)
    result = pd.Series(parts[0] or "", index=names.index, dtype=object)
    for part in parts[1:]:
        result = result + (names if part is None else part)
    return result


class _TextColumn:
    """A rendered column kept as codes into its distinct strings (a categorical).

    A million recipients share a few thousand distinct messages (variants x
    first names), so the send list stores each distinct text once.
    """

    def __init__(self, size: int) -> None:
        self.codes = np.zeros(size, dtype=np.int64)
        self.pieces: list[np.ndarray] = []
        self.offset = 0

    def render_group(
        self, template: str, rows: np.ndarray, name_codes: np.ndarray, names: np.ndarray
    ) -> None:
        """Render once per distinct name among ``rows`` and point each row at its text."""
        distinct, position = np.unique(name_codes[rows], return_inverse=True)
        rendered = render(template, pd.Series(names[distinct], dtype=object))
        self.codes[rows] = self.offset + position
        self.pieces.append(rendered.to_numpy(dtype=object))
        self.offset += len(distinct)

    def categorical(self) -> pd.Categorical:
        """The column, with identical texts from different groups merged."""
        if not self.pieces:
            return pd.Categorical.from_codes(self.codes[:0], categories=pd.Index([], dtype=object))
        unique_codes, uniques = pd.factorize(np.concatenate(self.pieces))
        # object categories: inferring a string dtype would copy every (HTML) text again
        dtype = pd.CategoricalDtype(pd.Index(uniques, dtype=object))
        return pd.Categorical.from_codes(unique_codes[self.codes], dtype=dtype, validate=False)


@dataclass(frozen=True)
class MessageOptions:
    """How customer copies are made from screened variants.

    Attributes:
        citations: ``none`` (markers removed) or ``footnotes``.
        links: Normalized source title -> title and URL (footnotes).
        footer_pattern: Regular expression finding the footer paragraph.
        lang: Language tag of the HTML version.
        greeting_fallback: Word used for a blank first name.
    """

    citations: CitationsInEmail = "none"
    links: Mapping[str, SourceLink] = field(default_factory=dict)
    footer_pattern: str = DEFAULT_FOOTER_PATTERN
    lang: str = "en"
    greeting_fallback: str = NAME_FALLBACK


def customer_messages(
    variants: Mapping[str, Variant], options: MessageOptions
) -> dict[str, tuple[CustomerMessage, str]]:
    """Each variant's customer copy and its HTML template, built once per variant."""
    built = {}
    for variant_id, variant in variants.items():
        message = customer_message(
            variant,
            mode=options.citations,
            links=options.links,
            footer_pattern=options.footer_pattern,
        )
        page = html_template(
            message.subject,
            message.preheader,
            message.body,
            lang=options.lang,
            footer_pattern=options.footer_pattern,
        )
        built[variant_id] = (message, page)
    return built


def recipients_with_contacts(assignments: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Non-holdout assignments joined to email and first name ("" where absent).

    Raises:
        ValueError: a recipient has no customer record.
    """
    recipients = assignments.loc[assignments["experiment_arm"] != HOLDOUT_ARM]
    position = row_positions(recipients["customer_id"], customers["customer_id"])
    orphans = int(np.count_nonzero(position < 0))
    if orphans:
        raise ValueError(f"{orphans} recipients have no customer record")
    frame = recipients[["customer_id", "experiment_arm", "variant_id"]].reset_index(drop=True)
    for column in CONTACT_COLUMNS:
        if column in customers.columns:
            frame[column] = take_rows(customers[[column]], position)[column].fillna("").astype(str)
        else:
            frame[column] = pd.Series("", index=frame.index).astype(str)
    return frame


@dataclass(frozen=True)
class ScreenedNames:
    """Distinct first names after normalization and screening.

    Attributes:
        codes: Per recipient row, the index of its name in ``values``.
        values: Distinct names as inserted (normalized and cut to the length cap).
        reasons: Per distinct name, its reason codes joined by ``;`` ("" = passed).
        results: One screening result per non-blank distinct name.
    """

    codes: np.ndarray
    values: np.ndarray
    reasons: np.ndarray
    results: list[MergeResult]


def screen_names(first_names: pd.Series, screen: MergeScreen) -> ScreenedNames:
    """Normalize the distinct first names and screen each one once.

    The whole normalized value is screened (a threat or card number past the
    length cap is still found); the inserted value is cut to the cap.
    """
    raw_codes, raw_distinct = pd.factorize(first_names)
    holders = np.bincount(raw_codes, minlength=len(raw_distinct))
    distinct = screen_distinct_names(pd.Series(raw_distinct, dtype=object), holders, screen)
    codes = distinct.codes[raw_codes] if len(raw_codes) else np.zeros(0, dtype=np.int64)
    return ScreenedNames(codes, distinct.values, distinct.reasons, distinct.results)


def screen_distinct_names(
    raw_names: pd.Series, holders: np.ndarray, screen: MergeScreen
) -> ScreenedNames:
    """Normalize distinct raw first names and screen each normalized value once.

    Args:
        raw_names: The distinct first names as the customers hold them, in the
            order of their first recipient ("" for a blank name).
        holders: Recipients holding each raw name.
        screen: Screens distinct merge values.

    Returns:
        The screened names, ``codes`` giving each raw name's index in ``values``.
    """
    full = normalize_values(raw_names, max_chars=None)
    codes, distinct = pd.factorize(full)
    codes = np.asarray(codes, dtype=np.int64)
    texts = np.asarray(distinct, dtype=object)
    counts = np.bincount(codes, weights=holders, minlength=len(texts)).astype(np.int64)
    to_screen = [index for index, value in enumerate(texts) if value]
    found = screen([texts[index] for index in to_screen])
    reasons = np.full(len(texts), "", dtype=object)
    results = []
    for index, codes_found in zip(to_screen, found, strict=True):
        reasons[index] = ";".join(codes_found)
        value = str(texts[index])
        results.append(MergeResult(MERGE_FIELD, value, tuple(codes_found), int(counts[index])))
    values = cap_values(pd.Series(texts, dtype=object)).to_numpy(dtype=object)
    return ScreenedNames(codes, values, reasons, results)


def withheld_frame(frame: pd.DataFrame, names: ScreenedNames) -> pd.DataFrame:
    """``withheld.csv`` rows: customer id, field and reason codes (never the value)."""
    row_reasons = names.reasons[names.codes] if len(names.codes) else np.zeros(0, dtype=object)
    rows = row_reasons != ""
    withheld = frame.loc[rows, ["customer_id"]].copy()
    withheld["field"] = MERGE_FIELD
    withheld["reason"] = row_reasons[rows]
    return withheld.reset_index(drop=True)


def build_send_list(
    assignments: pd.DataFrame,
    customers: pd.DataFrame,
    variants: Mapping[str, Variant],
    *,
    screen: MergeScreen,
    options: MessageOptions | None = None,
) -> SendList:
    """Join assignments to customers, screen merge values and render each recipient's message.

    Args:
        assignments: ``assignments.csv`` rows.
        customers: At least ``customer_id``; ``email`` and ``first_name`` when present.
        variants: Sendable variants by id (the design's variant ids must all be here).
        screen: Screens distinct merge values; returns reason codes per value
            (see :class:`cpo.safety.merge.MergeScreener`).
        options: How customer copies are made (defaults: no citations, ``there``).

    Returns:
        The send list (holdout and withheld recipients excluded).

    Raises:
        ValueError: an assigned variant is not among ``variants`` or a recipient
            has no customer record.
        StageError: a customer copy still holds a citation marker.
    """
    options = options or MessageOptions()
    frame = recipients_with_contacts(assignments, customers)
    screened = screen_names(frame[MERGE_FIELD], screen)
    withheld = withheld_frame(frame, screened)
    keep = screened.reasons[screened.codes] == "" if len(frame) else np.zeros(0, dtype=bool)
    frame = frame.loc[keep].reset_index(drop=True)
    codes = screened.codes[keep]
    sendable = sendable_messages(frame["variant_id"].unique(), variants)
    messages = customer_messages(sendable, options)
    names = merge_names(screened.values, options.greeting_fallback)
    missing = int(names.blank[codes].sum()) if len(codes) else 0
    rendered = render_rows(frame, codes, names, messages)
    return SendList(rendered, unknown_fields_of(sendable), missing, withheld, screened.results)


def sendable_messages(
    variant_ids: Iterable[object], variants: Mapping[str, Variant]
) -> dict[str, Variant]:
    """The variants of ``variant_ids`` (recipients' variants), in id order.

    Raises:
        ValueError: a variant is assigned but not among ``variants``.
    """
    used = sorted({str(vid) for vid in variant_ids})
    missing_ids = [vid for vid in used if vid not in variants]
    if missing_ids:
        raise ValueError(f"variant '{missing_ids[0]}' is assigned but not sendable")
    return {vid: variants[vid] for vid in used}


def unknown_fields_of(variants: Mapping[str, Variant]) -> dict[str, list[str]]:
    """Variant id -> merge fields other than ``{first_name}`` in its subject or body."""
    unknown: dict[str, list[str]] = {}
    for variant_id, variant in variants.items():
        fields = unknown_merge_fields(variant.subject + "\n" + variant.body)
        if fields:
            unknown[variant_id] = fields
    return unknown


@dataclass(frozen=True)
class MergeNames:
    """The distinct first names as inserted into the messages.

    Attributes:
        values: The ``first_name`` column's values (normalized, capped; "" when blank).
        blank: Which values are blank.
        text: Inserted into text: the value, or the greeting fallback when blank.
        html: ``text`` HTML-escaped, inserted into ``body_html``.
    """

    values: np.ndarray
    blank: np.ndarray
    text: np.ndarray
    html: np.ndarray


def merge_names(values: np.ndarray, greeting_fallback: str) -> MergeNames:
    """The inserted forms of the screened names' ``values``."""
    blank = values == ""
    text = np.where(blank, greeting_fallback, values).astype(object)
    html = np.array([escape_merge_value(str(n)) for n in text], dtype=object)
    return MergeNames(values, blank, text, html)


def render_rows(
    frame: pd.DataFrame,
    codes: np.ndarray,
    names: MergeNames,
    messages: Mapping[str, tuple[CustomerMessage, str]],
) -> pd.DataFrame:
    """Each recipient's message: ``sends.csv`` rows, text columns as categoricals.

    Args:
        frame: Recipients to send to (customer_id, experiment_arm, variant_id,
            email, first_name), none withheld.
        codes: Per row, the index of its first name in ``names``.
        names: The inserted first names.
        messages: Customer copy and HTML template of every variant in ``frame``
            (:func:`customer_messages`).
    """
    frame = frame.reset_index(drop=True)  # positions index the rows; the caller's frame is kept
    frame[MERGE_FIELD] = names.values[codes] if len(codes) else frame[MERGE_FIELD]
    columns = {name: _TextColumn(len(frame)) for name in ("subject", "preheader", "body")}
    body_html = _TextColumn(len(frame))
    groups: dict[str, np.ndarray] = {
        str(vid): np.asarray(rows)
        for vid, rows in frame.groupby("variant_id", sort=True).indices.items()
    }
    for variant_id, rows in groups.items():
        message, page = messages[variant_id]
        for name, column in columns.items():
            column.render_group(getattr(message, name), rows, codes, names.text)
        body_html.render_group(page, rows, codes, names.html)
    for name, column in columns.items():
        frame[name] = column.categorical()
    frame["body_html"] = body_html.categorical()
    return frame[list(SEND_COLUMNS)]


def _csv_table(frame: pd.DataFrame) -> pa.Table:
    """The rows as the Arrow table the CSV is written from (formula-escaped text)."""
    return pa.Table.from_pandas(escape_formulas(frame), preserve_index=False)


def write_send_list(path: Path, frame: pd.DataFrame) -> None:
    """Write ``sends.csv`` atomically with pyarrow's CSV writer.

    The send list is the largest artifact (about 3 GB per million recipients
    with 150-word bodies and their HTML versions); pyarrow writes it an order
    of magnitude faster than ``DataFrame.to_csv``. It quotes text values where
    needed (RFC 4180), which every CSV reader and email service import accepts.
    Text cells a spreadsheet would run as a formula get a leading ``'``
    (:func:`cpo.runfiles.escape_formulas`).
    """
    with atomic_open(path, "wb") as handle:
        pacsv.write_csv(_csv_table(frame), handle, CSV_WRITE_OPTIONS)


def write_send_list_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write ``sends.parquet`` atomically: same columns and row order as ``sends.csv``.

    The text columns are categoricals, written as Arrow dictionary arrays: each
    distinct message (variants x distinct first names) is stored once, with a
    small integer per recipient, and every page is zstd-compressed. The file is
    deterministic (same rows, same bytes): no pandas metadata, no timestamps.

    No formula escaping: Parquet is typed columnar data that no spreadsheet
    opens as cells, so the values are stored exactly as sent. ``cpo
    export-sends`` applies the escaping when it writes the CSV form.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    # a dictionary of unique ids would only cost time (pyarrow's stubs say bool; it takes names)
    dictionary: dict[str, Any] = {
        "use_dictionary": [name for name in table.column_names if name not in UNIQUE_COLUMNS]
    }
    with atomic_open(path, "wb") as handle:
        pq.write_table(
            table,
            handle,
            **dictionary,
            compression="zstd",
            compression_level=PARQUET_ZSTD_LEVEL,
            row_group_size=PARQUET_ROW_GROUP_ROWS,
            # a dictionary larger than this falls back to plain pages (every row's text)
            dictionary_pagesize_limit=PARQUET_DICTIONARY_LIMIT,
            write_statistics=False,
        )


def export_send_list(
    source: SendListFile,
    out: Path,
    *,
    gzipped: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the CSV form of a run's send list to ``out`` atomically; return its rows.

    A Parquet send list is streamed by record batches (bounded memory) and each
    batch goes through the same formula escaping and CSV writer as
    :func:`write_send_list`, so the file equals the ``sends.csv`` the run
    would have written. A CSV send list is copied as it is.

    Args:
        source: The run's send list (:func:`cpo.run_folder.read_send_list`).
        out: The file to write.
        gzipped: Gzip the CSV (deterministic: no name or time in the header).
        progress: Called with (rows written, total rows) after each batch.
    """
    total = source.row_count()
    with atomic_open(out, "wb") as handle:
        sink = (
            cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0))
            if gzipped
            else handle
        )
        with sink:
            if source.compact:
                _stream_csv(source, sink, total, progress)
            else:
                with source.path.open("rb") as original:
                    shutil.copyfileobj(original, sink, COPY_CHUNK)
                if progress:
                    progress(total, total)
    return total


def _stream_csv(
    source: SendListFile,
    sink: IO[bytes],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Write the Parquet send list as CSV one row group at a time (header once).

    The cells are escaped in Arrow (:func:`cpo.runfiles.escape_formula_cells`:
    a text column's dictionary once per row group, never per row) and written
    with :data:`CSV_WRITE_OPTIONS`, as :func:`write_send_list` does.
    """
    writer: pacsv.CSVWriter | None = None
    done = 0
    for part in source.parts():
        table = _escaped(part)
        if writer is None:
            writer = pacsv.CSVWriter(sink, table.schema, write_options=CSV_WRITE_OPTIONS)
        for batch in table.to_batches(max_chunksize=run_folder.SEND_LIST_BATCH_ROWS):
            writer.write_batch(batch)
            done += batch.num_rows
            if progress:
                progress(done, total)
    if writer is None:  # no rows: the header alone, as write_send_list writes it
        empty = source.schema().empty_table()
        pacsv.write_csv(empty, sink, CSV_WRITE_OPTIONS)
    else:
        writer.close()


def _escaped(part: pa.Table) -> pa.Table:
    """``part`` with every text cell formula-safe (chunk by chunk)."""
    columns = [
        pa.chunked_array([escape_formula_cells(chunk) for chunk in column.chunks])
        if column.num_chunks
        else column
        for column in part.columns
    ]
    return pa.Table.from_arrays(columns, names=part.column_names)
