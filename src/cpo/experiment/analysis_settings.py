"""Settings of the analysis (the ``analysis`` section of experiment_config.yaml).

Shared by the design (power and minimum detectable effect), the analysis
(intervals, tests, multiplicity) and the report, so that one alpha and one
confidence level apply everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from cpo.experiment.catalog import metric_names
from cpo.settings_base import StrictModel


def registered_metric(value: Any) -> Any:
    """``value`` if it names a metric of :mod:`cpo.experiment.catalog`.

    Checked against the catalog when the config is validated, so a metric
    registered by any module (before loading) is accepted.

    Raises:
        ValueError: not a registered metric name; the message lists them all.
    """
    names = metric_names()
    if not isinstance(value, str) or value not in names:
        quoted = [f"'{name}'" for name in names]
        choices = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        raise ValueError(f"Input should be {choices}")
    return value


#: A metric name, validated against the catalog.
MetricName = Annotated[str, BeforeValidator(registered_metric)]
#: A customer column used as a pre-experiment covariate.
CovariateName = Annotated[str, Field(min_length=1)]


def _default_covariates() -> dict[str, list[str]]:
    # Each metric's own history predicts it best; conversion has no history of
    # its own, so it is adjusted for both.
    return {
        "open_rate": ["historical_open_rate"],
        "click_rate": ["historical_click_rate"],
        "click_to_open_rate": ["historical_click_rate"],
        "conversion_rate": ["historical_open_rate", "historical_click_rate"],
    }


class AnalysisSettings(StrictModel):
    """How results are judged.

    Attributes:
        primary_metric: The decision metric. Default ``click_rate``: opens are
            inflated by mail privacy proxies (Apple Mail Privacy Protection
            pre-fetches images), so open rate is a poor primary metric.
        secondary_metrics: Reported with Benjamini-Hochberg correction.
            Both take any metric of :mod:`cpo.experiment.catalog`.
        alpha: Two-sided significance level (family-wise, Holm, for the primary
            metric across treatment arms; false discovery rate, BH, elsewhere).
        confidence_level: Level of every reported interval.
        power: Target power for the design's minimum detectable effect.
        srm_alpha: Sample-ratio mismatch alert threshold (p below it alerts).
        min_segment_size: Segments with fewer recipients per arm get a warning.
        bayesian_prior: Beta prior (alpha, beta) for the probability to beat control.
        variance_reduction: ``cuped``: the primary decision uses the regression-adjusted
            (CUPED) estimates when the covariates exist in the customer data and every
            primary comparison could be adjusted; ``none``: the unadjusted ones. Both
            are reported either way (:mod:`cpo.experiment.cuped`).
        covariates: Metric -> customer columns (pre-experiment data) to adjust it for.
            Metrics not listed are not adjusted.
        sequential: Monitor with always-valid p-values and confidence sequences
            (mixture SPRT, :mod:`cpo.experiment.sequential`); each analysis of a
            run is a look, recorded in monitoring.json.
        sequential_tau: The mSPRT's mixing standard deviation, in standard
            deviations of one recipient's outcome (the effect size it is tuned for).
    """

    primary_metric: MetricName = "click_rate"
    secondary_metrics: list[MetricName] = Field(
        default_factory=lambda: ["open_rate", "conversion_rate", "click_to_open_rate"]
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    min_segment_size: int = Field(default=30, ge=1)
    bayesian_prior: tuple[float, float] = (1.0, 1.0)
    variance_reduction: Literal["none", "cuped"] = "cuped"
    covariates: dict[MetricName, list[CovariateName]] = Field(default_factory=_default_covariates)
    sequential: bool = False
    sequential_tau: float = Field(default=0.03, gt=0, le=1)

    @field_validator("covariates")
    @classmethod
    def _covariates_unique(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for metric, columns in value.items():
            if len(set(columns)) != len(columns):
                raise ValueError(f"covariates of '{metric}' must be unique column names")
        return value

    @model_validator(mode="after")
    def _primary_not_secondary(self) -> AnalysisSettings:
        if self.primary_metric in self.secondary_metrics:
            raise ValueError(
                f"primary_metric '{self.primary_metric}' must not also be a secondary metric"
            )
        return self
