"""Merge values (the first name) as the send list inserts them, and their screening result.

:func:`normalize_values` makes a value safe to insert (one line, visible
characters, :data:`MAX_MERGE_CHARS` at most); :class:`MergeResult` is the
screening of one distinct value. The send list (:mod:`cpo.experiment.sends`)
builds them and :mod:`cpo.safety.merge` screens and audits them, so they live
outside both packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

MAX_MERGE_CHARS = 50
#: Control characters (newlines, tabs, escape, line separators) become spaces.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
#: Invisible formatting marks (soft hyphen, zero-width, bidirectional overrides) go.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]+")
_WHITESPACE = re.compile(r"\s+")


def normalize_values(values: pd.Series, max_chars: int | None = MAX_MERGE_CHARS) -> pd.Series:
    """Merge values made safe to insert: one line, visible characters, length-capped.

    Control characters become spaces, invisible formatting marks are removed,
    whitespace runs collapse to one space, and the value is stripped and cut to
    ``max_chars`` (``None``: not cut). Missing values become "".
    """
    text = values.fillna("").astype(str)
    text = text.str.replace(_CONTROL, " ", regex=True).str.replace(_INVISIBLE, "", regex=True)
    text = text.str.replace(_WHITESPACE, " ", regex=True).str.strip()
    return text if max_chars is None else cap_values(text, max_chars)


def cap_values(values: pd.Series, max_chars: int = MAX_MERGE_CHARS) -> pd.Series:
    """Cut normalized values to ``max_chars`` characters (trailing space removed)."""
    return values.str.slice(0, max_chars).str.rstrip()


@dataclass(frozen=True)
class MergeResult:
    """The screening of one distinct merge value.

    Attributes:
        field: The merge field (``first_name``).
        value: The normalized value (kept in memory only; never written).
        reasons: Reason codes; empty when the value passed.
        customers: Recipients holding this value.
    """

    field: str
    value: str
    reasons: tuple[str, ...]
    customers: int

    @property
    def passed(self) -> bool:
        """True when nothing fired."""
        return not self.reasons
