"""Azure AI Search backend (``services.retrieval.backend: azure_search``).

Uses the official ``azure-search-documents`` SDK (``pip install 'cpo[azure]'``) with an
API key from the environment variable named in
``services.retrieval.azure_search.api_key_env``.

* **Index schema** (created or updated on every :meth:`AzureSearchRetriever.index`):
  ``id`` (key), ``document_id``, ``title``, ``paragraph_index``, ``content``,
  ``category``, ``audience``, ``keywords``, ``source_url``, plus ``category_key`` and
  ``audience_key`` (lower-cased, so filters are case-insensitive as with sqlite_fts)
  and ``content_version`` (the content fingerprint). A semantic configuration
  (title, content, keywords) and a default scoring profile with the
  ``content.field_weights`` text weights.
* **Upload**: paragraphs in batches of ``batch_size`` (100) with ``mergeOrUpload``
  (idempotent; keys are deterministic). Skipped when the index already holds every
  paragraph of this content version; paragraphs of other versions are deleted
  afterwards, so the index mirrors the content folder (one folder per index).
* **Query**: ``query_type="semantic"`` with the semantic configuration (or
  ``simple`` when ``services.retrieval.azure_search.query_type`` says so), filtered to the current
  ``content_version`` plus the category/audience filters as OData (``category_key eq
  'promotion'``). Score = the semantic reranker score (0-4; the BM25 ``@search.score``
  for simple queries) times the audience factor, applied here exactly as sqlite_fts does.
* **Retries**: the SDK's own retries are off (``retry_total=0``); every call goes
  through :func:`cpo.netclient.call_with_retries` (connection errors, timeouts, 408,
  429 and 5xx are retried with backoff; 400/401/403 are not).
"""

from __future__ import annotations

import base64
import functools
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

if TYPE_CHECKING:
    from azure.core.credentials import AzureKeyCredential
    from azure.search.documents.indexes.models import SearchIndex

