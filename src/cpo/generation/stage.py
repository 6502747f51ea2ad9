"""The ``generate`` stage of ``cpo run``: cited variants per segment x tone, plus the control.

Reads segment_profiles.json and retrieval.json, writes variants.json (schema in
docs/generation.md). A variant that cannot meet the constraints is recorded as
``failed`` with its reason and the run goes on; API usage is added to the run
totals in the manifest.

Before any stage runs, :meth:`GenerateStage.preflight` stops a run whose
approved content is not the bundled sample's while the config still speaks for
the sample brand (:func:`cpo.brand.check_brand_for_content`).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from cpo.brand import check_brand_for_content
from cpo.config import Config
from cpo.errors import DataValidationError
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
from cpo.pipeline import RunContext, RunOptions, StageOutcome
from cpo.retrieval.base import load_snippets
from cpo.retrieval.service import read_profiles
from cpo.retrieval.stage import RETRIEVAL_FILE
from cpo.runfiles import read_json, write_json
from cpo.segmentation.stage import PROFILES_FILE

VARIANTS_FILE = "variants.json"
URL = re.compile(r"https?://[^\s)\]>\"']+")


class GenerateStage:
    """Write every segment x tone variant and the control message."""

    name = "generate"
    description = "Generating message variants"
    outputs = (VARIANTS_FILE,)

    def preflight(self, config: Config, options: RunOptions) -> None:
        """Checks that need only the config and the inputs, run before any stage.

        Raises:
            ConfigError: the config still carries the bundled sample brand while
                the approved content is another brand's.
        """
        check_brand_for_content(config, options.content)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """Segment profiles, retrieval results and the prompts folder."""
        return [ctx.path(PROFILES_FILE), ctx.path(RETRIEVAL_FILE), ctx.config.prompts_dir]

    def _warn_about_foreign_links(
        self, ctx: RunContext, retrieval: dict, control_body: str, library: PromptLibrary
    ) -> None:
        """Warn when the control message or footer link to a site no content comes from.

        The packaged prompts are the sample brand's; a user who brings their own
        content but keeps them would send another brand's footer and control email.
        """
        content_domains = {
            urlparse(result.get("source_url") or "").hostname
            for segment in retrieval.get("segments", [])
            for result in segment.get("results", [])
        } - {None, ""}
        texts = {"control_message.txt": control_body, "footer.txt": library.footer()}
        for name, text in texts.items():
            linked = {urlparse(url).hostname for url in URL.findall(text)} - {None, ""}
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
        profiles = read_profiles(ctx.path(PROFILES_FILE))
        retrieval = self._read_retrieval(ctx)
        snippets = {p.name: load_snippets(retrieval, p.name) for p in profiles}
        generator = open_generator(ctx.config, log=ctx.log)
        avoid, match_case = avoided_mentions(retrieval)
        requests = build_requests(ctx.config, profiles, snippets, None, avoid, match_case)
        variants = run_generation(generator, requests, ctx.log, ctx.progress, self.name)
        library = PromptLibrary.for_config(ctx.config)
        control = control_variant(library)
        log_variant(ctx.log, control, self.name)
        self._warn_about_foreign_links(ctx, retrieval, control.body, library)
        document = variants_document(generator, variants, control, ctx.config)
        write_json(ctx.path(VARIANTS_FILE), document)
        usage = getattr(generator, "usage", None)
        if usage is not None:
            ctx.add_usage(
                api_calls=usage.api_calls,
                tokens_prompt=usage.tokens_prompt,
                tokens_completion=usage.tokens_completion,
                cost_usd=usage.cost_usd,
            )
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
                "cache_hits": getattr(usage, "cache_hits", 0),
            },
        )

    def _read_retrieval(self, ctx: RunContext) -> dict:
        """retrieval.json, with a clear error when the retrieve stage has not run."""
        path = ctx.path(RETRIEVAL_FILE)
        if not path.is_file():
            raise DataValidationError(
                f"{path}: retrieval results not found",
                hint="the retrieve stage writes it; rerun with `cpo run --resume RUN_DIR`",
            )
        return read_json(path)
