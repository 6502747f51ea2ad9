"""The ``generate`` stage of ``cpo run``: cited variants per segment x tone, plus the control.

Reads segment_profiles.json and retrieval.json, writes variants.json (schema in
docs/generation.md). A variant that cannot meet the constraints is recorded as
``failed`` with its reason and the run goes on; API usage is added to the run
totals in the manifest.

Before any stage runs, :meth:`GenerateStage.preflight` stops a run whose
approved content is not the bundled sample's while the config still speaks for
the sample brand (:func:`cpo.brand_guard.check_brand_for_content`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cpo.brand_guard import check_brand_for_content
from cpo.config import Config
from cpo.generation.prompts import PromptLibrary
from cpo.generation.service import (
    avoided_mentions,
    build_requests,
    control_variant,
    log_variant,
    open_generator,
    run_generation,
    variants_document,
)
from cpo.models import Snippet
from cpo.run_folder import (
    RETRIEVAL,
    SEGMENT_PROFILES,
    VARIANTS,
    read_profiles,
    read_retrieval,
    segment_snippets,
    write_variants,
)
from cpo.stage_api import ApiUsage, RunContext, RunOptions, StageBase, StageOutcome

URL = re.compile(r"https?://[^\s)\]>\"']+")


class GenerateStage(StageBase):
    """Write every segment x tone variant and the control message."""

    name = "generate"
    description = "Generating message variants"
    outputs = (VARIANTS.name,)

    def preflight(self, config: Config, options: RunOptions) -> None:
        """Checks that need only the config and the inputs, run before any stage.

        Raises:
            ConfigError: the config still carries the bundled sample brand while
                the approved content is another brand's.
        """
        check_brand_for_content(config, options.content)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Segment profiles, retrieval results and the prompts folder."""
        return [
            SEGMENT_PROFILES.path(ctx.run_dir),
            RETRIEVAL.path(ctx.run_dir),
            ctx.config.prompts_dir,
        ]

    def _warn_about_foreign_links(
        self,
        ctx: RunContext,
        retrieval: dict[str, Any],
        control_body: str,
        library: PromptLibrary,
    ) -> None:
        """Warn when the control message or footer link to a site no content comes from.

        The packaged prompts are the sample brand's; a user who brings their own
        content but keeps them would send another brand's footer and control email.
        """
        sources = (
            urlparse(result.get("source_url") or "").hostname
            for segment in retrieval.get("segments", [])
            for result in segment.get("results", [])
        )
        content_domains = {host for host in sources if host}
        texts = {"control_message.txt": control_body, "footer.txt": library.footer()}
        for name, text in texts.items():
            hosts = (urlparse(url).hostname for url in URL.findall(text))
            linked = {host for host in hosts if host}
            if content_domains and linked and not linked & content_domains:
                ctx.log.warning(
                    self.name,
                    "prompt_links_elsewhere",
                    prompt=name,
                    message=f"prompts/{name} links to {', '.join(sorted(linked))}, but the "
                    f"approved content comes from {', '.join(sorted(content_domains))}; edit "
                    f"prompts/{name} for this brand (cpo init DIR writes an editable copy)",
                )

    def run(self, ctx: RunContext) -> StageOutcome:
        """Generate concurrently (per the backend), write variants.json, record usage."""
        profiles = read_profiles(ctx.run_dir)
        retrieval = read_retrieval(ctx.run_dir)
        snippets: dict[str, Sequence[Snippet]] = {
            p.name: segment_snippets(retrieval, p.name) for p in profiles
        }
        generator = open_generator(ctx.config, log=ctx.log)
        avoid, match_case = avoided_mentions(retrieval)
        requests = build_requests(ctx.config, profiles, snippets, None, avoid, match_case)
        variants = run_generation(generator, requests, ctx.log, ctx.progress, self.name)
        library = PromptLibrary.for_config(ctx.config)
        control = control_variant(library)
        log_variant(ctx.log, control, self.name)
        self._warn_about_foreign_links(ctx, retrieval, control.body, library)
        document = variants_document(generator, variants, control, ctx.config)
        write_variants(ctx.run_dir, document)
        usage = generator.usage
        counts = document["counts"]
        summary = (
            f"{counts['generated']} variants for {len(profiles)} segments + control "
            f"({generator.backend})"
        )
        if counts["failed"]:
            summary += f"; {counts['failed']} failed"
        return StageOutcome(
            summary=summary,
            facts={
                "backend": generator.backend,
                "model": generator.model,
                **counts,
                "grounding_min": min((v.grounding.score for v in variants), default=1.0),
                "cost_usd": document["usage"]["cost_usd"],
                "cache_hits": usage.cache_hits if usage is not None else 0,
            },
            usage=None
            if usage is None
            else ApiUsage(
                api_calls=usage.api_calls,
                tokens_prompt=usage.tokens_prompt,
                tokens_completion=usage.tokens_completion,
                cost_usd=usage.cost_usd,
            ),
        )
