"""Settings of the safety stage.

Two files configure screening:

* ``services.safety`` in azure_config.yaml (:class:`SafetyServiceSettings`): which
  screening backend runs; each backend's block (how to reach it) is its
  ``settings_model``, defined next to the backend.
* safety_thresholds.yaml (:class:`SafetyPolicySettings`): what a severity means for
  sending (per category) and the compliance rules applied on top of the scores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cpo.models import HARM_CATEGORIES
from cpo.registry import ServiceSettings
from cpo.settings_base import StrictModel

#: What a compliance rule does when it fires.
RuleAction = Literal["block", "review", "off"]


class SafetyServiceSettings(ServiceSettings):
    """``services.safety``: which screening backend runs, plus one block per backend.

    Each block (``local:``, ``azure_content_safety:``, ...) is validated against its
    backend's ``settings_model``.

    Attributes:
        backend: Registered backend name: ``local`` (offline) or ``azure_content_safety``.
        concurrency: How many texts are screened at the same time (any backend).
    """

    kind: ClassVar[str] = "safety"
    legacy_keys: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "lexicon_dir": ("local",),
        **{
            key: ("azure_content_safety",)
            for key in (
                "endpoint",
                "api_key_env",
                "api_version",
                "blocklists",
                "timeout_s",
                "connect_timeout_s",
                "max_retries",
                "allow_insecure_http",
            )
        },
    }

    backend: str = "local"
    concurrency: int = Field(default=4, ge=1, le=64)


class CategoryPolicy(StrictModel):
    """Severity thresholds for one harm category (severities are 0-7).

    A severity ``>= block_at`` blocks; ``>= review_at`` needs human approval; lower
    passes. A threshold of 8 switches that action off for the category.
    """

    review_at: int = Field(default=4, ge=0, le=8)
    block_at: int = Field(default=6, ge=0, le=8)

    @model_validator(mode="after")
    def _review_not_above_block(self) -> CategoryPolicy:
        if self.review_at > self.block_at:
            raise ValueError(
                f"review_at ({self.review_at}) must not be above block_at ({self.block_at})"
            )
        return self


class RuleSettings(StrictModel):
    """A compliance rule with only an action."""

    action: RuleAction = "block"


class ReviewRuleSettings(RuleSettings):
    """A compliance rule with only an action, ``review`` unless configured."""

    action: RuleAction = "review"


#: The phrases compliance reviews by default: absolute promises and medical claims.
DEFAULT_BANNED_PHRASES: tuple[str, ...] = (
    "guaranteed",
    "guaranteed results",
    "risk-free",
    "no risk",
    "100% safe",
    "completely safe",
    "cure",
    "cures",
    "miracle",
    "clinically proven",
    "no strings attached",
)


class BannedPhraseSettings(StrictModel):
    """Phrases that must not appear in a message (whole words, any case)."""

    action: RuleAction = "review"
    phrases: tuple[str, ...] = DEFAULT_BANNED_PHRASES

    @field_validator("phrases")
    @classmethod
    def _phrases_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.strip() for p in value):
            raise ValueError("banned phrases must not be empty strings")
        return value


class PiiSettings(StrictModel):
    """Personal data in a message: email addresses, phone numbers, card numbers.

    Attributes:
        action: What finding PII does.
        detect: Which kinds to look for (``email``, ``phone``, ``card``).
        allow: Exact values that are not personal (e.g. the brand's support
            address or phone number); compared after removing spaces, case-insensitive.
    """

    action: RuleAction = "block"
    detect: tuple[Literal["email", "phone", "card"], ...] = ("email", "phone", "card")
    allow: tuple[str, ...] = ()


class FooterSettings(StrictModel):
    """The footer every message body must contain (the unsubscribe line).

    ``pattern`` is a Python regular expression searched in the body.
    """

    action: RuleAction = "block"
    pattern: str = r"(?i)\bunsubscribe\b"

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class ComplianceSettings(StrictModel):
    """Rules on top of the harm scores; each is ``block``, ``review`` or ``off``.

    Attributes:
        grounding: Invalid citations or unsupported claims reported by generation.
        banned_phrases: Absolute promises and claims compliance does not allow.
        relative_time: A deadline relative to an unknown "now" ("48 hours only",
            "this weekend", "starting Friday", "ends tomorrow").
        pii: Personal data in a message.
        footer: A missing unsubscribe footer.
        blocklist: A hit on a custom Azure blocklist.
        audience_mentions: A message naming an audience value (e.g. the tier "Gold")
            that not every customer of its segment holds (the control: of all customers).
    """

    grounding: RuleSettings = Field(default_factory=lambda: RuleSettings(action="block"))
    relative_time: RuleSettings = Field(default_factory=lambda: RuleSettings(action="review"))
    banned_phrases: BannedPhraseSettings = Field(default_factory=BannedPhraseSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    footer: FooterSettings = Field(default_factory=FooterSettings)
    blocklist: RuleSettings = Field(default_factory=lambda: RuleSettings(action="block"))
    audience_mentions: ReviewRuleSettings = Field(default_factory=ReviewRuleSettings)


class SafetyPolicySettings(StrictModel):
    """The whole of safety_thresholds.yaml: what each severity means for sending.

    Categories left out of the file keep the defaults (review at 4, block at 6).
    """

    categories: dict[str, CategoryPolicy] = Field(
        default_factory=lambda: {c: CategoryPolicy() for c in HARM_CATEGORIES}
    )
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, CategoryPolicy]) -> dict[str, CategoryPolicy]:
        unknown = sorted(set(value) - set(HARM_CATEGORIES))
        if unknown:
            raise ValueError(
                f"unknown harm categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(unknown)}; expected some of: {', '.join(HARM_CATEGORIES)}"
            )
        return {c: value.get(c, CategoryPolicy()) for c in HARM_CATEGORIES}
