"""What every retrieval backend implements, and the records they share.

A backend indexes paragraphs of approved content and answers one verb::

    search(query, top_k, filters) -> list[Snippet]

``query`` is plain text in cpo's small query language (see :mod:`cpo.retrieval.query`):
words and ``"quoted phrases"``, any of which may match; nothing else is syntax, so
user text can never break a backend's query parser. ``filters`` narrows or boosts:

* ``category``: a category or list of categories (hard filter, case-insensitive);
* ``audience``: an audience or list of audiences (hard filter, case-insensitive);
* ``boost_audience``: a segment name; documents written for it are boosted by
  ``content.audience_boost`` and documents for everyone (``fallback.audience``)
  by ``content.general_audience_boost``.

Scores are positive, higher is better, and comparable to ``content.min_score``
for the backend that produced them (see docs/retrieval.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cpo.errors import ConfigError
from cpo.logs import RunLog
from cpo.models import Snippet
from cpo.registry import BackendSettings
from cpo.retrieval.content import Document
from cpo.retrieval.settings import ContentSettings
from cpo.runfiles import sha256_json

FILTER_KEYS = ("category", "audience", "boost_audience")
#: Bumped when the shape of indexed units changes, so old indexes are rebuilt.
INDEX_SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class IndexUnit:
    """One paragraph as a backend indexes it (the retrieval unit)."""

    document_id: str
    title: str
    paragraph_index: int
    text: str
    category: str
    audience: str
    keywords: tuple[str, ...]
    source_url: str


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What :meth:`Retriever.index` did.

    Attributes:
        built: True when the index was (re)built; False when it was up to date.
        documents: Documents in the index.
        paragraphs: Paragraphs (retrieval units) in the index.
        fingerprint: Hash of the indexed units (what decides a rebuild).
        seconds: Time taken.
        location: Where the index lives (file path or service/index name).
    """

    built: bool
    documents: int
    paragraphs: int
    fingerprint: str
    seconds: float
    location: str


@dataclass(frozen=True)
class RetrievalContext:
    """What the retrieve stage gives a backend's ``from_settings``.

    Attributes:
        content: The ``content`` section (field weights, audience boosts).
        db_path: Index file the caller chose (``--db``); wins over the backend's
            settings. Backends that keep their index elsewhere ignore it.
        default_db_path: Index file when neither the caller nor the settings name
            one (the run folder's, or a scratch file).
        log: Run log for API calls and index events.
    """

    content: ContentSettings
    db_path: Path | None = None
    default_db_path: Path | None = None
    log: RunLog | None = None


class Retriever(Protocol):
    """A retrieval backend: build an index of paragraphs, then search it.

    Attributes:
        name: The registered name.
        settings_model: Its block in ``services.retrieval`` (validated on load).
    """

    name: str
    settings_model: ClassVar[type[BackendSettings]]

    @classmethod
    def from_settings(cls, settings: Any, ctx: RetrievalContext) -> Retriever:
        """Build the backend from its validated ``settings_model`` block."""

    def index(self, documents: Sequence[Document]) -> IndexReport:
        """Make the index hold exactly these documents (skip when already so)."""

    def search(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> list[Snippet]:
        """Return up to ``top_k`` paragraphs for ``query``, best first."""

    def close(self) -> None:
        """Release the connections and files the backend holds."""


def index_units(documents: Sequence[Document]) -> list[IndexUnit]:
    """Every paragraph of every document as an :class:`IndexUnit` (¶ numbers from 1)."""
    return [
        IndexUnit(
            document_id=doc.document_id,
            title=doc.title,
            paragraph_index=number,
            text=text,
            category=doc.category,
            audience=doc.audience,
            keywords=doc.keywords,
            source_url=doc.source_url,
        )
        for doc in sorted(documents, key=lambda d: d.document_id)
        for number, text in enumerate(doc.paragraphs, start=1)
    ]


def units_fingerprint(units: Sequence[IndexUnit], extra: dict[str, Any] | None = None) -> str:
    """sha256 of the units (and backend-specific ``extra``) in canonical JSON."""
    rows = [
        [
            u.document_id,
            u.title,
            u.paragraph_index,
            u.text,
            u.category,
            u.audience,
            list(u.keywords),
            u.source_url,
        ]
        for u in units
    ]
    payload = {"schema": INDEX_SCHEMA_VERSION, "units": rows, "extra": extra or {}}
    return sha256_json(payload)


@dataclass(frozen=True)
class SearchFilters:
    """Validated ``filters`` of a search (lower-cased for comparison)."""

    categories: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    boost_audience: str | None = None


def parse_filters(filters: dict[str, Any] | None) -> SearchFilters:
    """Validate a ``filters`` dict (see the module docstring).

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    if not filters:
        return SearchFilters()
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown retrieval filter(s): {', '.join(unknown)}",
            hint=f"use only: {', '.join(FILTER_KEYS)}",
        )
    boost = filters.get("boost_audience")
    if boost is not None and not isinstance(boost, str):
        raise ConfigError(f"retrieval filter 'boost_audience' must be a string, found {boost!r}")
    return SearchFilters(
        categories=_names(filters.get("category"), "category"),
        audiences=_names(filters.get("audience"), "audience"),
        boost_audience=boost.lower() if boost else None,
    )


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A filter value (string or list of strings) as a lower-cased tuple."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"retrieval filter '{key}' must be a string or a list of strings")
    return tuple(dict.fromkeys(v.strip().lower() for v in items if v.strip()))
