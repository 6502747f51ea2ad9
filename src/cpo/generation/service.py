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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cpo.citations import check_grounding, strip_citations
from cpo.config import Config
from cpo.generation.base import (
    Generator,
    append_footer,
    create_generator,
    generate_many,
    sha256_text,
)
from cpo.generation.prompts import PromptLibrary
from cpo.logs import RunLog, utc_now
from cpo.models import CONTROL_TONE, GenerationRequest, SegmentProfile, Snippet, Variant, to_dict
from cpo.text import count_words

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
    prompts = PromptLibrary.for_config(config)
    settings = config.experiment.generation
    for tone in settings.tones:
        prompts.tone(tone)
    prompts.footer()
    return create_generator(
        config.services.generation, settings, prompts, log=log, cache_dir=cache_dir
    )


def build_requests(
    config: Config,
    profiles: Sequence[SegmentProfile],
    snippets_by_segment: dict[str, Sequence[Snippet]],
    tones: Sequence[str] | None = None,
    avoid_by_segment: Mapping[str, Sequence[str]] | None = None,
    avoid_match_case: bool = False,
) -> list[GenerationRequest]:
    """One request per segment x tone (segments in profile order, tones in config order).

    ``avoid_by_segment`` holds, per segment, the audience values (tiers) the retrieve
    stage found not every customer of the segment holds; the message must not name them.
    """
    settings = config.experiment.generation
    constraints = settings.constraints.to_constraints()
    avoid = avoid_by_segment or {}
    return [
        GenerationRequest(
            segment=profile,
            snippets=tuple(snippets_by_segment.get(profile.name, ())),
            tone=tone,
            constraints=constraints,
            avoid_mentions=tuple(avoid.get(profile.name, ())),
            avoid_match_case=avoid_match_case,
        )
        for profile in profiles
        for tone in (tones or settings.tones)
    ]


def control_variant(prompts: PromptLibrary) -> Variant:
    """The control message as a variant (same for every segment; no citations).

    The footer is appended exactly as to every generated variant.
    """
    subject, message = prompts.control_message()
    body = append_footer(message, prompts.footer())
    source = f"Subject: {subject}\n\n{body}"
    return Variant(
        variant_id=CONTROL_ID,
        segment=CONTROL_SEGMENT,
        tone=CONTROL_TONE,
        subject=subject,
        body=body,
        citations=(),
        # the footer is brand boilerplate (address, links), not a claim to ground
        grounding=check_grounding(message, (), subject=subject).grounding,
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
    fields: dict[str, Any] = {
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


def avoided_mentions(retrieval: dict[str, Any]) -> tuple[dict[str, list[str]], bool]:
    """Per segment, the audience values its messages must not name (from retrieval.json).

    Also whether they match case-sensitively. Empty for a retrieval.json written
    without customer data (previews).
    """
    section = retrieval.get("audience_mentions")
    match_case = bool(section.get("match_case", False)) if isinstance(section, dict) else False
    avoid = {
        str(entry.get("segment")): list(
            (entry.get("audience_values") or {}).get("not_held_by_all") or ()
        )
        for entry in retrieval.get("segments") or ()
        if isinstance(entry, dict)
    }
    return avoid, match_case
