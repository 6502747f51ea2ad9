"""The ``retrieve`` stage of ``cpo run``: approved content per segment.

Reads segment_profiles.json and the content folder, builds (or reuses) the index,
runs one query per segment and writes retrieval.json (schema in docs/retrieval.md).

It also reads segments.csv and the run's customer file: per segment, which
documents its customers are eligible for (``eligibility``) and which audience
values (tiers) every customer holds, so snippets never name a tier some recipient
does not have. Audiences that match no segment are warned about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpo.audience import unmatched_audiences, unmatched_warning
from cpo.models import SegmentProfile
from cpo.retrieval.base import Retriever
from cpo.retrieval.content import LoadedContent, load_content
from cpo.retrieval.eligibility import (
    AudienceValues,
    SegmentGuard,
    build_guards,
    unknown_segment_guard,
)
from cpo.retrieval.query import build_segment_query, population_means
from cpo.retrieval.service import (
    SegmentRetrieval,
    log_retrieval,
    open_retriever,
    retrieval_document,
    retrieve_segment,
    run_as_of,
)
from cpo.run_folder import (
    CONTENT_INDEX,
    RETRIEVAL,
    SEGMENT_PROFILES,
    SEGMENTS,
    SEGMENTS_DATASET,
    read_profiles,
    read_segments,
    write_retrieval,
)
from cpo.run_inputs import content_path, load_run_customers, recorded_customers_path
from cpo.stage_api import RunContext, StageBase, StageOutcome


class RetrieveStage(StageBase):
    """Retrieve the most relevant approved paragraphs for every segment."""

    name = "retrieve"
    description = "Retrieving approved content"
    outputs = (RETRIEVAL.name,)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """The segment profiles and assignments, the customers and the content folder."""
        return [
            SEGMENT_PROFILES.path(ctx.run_dir),
            SEGMENTS.path(ctx.run_dir),
            SEGMENTS_DATASET.path(ctx.run_dir),
            recorded_customers_path(ctx),
            content_path(ctx),
        ]

    def fingerprint_extra(self, ctx: RunContext) -> dict[str, str] | None:
        """The effective as-of date: a resume on a later day re-checks expiry."""
        return {"as_of": run_as_of(ctx.config.experiment.campaign.as_of).isoformat()}

    def run(self, ctx: RunContext) -> StageOutcome:
        """Load content, index it, query per segment, write retrieval.json."""
        content, content_record = self._load(ctx)
        settings = ctx.config.experiment.content
        service = ctx.config.services.retrieval
        profiles = read_profiles(ctx.run_dir)
        guards, values = segment_guards(ctx, content)
        for profile in profiles:
            if profile.name not in guards:  # no customer found: fail closed
                guards[profile.name] = unknown_segment_guard(content.documents, values, settings)
        warnings = self._audience_warnings(ctx, content, profiles)
        # A backend keeping a local index (sqlite_fts) uses the run folder's file unless
        # its settings name a shared one.
        retriever = open_retriever(
            service, settings, default_db_path=CONTENT_INDEX.path(ctx.run_dir), log=ctx.log
        )
        try:
            report = retriever.index(content.documents)
            retrievals = self._retrieve_all(ctx, retriever, content, profiles, guards)
        finally:
            retriever.close()
        audience = audience_section(warnings, values, settings.audience_match_case)
        document = retrieval_document(retriever.name, content, retrievals, audience)
        write_retrieval(ctx.run_dir, document)
        fallbacks = [r.query.segment for r in retrievals if r.fallback]
        removed = sum(len(r.removals) for r in retrievals)
        summary = (
            f"{sum(len(r.results) for r in retrievals)} snippets for {len(retrievals)} segments "
            f"from {len(content.documents)} documents ({retriever.name}, index "
            f"{'built' if report.built else 'reused'})"
        )
        if fallbacks:
            summary += f"; general content for {len(fallbacks)} segment(s)"
        if removed:
            summary += f"; {removed} sentence(s) naming a tier not every recipient holds removed"
        return StageOutcome(
            summary=summary,
            facts={
                "backend": retriever.name,
                "index": "built" if report.built else "reused",
                "index_location": report.location,
                "paragraphs": report.paragraphs,
                "fallback_segments": fallbacks,
                "audience_sentences_removed": removed,
                "unmatched_audiences": len(warnings),
                "not_eligible": {
                    name: sorted(guard.excluded) for name, guard in guards.items() if guard.excluded
                },
            },
            records={"inputs": {"content": content_record}},
        )

    def _audience_warnings(
        self, ctx: RunContext, content: LoadedContent, profiles: list[SegmentProfile]
    ) -> list[str]:
        """Warn (log and terminal) about audiences that match no segment of the run."""
        settings = ctx.config.experiment.content
        names = [p.name for p in profiles]
        audiences = [d.audience for d in content.documents]
        warnings = []
        for audience in unmatched_audiences(audiences, names, settings):
            ids = [d.document_id for d in content.documents if d.audience == audience]
            message = unmatched_warning(audience, ids, names)
            ctx.log.warning(self.name, "audience_unmatched", audience=audience, message=message)
            warnings.append(message)
        return warnings

    def _retrieve_all(
        self,
        ctx: RunContext,
        retriever: Retriever,
        content: LoadedContent,
        profiles: list[SegmentProfile],
        guards: dict[str, SegmentGuard],
    ) -> list[SegmentRetrieval]:
        """One query per segment, logged, in profile order."""
        settings = ctx.config.experiment.content
        population = population_means(profiles)
        retrievals: list[SegmentRetrieval] = []
        for number, profile in enumerate(profiles, start=1):
            query = build_segment_query(profile, population, settings)
            retrieval = retrieve_segment(
                retriever, query, settings, content.documents, guard=guards[profile.name]
            )
            log_retrieval(ctx.log, retrieval, self.name)
            retrievals.append(retrieval)
            ctx.progress(number, len(profiles))
        return retrievals

    def _load(self, ctx: RunContext) -> tuple[LoadedContent, dict[str, Any]]:
        """Load the content folder; return it and its record for the manifest's inputs."""
        path = content_path(ctx)
        as_of = run_as_of(ctx.config.experiment.campaign.as_of)
        content = load_content(path, as_of=as_of, log=ctx.log, stage=self.name)
        record = {
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
        return content, record


def segment_guards(
    ctx: RunContext, content: LoadedContent
) -> tuple[dict[str, SegmentGuard], AudienceValues]:
    """Per segment, what its customers allow (from segments.csv and the customer file)."""
    from cpo.idjoin import row_positions, take_rows

    segments = read_segments(ctx.run_dir, ["customer_id", "segment"])
    customers = load_run_customers(ctx)
    # each segmented customer's row (an inner join in the customers' order, by hash lookup)
    position = row_positions(customers["customer_id"], segments["customer_id"])
    found = position >= 0
    joined = customers.loc[found].reset_index(drop=True)
    segment = take_rows(segments[["segment"]], position[found])["segment"]
    return build_guards(content.documents, joined, segment, ctx.config.experiment.content)


def audience_section(
    warnings: list[str], values: AudienceValues, match_case: bool
) -> dict[str, Any]:
    """The run-wide audience entries of retrieval.json."""
    return {
        "audience_warnings": warnings,
        "audience_mentions": {
            "columns": values.columns,
            "match_case": match_case,
            "everyone": {
                "held_by_all": values.everyone,
                "not_held_by_all": values.not_held(values.everyone),
            },
        },
    }
