"""Retrieval for segments: pick a backend, query per segment, cut off, fall back.

This is the library behind the ``retrieve`` stage and ``cpo retrieve``:

* :func:`open_retriever` builds the configured backend (``services.retrieval``);
* :func:`retrieve_segment` runs one segment's query and applies the policy of the
  ``content`` section: at most ``max_per_document`` paragraphs per document, only
  results scoring at least ``min_score``, ``top_k`` kept; when fewer than
  ``min_results`` clear the threshold, general content (``fallback.audience``,
  usually "All") tops the list up, with a warning;
* :func:`retrieval_document` assembles retrieval.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cpo import registry
from cpo.errors import DataValidationError
from cpo.logs import RunLog
from cpo.models import SegmentProfile, Snippet
from cpo.retrieval.base import IndexReport, Retriever, snippet_to_result
from cpo.retrieval.content import Document, LoadedContent, load_content
from cpo.retrieval.query import SegmentQuery
from cpo.retrieval.settings import ContentSettings, RetrievalServiceSettings

#: Candidates fetched per kept result, so the per-document cap and threshold can still fill top_k.
CANDIDATE_FACTOR = 4


@dataclass(frozen=True)
class SegmentRetrieval:
    """One segment's query and what it retrieved.

    Attributes:
        query: The query (terms, text, filters, term sources).
        results: Kept snippets, best first (relevant ones, then any fallback ones).
        fallback: True when general content was added because too few results were relevant.
        warnings: Human-readable warnings (also logged).
        best_score: Highest score the query reached before the threshold (0 if none).
    """

    query: SegmentQuery
    results: tuple[Snippet, ...]
    fallback: bool
    warnings: tuple[str, ...]
    best_score: float


def open_retriever(
    service: RetrievalServiceSettings,
    content: ContentSettings,
    *,
    db_path: Path | None = None,
    log: RunLog | None = None,
) -> Retriever:
    """Instantiate the configured backend (``services.retrieval.backend``).

    Args:
        service: ``services.retrieval`` settings.
        content: The ``content`` section (ranking and boosts).
        db_path: Index file for ``sqlite_fts`` (wins over ``services.retrieval.db_path``).
        log: Run log for API calls and index events.
    """
    backend = registry.get("retrieval", service.backend)
    return backend.from_config(service, content, db_path=db_path, log=log)


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


def retrieve_segment(
    retriever: Retriever,
    query: SegmentQuery,
    settings: ContentSettings,
    documents: Sequence[Document] = (),
    top_k: int | None = None,
) -> SegmentRetrieval:
    """Run a segment's query and apply threshold, per-document cap and fallback.

    Args:
        retriever: An indexed backend.
        query: The segment's query (see :func:`cpo.retrieval.query.build_segment_query`).
        settings: The ``content`` section.
        documents: The indexed documents; the last-resort fallback takes the first
            paragraphs of general documents from here when the fallback query finds none.
        top_k: Overrides ``settings.top_k`` (tuning).
    """
    k = top_k or settings.top_k
    candidates = (
        retriever.search(query.text, k * CANDIDATE_FACTOR, query.filters) if query.terms else []
    )
    best = max((s.score for s in candidates), default=0.0)
    relevant = [s for s in candidates if s.score >= settings.min_score]
    results = diversify(relevant, k, settings.max_per_document)
    wanted = k if not results else settings.min_results
    if len(results) >= wanted:
        return SegmentRetrieval(query, tuple(results), False, (), best)
    extra = fallback_snippets(retriever, settings, documents, exclude=results, needed=wanted)
    extra = extra[: wanted - len(results)]
    warnings = [_fallback_warning(query, settings, len(results), len(extra), best)]
    if not extra:
        warnings.append(
            f"segment '{query.segment}': no general content (audience "
            f"'{settings.fallback.audience}') to fall back on"
        )
    return SegmentRetrieval(query, tuple(results + extra), bool(extra), tuple(warnings), best)


def fallback_snippets(
    retriever: Retriever,
    settings: ContentSettings,
    documents: Sequence[Document],
    exclude: Sequence[Snippet],
    needed: int,
) -> list[Snippet]:
    """General content: the fallback query over general documents, then their first paragraphs.

    No threshold applies here: general content is approved for everyone.
    """
    fallback = settings.fallback
    filters: dict[str, Any] = {"audience": fallback.audience}
    if fallback.categories:
        filters["category"] = list(fallback.categories)
    found = retriever.search(fallback.query, needed * CANDIDATE_FACTOR, filters)
    found += _first_paragraphs(documents, fallback.audience, fallback.categories)
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


def segment_entry(retrieval: SegmentRetrieval) -> dict[str, Any]:
    """One ``segments`` entry of retrieval.json."""
    query = retrieval.query
    return {
        "segment": query.segment,
        "segment_id": query.segment_id,
        "query": query.text,
        "filters": query.filters,
        "fallback": retrieval.fallback,
        "warnings": list(retrieval.warnings),
        "results": [snippet_to_result(s) for s in retrieval.results],
    }


def retrieval_document(
    backend: str, content: LoadedContent, retrievals: Sequence[SegmentRetrieval]
) -> dict[str, Any]:
    """The retrieval.json document (schema in docs/retrieval.md)."""
    return {
        "backend": backend,
        "as_of": content.as_of.isoformat(),
        "content_sha256": content.sha256,
        "documents": len(content.documents),
        "excluded": [{"document_id": e.document_id, "reason": e.reason} for e in content.excluded],
        "segments": [segment_entry(r) for r in retrievals],
    }


def read_profiles(path: Path) -> list[SegmentProfile]:
    """Segment profiles from a segment_profiles.json file.

    Raises:
        DataValidationError: the file is missing or not in the expected shape.
    """
    if not path.is_file():
        raise DataValidationError(
            f"{path}: segment profiles not found",
            hint="run the segment stage first (cpo run), or pass --run RUN_DIR",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_profile(entry) for entry in data["segments"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataValidationError(
            f"{path}: not a valid segment_profiles.json ({type(exc).__name__}: {exc})",
            hint="rerun the segment stage to rewrite it",
        ) from None


def _profile(entry: dict[str, Any]) -> SegmentProfile:
    """A :class:`SegmentProfile` from its JSON form."""
    return SegmentProfile(
        name=str(entry["name"]),
        segment_id=int(entry["segment_id"]),
        size=int(entry["size"]),
        share=float(entry["share"]),
        definition=str(entry.get("definition", "")),
        means={str(k): float(v) for k, v in (entry.get("means") or {}).items()},
        medians={str(k): float(v) for k, v in (entry.get("medians") or {}).items()},
        traits=tuple(str(t) for t in entry.get("traits") or ()),
    )


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
    log: RunLog | None = None,
) -> PreparedIndex:
    """Load ``content_dir`` as of a date and index it with the configured backend.

    Raises:
        DataValidationError: the content folder is invalid (see :func:`load_content`).
        ConfigError: the backend is unknown or misconfigured.
    """
    content = load_content(content_dir, as_of=as_of, log=log)
    retriever = open_retriever(service, settings, db_path=db_path, log=log)
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
