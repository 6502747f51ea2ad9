"""Settings of the segmentation stage (``segmentation:`` in experiment_config.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from cpo.conditions import Operator, Scalar, check_value_fits_operator
from cpo.settings_base import StrictModel

#: numpy/pandas quantile estimators (Hyndman & Fan 1996 types); ``linear`` is type 7,
#: the default of ``numpy.quantile`` and ``pandas.Series.quantile``.
QuantileMethod = Literal[
    "linear",
    "lower",
    "higher",
    "nearest",
    "midpoint",
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
    "interpolated_inverted_cdf",
    "hazen",
    "weibull",
    "median_unbiased",
    "normal_unbiased",
]
QUANTILE_FORM = "{quantile: q} with 0 <= q <= 1, e.g. {quantile: 0.75}"


class Quantile(StrictModel):
    """A threshold taken from the run's data: ``{quantile: 0.75}`` = the 75th percentile."""

    quantile: Annotated[float, Field(ge=0, le=1)]


class RuleCondition(StrictModel):
    """A segmentation-rule condition: a :class:`Condition` whose thresholds may be quantiles.

    Numeric tests (``<, <=, >, >=, between``) accept a quantile of the loaded
    customers instead of a number: ``value: {quantile: 0.75}``, or for
    ``between`` a pair such as ``[{quantile: 0.25}, {quantile: 0.75}]``.
    """

    # Not a subclass of Condition: its ``value`` admits more than a Condition's does.
    column: str
    op: Operator
    value: Scalar | Quantile | list[Scalar | Quantile]

    @model_validator(mode="after")
    def _value_matches_operator(self) -> RuleCondition:
        check_value_fits_operator(self.op, self.value)
        return self

    @field_validator("value", mode="before")
    @classmethod
    def _parse_quantiles(cls, value: object) -> object:
        """Turn ``{quantile: q}`` mappings into :class:`Quantile`; one clear error otherwise."""
        if isinstance(value, list):
            return [_parse_item(item, f"element {i}: ") for i, item in enumerate(value)]
        return _parse_item(value, "")

    @model_validator(mode="after")
    def _quantiles_fit_operator(self) -> RuleCondition:
        items = self.value if isinstance(self.value, list) else [self.value]
        if not any(isinstance(v, Quantile) for v in items):
            return self
        if self.op not in ("<", "<=", ">", ">=", "between"):
            raise ValueError(
                f"operator '{self.op}' compares values exactly; a quantile threshold needs "
                "<, <=, >, >= or between"
            )
        if not all(_is_threshold(v) for v in items):
            raise ValueError("operator 'between' needs numbers or quantiles, e.g. [10, 50]")
        return self


def _parse_item(value: object, where: str) -> object:
    """A scalar as is, a mapping as a :class:`Quantile`; anything else is a ValueError."""
    if isinstance(value, dict):
        return _parse_quantile(value, where)
    if not isinstance(value, (str, int, float, bool)):
        kinds = "a number, text or" if where else "a number, text, a list or"
        raise ValueError(f"{where}expected {kinds} {QUANTILE_FORM}")
    return value


def _parse_quantile(value: object, where: str) -> Quantile:
    """``{quantile: q}`` -> :class:`Quantile`; anything else is a ValueError."""
    if not isinstance(value, dict) or set(value) != {"quantile"}:
        raise ValueError(f"{where}a mapping here must be a quantile threshold: {QUANTILE_FORM}")
    level = value["quantile"]
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level <= 1:
        raise ValueError(f"{where}quantile must be a number in [0, 1] ({QUANTILE_FORM})")
    return Quantile(quantile=float(level))


def _is_threshold(value: object) -> bool:
    """True for a number (not a boolean) or a :class:`Quantile`."""
    return isinstance(value, Quantile) or (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    )


class Rule(StrictModel):
    """An ordered segmentation rule: first matching rule wins."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[RuleCondition], Field(min_length=1)]
    traits: list[str] = Field(default_factory=list)


class Fallback(StrictModel):
    """The segment for customers no rule matched."""

    name: Annotated[str, Field(min_length=1)] = "Standard"
    description: str = "Regular customers who match none of the rules above."
    traits: list[str] = Field(default_factory=lambda: ["value", "seasonal", "everyday"])


def _condition(column: str, op: Operator, quantile: float) -> RuleCondition:
    """A condition comparing ``column`` with a quantile of the run's customers."""
    return RuleCondition.model_validate(
        {"column": column, "op": op, "value": {"quantile": quantile}}
    )


def _default_rules() -> list[Rule]:
    """The default rules: recency/frequency/value cut at quantiles, so they fit any data."""
    return [
        Rule(
            name="High-Value Recent",
            description="Frequent, high-spending customers who engaged recently: the top 35%"
            " by order value and by purchase frequency, outside the quarter longest since"
            " engagement.",
            conditions=[
                _condition("avg_order_value", ">=", 0.65),
                _condition("purchase_frequency", ">=", 0.65),
                _condition("last_engagement_days", "<=", 0.75),
            ],
            traits=["premium", "loyalty", "vip", "exclusive"],
        ),
        Rule(
            name="At-Risk",
            description="The quarter of customers with the longest time since they last engaged.",
            conditions=[_condition("last_engagement_days", ">=", 0.75)],
            traits=["win-back", "re-engagement", "lapsed"],
        ),
        Rule(
            name="New Customer",
            description="Customers who buy least often (bottom 30% by purchases a year) and"
            " engaged recently (outside the 30% longest since engagement).",
            conditions=[
                _condition("purchase_frequency", "<=", 0.3),
                _condition("last_engagement_days", "<=", 0.7),
            ],
            traits=["welcome", "onboarding", "first purchase"],
        ),
    ]


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
    quantile_method: QuantileMethod = "linear"
    rules: list[Rule] = Field(default_factory=_default_rules)
    fallback: Fallback = Field(default_factory=Fallback)
    kmeans: KMeansSettings = Field(default_factory=KMeansSettings)
