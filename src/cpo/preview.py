"""One variant for one segment and tone, without a run: ``cpo generate`` (tuning).

A preview does what the segment, retrieve and generate stages do for a single
segment (or reads that segment from a run folder), so it sits outside the stage
packages and uses each of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cpo.config import Config
from cpo.customers import load_customers
from cpo.errors import ConfigError
from cpo.generation.service import avoided_mentions, build_requests, open_generator
from cpo.models import SegmentProfile, Snippet, Variant
from cpo.retrieval.query import build_segment_query, population_means
from cpo.retrieval.service import find_profile, prepare_index, retrieve_segment, run_as_of
from cpo.run_folder import read_profiles, read_retrieval, segment_snippets
from cpo.sample_data import bundled_content, bundled_customers
from cpo.segmentation import segment


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
        profiles = segment_profiles(config, customers)
        profile = find_profile(profiles, segment_name)
        snippets, query = _retrieve_one(config, profiles, profile, content)
    generator = open_generator(config)
    request = build_requests(
        config, [profile], {profile.name: snippets}, [tone], avoid, match_case
    )[0]
    return Preview(generator.generate(request), tuple(snippets), query)


def segment_profiles(config: Config, customers: Path | None) -> list[SegmentProfile]:
    """Segment profiles of a customer file (the bundled sample by default), invalid rows skipped.

    Used where a command needs profiles without a run folder (`cpo generate`, `cpo retrieve`).
    """
    loaded = load_customers(
        customers or bundled_customers(), on_invalid="skip", settings=config.experiment.customers
    )
    settings = config.experiment.segmentation
    return list(segment(loaded.frame, settings, seed=config.experiment.campaign.seed).profiles)


def _snippets_from_run(
    run_dir: Path, segment_name: str
) -> tuple[list[Snippet], str, tuple[dict[str, list[str]], bool]]:
    """A segment's snippets and query, and the avoided mentions, from a run's retrieval.json."""
    data = read_retrieval(run_dir)
    query = next(
        (e.get("query", "") for e in data.get("segments", []) if e.get("segment") == segment_name),
        "",
    )
    return segment_snippets(data, segment_name), str(query), avoided_mentions(data)


def _retrieve_one(
    config: Config,
    profiles: Sequence[SegmentProfile],
    profile: SegmentProfile,
    content: Path | None,
) -> tuple[list[Snippet], str]:
    """Retrieve one segment's snippets with the configured backend (temporary index)."""
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
            prepared.retriever.close()
    return list(result.results), query.text
