"""The ``retrieve`` stage of ``cpo run``: approved content per segment.

Reads segment_profiles.json and the content folder, builds (or reuses) the index,
runs one query per segment and writes retrieval.json (schema in docs/retrieval.md).
"""

from __future__ import annotations

from pathlib import Path

from cpo.pipeline import RunContext, StageOutcome
from cpo.retrieval.base import Retriever
from cpo.retrieval.content import LoadedContent, load_content
from cpo.retrieval.query import build_segment_query, population_means
from cpo.retrieval.service import (
    SegmentRetrieval,
    log_retrieval,
    open_retriever,
    read_profiles,
    retrieval_document,
    retrieve_segment,
    run_as_of,
)
from cpo.runfiles import write_json
from cpo.sample_data import bundled_content
from cpo.segmentation.stage import PROFILES_FILE

RETRIEVAL_FILE = "retrieval.json"
INDEX_FILE = "content_index.sqlite"


def content_path(ctx: RunContext) -> Path:
    """The approved-content folder of this run (the bundled sample unless given)."""
    return Path(ctx.options.content) if ctx.options.content else bundled_content()


def index_path(ctx: RunContext) -> Path:
    """The SQLite index file: ``services.retrieval.db_path`` or one in the run folder.

    A relative ``db_path`` is relative to the current directory, as for every caller
    (``cpo index``, ``cpo retrieve``, ``cpo generate``), so they all share one file.
    """
    configured = ctx.config.services.services.retrieval.db_path
    return Path(configured).expanduser() if configured else ctx.path(INDEX_FILE)


class RetrieveStage:
    """Retrieve the most relevant approved paragraphs for every segment."""

    name = "retrieve"
    description = "Retrieving approved content"
    outputs = (RETRIEVAL_FILE,)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """The segment profiles and the content folder."""
        return [ctx.path(PROFILES_FILE), content_path(ctx)]

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, str]:
        """The effective as-of date: a resume on a later day re-checks expiry."""
        return {"as_of": run_as_of(ctx.config.experiment.campaign.as_of).isoformat()}

    def run(self, ctx: RunContext) -> StageOutcome:
        """Load content, index it, query per segment, write retrieval.json."""
        content = self._load(ctx)
        settings = ctx.config.experiment.content
        service = ctx.config.services.services.retrieval
        retriever = open_retriever(service, settings, db_path=index_path(ctx), log=ctx.log)
        try:
            report = retriever.index(content.documents)
            retrievals = self._retrieve_all(ctx, retriever, content)
        finally:
            retriever.close()
        write_json(
            ctx.path(RETRIEVAL_FILE), retrieval_document(retriever.name, content, retrievals)
        )
        fallbacks = [r.query.segment for r in retrievals if r.fallback]
        summary = (
            f"{sum(len(r.results) for r in retrievals)} snippets for {len(retrievals)} segments "
            f"from {len(content.documents)} documents ({retriever.name}, index "
            f"{'built' if report.built else 'reused'})"
        )
        if fallbacks:
            summary += f"; general content for {len(fallbacks)} segment(s)"
        return StageOutcome(
            summary=summary,
            facts={
                "backend": retriever.name,
                "index": "built" if report.built else "reused",
                "index_location": report.location,
                "paragraphs": report.paragraphs,
                "fallback_segments": fallbacks,
            },
        )

    def _retrieve_all(
        self, ctx: RunContext, retriever: Retriever, content: LoadedContent
    ) -> list[SegmentRetrieval]:
        """One query per segment, logged, in profile order."""
        settings = ctx.config.experiment.content
        profiles = read_profiles(ctx.path(PROFILES_FILE))
        population = population_means(profiles)
        retrievals: list[SegmentRetrieval] = []
        for number, profile in enumerate(profiles, start=1):
            query = build_segment_query(profile, population, settings)
            retrieval = retrieve_segment(retriever, query, settings, content.documents)
            log_retrieval(ctx.log, retrieval, self.name)
            retrievals.append(retrieval)
            ctx.progress(number, len(profiles))
        return retrievals

    def _load(self, ctx: RunContext) -> LoadedContent:
        """Load the content folder and record it in the manifest."""
        path = content_path(ctx)
        as_of = run_as_of(ctx.config.experiment.campaign.as_of)
        content = load_content(path, as_of=as_of, log=ctx.log, stage=self.name)
        ctx.manifest["inputs"]["content"] = {
            "path": str(path.resolve()),
            "sha256": content.sha256,
            "documents": len(content.documents),
            "excluded_expired": len(content.excluded),
            "as_of": as_of.isoformat(),
        }
        ctx.log.info(
            self.name,
            "content_loaded",
            path=str(path),
            documents=len(content.documents),
            paragraphs=content.paragraphs,
            excluded=[e.document_id for e in content.excluded],
            as_of=as_of.isoformat(),
        )
        return content
