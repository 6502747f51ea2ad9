"""The embedded default retrieval backend: a SQLite FTS5 index in one file.

Each paragraph of each document is one row of an FTS5 table with the columns
``title``, ``keywords`` and ``content`` (searchable, ``porter unicode61`` tokenizer:
English stemming, Unicode case folding, diacritics removed) plus unindexed
``document_id``, ``paragraph_index``, ``category``, ``audience`` and ``source_url``
(and lower-cased ``category_key`` / ``audience_key`` for case-insensitive filters:
Python lower-cases all of Unicode, SQLite's ``lower()`` only ASCII).

Ranking is FTS5's BM25 with column weights (``content.field_weights``; title and
keywords above body text, so a document *about* a theme beats one that mentions it
in passing). FTS5's ``bm25()`` is negative with lower = better; cpo reports
``score = -bm25 * audience factor``: positive, higher = better, the sum over
matched query terms of IDF-weighted term evidence. The audience factor is
``content.audience_boost`` for documents written for the segment,
``content.general_audience_boost`` for documents for everyone, else 1.

Every query term is passed to FTS5 as a double-quoted string (with quotes
doubled), joined by ``OR``: FTS5 syntax can never come from user text.

Building writes a new file beside the target and renames it into place, so a
reader never sees half an index. A ``meta`` table stores the fingerprint of the
indexed paragraphs; :meth:`SqliteFtsRetriever.index` skips the rebuild when it is
unchanged.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cpo.errors import BackendError, DataValidationError
from cpo.logs import RunLog, utc_now
from cpo.models import Snippet
from cpo.registry import BackendSettings
from cpo.retrieval.base import (
    INDEX_SCHEMA_VERSION,
    IndexReport,
    IndexUnit,
    RetrievalContext,
    Retriever,
    SearchFilters,
    index_units,
    parse_filters,
    units_fingerprint,
)
from cpo.retrieval.content import Document
from cpo.retrieval.query import parse_query
from cpo.retrieval.settings import ContentSettings

BACKEND_NAME = "sqlite_fts"
TOKENIZER = "porter unicode61 remove_diacritics 2"
KEYWORD_SEPARATOR = "; "
SQLITE_HEADER = b"SQLite format 3\x00"

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE paragraphs USING fts5(
    title, keywords, content,
    document_id UNINDEXED, paragraph_index UNINDEXED, category UNINDEXED,
    audience UNINDEXED, source_url UNINDEXED, category_key UNINDEXED, audience_key UNINDEXED,
    tokenize = '{TOKENIZER}'
);
"""


