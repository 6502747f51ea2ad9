"""Settings of the generation stage.

Two sections, owned here and composed by :mod:`cpo.config`:

* ``services.generation`` in azure_config.yaml (:class:`GenerationServiceSettings`):
  which backend writes the variants; each backend's block (how to reach it) is its
  ``settings_model``, defined next to the backend.
* ``generation:`` in experiment_config.yaml (:class:`GenerationSettings`): the
  tones and the hard constraints every variant must meet, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cpo.models import CONTROL_TONE, GenerationConstraints
from cpo.registry import ServiceSettings
from cpo.settings_base import StrictModel

#: Verbs that open a call to action (a line starting with one, or a link, counts).
DEFAULT_CTA_VERBS: tuple[str, ...] = (
    "shop",
    "browse",
    "visit",
    "explore",
    "discover",
    "see",
    "find",
    "get",
    "claim",
    "use",
    "redeem",
    "order",
    "book",
    "reserve",
    "join",
    "sign up",
    "start",
    "try",
    "check",
    "take",
    "grab",
    "learn",
    "read",
    "call",
    "contact",
    "reply",
    "enter",
    "apply",
    "register",
    "upgrade",
    "renew",
    "come",
    "stop by",
    "drop by",
    "pick",
    "treat",
    "plan",
    "download",
    "click",
    "tap",
    "view",
    "compare",
    "request",
)


class GenerationServiceSettings(ServiceSettings):
    """``services.generation``: which backend writes the variants, plus one block per backend.

    Each block (``grounded:``, ``openai:``, ``azure_openai:``, ...) is validated
    against its backend's ``settings_model``.

    Attributes:
        backend: ``grounded`` (offline composer), ``openai`` (any
            OpenAI-compatible server) or ``azure_openai``.
    """

    kind: ClassVar[str] = "generation"
    legacy_keys: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "base_url": ("openai",),
        "model": ("openai",),
        "azure_endpoint": ("azure_openai",),
        "deployment": ("azure_openai",),
        "api_version": ("azure_openai",),
        **{
            key: ("openai", "azure_openai")
            for key in (
                "api_key_env",
                "concurrency",
                "timeout_s",
                "max_retries",
                "backoff_base_s",
                "temperature",
                "max_tokens",
                "price_per_1k_prompt",
                "price_per_1k_completion",
                "cache_dir",
                "allow_insecure_http",
            )
        },
    }

    backend: str = "grounded"


class ConstraintSettings(StrictModel):
    """Limits on every generated variant (see :class:`GenerationConstraints`).

    Attributes:
        subject_max_chars: Longest subject line (hard limit).
        body_min_words: Start of the body length to aim for (kept for backwards
            compatibility: it is a target, not a hard minimum).
        body_max_words: End of the target range, and the hard maximum.
        body_floor_words: Hard minimum: a body may be shorter than
            ``body_min_words`` when the approved content is short, never shorter
            than this.
        min_citations: Distinct source paragraphs a body must cite.
        max_citations: Most source paragraphs a body may cite.
    """

    subject_max_chars: int = Field(default=60, ge=10, le=200)
    body_min_words: int = Field(default=100, ge=20)
    body_max_words: int = Field(default=200, ge=30)
    body_floor_words: int = Field(default=50, ge=20)
    min_citations: int = Field(default=2, ge=1, le=10)
    max_citations: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> ConstraintSettings:
        if self.body_min_words > self.body_max_words:
            raise ValueError("body_min_words must not exceed body_max_words")
        if self.body_floor_words > self.body_min_words:
            raise ValueError("body_floor_words must not exceed body_min_words")
        if self.min_citations > self.max_citations:
            raise ValueError("min_citations must not exceed max_citations")
        return self

    def to_constraints(self) -> GenerationConstraints:
        """Return the shared :class:`GenerationConstraints` record."""
        return GenerationConstraints(**self.model_dump())


class GenerationSettings(StrictModel):
    """The ``generation:`` section of experiment_config.yaml.

    Attributes:
        tones: Tones to write per segment; each needs ``prompts/tones/<tone>.yaml``.
        constraints: Limits every variant must meet.
        cta_verbs: Verbs that open a call to action; a body needs a line or
            sentence starting with one of them (or a link).
        max_sentence_words: The grounded composer never quotes a longer sentence.
        citations_in_email: What customers see of the citations: ``none`` (markers
            removed; citations stay in variants.json, the audit and the report) or
            ``footnotes`` (numbered ``[1]`` references and a list of each cited
            source's ``source_url`` before the footer).
    """

    tones: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["urgent", "informational", "friendly"]
    )
    constraints: ConstraintSettings = Field(default_factory=ConstraintSettings)
    cta_verbs: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_CTA_VERBS)
    )
    max_sentence_words: int = Field(default=45, ge=8, le=200)
    citations_in_email: Literal["none", "footnotes"] = "none"

    @field_validator("tones")
    @classmethod
    def _tones_are_names(cls, tones: list[str]) -> list[str]:
        cleaned = [t.strip().lower() for t in tones]
        for tone in cleaned:
            if not tone or not tone.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"tone '{tone}' must be a simple name such as 'urgent'")
            if tone == CONTROL_TONE:
                raise ValueError("'control' is reserved for the control message")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("tones must be unique")
        return cleaned
