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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.config import Config
from cpo.errors import ConfigError
from cpo.generation.base import (
    Generator,
    append_footer,
    create_generator,
    generate_many,
    sha256_text,
)
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
    run_dir: Path | None = None,
) -> Preview:
    """Write one variant for one segment and tone, retrieving for it first (tuning).

    With ``run_dir``, the segment profile and its snippets come from that run's
    segment_profiles.json and retrieval.json; otherwise the customers are
    segmented (the bundled sample by default) and the content folder indexed in
    a temporary file, exactly as ``cpo run`` would.

    Raises:
        ConfigError: unknown tone.
        DataValidationError: unknown segment, invalid customers or content.
    """
    from cpo.retrieval.service import find_profile
    from cpo.run_folder import read_profiles

    if tone not in config.experiment.generation.tones:
        raise ConfigError(
            f"unknown tone '{tone}'",
            hint="choose one of: " + ", ".join(config.experiment.generation.tones),
        )
    avoid: dict[str, list[str]] = {}
    match_case = False
    if run_dir is not None:
        profiles = read_profiles(run_dir)
        profile = find_profile(profiles, segment_name)
        snippets, query, (avoid, match_case) = _snippets_from_run(run_dir, profile.name)
    else:
        profiles = _profiles(config, customers)
        profile = find_profile(profiles, segment_name)
        snippets, query = _retrieve_one(config, profiles, profile, content)
    generator = open_generator(config)
    request = build_requests(
        config, [profile], {profile.name: snippets}, [tone], avoid, match_case
    )[0]
    return Preview(generator.generate(request), tuple(snippets), query)


def _profiles(config: Config, customers: Path | None) -> list[SegmentProfile]:
    """Segment profiles of the customer file (the bundled sample by default)."""
    from cpo.customers import load_customers
    from cpo.sample_data import bundled_customers
    from cpo.segmentation import segment

    loaded = load_customers(
        customers or bundled_customers(), on_invalid="skip", settings=config.experiment.customers
    )
    settings = config.experiment.segmentation
    return list(segment(loaded.frame, settings, seed=config.experiment.campaign.seed).profiles)


def _snippets_from_run(
    run_dir: Path, segment_name: str
) -> tuple[list[Snippet], str, tuple[dict[str, list[str]], bool]]:
    """A segment's snippets and query, and the avoided mentions, from a run's retrieval.json."""
    from cpo.run_folder import read_retrieval, segment_snippets

    data = read_retrieval(run_dir)
    query = next(
        (e.get("query", "") for e in data.get("segments", []) if e.get("segment") == segment_name),
        "",
    )
    return segment_snippets(data, segment_name), str(query), avoided_mentions(data)


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


def _retrieve_one(
    config: Config,
    profiles: Sequence[SegmentProfile],
    profile: SegmentProfile,
    content: Path | None,
) -> tuple[list[Snippet], str]:
    """Retrieve one segment's snippets with the configured backend (temporary index)."""
    from cpo.retrieval.query import build_segment_query, population_means
    from cpo.retrieval.service import prepare_index, retrieve_segment, run_as_of
    from cpo.sample_data import bundled_content

    settings = config.experiment.content
    service = config.services.retrieval
    with tempfile.TemporaryDirectory(prefix="cpo-generate-") as folder:
        prepared = prepare_index(
            content or bundled_content(),
            service,
            settings,
            as_of=run_as_of(config.experiment.campaign.as_of),
            default_db_path=Path(folder) / "index.sqlite",
        )
        try:
            query = build_segment_query(profile, population_means(profiles), settings)
            result = retrieve_segment(
                prepared.retriever, query, settings, prepared.content.documents
            )
        finally:
            close = getattr(prepared.retriever, "close", None)
            if close is not None:
                close()
    return list(result.results), query.text