def fts_match(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term as a quoted string, joined by OR."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


class SqliteFtsSettings(BackendSettings):
    """``services.retrieval.sqlite_fts``.

    Attributes:
        db_path: SQLite index file; ``null`` keeps the index in the run folder
            (``content_index.sqlite``). A shared path lets runs reuse one index.
    """

    db_path: str | None = None


class SqliteFtsRetriever:
    """Search approved content in a SQLite FTS5 file.

    Args:
        db_path: The index file (created on :meth:`index`).
        content: Ranking settings (field weights, audience boosts); defaults when None.
        log: Run log for index events (optional).
    """

    name = BACKEND_NAME
    settings_model: ClassVar[type[BackendSettings]] = SqliteFtsSettings

    def __init__(
        self, db_path: Path | str, content: ContentSettings | None = None, log: RunLog | None = None
    ) -> None:
        self.db_path = Path(db_path)
        self.content = content or ContentSettings()
        self.log = log
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def from_settings(
        cls, settings: SqliteFtsSettings, ctx: RetrievalContext
    ) -> SqliteFtsRetriever:
        """Build from its block and the stage's index file choices.

        The index file is ``ctx.db_path`` (the caller's ``--db``), else
        ``settings.db_path``, else ``ctx.default_db_path``.

        Raises:
            DataValidationError: none of them gives an index file.
        """
        configured = Path(settings.db_path).expanduser() if settings.db_path else None
        path = ctx.db_path or configured or ctx.default_db_path
        if path is None:
            raise DataValidationError(
                "the sqlite_fts backend needs an index file",
                hint="pass --db FILE, or set services.retrieval.sqlite_fts.db_path "
                "in azure_config.yaml",
            )
        return cls(path, ctx.content, ctx.log)

    # -- index ---------------------------------------------------------------------------

    def index(self, documents: Sequence[Document]) -> IndexReport:
        """Make the file index exactly ``documents``; skip when its fingerprint matches."""
        started = time.perf_counter()
        units = index_units(documents)
        fingerprint = units_fingerprint(units, {"backend": BACKEND_NAME, "tokenizer": TOKENIZER})
        built = self.stored_fingerprint() != fingerprint
        if built:
            self.close()
            self._build(units, fingerprint, documents=len(documents))
        report = IndexReport(
            built=built,
            documents=len(documents),
            paragraphs=len(units),
            fingerprint=fingerprint,
            seconds=round(time.perf_counter() - started, 4),
            location=str(self.db_path),
        )
        if self.log is not None:
            self.log.info(
                "retrieve",
                "index_built" if built else "index_reused",
                backend=BACKEND_NAME,
                path=str(self.db_path),
                documents=report.documents,
                paragraphs=report.paragraphs,
                seconds=report.seconds,
            )
        return report

    def stored_fingerprint(self) -> str | None:
        """The fingerprint recorded in the file, or None when there is no cpo index there.

        Raises:
            DataValidationError: the file exists but is not a cpo index (never overwritten).
        """
        if not self.db_path.exists() or self.db_path.stat().st_size == 0:
            return None
        self._check_is_index_file()
        try:
            with closing(self._open(read_only=True)) as connection:
                rows = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            return None
        if rows.get("schema_version") != str(INDEX_SCHEMA_VERSION):
            return None
        return rows.get("fingerprint")

    def _check_is_index_file(self) -> None:
        """Refuse to replace a file that is not a cpo index (e.g. a mistyped --db)."""
        with self.db_path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if header != SQLITE_HEADER:
            raise DataValidationError(
                f"{self.db_path}: exists and is not a SQLite index file; refusing to overwrite it",
                hint="choose a new --db path (or services.retrieval.sqlite_fts.db_path)",
            )
        try:
            with closing(self._open(read_only=True)) as connection:
                tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError:
            tables = set()
        if tables and not {"meta", "paragraphs"} <= tables:
            raise DataValidationError(
                f"{self.db_path}: is a SQLite database but not a cpo content index; "
                "refusing to overwrite it",
                hint="choose a new --db path (or services.retrieval.sqlite_fts.db_path)",
            )

    def _build(self, units: list[IndexUnit], fingerprint: str, documents: int) -> None:
        """Write a fresh index to a temporary file, then rename it over the target."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{self.db_path.name}.", suffix=".tmp", dir=self.db_path.parent
        )
        os.close(descriptor)
        try:
            with closing(sqlite3.connect(temporary)) as connection:
                connection.executescript(SCHEMA)
                connection.executemany(
                    "INSERT INTO paragraphs (title, keywords, content, document_id, "
                    "paragraph_index, category, audience, source_url, category_key, "
                    "audience_key) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [_row(unit) for unit in units],
                )
                meta = {
                    "cpo_index": BACKEND_NAME,
                    "schema_version": str(INDEX_SCHEMA_VERSION),
                    "fingerprint": fingerprint,
                    "tokenizer": TOKENIZER,
                    "documents": str(documents),
                    "paragraphs": str(len(units)),
                    "built_at": utc_now(),
                }
                connection.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
                connection.execute("INSERT INTO paragraphs(paragraphs) VALUES ('optimize')")
                connection.commit()
            os.replace(temporary, self.db_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # -- search --------------------------------------------------------------------------

    def search(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> list[Snippet]:
        """Up to ``top_k`` paragraphs matching any term of ``query``, best first.

        Raises:
            BackendError: there is no index at ``db_path`` yet.
        """
        parsed = parse_filters(filters)
        terms = parse_query(query, self.content.max_terms)
        if not terms or top_k <= 0:
            return []
        sql, params = self._search_sql(terms, parsed, top_k)
        rows = self._connect().execute(sql, params).fetchall()
        return [
            Snippet(
                document_id=row[0],
                title=row[1],
                paragraph_index=int(row[2]),
                text=row[3],
                score=float(row[7]),
                category=row[4],
                audience=row[5],
                source_url=row[6],
            )
            for row in rows
        ]

    def _search_sql(
        self, terms: list[str], filters: SearchFilters, top_k: int
    ) -> tuple[str, list[Any]]:
        """The SELECT and its parameters (values always bound, never formatted in)."""
        weights = self.content.field_weights
        boost = filters.boost_audience
        general = self.content.fallback.audience.lower()
        where = ["paragraphs MATCH ?"]
        params: list[Any] = [
            weights.title,
            weights.keywords,
            weights.content,
            boost or "",
            self.content.audience_boost if boost else 1.0,
            general,
            self.content.general_audience_boost if boost else 1.0,
            fts_match(terms),
        ]
        for column, values in (
            ("category_key", filters.categories),
            ("audience_key", filters.audiences),
        ):
            if values:
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        params.append(int(top_k))
        sql = (
            "SELECT document_id, title, paragraph_index, content, category, audience, source_url, "
            "-bm25(paragraphs, ?, ?, ?) * (CASE WHEN audience_key = ? THEN ? "
            "WHEN audience_key = ? THEN ? ELSE 1.0 END) AS score "
            f"FROM paragraphs WHERE {' AND '.join(where)} "
            "ORDER BY score DESC, document_id, paragraph_index LIMIT ?"
        )
        return sql, params

    def _connect(self) -> sqlite3.Connection:
        """A cached read-only connection to the index."""
        if self._connection is None:
            if not self.db_path.is_file():
                raise BackendError(
                    f"{self.db_path}: no content index here yet",
                    hint=f"build it with `cpo index CONTENT_DIR --db {self.db_path}`",
                )
            self._connection = self._open(read_only=True)
        return self._connection

    def _open(self, read_only: bool) -> sqlite3.Connection:
        """Open the index file (read-only via a URI so a search never creates a file)."""
        if read_only:
            uri = self.db_path.resolve().as_uri() + "?mode=ro"
            return sqlite3.connect(uri, uri=True)
        return sqlite3.connect(self.db_path)

    def close(self) -> None:
        """Close the cached connection (reopened on the next search)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _row(unit: IndexUnit) -> tuple[Any, ...]:
    """The FTS5 row of one paragraph."""
    return (
        unit.title,
        KEYWORD_SEPARATOR.join(unit.keywords),
        unit.text,
        unit.document_id,
        unit.paragraph_index,
        unit.category,
        unit.audience,
        unit.source_url,
        unit.category.lower(),
        unit.audience.lower(),
    )


if TYPE_CHECKING:
    _conforms: type[Retriever] = SqliteFtsRetriever
