"""Retrieval for segments: pick a backend, query per segment, cut off, fall back.

This is the library behind the ``retrieve`` stage and ``cpo retrieve``:

* :func:`open_retriever` builds the configured backend (``services.retrieval``);
* :func:`retrieve_segment` runs one segment's query and applies the policy of the
  ``content`` section: only documents whose audience reaches the segment
  (:mod:`cpo.audience`; written for it, boosted by ``audience_boost``, or
  for everyone, boosted by ``general_audience_boost``), at most ``max_per_document``
  paragraphs per document, only results scoring at least ``min_score``, ``top_k``
  kept; when fewer than ``min_results`` clear the threshold, general content
  (``fallback.audience``, usually "All") tops the list up, with a warning. A
  :class:`SegmentGuard` (built by the retrieve stage from the segment's customers)
  also leaves out documents the customers are not eligible for and removes
  sentences naming an audience value (a tier) not every customer holds;
* :func:`retrieval_document` assembles retrieval.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from cpo import registry
from cpo.audience import remove_mentions, segment_audiences
from cpo.errors import DataValidationError
from cpo.logs import RunLog
from cpo.models import SegmentProfile, Snippet
from cpo.retrieval.base import IndexReport, RetrievalContext, Retriever
from cpo.retrieval.content import Document, LoadedContent, load_content
from cpo.retrieval.eligibility import SegmentGuard
from cpo.retrieval.query import SegmentQuery
from cpo.retrieval.settings import ContentSettings, RetrievalServiceSettings
from cpo.run_folder import snippet_to_result

#: Candidates fetched per kept result, so the per-document cap and threshold can still fill top_k.
CANDIDATE_FACTOR = 4


@dataclass(frozen=True)
class Removal:
    """A sentence taken out of a snippet because it names an audience value."""

    document_id: str
    paragraph_index: int
    sentence: str
    names: tuple[str, ...]
    paragraph_dropped: bool


@dataclass(frozen=True)
class SegmentRetrieval:
    """One segment's query and what it retrieved.

    Attributes:
        query: The query (terms, text, filters, term sources).
        results: Kept snippets, best first (relevant ones, then any fallback ones).
        fallback: True when general content was added because too few results were relevant.
        warnings: Human-readable warnings (also logged).
        best_score: Highest score the query reached before the threshold (0 if none).
        filters: The filters the backend was searched with.
        audiences: ``specific`` and ``general`` audiences whose documents may be used.
        removals: Sentences removed from the kept results (or their dropped paragraphs).
        guard: The segment's eligibility and audience values (None without customer data).
    """

    query: SegmentQuery
    results: tuple[Snippet, ...]
    fallback: bool
    warnings: tuple[str, ...]
    best_score: float
    filters: dict[str, Any] | None = None
    audiences: dict[str, list[str]] | None = None
    removals: tuple[Removal, ...] = ()
    guard: SegmentGuard | None = None


def open_retriever(
    service: RetrievalServiceSettings,
    content: ContentSettings,
    *,
    db_path: Path | None = None,
    default_db_path: Path | None = None,
    log: RunLog | None = None,
) -> Retriever:
    """Build the configured backend (``services.retrieval.backend``) from its block.

    Args:
        service: ``services.retrieval``.
        content: The ``content`` section (ranking and boosts).
        db_path: Index file chosen by the caller (``--db``); wins over the config.
        default_db_path: Index file when neither the caller nor the config names one.
        log: Run log for API calls and index events.

    Raises:
        ConfigError: unknown backend, or its settings cannot run.
        BackendUnavailable: its optional package is not installed.
    """
    ctx = RetrievalContext(content, db_path=db_path, default_db_path=default_db_path, log=log)
    retriever: Retriever = registry.build("retrieval", service.backend, service.selected, ctx)
    return retriever


def diversify(snippets: Iterable[Snippet], limit: int, max_per_document: int) -> list[Snippet]:
    """The first ``limit`` snippets, with at most ``max_per_document`` from one document."""
    kept: list[Snippet] = []
    per_document: dict[str, int] = {}
    for snippet in snippets:
        if len(kept) >= limit:
            break
        count = per_document.get(snippet.document_id, 0)
        if count < max_per_document:
            kept.append(snippet)
            per_document[snippet.document_id] = count + 1
    return kept


class SearchPlan:
    """How one segment searches: filters, audience boosts, and what its customers allow.

    Args:
        segment: The segment's name.
        settings: The ``content`` section.
        documents: The indexed documents (their audiences decide the audience filter).
        guard: The segment's eligibility exclusions and forbidden audience values.
    """

    def __init__(
        self,
        segment: str,
        settings: ContentSettings,
        documents: Sequence[Document],
        guard: SegmentGuard | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard
        # Without the documents nothing is known about audiences: the backend boosts.
        self.knows_audiences = bool(documents)
        specific, general = segment_audiences(segment, (d.audience for d in documents), settings)
        self.audiences = {"specific": specific, "general": general}
        self.factors = {a.casefold(): settings.general_audience_boost for a in general}
        self.factors.update({a.casefold(): settings.audience_boost for a in specific})
        self.removals: dict[tuple[str, int], list[Removal]] = {}

    def filters(self, query_filters: dict[str, Any]) -> dict[str, Any]:
        """The backend filters: the query's, with the audiences that reach the segment.

        The boost is applied here (:meth:`screen`), the same for every backend; an
        explicit ``audience`` filter (``cpo retrieve --audience``) is kept as given.
        """
        if not self.knows_audiences:
            return dict(query_filters)
        filters = {k: v for k, v in query_filters.items() if k != "boost_audience"}
        if "audience" not in filters:
            filters["audience"] = [*self.audiences["specific"], *self.audiences["general"]]
        return filters

    def screen(self, snippets: Iterable[Snippet], boost: bool = True) -> list[Snippet]:
        """Snippets the segment may receive: allowed, boosted, without forbidden sentences.

        Returns them best first (score, then document id and paragraph).
        """
        kept = []
        for snippet in snippets:
            if self.guard is not None and snippet.document_id in self.guard.excluded:
                continue
            factor = self.factors.get(snippet.audience.casefold())
            if not self.knows_audiences:
                factor = 1.0
            if factor is None:
                continue
            text = self._without_mentions(snippet)
            if text:
                kept.append(
                    replace(snippet, text=text, score=snippet.score * (factor if boost else 1.0))
                )
        kept.sort(key=lambda s: (-s.score, s.document_id, s.paragraph_index))
        return kept

    def _without_mentions(self, snippet: Snippet) -> str:
        """The snippet's text without sentences naming a forbidden value (record them)."""
        if self.guard is None or not self.guard.forbidden:
            return snippet.text
        text, removed = remove_mentions(snippet.text, self.guard.forbidden, self.guard.match_case)
        if removed:
            key = (snippet.document_id, snippet.paragraph_index)
            self.removals[key] = [
                Removal(key[0], key[1], sentence, tuple(names), not text)
                for sentence, names in removed
            ]
        return text

    def removals_for(self, results: Sequence[Snippet]) -> tuple[Removal, ...]:
        """Removals in the kept results, then in the paragraphs dropped entirely."""
        kept = [(s.document_id, s.paragraph_index) for s in results]
        dropped = sorted(k for k, r in self.removals.items() if r and r[0].paragraph_dropped)
        return tuple(r for key in [*kept, *dropped] for r in self.removals.get(key, []))


