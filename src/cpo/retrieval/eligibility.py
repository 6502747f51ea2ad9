"""Who may receive a document: eligibility conditions and audience values per segment.

A document may carry ``eligibility``: conditions over customer columns in the
segmentation-rule syntax (:class:`cpo.conditions.Condition`), as objects
``{"column": "tier", "op": "==", "value": "Gold"}`` or as short strings
``"tier == Gold"``, ``"tier in [Gold, Platinum]"``, ``"age between [18, 30]"``.
A customer meets them when they meet every condition. The retrieve stage computes,
per segment, the share of its customers who meet them (vectorized: one mask per
document, one group-by per document) and uses the document for the segment only
when that share is at least ``content.min_eligible_share`` (default 1.0: everyone).

:func:`audience_values` finds, per segment, the values of the audience columns
(``content.audience_columns``, e.g. ``tier``) that every customer of the segment
holds; the others must not be named in the segment's messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from cpo.conditions import Condition
from cpo.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    from cpo.retrieval.content import Document
    from cpo.retrieval.settings import ContentSettings

NUMERIC_OPS = ("<", "<=", ">", ">=", "between")
SHORT_FORM = re.compile(
    r"^\s*(?P<column>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|==|!=|<|>|\bnot_in\b|\bin\b|\bbetween\b)"
    r"\s*(?P<value>.+?)\s*$"
)


def parse_condition(text: str) -> Condition:
    """A :class:`Condition` from the short form ``"column op value"``.

    The value is read as YAML, so ``100`` is a number, ``[Gold, Silver]`` a list and
    ``Gold`` a string.

    Raises:
        ValueError: the text is not ``column op value``, or the value does not fit the op.
    """
    match = SHORT_FORM.match(text)
    if match is None:
        raise ValueError(
            f"expected 'column op value' (op one of <, <=, >, >=, ==, !=, in, not_in, "
            f"between), e.g. 'tier == Gold'; found {text!r}"
        )
    try:
        value = yaml.safe_load(match["value"])
    except yaml.YAMLError:
        value = match["value"]
    if value is None or isinstance(value, dict):
        value = match["value"]
    try:
        return Condition.model_validate(
            {"column": match["column"], "op": match["op"], "value": value}
        )
    except ValidationError as exc:
        detail = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ValueError(f"{text!r}: {detail}") from None


def condition_mask(frame: pd.DataFrame, condition: Condition) -> np.ndarray:
    """Which rows meet one condition (same semantics as segmentation rules).

    Numeric operators compare numbers (a missing or non-numeric value fails);
    ``==``, ``!=``, ``in``, ``not_in`` compare text, case-sensitively.
    """
    column = frame[condition.column]
    if condition.op in NUMERIC_OPS:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        if isinstance(condition.value, list):  # 'between' (the model checks it is a pair)
            low, high = (float(v) for v in condition.value)
            return (values >= low) & (values <= high)
        threshold = float(condition.value)
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
        with np.errstate(invalid="ignore"):
            return compare[condition.op](values, threshold)
    options = condition.value if isinstance(condition.value, list) else [condition.value]
    member = column.astype(str).isin([str(v) for v in options]).to_numpy()
    return ~member if condition.op in ("!=", "not_in") else member


def describe_conditions(conditions: Sequence[Condition]) -> str:
    """Human form, e.g. ``tier == Gold and age >= 30``."""
    return " and ".join(f"{c.column} {c.op} {c.value}" for c in conditions)


def eligible_shares(
    conditions: Sequence[Condition], customers: pd.DataFrame, segment: pd.Series
) -> dict[str, float]:
    """Per segment name, the share of its customers meeting every condition.

    Args:
        conditions: A document's eligibility conditions (all must hold).
        customers: Customer rows (must have the conditions' columns).
        segment: Each row's segment name, aligned with ``customers``.
    """
    codes, names = segment_codes(segment)
    return _shares(conditions, customers, codes, names)


def segment_codes(segment: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's segment as an integer code, and the names (sorted) the codes index."""
    codes, uniques = pd.factorize(segment.astype(str), sort=True)
    return codes, [str(name) for name in uniques]


def _shares(
    conditions: Sequence[Condition], customers: pd.DataFrame, codes: np.ndarray, names: list[str]
) -> dict[str, float]:
    """Share of each segment's rows meeting every condition (two bincounts)."""
    mask = np.ones(len(customers), dtype=bool)
    for condition in conditions:
        mask &= condition_mask(customers, condition)
    sizes = np.bincount(codes, minlength=len(names))
    met = np.bincount(codes, weights=mask, minlength=len(names))
    return {name: float(met[i] / sizes[i]) for i, name in enumerate(names) if sizes[i]}


def check_columns(
    conditions: Sequence[Condition], customers: pd.DataFrame, document_id: str, path: str
) -> None:
    """Fail clearly when a document's condition names a column the customers lack.

    Raises:
        DataValidationError: naming the document, its file and the available columns.
    """
    for position, condition in enumerate(conditions):
        if condition.column not in customers.columns:
            raise DataValidationError(
                f"{path or document_id}: field 'eligibility[{position}]' of {document_id} names "
                f"column '{condition.column}', which the customer data does not have",
                hint=f"use one of: {', '.join(map(str, customers.columns))}",
            )


@dataclass(frozen=True)
class AudienceValues:
    """Values of the audience columns: all of them, and those every customer shares.

    Attributes:
        columns: Column -> its distinct text values in the data (sorted).
        held_by_all: Segment name -> column -> the value all its customers hold (or None).
        everyone: Column -> the value every customer holds (or None).
    """

    columns: dict[str, list[str]]
    held_by_all: dict[str, dict[str, str | None]]
    everyone: dict[str, str | None]

    def not_held(self, held: dict[str, str | None]) -> list[str]:
        """The values that a group of customers with ``held`` values must not be told."""
        return sorted(
            value
            for column, values in self.columns.items()
            for value in values
            if value != held.get(column)
        )

    def forbidden(self, segment: str) -> list[str]:
        """Values the segment's messages must not name (all of them for an unknown segment)."""
        return self.not_held(self.held_by_all.get(segment, {}))


def audience_values(
    customers: pd.DataFrame, segment: pd.Series, columns: Sequence[str]
) -> AudienceValues:
    """Per audience column, its values and the value each segment's customers all share.

    Only values with a letter count (numbers in text are prices, not tiers). Work is
    columnar: a segment x value count table per column (one bincount).

    Raises:
        ConfigError: a configured column is not in the customer data.
    """
    codes, names = segment_codes(segment)
    values: dict[str, list[str]] = {}
    held: dict[str, dict[str, str | None]] = {name: {} for name in names}
    everyone: dict[str, str | None] = {}
    for column in columns:
        if column not in customers.columns:
            raise ConfigError(
                f"experiment_config.yaml: key 'content.audience_columns' names column "
                f"'{column}', which the customer data does not have",
                hint=f"use some of: {', '.join(map(str, customers.columns))}, or []",
            )
        value_codes, uniques = _value_codes(customers[column])
        table = np.bincount(
            codes * len(uniques) + value_codes, minlength=len(names) * len(uniques)
        ).reshape(len(names), len(uniques))
        for row, name in enumerate(names):
            present = np.flatnonzero(table[row])
            held[name][column] = uniques[present[0]] if len(present) == 1 else None
        present = np.flatnonzero(table.sum(axis=0))
        everyone[column] = uniques[present[0]] if len(present) == 1 else None
        values[column] = sorted(v for v in uniques if re.search(r"[^\W\d_]", v))
    return AudienceValues(values, held, everyone)


def _value_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A column's values as codes into their distinct stripped texts (missing = '')."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    texts = pd.Index(uniques).astype(str).str.strip()
    texts = texts.where(~pd.isna(uniques), "")
    final, distinct = pd.factorize(texts)
    return final[codes], [str(v) for v in distinct]


@dataclass(frozen=True)
class SegmentGuard:
    """What a segment's customers allow (computed by the retrieve stage from the data).

    Attributes:
        excluded: Document id -> why it is left out for this segment.
        eligible_shares: Document id -> share of the segment's customers meeting its
            ``eligibility`` (documents with conditions only).
        held: Audience column -> the value every customer of the segment holds (or None).
        forbidden: Audience values the segment's snippets must not name.
        match_case: Match ``forbidden`` case-sensitively.
    """

    excluded: dict[str, str]
    eligible_shares: dict[str, float]
    held: dict[str, str | None]
    forbidden: tuple[str, ...]
    match_case: bool = False


def build_guards(
    documents: Sequence[Document],
    customers: pd.DataFrame,
    segment: pd.Series,
    settings: ContentSettings,
) -> tuple[dict[str, SegmentGuard], AudienceValues]:
    """Per segment, the documents its customers are not eligible for and the values not held.

    Args:
        documents: The usable documents.
        customers: The run's customers (rows aligned with ``segment``).
        segment: Each customer's segment name.
        settings: The ``content`` section (``min_eligible_share``, ``audience_columns``).

    Raises:
        DataValidationError: a condition or ``content.audience_columns`` names a column
            the customer data does not have.
    """
    values = audience_values(customers, segment, settings.audience_columns)
    codes, names = segment_codes(segment)
    shares: dict[str, dict[str, float]] = {}
    for document in documents:
        if document.eligibility:
            path = str(document.path or "")
            check_columns(document.eligibility, customers, document.document_id, path)
            shares[document.document_id] = _shares(document.eligibility, customers, codes, names)
    guards = {}
    for name in values.held_by_all:
        own = {doc_id: by_segment.get(name, 0.0) for doc_id, by_segment in shares.items()}
        guards[name] = SegmentGuard(
            excluded={
                doc_id: _not_eligible_reason(documents, doc_id, share, settings.min_eligible_share)
                for doc_id, share in own.items()
                if share < settings.min_eligible_share
            },
            eligible_shares={doc_id: round(share, 6) for doc_id, share in own.items()},
            held=values.held_by_all[name],
            forbidden=tuple(values.forbidden(name)),
            match_case=settings.audience_match_case,
        )
    return guards, values


def unknown_segment_guard(
    documents: Sequence[Document], values: AudienceValues, settings: ContentSettings
) -> SegmentGuard:
    """The strictest guard, for a segment none of whose customers were found (fail closed).

    Every document with ``eligibility`` is left out and no audience value may be named.
    """
    reason = "not eligible: none of the segment's customers were found in the customer file"
    return SegmentGuard(
        excluded={d.document_id: reason for d in documents if d.eligibility},
        eligible_shares={},
        held={},
        forbidden=tuple(values.not_held({})),
        match_case=settings.audience_match_case,
    )


def _not_eligible_reason(
    documents: Sequence[Document], document_id: str, share: float, minimum: float
) -> str:
    """Why a document is left out for a segment."""
    conditions = next(d.eligibility for d in documents if d.document_id == document_id)
    return (
        f"not eligible: {share:.1%} of the segment's customers meet "
        f"'{describe_conditions(conditions)}' (content.min_eligible_share {minimum:g})"
    )
