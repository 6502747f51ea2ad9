"""Settings of the segmentation stage (``segmentation:`` in experiment_config.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from cpo.settings_base import StrictModel

Scalar = str | int | float | bool
Operator = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between"]


class Condition(StrictModel):
    """One test on one column, e.g. ``{column: tier, op: in, value: [Gold]}``."""

    column: str
    op: Operator
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_matches_operator(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator '{self.op}' needs a list value, e.g. [Gold, Silver]")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("operator 'between' needs a two-element list [low, high]")
        if self.op in ("<", "<=", ">", ">=") and isinstance(self.value, (list, bool, str)):
            raise ValueError(f"operator '{self.op}' needs a number")
        return self


class Rule(StrictModel):
    """An ordered segmentation rule: first matching rule wins."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[Condition], Field(min_length=1)]
    traits: list[str] = Field(default_factory=list)


class Fallback(StrictModel):
    """The segment for customers no rule matched."""

    name: Annotated[str, Field(min_length=1)] = "Standard"
    description: str = "Customers who match none of the rules above."
    traits: list[str] = Field(default_factory=list)


class KMeansSettings(StrictModel):
    """k-means options: fixed ``k`` or silhouette search over ``k_range``."""

    k: int | None = Field(default=None, ge=2, le=12)
    k_range: tuple[int, int] = (3, 5)
    features: list[str] = Field(
        default_factory=lambda: [
            "age",
            "purchase_frequency",
            "avg_order_value",
            "last_engagement_days",
            "historical_open_rate",
            "historical_click_rate",
        ]
    )
    minibatch_threshold: int = Field(default=50_000, ge=1)
    silhouette_sample: int = Field(default=5_000, ge=100)
    n_init: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _range_is_ordered(self) -> KMeansSettings:
        low, high = self.k_range
        if not 2 <= low <= high:
            raise ValueError("k_range must be [low, high] with 2 <= low <= high")
        return self


class SegmentationSettings(StrictModel):
    """Which method segments customers, and its parameters."""

    method: Literal["rules", "kmeans"] = "rules"
    min_share_warning: float = Field(default=0.10, ge=0, le=1)
    rules: list[Rule] = Field(default_factory=list)
    fallback: Fallback = Field(default_factory=Fallback)
    kmeans: KMeansSettings = Field(default_factory=KMeansSettings)