def retrieve_segment(
    retriever: Retriever,
    query: SegmentQuery,
    settings: ContentSettings,
    documents: Sequence[Document] = (),
    top_k: int | None = None,
    guard: SegmentGuard | None = None,
) -> SegmentRetrieval:
    """Run a segment's query and apply audiences, threshold, per-document cap and fallback.

    Args:
        retriever: An indexed backend.
        query: The segment's query (see :func:`cpo.retrieval.query.build_segment_query`).
        settings: The ``content`` section.
        documents: The indexed documents: their audiences decide which reach the segment,
            and the last-resort fallback takes the first paragraphs of general documents
            from here when the fallback query finds none.
        top_k: Overrides ``settings.top_k`` (tuning).
        guard: What the segment's customers allow (eligibility, audience values).
    """
    k = top_k or settings.top_k
    plan = SearchPlan(query.segment, settings, documents, guard)
    filters = plan.filters(query.filters)
    searchable = bool(query.terms) and filters.get("audience") != []
    found = retriever.search(query.text, k * CANDIDATE_FACTOR, filters) if searchable else []
    candidates = plan.screen(found)
    best = max((s.score for s in candidates), default=0.0)
    relevant = [s for s in candidates if s.score >= settings.min_score]
    results = diversify(relevant, k, settings.max_per_document)
    wanted = k if not results else settings.min_results
    warnings: list[str] = []
    extra: list[Snippet] = []
    if len(results) < wanted:
        extra = fallback_snippets(retriever, settings, documents, results, wanted, plan)
        extra = extra[: wanted - len(results)]
        warnings.append(_fallback_warning(query, settings, len(results), len(extra), best))
        if not extra:
            warnings.append(
                f"segment '{query.segment}': no general content (audience "
                f"'{settings.fallback.audience}') to fall back on"
            )
    kept = tuple(results + extra)
    return SegmentRetrieval(
        query,
        kept,
        bool(extra),
        tuple(warnings),
        best,
        filters=filters,
        audiences=plan.audiences,
        removals=plan.removals_for(kept),
        guard=guard,
    )


