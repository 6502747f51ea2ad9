"""Settings for reading customer files (``customers:`` in experiment_config.yaml).

Kept in its own module (not in :mod:`cpo.customers`) so that the config loader
and every stage can import it without import cycles.
"""

from __future__ import annotations

import codecs

from pydantic import Field, field_validator

from cpo.settings_base import StrictModel

#: Names a user may write for the tab character (YAML and the command line).
TAB_NAMES = frozenset({"tab", "\\t", "\t", "TAB"})
#: Delimiters tried, in order, when none is given.
DETECTED_DELIMITERS = (",", ";", "\t")


def normalize_delimiter(value: str) -> str:
    """Return the one-character delimiter a user meant (``tab`` and ``\\t`` mean a tab).

    Raises:
        ValueError: the value is not a single character or a name for tab.
    """
    if value in TAB_NAMES:
        return "\t"
    if len(value) != 1 or value in ('"', "\n", "\r"):
        raise ValueError(
            f"delimiter must be one character such as ',', ';' or 'tab', got {value!r}"
        )
    return value


def normalize_encoding(value: str) -> str:
    """Return a codec name Python knows (``latin-1``, ``cp1252``, ``utf-8`` ...).

    Raises:
        ValueError: Python has no codec of that name.
    """
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}; use e.g. utf-8, latin-1 or cp1252") from None


class CustomerSettings(StrictModel):
    """How the customer file is read.

    Attributes:
        columns: Column mapping ``{their name: our name}``, applied right after
            reading (e.g. ``{CustID: customer_id, Vorname: first_name}``).
        greeting_fallback: Word used in the greeting when a customer has no
            first name (``Hi there,``).
        encoding: Text encoding of CSV files; null = UTF-8 (a byte-order mark is
            ignored). Parquet files ignore it.
        delimiter: Field separator of CSV files; null = detected from the header
            line among ``,`` ``;`` and tab. Parquet files ignore it.
    """

    columns: dict[str, str] = Field(default_factory=dict)
    greeting_fallback: str = "there"
    encoding: str | None = None
    delimiter: str | None = None

    @field_validator("columns")
    @classmethod
    def _names_not_blank(cls, value: dict[str, str]) -> dict[str, str]:
        for theirs, ours in value.items():
            if not theirs.strip() or not ours.strip():
                raise ValueError(
                    f"column names in a mapping must not be blank ({theirs!r}: {ours!r})"
                )
        targets = list(value.values())
        repeated = sorted({t for t in targets if targets.count(t) > 1})
        if repeated:
            raise ValueError(f"several columns are mapped onto {', '.join(repeated)}")
        return value

    @field_validator("greeting_fallback")
    @classmethod
    def _fallback_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("greeting_fallback must not be blank (e.g. 'there')")
        return value.strip()

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        return None if value is None else normalize_encoding(value)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        return None if value is None else normalize_delimiter(value)
