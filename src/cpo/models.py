"""Shared records passed between stages.

These are plain frozen dataclasses: cheap to build, easy to serialize with
:func:`to_dict`, and identical whichever backend produced them. Per-customer data
never travels in these records; it stays in DataFrames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

HARM_CATEGORIES: tuple[str, ...] = ("hate", "violence", "self_harm", "sexual")
TONES: tuple[str, ...] = ("urgent", "informational", "friendly")
CONTROL_TONE = "control"

ScreeningStatus = Literal["pass", "review", "block"]


def to_dict(record: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a dataclass record (recursively)."""
    return asdict(record)


@dataclass(frozen=True, slots=True)
class SegmentProfile:
    """A customer segment as later stages see it.

    Attributes:
        name: Human-readable segment name, e.g. "High-Value Recent".
        segment_id: Stable integer id (rule order, or cluster order).
        size: Number of customers in the segment.
        share: Fraction of all customers in the segment.
        definition: One sentence saying who is in it.
        means: Mean of each numeric feature.
        medians: Median of each numeric feature.
        traits: Behaviour keywords (premium, loyalty, win-back, welcome, ...)
            used to build retrieval queries.
    """

    name: str
    segment_id: int
    size: int
    share: float
    definition: str
    means: dict[str, float] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)
    traits: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snippet:
    """One retrieved paragraph of approved content."""

    document_id: str
    title: str
    paragraph_index: int
    text: str
    score: float
    category: str = ""
    audience: str = ""
    source_url: str = ""


@dataclass(frozen=True, slots=True)
class Citation:
    """A citation in a variant: which paragraph of which document."""

    document_id: str
    title: str
    paragraph_index: int


@dataclass(frozen=True, slots=True)
class CategoryScores:
    """Harm severities (0-7, Azure's eight-level scale) for one text.

    Attributes:
        hate, violence, self_harm, sexual: Severity per category.
        matches: Human-readable evidence (term and category), never the full text.
        blocklist_hits: Names of custom blocklists that matched.
    """

    hate: int = 0
    violence: int = 0
    self_harm: int = 0
    sexual: int = 0
    matches: tuple[str, ...] = ()
    blocklist_hits: tuple[str, ...] = ()

    def severities(self) -> dict[str, int]:
        """Return the four severities keyed by category name."""
        return {c: int(getattr(self, c)) for c in HARM_CATEGORIES}


@dataclass(frozen=True, slots=True)
class Grounding:
    """How well a variant's claims are supported by its cited snippets.

    Attributes:
        score: Share of factual sentences supported by a cited snippet (1.0 = all).
        unsupported_claims: Sentences that state a number, price, percentage,
            date or named offer that no cited snippet contains.
        invalid_citations: Citations that do not name a snippet retrieved for
            the variant's segment.
    """

    score: float
    unsupported_claims: tuple[str, ...] = ()
    invalid_citations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationConstraints:
    """Limits on a generated variant.

    ``body_min_words``-``body_max_words`` is the length to aim for; a body may be
    shorter, down to ``body_floor_words``, when the approved content is short.
    ``body_max_words`` and ``body_floor_words`` are hard limits.
    """

    subject_max_chars: int = 60
    body_min_words: int = 100
    body_max_words: int = 200
    min_citations: int = 2
    max_citations: int = 3
    body_floor_words: int = 50


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a generation backend needs to write one variant."""

    segment: SegmentProfile
    snippets: tuple[Snippet, ...]
    tone: str
    constraints: GenerationConstraints = field(default_factory=GenerationConstraints)
    #: Audience values (e.g. tiers) not every recipient holds: the message must not
    #: name them, not even in a subject built from a document's title.
    avoid_mentions: tuple[str, ...] = ()
    avoid_match_case: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    """A generated message (or the control message) and its provenance.

    ``status`` is ``"generated"`` or ``"failed"``; a failed variant carries
    ``error`` and is never screened as sendable content. ``cached`` is true when
    the text came from the response cache (no API call, no cost).
    """

    variant_id: str
    segment: str
    tone: str
    subject: str
    body: str
    citations: tuple[Citation, ...] = ()
    grounding: Grounding = field(default_factory=lambda: Grounding(score=1.0))
    backend: str = ""
    model: str = ""
    prompt_sha256: str = ""
    retrieved_document_ids: tuple[str, ...] = ()
    tokens_prompt: int = 0
    tokens_completion: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    generated_at: str = ""
    status: str = "generated"
    error: str | None = None
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The screening decision for one variant."""

    variant_id: str
    status: ScreeningStatus
    severities: dict[str, int]
    reasons: tuple[str, ...]
    backend: str