def fallback_snippets(
    retriever: Retriever,
    settings: ContentSettings,
    documents: Sequence[Document],
    exclude: Sequence[Snippet],
    needed: int,
    plan: SearchPlan | None = None,
) -> list[Snippet]:
    """General content: the fallback query over general documents, then their first paragraphs.

    No threshold applies here: general content is approved for everyone (but the
    segment's ``plan`` still leaves out documents its customers are not eligible for
    and sentences naming audience values they do not all hold).
    """
    fallback = settings.fallback
    filters: dict[str, Any] = {"audience": fallback.audience}
    if fallback.categories:
        filters["category"] = list(fallback.categories)
    found = retriever.search(fallback.query, needed * CANDIDATE_FACTOR, filters)
    found += _first_paragraphs(documents, fallback.audience, fallback.categories)
    if plan is not None:
        found = _screen_in_order(plan, found)
    taken = {(s.document_id, s.paragraph_index) for s in exclude}
    fresh = []
    for snippet in found:
        key = (snippet.document_id, snippet.paragraph_index)
        if key not in taken:
            taken.add(key)
            fresh.append(snippet)
    already = list(exclude)
    combined = diversify([*already, *fresh], len(already) + needed, settings.max_per_document)
    return combined[len(already) :]


def _screen_in_order(plan: SearchPlan, snippets: Sequence[Snippet]) -> list[Snippet]:
    """``plan.screen`` without boosting or re-sorting (the fallback order is kept)."""
    screened = {(s.document_id, s.paragraph_index): s for s in plan.screen(snippets, boost=False)}
    ordered = []
    for snippet in snippets:
        kept = screened.pop((snippet.document_id, snippet.paragraph_index), None)
        if kept is not None:
            ordered.append(kept)
    return ordered


def _first_paragraphs(
    documents: Sequence[Document], audience: str, categories: Sequence[str]
) -> list[Snippet]:
    """¶1 of each general document (score 0), in document-id order."""
    wanted = {c.lower() for c in categories}
    return [
        Snippet(
            document_id=d.document_id,
            title=d.title,
            paragraph_index=1,
            text=d.paragraphs[0],
            score=0.0,
            category=d.category,
            audience=d.audience,
            source_url=d.source_url,
        )
        for d in sorted(documents, key=lambda d: d.document_id)
        if d.audience.lower() == audience.lower()
        and (not wanted or d.category.lower() in wanted)
        and d.paragraphs
    ]


def _fallback_warning(
    query: SegmentQuery, settings: ContentSettings, kept: int, added: int, best: float
) -> str:
    """The warning when general content had to fill in."""
    general = f"general content (audience '{settings.fallback.audience}')"
    if kept == 0:
        return (
            f"segment '{query.segment}': no result cleared min_score {settings.min_score:g} "
            f"(best {best:.2f}); using {added} snippet(s) of {general}"
        )
    return (
        f"segment '{query.segment}': only {kept} result(s) cleared min_score "
        f"{settings.min_score:g}; added {added} snippet(s) of {general}"
    )


def log_retrieval(log: RunLog, retrieval: SegmentRetrieval, stage: str = "retrieve") -> None:
    """Log a segment's query and its results (ids, paragraphs and scores; no full text)."""
    query = retrieval.query
    log.info(
        stage,
        "retrieval_query",
        segment=query.segment,
        segment_id=query.segment_id,
        query=query.text,
        filters=query.filters,
        term_sources=query.sources,
        fallback=retrieval.fallback,
        best_score=round(retrieval.best_score, 4),
        results=[
            {
                "document_id": s.document_id,
                "paragraph_index": s.paragraph_index,
                "score": round(s.score, 4),
            }
            for s in retrieval.results
        ],
    )
    for warning in retrieval.warnings:
        log.warning(stage, "retrieval_fallback", segment=query.segment, message=warning)
    if retrieval.removals:
        log.info(
            stage,
            "audience_sentences_removed",
            segment=query.segment,
            sentences=len(retrieval.removals),
            paragraphs_dropped=sum(r.paragraph_dropped for r in retrieval.removals),
        )
    if retrieval.guard is not None and retrieval.guard.excluded:
        log.info(
            stage,
            "documents_not_eligible",
            segment=query.segment,
            documents=sorted(retrieval.guard.excluded),
        )


