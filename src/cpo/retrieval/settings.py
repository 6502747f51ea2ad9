"""Settings of the retrieval stage.

Two places configure retrieval:

* ``services.retrieval`` in azure_config.yaml (:class:`RetrievalServiceSettings`):
  which backend answers queries; each backend's own block (how to reach it) is
  its ``settings_model``, defined next to the backend.
* the ``content`` section of experiment_config.yaml (:class:`ContentSettings`): how
  a segment becomes a query, how results are ranked, cut off and backed up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from cpo.registry import ServiceSettings
from cpo.settings_base import StrictModel

Term = Annotated[str, Field(min_length=1, max_length=100)]


class RetrievalServiceSettings(ServiceSettings):
    """``services.retrieval``: which backend answers queries, plus one block per backend.

    Each block (``sqlite_fts:``, ``azure_search:``, ...) is validated against its
    backend's ``settings_model``.

    Attributes:
        backend: Registered backend name: ``sqlite_fts`` (offline) or ``azure_search``.
    """

    kind: ClassVar[str] = "retrieval"
    legacy_keys: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "db_path": ("sqlite_fts",),
        **{
            key: ("azure_search",)
            for key in (
                "endpoint",
                "index_name",
                "api_key_env",
                "semantic_configuration",
                "query_type",
                "batch_size",
                "timeout_s",
                "connect_timeout_s",
                "max_retries",
                "allow_insecure_http",
            )
        },
    }

    backend: str = "sqlite_fts"


class FieldWeights(StrictModel):
    """BM25 weight of each indexed field (title and keywords count more than body text)."""

    title: float = Field(default=3.0, gt=0)
    keywords: float = Field(default=4.0, gt=0)
    content: float = Field(default=1.0, gt=0)


class FeatureTerms(StrictModel):
    """Query terms for a segment whose mean of a feature is far above or below average."""

    high: list[Term] = Field(default_factory=list)
    low: list[Term] = Field(default_factory=list)


#: Behaviour words implied by a segment's feature means (relative to all customers).
#: Recency alone says when someone shopped, not what to tell them, so a low
#: ``last_engagement_days`` adds no words; a high one means the customer lapsed.
DEFAULT_FEATURE_TERMS: dict[str, dict[str, list[str]]] = {
    "avg_order_value": {"high": ["premium", "exclusive"], "low": ["value", "savings"]},
    "purchase_frequency": {"high": ["loyalty", "rewards"], "low": ["welcome", "first purchase"]},
    "last_engagement_days": {"high": ["win-back", "we miss you"], "low": []},
    "historical_open_rate": {"high": [], "low": ["re-engagement"]},
    "historical_click_rate": {"high": ["new arrivals"], "low": []},
}


class DerivedTermsSettings(StrictModel):
    """Behaviour words derived from a segment's feature means.

    A feature counts when the segment's mean is at least ``min_ratio`` times the
    population mean (high) or at most ``1 / min_ratio`` times it (low); only the
    ``max_features`` most distinctive features contribute.
    """

    enabled: bool = True
    min_ratio: float = Field(default=1.5, gt=1)
    max_features: int = Field(default=2, ge=0, le=20)
    features: dict[str, FeatureTerms] = Field(
        default_factory=lambda: {
            name: FeatureTerms(**terms) for name, terms in DEFAULT_FEATURE_TERMS.items()
        }
    )


#: Trait -> extra query terms. General marketing vocabulary, not brand names, so
#: it carries over to any content folder; edit in the ``content.expansions`` section.
DEFAULT_EXPANSIONS: dict[str, list[str]] = {
    "premium": ["premium", "flagship", "high-end"],
    "vip": ["vip", "exclusive", "early access"],
    "exclusive": ["exclusive", "members only", "early access"],
    "loyalty": ["loyalty", "rewards", "points"],
    "rewards": ["rewards", "points"],
    "win-back": ["win-back", "we miss you", "come back", "welcome back"],
    "re-engagement": ["re-engagement", "since your last visit", "been away"],
    "lapsed": ["lapsed", "returning customers"],
    "welcome": ["welcome", "new customer", "getting started"],
    "onboarding": ["onboarding", "getting started", "beginner"],
    "first purchase": ["first purchase", "first order"],
    "value": ["value", "savings", "save"],
    "deals": ["deal", "discount", "sale"],
    "seasonal": ["seasonal", "season", "sale"],
    "everyday": ["everyday", "essentials"],
    "new arrivals": ["new arrivals", "what's new"],
}


class SegmentQuerySettings(StrictModel):
    """Per-segment adjustments, keyed by segment name in ``content.segments``.

    Attributes:
        terms: Extra query terms for this segment.
        replace: Use only ``terms`` (ignore name, traits and derived words).
        categories: Only retrieve documents of these categories.
    """

    terms: list[Term] = Field(default_factory=list)
    replace: bool = False
    categories: list[Term] = Field(default_factory=list)

    @model_validator(mode="after")
    def _replace_needs_terms(self) -> SegmentQuerySettings:
        if self.replace and not self.terms:
            raise ValueError("replace: true needs at least one entry in terms")
        return self


class FallbackSettings(StrictModel):
    """General content used when too few results clear ``min_score``.

    Attributes:
        query: Query run over documents for ``audience`` (no threshold applies).
        audience: The audience value of general content.
        categories: Restrict fallback content to these categories (empty = any).
    """

    query: str = "free shipping returns warranty support price match"
    audience: Annotated[str, Field(min_length=1)] = "All"
    categories: list[Term] = Field(default_factory=list)


class ContentSettings(StrictModel):
    """The ``content`` section of experiment_config.yaml: queries, ranking, cut-offs.

    Attributes:
        top_k: Snippets kept per segment (3-5).
        min_score: A result counts as relevant when its score is at least this.
        min_results: When fewer results clear ``min_score``, general content tops them up.
        max_per_document: At most this many paragraphs of one document per segment.
        field_weights: BM25 weights of title, keywords and body text.
        audience_boost: Score factor for documents whose audience is the segment's name.
        general_audience_boost: Score factor for documents for everyone (``fallback.audience``).
        use_segment_name: Add the segment's name (as one phrase) to its query.
        expansions: Trait -> extra query terms.
        derived_terms: Behaviour words from feature means.
        segments: Per-segment adjustments by segment name.
        fallback: General content when nothing clears the threshold.
        max_terms: Longest query (terms beyond this are dropped, in order).
        general_audiences: Audience values meaning "every segment" (case-insensitive).
        audiences: Audience value -> the segment names it is written for. An audience
            listed here matches exactly those segments (names compared case-insensitively);
            any other audience matches a segment when all of its words are words of the
            segment's name ("High-Value" matches "High-Value Recent").
        min_eligible_share: A document with ``eligibility`` conditions is used for a
            segment only when at least this share of the segment's customers meets them.
        audience_columns: Customer columns whose values (e.g. tiers) a sentence must not
            name unless every customer of the segment holds that value.
        audience_match_case: Count only the data's exact spelling of those values. By
            default capitals count too, and another case or a sentence-opening value
            counts before a word such as tier, plan or members (see
            :func:`cpo.audience.find_mentions`).
    """

    top_k: int = Field(default=4, ge=3, le=5)
    min_score: float = Field(default=2.0, ge=0)
    min_results: int = Field(default=2, ge=1, le=5)
    max_per_document: int = Field(default=2, ge=1, le=5)
    field_weights: FieldWeights = Field(default_factory=FieldWeights)
    audience_boost: float = Field(default=1.5, ge=1)
    general_audience_boost: float = Field(default=1.2, ge=1)
    use_segment_name: bool = True
    expansions: dict[str, list[Term]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_EXPANSIONS.items()}
    )
    derived_terms: DerivedTermsSettings = Field(default_factory=DerivedTermsSettings)
    segments: dict[str, SegmentQuerySettings] = Field(default_factory=dict)
    fallback: FallbackSettings = Field(default_factory=FallbackSettings)
    max_terms: int = Field(default=40, ge=1, le=200)
    general_audiences: list[Term] = Field(default_factory=lambda: ["All", "Everyone"])
    audiences: dict[Term, list[Term]] = Field(default_factory=dict)
    min_eligible_share: float = Field(default=1.0, gt=0, le=1)
    audience_columns: list[Term] = Field(default_factory=lambda: ["tier"])
    audience_match_case: bool = False

    @model_validator(mode="after")
    def _min_results_within_top_k(self) -> ContentSettings:
        if self.min_results > self.top_k:
            raise ValueError(
                f"min_results ({self.min_results}) must not exceed top_k ({self.top_k})"
            )
        return self
