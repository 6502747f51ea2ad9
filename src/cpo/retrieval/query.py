"""Queries: cpo's small query language, and the query built for a segment.

The query language is deliberately tiny so that no user text can break a backend:
a query is a list of *terms*, each a word (``premium``, ``win-back``, ``what's``)
or a ``"quoted phrase"``; a document matches when any term matches, and more
(and rarer) matching terms rank higher. Everything that is not a letter or a digit
(operators, brackets, stray quotes, ``%``, ``:``, ``*``) separates words and is
otherwise ignored. Common English stop words outside quotes are dropped.

A segment's query is built from its profile (see :func:`build_segment_query`):

1. the segment name, as one phrase (content often names its audience);
2. its traits (``premium``, ``win-back``, ...), each expanded through
   ``content.expansions`` (trait -> more terms);
3. behaviour words derived from its feature means relative to all customers
   (``content.derived_terms``), expanded the same way;
4. extra terms from ``content.segments.<name>.terms``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cpo.models import SegmentProfile
from cpo.retrieval.settings import ContentSettings

WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
TOKEN = re.compile(r'"([^"]*)"|[^\W_]+(?:[-\'’][^\W_]+)*')
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or our so that the "
    "their them they this to was we were will with you your".split()
)


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (hyphens and apostrophes inside a word kept)."""
    return [w.lower().replace("’", "'") for w in WORD.findall(text)]


def normalize_term(text: str) -> str:
    """A term's canonical form: its words joined by single spaces ('' when none)."""
    return " ".join(words(text))


def parse_query(text: str, max_terms: int = 200) -> list[str]:
    """Split query text into unique terms, in order (phrases in quotes kept together).

    Args:
        text: Any text; unbalanced quotes and operators are harmless.
        max_terms: Keep at most this many terms (first ones win).
    """
    tokens = [
        (normalize_term(m.group(1)), True)
        if m.group(1) is not None
        else (m.group(0).lower(), False)
        for m in TOKEN.finditer(text)
    ]
    meaningful = unique_terms(term for term, quoted in tokens if quoted or term not in STOP_WORDS)
    # A query of nothing but stop words still means something ("the who").
    chosen = meaningful or unique_terms(term for term, _ in tokens)
    return chosen[:max_terms]


def unique_terms(terms: Iterable[str]) -> list[str]:
    """Terms normalized, empty ones dropped, duplicates removed (first kept)."""
    return list(dict.fromkeys(t for t in (normalize_term(x) for x in terms) if t))


def format_query(terms: Sequence[str]) -> str:
    """Query text for terms: phrases with spaces in quotes, so parsing gives them back."""
    return " ".join(f'"{t}"' if " " in t else t for t in terms)


@dataclass(frozen=True)
class SegmentQuery:
    """The query for one segment, and where each term came from (for tuning).

    Attributes:
        segment: Segment name.
        segment_id: Segment id.
        terms: The query terms, in order.
        text: The query as text (what ``search`` receives and retrieval.json records).
        filters: Filters passed to ``search`` (category, audience, boost_audience).
        sources: Term origin -> terms (name, traits, expansions, derived, configured).
    """

    segment: str
    segment_id: int
    terms: tuple[str, ...]
    text: str
    filters: dict[str, Any]
    sources: dict[str, list[str]] = field(default_factory=dict)


def population_means(profiles: Sequence[SegmentProfile]) -> dict[str, float]:
    """Feature means over all customers, from size-weighted segment means."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for profile in profiles:
        for feature, value in profile.means.items():
            if value is None or not math.isfinite(value):
                continue
            totals[feature] = totals.get(feature, 0.0) + value * profile.size
            counts[feature] = counts.get(feature, 0) + profile.size
    return {f: totals[f] / counts[f] for f in totals if counts[f] > 0}


def derived_terms(
    profile: SegmentProfile, population: dict[str, float], settings: ContentSettings
) -> list[str]:
    """Behaviour words for the segment's most distinctive feature means.

    A feature qualifies when the segment mean is at least ``min_ratio`` times the
    population mean, or at most ``1 / min_ratio`` times it, and words are configured
    for that direction; the ``max_features`` largest contrasts (by ``|log ratio|``) count.
    """
    config = settings.derived_terms
    if not config.enabled:
        return []
    contrasts: list[tuple[float, str, list[str]]] = []
    for feature, value in profile.means.items():
        base = population.get(feature)
        terms = config.features.get(feature)
        if terms is None or not base or base <= 0 or value is None or value <= 0:
            continue
        ratio = value / base
        if ratio >= config.min_ratio and terms.high:
            contrasts.append((math.log(ratio), feature, terms.high))
        elif ratio <= 1 / config.min_ratio and terms.low:
            contrasts.append((-math.log(ratio), feature, terms.low))
    contrasts.sort(key=lambda item: (-item[0], item[1]))
    return [term for _, _, terms in contrasts[: config.max_features] for term in terms]


def expand(terms: Iterable[str], expansions: dict[str, list[str]]) -> list[str]:
    """The expansion terms of each term (looked up case-insensitively)."""
    table = {normalize_term(k): v for k, v in expansions.items()}
    return [extra for term in terms for extra in table.get(normalize_term(term), [])]


def build_segment_query(
    profile: SegmentProfile, population: dict[str, float], settings: ContentSettings
) -> SegmentQuery:
    """The query and filters for one segment (see the module docstring)."""
    override = _override_for(profile.name, settings)
    sources: dict[str, list[str]] = {}
    if override is not None and override.replace:
        sources["configured"] = unique_terms(override.terms)
    else:
        name = normalize_term(profile.name)
        sources["name"] = [name] if settings.use_segment_name and name else []
        sources["traits"] = unique_terms(profile.traits)
        sources["derived"] = unique_terms(derived_terms(profile, population, settings))
        sources["expansions"] = unique_terms(
            expand([*sources["traits"], *sources["derived"]], settings.expansions)
        )
        sources["configured"] = unique_terms(override.terms if override else [])
    order = ("configured", "name", "traits", "expansions", "derived")
    terms = unique_terms(t for key in order for t in sources.get(key, []))[: settings.max_terms]
    filters: dict[str, Any] = {"boost_audience": profile.name}
    if override is not None and override.categories:
        filters["category"] = list(override.categories)
    return SegmentQuery(
        segment=profile.name,
        segment_id=profile.segment_id,
        terms=tuple(terms),
        text=format_query(terms),
        filters=filters,
        sources=sources,
    )


def _override_for(name: str, settings: ContentSettings) -> Any:
    """The ``content.segments`` entry for a segment (exact name, then case-insensitive)."""
    if name in settings.segments:
        return settings.segments[name]
    lowered = {k.lower(): v for k, v in settings.segments.items()}
    return lowered.get(name.lower())
