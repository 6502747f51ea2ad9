"""The send list: what an email service imports.

``sends.csv`` has one row per recipient: customer_id, email, first_name,
experiment_arm, variant_id, subject, body. Only variants the design made
available (screened ``pass`` or approved, with the exact screened text) appear;
holdout customers are not in it.

Merge fields: ``{first_name}`` in the subject or body is replaced by the
customer's first name, or by ``there`` when the name is blank (``Hi there,``).
``{{`` and ``}}`` stand for literal braces. Templates are never passed to
``str.format``: a brace in the copy cannot break rendering or reach Python
attributes, and a customer's name is inserted once and never re-scanned, so a
name containing ``{first_name}`` stays literal. Any other ``{name}`` token is
left as is and reported, so an unknown merge field is never sent silently.

Rendering is vectorized and deduplicated: each template is rendered once per
distinct first name among its recipients, and the subject and body columns are
categoricals pointing at those texts (a million recipients share a few thousand
distinct messages).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from cpo.experiment.settings import HOLDOUT_ARM
from cpo.models import Variant
from cpo.runfiles import atomic_open

SENDS_FILE = "sends.csv"
SEND_COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "experiment_arm",
    "variant_id",
    "subject",
    "body",
)
MERGE_FIELD = "first_name"
NAME_FALLBACK = "there"
_TOKENS = re.compile(r"(\{\{|\}\}|\{first_name\})")
_OTHER_FIELDS = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class SendList:
    """The rendered send list and what rendering noticed.

    Attributes:
        frame: ``sends.csv`` rows, in assignment order.
        unknown_fields: Variant id -> merge-field names left unrendered.
        missing_names: Recipients whose blank first name rendered as ``there``.
    """

    frame: pd.DataFrame
    unknown_fields: dict[str, list[str]]
    missing_names: int


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


def display_names(first_names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """First names cleaned for insertion (``there`` for blank ones), and the blank mask."""
    text = first_names.fillna("").astype(str)
    text = text.str.replace(_CONTROL_CHARS, " ", regex=True).str.strip()
    blank = text.eq("").to_numpy(dtype=bool)
    return text.where(~blank, NAME_FALLBACK).to_numpy(dtype=object), blank


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
            return pd.Categorical.from_codes(self.codes[:0], categories=[])
        unique_codes, uniques = pd.factorize(np.concatenate(self.pieces))
        return pd.Categorical.from_codes(unique_codes[self.codes], categories=uniques)


def build_send_list(
    assignments: pd.DataFrame,
    customers: pd.DataFrame,
    variants: Mapping[str, Variant],
) -> SendList:
    """Join assignments to customers and render each recipient's message.

    Args:
        assignments: ``assignments.csv`` rows.
        customers: At least ``customer_id``, ``email``, ``first_name``.
        variants: Sendable variants by id (the design's variant ids must all be here).

    Returns:
        The send list (holdout excluded).

    Raises:
        ValueError: an assigned variant is not among ``variants`` or a recipient
            has no customer record.
    """
    recipients = assignments.loc[assignments["experiment_arm"] != HOLDOUT_ARM]
    contact = customers[["customer_id", "email", "first_name"]].drop_duplicates("customer_id")
    frame = recipients[["customer_id", "experiment_arm", "variant_id"]].merge(
        contact, on="customer_id", how="left", validate="one_to_one"
    )
    if frame["email"].isna().any():
        raise ValueError(f"{int(frame['email'].isna().sum())} recipients have no customer record")
    frame["first_name"] = frame["first_name"].fillna("").astype(str)
    # First names repeat a lot: clean and render each distinct name once.
    name_codes, distinct_names = pd.factorize(frame["first_name"])
    names, blank = display_names(pd.Series(distinct_names, dtype=object))
    missing = int(blank[name_codes].sum())
    subject, body = _TextColumn(len(frame)), _TextColumn(len(frame))
    unknown: dict[str, list[str]] = {}
    for variant_id, rows in frame.groupby("variant_id", sort=True).indices.items():
        variant = variants.get(variant_id)
        if variant is None:
            raise ValueError(f"variant '{variant_id}' is assigned but not sendable")
        subject.render_group(variant.subject, rows, name_codes, names)
        body.render_group(variant.body, rows, name_codes, names)
        fields = unknown_merge_fields(variant.subject + "\n" + variant.body)
        if fields:
            unknown[variant_id] = fields
    frame["subject"] = subject.categorical()
    frame["body"] = body.categorical()
    return SendList(frame[list(SEND_COLUMNS)], unknown, missing)


def write_send_list(path: Path, frame: pd.DataFrame) -> None:
    """Write ``sends.csv`` atomically with pyarrow's CSV writer.

    The send list is the largest artifact (about 1 GB per million recipients
    with 150-word bodies); pyarrow writes it an order of magnitude faster than
    ``DataFrame.to_csv``. It quotes every text value (RFC 4180), which every
    CSV reader and email service import accepts.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_open(path, "wb") as handle:
        pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))