from cpo.errors import BackendError, ConfigError
from cpo.logs import RunLog
from cpo.models import Snippet
from cpo.netclient import Failure, RetryPolicy, call_with_retries, status_is_retryable
from cpo.registry import BackendSettings
from cpo.retrieval.base import (
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

BACKEND_NAME = "azure_search"
SCORING_PROFILE = "cpo-field-weights"
SELECT = [
    "document_id",
    "title",
    "paragraph_index",
    "content",
    "category",
    "audience",
    "source_url",
]
#: Candidates fetched per search (the semantic reranker looks at the top 50 anyway).
MAX_CANDIDATES = 50
#: Longest a stored fingerprint needs to be to tell content versions apart.
VERSION_CHARS = 32


class _PartialUploadFailure(Exception):
    """Some documents of an upload batch failed (carries the worst status code)."""

    def __init__(self, status: int, keys: list[str], message: str) -> None:
        super().__init__(message)
        self.status = status
        self.keys = keys


def classify(exc: BaseException) -> Failure:
    """Map an azure-core exception to a retry decision."""
    from azure.core.exceptions import (
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, _PartialUploadFailure):
        return Failure(status_is_retryable(exc.status), exc.status, reason=str(exc))
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        response = getattr(exc, "response", None)
        retry_after = _retry_after(response.headers if response is not None else {})
        reason = (exc.message or str(exc)).splitlines()[0][:200]
        return Failure(status_is_retryable(status), status, retry_after, reason)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return Failure(True, None, reason=f"{type(exc).__name__}: {str(exc)[:200]}")
    return Failure(False, None, reason=f"{type(exc).__name__}: {str(exc)[:200]}")


def _retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (or Azure's ``retry-after-ms``), if any."""
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("Retry-After"):
            return float(headers["Retry-After"])
    except (TypeError, ValueError):
        return None
    return None


def odata_string(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def unit_key(unit: IndexUnit) -> str:
    """The document key of a paragraph: URL-safe base64 of ``document_id#paragraph``.

    Azure keys allow only letters, digits, ``_``, ``-`` and ``=``; any document id works.
    """
    raw = f"{unit.document_id}#{unit.paragraph_index}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


class AzureSearchSettings(BackendSettings):
    """``services.retrieval.azure_search``: how to reach Azure AI Search.

    Attributes:
        endpoint: ``https://<name>.search.windows.net`` (required when selected).
        index_name: Index name (one content folder per index).
        api_key_env: Environment variable holding the admin/query key.
        semantic_configuration: Name of the semantic configuration cpo creates and queries.
        query_type: ``semantic`` (semantic ranker; needs a tier that has it) or ``simple``.
        batch_size: Documents per upload request (Azure accepts at most 1000).
        timeout_s: Read timeout of one request, in seconds.
        connect_timeout_s: Connection timeout of one request, in seconds.
        max_retries: Retries after the first attempt (connection errors, timeouts, 408/429/5xx).
        allow_insecure_http: Allow a plain ``http://`` endpoint on a host other than
            loopback (the key then crosses the network unencrypted).
    """

    endpoint_fields = ("endpoint",)

    endpoint: str | None = None
    index_name: str = "cpo-approved-content"
    api_key_env: str = "AZURE_SEARCH_API_KEY"
    semantic_configuration: str = "cpo-semantic"
    query_type: Literal["semantic", "simple"] = "semantic"
    batch_size: int = Field(default=100, ge=1, le=1000)
    timeout_s: float = Field(default=5.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    allow_insecure_http: bool = False

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://<name>.search.windows.net")
        return value.rstrip("/") if value else value

    @field_validator("index_name")
    @classmethod
    def _index_name_is_valid(cls, value: str) -> str:
        # Azure AI Search: lowercase letters, digits and dashes, 2-128 characters.
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,126}[a-z0-9]", value):
            raise ValueError("expected lowercase letters, digits and dashes (2-128 characters)")
        return value


class AzureSearchRetriever:
    """Index and search approved content in Azure AI Search.

    Args:
        service: ``services.retrieval.azure_search`` (endpoint, index name, key variable, ...).
        content: The ``content`` section (field weights, audience boosts).
        log: Run log (API calls with latency, index events).
        credential: Overrides the key from the environment (tests, managed setups).
        sleep: Backoff sleep (tests pass a no-op).
        client_options: Extra azure-core client keyword arguments (e.g. ``connection_verify``).
    """

    name = BACKEND_NAME
    settings_model: ClassVar[type[BackendSettings]] = AzureSearchSettings

    def __init__(
        self,
        service: AzureSearchSettings,
        content: ContentSettings | None = None,
        log: RunLog | None = None,
        *,
        credential: AzureKeyCredential | None = None,
        sleep: Callable[[float], None] = time.sleep,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        # The SDK (the ``azure`` extra) is imported only when this backend is built.
        from azure.core.credentials import AzureKeyCredential
        from azure.search.documents import SearchClient
        from azure.search.documents.indexes import SearchIndexClient

        if not service.endpoint:
            raise ConfigError(
                "services.retrieval.azure_search.endpoint is not set; the azure_search backend "
                "needs it",
                hint="set it in azure_config.yaml, e.g. https://<name>.search.windows.net",
            )
        self.service = service
        self.content = content or ContentSettings()
        self.log = log
        self.sleep = sleep
        self.policy = RetryPolicy(max_retries=service.max_retries)
        options = {
            "retry_total": 0,
            "connection_timeout": service.connect_timeout_s,
            "read_timeout": service.timeout_s,
            **(client_options or {}),
        }
        key = credential or AzureKeyCredential(_api_key(service.api_key_env))
        self.index_client = SearchIndexClient(service.endpoint, key, **options)
        self.search_client = SearchClient(service.endpoint, service.index_name, key, **options)
        self.version: str | None = None

    @classmethod
    def from_settings(
        cls, settings: AzureSearchSettings, ctx: RetrievalContext
    ) -> AzureSearchRetriever:
        """Build from its block (the index lives in the service: ``ctx.db_path`` is unused)."""
        return cls(settings, ctx.content, ctx.log)

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        """One SDK call under the shared retry policy."""
        return call_with_retries(
            operation,
            classify=classify,
            policy=self.policy,
            log=self.log,
            stage="retrieve",
            what=f"azure_search {what}",
            sleep=self.sleep,
        )

    # -- index ---------------------------------------------------------------------------

    def index_schema(self) -> SearchIndex:
        """The index definition: fields, semantic configuration, weighted scoring profile."""
        from azure.search.documents.indexes.models import (
            ScoringProfile,
            SearchableField,
            SearchFieldDataType,
            SearchIndex,
            SemanticConfiguration,
            SemanticField,
            SemanticPrioritizedFields,
            SemanticSearch,
            SimpleField,
            TextWeights,
        )

        weights = self.content.field_weights
        text = SearchFieldDataType.STRING
        fields = [
            SimpleField(name="id", type=text, key=True, filterable=True),
            SimpleField(name="document_id", type=text, filterable=True, sortable=True),
            SearchableField(name="title", analyzer_name="en.lucene"),
            SimpleField(
                name="paragraph_index",
                type=SearchFieldDataType.INT32,
                filterable=True,
                sortable=True,
            ),
            SearchableField(name="content", analyzer_name="en.lucene"),
            SimpleField(name="category", type=text),
            SimpleField(name="audience", type=text),
            SimpleField(name="category_key", type=text, filterable=True, facetable=True),
            SimpleField(name="audience_key", type=text, filterable=True, facetable=True),
            SearchableField(
                name="keywords", collection=True, filterable=True, analyzer_name="en.lucene"
            ),
            SimpleField(name="source_url", type=text),
            SimpleField(name="content_version", type=text, filterable=True),
        ]
        semantic = SemanticConfiguration(
            name=self.service.semantic_configuration,
            prioritized_fields=SemanticPrioritizedFields(
                title_field=SemanticField(field_name="title"),
                content_fields=[SemanticField(field_name="content")],
                keywords_fields=[SemanticField(field_name="keywords")],
            ),
        )
        profile = ScoringProfile(
            name=SCORING_PROFILE,
            text_weights=TextWeights(
                weights={
                    "title": weights.title,
                    "keywords": weights.keywords,
                    "content": weights.content,
                }
            ),
        )
        return SearchIndex(
            name=self.service.index_name,
            fields=fields,
            semantic_search=SemanticSearch(configurations=[semantic]),
            scoring_profiles=[profile],
            default_scoring_profile=SCORING_PROFILE,
        )

    def index(self, documents: Sequence[Document]) -> IndexReport:
        """Create/update the index and make it hold exactly ``documents``' paragraphs."""
        started = time.perf_counter()
        units = index_units(documents)
        fingerprint = units_fingerprint(units, {"backend": BACKEND_NAME})
        self.version = fingerprint[:VERSION_CHARS]
        self._call(
            "create_or_update_index",
            lambda: self.index_client.create_or_update_index(self.index_schema()),
        )
        built = self._count(f"content_version eq {odata_string(self.version)}") != len(units)
        if built:
            self._upload(units)
            self._prune()
        report = IndexReport(
            built=built,
            documents=len(documents),
            paragraphs=len(units),
            fingerprint=fingerprint,
            seconds=round(time.perf_counter() - started, 4),
            location=f"{self.service.endpoint}/indexes/{self.service.index_name}",
        )
        if self.log is not None:
            self.log.info(
                "retrieve",
                "index_built" if built else "index_reused",
                backend=BACKEND_NAME,
                index=self.service.index_name,
                documents=report.documents,
                paragraphs=report.paragraphs,
                seconds=report.seconds,
            )
        return report

    def _count(self, odata_filter: str) -> int:
        """How many index documents match a filter."""

        def operation() -> int:
            results = self.search_client.search(
                search_text="*", filter=odata_filter, top=0, include_total_count=True
            )
            list(results)
            return int(results.get_count() or 0)

        return self._call("count", operation)

    def _upload(self, units: list[IndexUnit]) -> None:
        """``mergeOrUpload`` every paragraph, ``batch_size`` per request."""
        size = self.service.batch_size
        for start in range(0, len(units), size):
            batch = [self._document(u) for u in units[start : start + size]]
            number = start // size + 1
            self._call(f"upload batch {number}", functools.partial(self._send, batch, delete=False))

    def _send(self, batch: list[dict[str, Any]], delete: bool) -> None:
        """Send one batch; raise when any document in it failed."""
        if delete:
            results = self.search_client.delete_documents(batch)
        else:
            results = self.search_client.merge_or_upload_documents(batch)
        failed = [r for r in results if not r.succeeded]
        if failed:
            worst = max(int(r.status_code or 500) for r in failed)
            keys = [r.key for r in failed]
            raise _PartialUploadFailure(
                worst, keys, f"{len(failed)} of {len(batch)} documents failed (HTTP {worst})"
            )

    def _prune(self) -> None:
        """Delete paragraphs of other content versions (removed or expired content)."""
        stale_filter = f"content_version ne {odata_string(self.version or '')}"

        def stale_keys() -> list[str]:
            results = self.search_client.search(
                search_text="*", filter=stale_filter, select=["id"], top=1000
            )
            return [row["id"] for row in results]

        keys = self._call("list stale", stale_keys)
        size = self.service.batch_size
        for start in range(0, len(keys), size):
            batch = [{"id": key} for key in keys[start : start + size]]
            self._call("delete stale", functools.partial(self._send, batch, delete=True))

    def _document(self, unit: IndexUnit) -> dict[str, Any]:
        """The index document of one paragraph."""
        return {
            "id": unit_key(unit),
            "document_id": unit.document_id,
            "title": unit.title,
            "paragraph_index": unit.paragraph_index,
            "content": unit.text,
            "category": unit.category,
            "audience": unit.audience,
            "category_key": unit.category.lower(),
            "audience_key": unit.audience.lower(),
            "keywords": list(unit.keywords),
            "source_url": unit.source_url,
            "content_version": self.version,
        }

    # -- search --------------------------------------------------------------------------

    def search(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> list[Snippet]:
        """Semantic search over the current content version; same Snippets as sqlite_fts."""
        parsed = parse_filters(filters)
        terms = parse_query(query, self.content.max_terms)
        if not terms or top_k <= 0:
            return []
        if self.version is None:
            raise BackendError(
                "azure_search: search before index(); the content version is unknown",
                hint="call index(documents) first (cpo run and cpo retrieve do)",
            )
        options = self._query_options(terms, parsed, top_k)
        rows = self._call("search", lambda: list(self.search_client.search(**options)))
        snippets = [self._snippet(row, parsed) for row in rows]
        snippets.sort(key=lambda s: (-s.score, s.document_id, s.paragraph_index))
        return snippets[:top_k]

    def _query_options(
        self, terms: list[str], filters: SearchFilters, top_k: int
    ) -> dict[str, Any]:
        """Keyword arguments of ``SearchClient.search`` for a query."""
        # Every term quoted: simple syntax then treats + - | * ( ) inside it as text.
        options: dict[str, Any] = {
            "search_text": " ".join(f'"{term}"' for term in terms),
            "filter": self._odata_filter(filters),
            "select": SELECT,
            "top": min(MAX_CANDIDATES, max(top_k * 3, 20)),
            "search_mode": "any",
        }
        if self.service.query_type == "semantic":
            options["query_type"] = "semantic"
            options["semantic_configuration_name"] = self.service.semantic_configuration
            options["semantic_query"] = " ".join(terms)
        return options

    def _odata_filter(self, filters: SearchFilters) -> str:
        """``content_version eq 'v' and (category_key eq 'a' or ...) and (...)``."""
        clauses = [f"content_version eq {odata_string(self.version or '')}"]
        for field, values in (
            ("category_key", filters.categories),
            ("audience_key", filters.audiences),
        ):
            if values:
                either = " or ".join(f"{field} eq {odata_string(v)}" for v in values)
                clauses.append(f"({either})")
        return " and ".join(clauses)

    def _snippet(self, row: dict[str, Any], filters: SearchFilters) -> Snippet:
        """A Snippet from one result row, with the audience factor applied."""
        reranker = row.get("@search.reranker_score")
        base = float(reranker if reranker is not None else row.get("@search.score") or 0.0)
        audience = str(row.get("audience") or "")
        return Snippet(
            document_id=str(row["document_id"]),
            title=str(row.get("title") or ""),
            paragraph_index=int(row["paragraph_index"]),
            text=str(row.get("content") or ""),
            score=base * self._audience_factor(audience, filters.boost_audience),
            category=str(row.get("category") or ""),
            audience=audience,
            source_url=str(row.get("source_url") or ""),
        )

    def _audience_factor(self, audience: str, boost: str | None) -> float:
        """Same factors as sqlite_fts: the segment's own documents, then general ones."""
        if boost is None:
            return 1.0
        if audience.lower() == boost:
            return self.content.audience_boost
        if audience.lower() == self.content.fallback.audience.lower():
            return self.content.general_audience_boost
        return 1.0

    def close(self) -> None:
        """Close the SDK clients."""
        self.search_client.close()
        self.index_client.close()


def _api_key(variable: str) -> str:
    """The API key from the environment (never logged)."""
    key = os.environ.get(variable)
    if not key:
        raise ConfigError(
            f"environment variable {variable} is not set; the azure_search backend needs "
            "an Azure AI Search key",
            hint=f"export {variable}=<key>, or change services.retrieval.azure_search.api_key_env",
        )
    return key


if TYPE_CHECKING:
    _conforms: type[Retriever] = AzureSearchRetriever