def segment_entry(retrieval: SegmentRetrieval) -> dict[str, Any]:
    """One ``segments`` entry of retrieval.json."""
    query = retrieval.query
    entry: dict[str, Any] = {
        "segment": query.segment,
        "segment_id": query.segment_id,
        "query": query.text,
        "filters": retrieval.filters if retrieval.filters is not None else query.filters,
        "fallback": retrieval.fallback,
        "warnings": list(retrieval.warnings),
        "results": [snippet_to_result(s) for s in retrieval.results],
    }
    if retrieval.audiences is not None:
        entry["audiences"] = retrieval.audiences
    entry["removed_sentences"] = [
        {
            "document_id": r.document_id,
            "paragraph_index": r.paragraph_index,
            "sentence": r.sentence,
            "reason": f"names {', '.join(r.names)}, not held by every customer of the segment",
            "paragraph_dropped": r.paragraph_dropped,
        }
        for r in retrieval.removals
    ]
    if retrieval.guard is not None:
        entry.update(guard_entry(retrieval.guard))
    return entry


def guard_entry(guard: SegmentGuard) -> dict[str, Any]:
    """The segment's eligibility exclusions and audience values, for retrieval.json."""
    return {
        "excluded_documents": [
            {
                "document_id": document_id,
                "reason": reason,
                "eligible_share": guard.eligible_shares.get(document_id),
            }
            for document_id, reason in sorted(guard.excluded.items())
        ],
        "eligible_shares": dict(sorted(guard.eligible_shares.items())),
        "audience_values": {"held_by_all": guard.held, "not_held_by_all": list(guard.forbidden)},
    }


def retrieval_document(
    backend: str,
    content: LoadedContent,
    retrievals: Sequence[SegmentRetrieval],
    audience: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The retrieval.json document (schema in docs/retrieval.md).

    Args:
        backend: The backend's name.
        content: The loaded content.
        retrievals: One per segment.
        audience: Run-wide audience information (``warnings`` for audiences no segment
            matches, and ``audience_mentions``: columns, values, what every customer holds).
    """
    document = {
        "backend": backend,
        "as_of": content.as_of.isoformat(),
        "content_sha256": content.sha256,
        "documents": len(content.documents),
        "excluded": [{"document_id": e.document_id, "reason": e.reason} for e in content.excluded],
        **(audience or {}),
        "segments": [segment_entry(r) for r in retrievals],
    }
    return document


def run_as_of(configured: date | None) -> date:
    """The run's as-of date: ``campaign.as_of`` when set, else today."""
    return configured or date.today()


@dataclass(frozen=True)
class PreparedIndex:
    """A loaded content folder and a backend indexed with it.

    Attributes:
        content: The loaded content (usable documents, exclusions, hash).
        retriever: The indexed backend, ready for :meth:`Retriever.search`.
        report: What indexing did (built or reused).
    """

    content: LoadedContent
    retriever: Retriever
    report: IndexReport


def prepare_index(
    content_dir: Path,
    service: RetrievalServiceSettings,
    settings: ContentSettings,
    *,
    as_of: date,
    db_path: Path | None = None,
    default_db_path: Path | None = None,
    log: RunLog | None = None,
) -> PreparedIndex:
    """Load ``content_dir`` as of a date and index it with the configured backend.

    ``db_path`` and ``default_db_path`` are passed to :func:`open_retriever`.

    Raises:
        DataValidationError: the content folder is invalid (see :func:`load_content`).
        ConfigError: the backend is unknown or misconfigured.
    """
    content = load_content(content_dir, as_of=as_of, log=log)
    retriever = open_retriever(
        service, settings, db_path=db_path, default_db_path=default_db_path, log=log
    )
    report = retriever.index(content.documents)
    return PreparedIndex(content, retriever, report)


def find_profile(profiles: Sequence[SegmentProfile], name: str) -> SegmentProfile:
    """The profile called ``name`` (exact, then case-insensitive).

    Raises:
        DataValidationError: no segment has that name (the message lists the names).
    """
    for profile in profiles:
        if profile.name == name:
            return profile
    for profile in profiles:
        if profile.name.lower() == name.lower():
            return profile
    names = ", ".join(f"'{p.name}'" for p in profiles) or "(none)"
    raise DataValidationError(
        f"no segment named '{name}'; the segments are: {names}",
        hint="pass one of those names to --segment (quote names with spaces)",
    )
