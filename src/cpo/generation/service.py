"""Generation for a campaign: requests per segment x tone, the control message, variants.json.

The library behind the ``generate`` stage and ``cpo generate``:

* :func:`build_requests` pairs each segment profile with its retrieved snippets
  and every configured tone;
* :func:`control_variant` reads ``prompts/control_message.txt`` (the same
  message for every segment: variant_id ``control``, segment ``all``);
* :func:`variants_document` assembles variants.json;
* :func:`preview_variant` segments, retrieves and writes one variant (tuning).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.config import Config
from cpo.errors import ConfigError
from cpo.generation.base import Generator, create_generator, generate_many, sha256_text
from cpo.generation.citations import check_grounding, strip_citations
from cpo.generation.prompts import PromptLibrary
from cpo.generation.text import count_words
from cpo.logs import RunLog, utc_now
from cpo.models import CONTROL_TONE, GenerationRequest, SegmentProfile, Snippet, Variant, to_dict

CONTROL_ID = "control"
CONTROL_SEGMENT = "all"
CONTROL_BACKEND = "control"


def open_generator(
    config: Config, log: RunLog | None = None, cache_dir: Path | None = None
) -> Generator:
    """The configured backend, after checking every tone file parses.

    Raises:
        ConfigError: unknown backend, missing or invalid tone file or footer.
        BackendUnavailable: the backend's optional package is missing.
    """
    prompts = PromptLibrary(config.prompts_dir)
    settings = config.experiment.generation
    for tone in settings.tones:
        prompts.tone(tone)
    prompts.footer()
    return create_generator(
        config.services.services.generation, settings, prompts, log=log, cache_dir=cache_dir
    )


def build_requests(
    config: Config,
    profiles: Sequence[SegmentProfile],
    snippets_by_segment: dict[str, Sequence[Snippet]],
    tones: Sequence[str] | None = None,
) -> list[GenerationRequest]:
    """One request per segment x tone (segments in profile order, tones in config order)."""
    settings = config.experiment.generation
    constraints = settings.constraints.to_constraints()
    return [
        GenerationRequest(
            segment=profile,
            snippets=tuple(snippets_by_segment.get(profile.name, ())),
            tone=tone,
            constraints=constraints,
        )
        for profile in profiles
        for tone in (tones or settings.tones)
    ]


def control_variant(prompts: PromptLibrary) -> Variant:
    """The control message as a variant (same for every segment; no citations)."""
    subject, body = prompts.control_message()
    source = f"Subject: {subject}\n\n{body}"
    return Variant(
        variant_id=CONTROL_ID,
        segment=CONTROL_SEGMENT,
        tone=CONTROL_TONE,
        subject=subject,
        body=body,
        citations=(),
        grounding=check_grounding(body, (), subject=subject).grounding,
        backend=CONTROL_BACKEND,
        model="",
        prompt_sha256=sha256_text(source),
        retrieved_document_ids=(),
        generated_at=utc_now(),
        status="generated",
    )


def run_generation(
    generator: Generator,
    requests: Sequence[GenerationRequest],
    log: RunLog | None = None,
    progress: Any = None,
    stage: str = "generate",
) -> list[Variant]:
    """Generate every request (concurrently, per the backend) and log each variant."""

    def done(completed: int, total: int, variant: Variant) -> None:
        if log is not None:
            log_variant(log, variant, stage)
        if progress is not None:
            progress(completed, total)

    return generate_many(generator, requests, on_done=done)


def log_variant(log: RunLog, variant: Variant, stage: str = "generate") -> None:
    """One log event per variant: ids, status, size, grounding, usage (never the text)."""
    fields = {
        "variant_id": variant.variant_id,
        "segment": variant.segment,
        "tone": variant.tone,
        "status": variant.status,
        "backend": variant.backend,
        "words": count_words(strip_citations(variant.body)),
        "subject_chars": len(variant.subject),
        "citations": len(variant.citations),
        "grounding_score": variant.grounding.score,
        "unsupported_claims": len(variant.grounding.unsupported_claims),
        "invalid_citations": len(variant.grounding.invalid_citations),
        "tokens_prompt": variant.tokens_prompt,
        "tokens_completion": variant.tokens_completion,
        "cost_usd": variant.cost_usd,
        "latency_ms": variant.latency_ms,
        "cached": variant.cached,
    }
    if variant.status == "failed":
        log.warning(
            stage,
            "variant_failed",
            message=f"variant {variant.segment} / {variant.tone} failed: {variant.error}",
            **fields,
        )
    else:
        log.info(stage, "variant_generated", **fields)


def variant_record(variant: Variant) -> dict[str, Any]:
    """The JSON form of a variant in variants.json (plus its word count)."""
    record = to_dict(variant)
    record["body_words"] = count_words(strip_citations(variant.body))
    return record


def variants_document(
    generator: Generator,
    variants: Sequence[Variant],
    control: Variant,
    config: Config,
) -> dict[str, Any]:
    """The content of variants.json: backend, model, time, counts, usage, variants."""
    generated = [v for v in variants if v.status == "generated"]
    return {
        "backend": generator.backend,
        "model": generator.model,
        "generated_at": utc_now(),
        "tones": list(config.experiment.generation.tones),
        "constraints": config.experiment.generation.constraints.model_dump(),
        "counts": {
            "requested": len(variants),
            "generated": len(generated),
            "failed": len(variants) - len(generated),
            "control": 1,
        },
        "usage": {
            "tokens_prompt": sum(v.tokens_prompt for v in variants),
            "tokens_completion": sum(v.tokens_completion for v in variants),
            "cost_usd": round(sum(v.cost_usd for v in variants), 8),
            "cached_variants": sum(1 for v in variants if v.cached),
        },
        "variants": [variant_record(control)] + [variant_record(v) for v in variants],
    }


# ----------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class Preview:
    """One variant written for tuning, with the snippets it was written from."""

    variant: Variant
    snippets: tuple[Snippet, ...]
    query: str


def preview_variant(
    config: Config,
    segment_name: str,
    tone: str,
    *,
    customers: Path | None = None,
    content: Path | None = None,
    seed: int | None = None,
) -> Preview:
    """Segment the customers, retrieve for one segment and write one variant.

    Raises:
        ConfigError: unknown segment or tone.
        DataValidationError: invalid customers or content.
    """
    profiles = _profiles(config, customers, seed)
    profile = _find_segment(profiles, segment_name)
    if tone not in config.experiment.generation.tones:
        raise ConfigError(
            f"unknown tone '{tone}'",
            hint="choose one of: " + ", ".join(config.experiment.generation.tones),
        )
    snippets, query = _retrieve_one(config, profiles, profile, content)
    generator = open_generator(config)
    request = build_requests(config, [profile], {profile.name: snippets}, [tone])[0]
    return Preview(generator.generate(request), tuple(snippets), query)


def _profiles(config: Config, customers: Path | None, seed: int | None) -> list[SegmentProfile]:
    """Segment profiles of the customer file (the bundled sample by default)."""
    from cpo.customers import load_customers
    from cpo.sample_data import bundled_customers
    from cpo.segmentation import segment

    loaded = load_customers(customers or bundled_customers(), on_invalid="skip")
    chosen_seed = seed if seed is not None else config.experiment.campaign.seed
    return list(segment(loaded.frame, config.experiment.segmentation, seed=chosen_seed).profiles)


def _find_segment(profiles: Sequence[SegmentProfile], name: str) -> SegmentProfile:
    """The profile named ``name`` (exact, then case-insensitive)."""
    for profile in profiles:
        if profile.name == name:
            return profile
    for profile in profiles:
        if profile.name.casefold() == name.casefold():
            return profile
    raise ConfigError(
        f"unknown segment '{name}'",
        hint="choose one of: " + ", ".join(f"'{p.name}'" for p in profiles),
    )


def _retrieve_one(
    config: Config,
    profiles: Sequence[SegmentProfile],
    profile: SegmentProfile,
    content: Path | None,
) -> tuple[list[Snippet], str]:
    """Retrieve one segment's snippets with the configured backend (temporary index)."""
    from cpo.retrieval.content import load_content
    from cpo.retrieval.query import build_segment_query, population_means
    from cpo.retrieval.service import open_retriever, retrieve_segment, run_as_of
    from cpo.sample_data import bundled_content

    settings = config.experiment.content
    loaded = load_content(
        content or bundled_content(), as_of=run_as_of(config.experiment.campaign.as_of)
    )
    with tempfile.TemporaryDirectory(prefix="cpo-generate-") as folder:
        retriever = open_retriever(
            config.services.services.retrieval, settings, db_path=Path(folder) / "index.sqlite"
        )
        try:
            retriever.index(loaded.documents)
            query = build_segment_query(profile, population_means(profiles), settings)
            result = retrieve_segment(retriever, query, settings, loaded.documents)
        finally:
            close = getattr(retriever, "close", None)
            if close is not None:
                close()
    return list(result.results), query.text
