"""Settings of the experiment (``experiment`` and ``simulation`` in experiment_config.yaml).

:class:`ExperimentSettings` holds the approval gate that sits between screening
and sending, and the experiment design: which tones become treatment arms, how
customers are allocated, the holdout, the assignment method and salt, and the
assumptions of the power calculation. Alpha, power and the primary metric are
*not* here: they come from the ``analysis`` section
(:class:`~cpo.experiment.analysis_settings.AnalysisSettings`), so one alpha
applies to the design and the analysis alike.

:class:`SimulationSettings` holds the response model used when no engagement
file is given (see ``docs/experiment.md``, "Simulation model").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from cpo.events.settings import EventSettings
from cpo.experiment.catalog import metric_names
from cpo.settings_base import StrictModel

AssignmentMethod = Literal["stratified_block", "hash"]
CONTROL_ARM = "control"
HOLDOUT_ARM = "holdout"
TREATMENT_PREFIX = "treatment_"


def treatment_arm_name(position: int) -> str:
    """Name of the treatment arm for the tone at 0-based ``position`` (``treatment_1``, ...)."""
    return f"{TREATMENT_PREFIX}{position + 1}"


#: Recipients above which the default config writes the send list compactly (Parquet).
DEFAULT_COMPACT_ABOVE = 100_000


class SendListSettings(StrictModel):
    """How the send list is written.

    Attributes:
        compact_above: With more recipients than this, the send list is written
            as ``sends.parquet`` (zstd, each distinct message stored once)
            instead of ``sends.csv``; ``cpo export-sends RUN_DIR`` writes the
            CSV form on request. ``0`` = always compact; ``None`` = always CSV.
    """

    compact_above: Annotated[int, Field(ge=0)] | None = DEFAULT_COMPACT_ABOVE

    def compact(self, recipients: int) -> bool:
        """Whether a send list of ``recipients`` rows is written as Parquet."""
        return self.compact_above is not None and recipients > self.compact_above


#: A configured baseline rate, strictly inside (0, 1); ``None`` = estimate it.
BaselineRate = Annotated[float, Field(gt=0, lt=1)] | None


class PowerSettings(StrictModel):
    """Assumptions of the design's minimum-detectable-effect calculation.

    Attributes:
        baseline_rates: Control rate per metric of :mod:`cpo.experiment.catalog`
            (``None`` or left out = estimated from the customers' history: see
            :func:`cpo.experiment.catalog.count_baselines`).
        conversion_per_click: Share of clickers assumed to convert, used only to
            estimate the conversion baseline when it is not given.
        expected_relative_lift: The relative lift you plausibly expect (0.10 =
            +10%). The run warns that the experiment is underpowered when the
            primary metric's minimum detectable relative effect is larger.
    """

    baseline_rates: dict[str, BaselineRate] = Field(
        default_factory=lambda: dict.fromkeys(metric_names())
    )
    conversion_per_click: float = Field(default=0.10, gt=0, le=1)
    expected_relative_lift: float = Field(default=0.10, gt=0)

    @field_validator("baseline_rates", mode="before")
    @classmethod
    def _baselines_of_registered_metrics(cls, value: object) -> object:
        """Every key of ``baseline_rates`` must be a metric of the catalog."""
        if isinstance(value, dict):
            unknown = [str(key) for key in value if key not in metric_names()]
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(unknown)}; expected metric names, "
                    f"one of: {', '.join(metric_names())}"
                )
        return value


class WaveSettings(StrictModel):
    """Adaptive waves (``cpo run --waves N``; see ``docs/experiment.md``, "Adaptive waves").

    Attributes:
        count: Number of waves (1 = one send with the design's allocation).
        shares: Relative size of each wave (``None`` = equal); as many entries as waves.
        control_share: Share of each later wave's recipients given to control
            (``None`` = the design's control allocation).
        min_share: Smallest share of a later wave's recipients any treatment arm
            gets, so every arm keeps being measured.
        top_two_beta: Probability that top-two Thompson sampling plays the
            posterior's leader rather than its challenger (Russo 2020).
        posterior_draws: Monte Carlo draws from the posterior per allocation.
    """

    count: int = Field(default=1, ge=1)
    shares: list[Annotated[float, Field(gt=0)]] | None = None
    control_share: float | None = Field(default=None, gt=0, lt=1)
    min_share: float = Field(default=0.05, ge=0, lt=1)
    top_two_beta: float = Field(default=0.5, gt=0, lt=1)
    posterior_draws: int = Field(default=20_000, ge=100)

    @model_validator(mode="after")
    def _shares_match_count(self) -> WaveSettings:
        if self.shares is not None and len(self.shares) != self.count:
            raise ValueError(
                f"shares has {len(self.shares)} entries but count is {self.count}; "
                "give one relative size per wave or leave shares out"
            )
        return self


class ExperimentSettings(StrictModel):
    """How the experiment runs.

    Attributes:
        require_approval: When true, ``cpo run`` stops after screening with status
            ``awaiting_approval`` if any variant's screening status is ``review``;
            ``cpo approve RUN_DIR --by NAME`` records the decision and
            ``cpo run --resume RUN_DIR`` continues. When false, the run goes on and
            variants in review are simply left out of the send lists (they are
            never sent without an approval either way).
        tones: Tones that become treatment arms, in arm order (``treatment_1`` gets
            the first). ``None`` = every tone of the ``generation`` section (the
            default urgent, informational, friendly).
        allocation: Relative weight per arm (``control``, ``treatment_1``, ...);
            ``None`` = equal. Weights need not sum to 1; arms left out get 0.
        holdout_share: Share of customers held out: they receive nothing and are
            not in the send list (0 = no holdout).
        assignment_method: ``stratified_block`` (within each segment, arm sizes
            match the allocation to within one customer) or ``hash`` (each
            customer's arm depends only on their own hash, so adding customers
            never moves anyone; for ongoing programs).
        salt: Experiment salt. Assignment is a pure function of (salt, customer
            id). ``None`` = ``"<campaign.name>:<seed>"``, so a new seed
            re-randomizes; set it to keep assignments across runs and seeds.
        power: Assumptions of the power calculation.
        send_list: How the send list is written (CSV, or Parquet for large runs).
        events: How email service events become engagement (machine opens,
            conversion event); see :class:`~cpo.events.settings.EventSettings`.
        waves: Adaptive waves with a persistent holdout (count 1 = one send).
    """

    require_approval: bool = False
    tones: Annotated[list[str], Field(min_length=1)] | None = None
    allocation: dict[str, Annotated[float, Field(ge=0)]] | None = None
    holdout_share: float = Field(default=0.0, ge=0, lt=1)
    assignment_method: AssignmentMethod = "stratified_block"
    salt: Annotated[str, Field(min_length=1)] | None = None
    power: PowerSettings = Field(default_factory=PowerSettings)
    send_list: SendListSettings = Field(default_factory=SendListSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    waves: WaveSettings = Field(default_factory=WaveSettings)

    @field_validator("tones")
    @classmethod
    def _tones_unique(cls, tones: list[str] | None) -> list[str] | None:
        if tones is None:
            return None
        cleaned = [t.strip().lower() for t in tones]
        if CONTROL_ARM in cleaned:
            raise ValueError("'control' is the control message, not a tone")
        if len(set(cleaned)) != len(cleaned) or not all(cleaned):
            raise ValueError("tones must be unique, non-empty names")
        return cleaned

    @model_validator(mode="after")
    def _allocation_names_arms(self) -> ExperimentSettings:
        if self.allocation is None:
            return self
        if self.allocation.get(CONTROL_ARM, 0) <= 0:
            raise ValueError("allocation must give 'control' a positive weight")
        for arm in self.allocation:
            if arm != CONTROL_ARM and not _is_treatment_name(arm):
                raise ValueError(
                    f"allocation key '{arm}' is not an arm; "
                    "use control, treatment_1, treatment_2, ..."
                )
        if self.tones is not None:
            known = {CONTROL_ARM, *(treatment_arm_name(i) for i in range(len(self.tones)))}
            unknown = sorted(set(self.allocation) - known)
            if unknown:
                raise ValueError(
                    f"allocation names arm(s) {unknown} but tones give only {sorted(known)}"
                )
        return self


def _is_treatment_name(arm: str) -> bool:
    suffix = arm.removeprefix(TREATMENT_PREFIX)
    return arm.startswith(TREATMENT_PREFIX) and suffix.isdigit() and int(suffix) >= 1


class Lifts(StrictModel):
    """True relative lifts of a tone over the control message (0.05 = +5%).

    Attributes:
        open_rate: Lift on the probability of opening.
        click_rate: Lift on the probability of clicking (per recipient).
        conversion_per_click: Lift on the probability that a clicker converts.
    """

    open_rate: float = Field(default=0.0, gt=-1)
    click_rate: float = Field(default=0.0, gt=-1)
    conversion_per_click: float = Field(default=0.0, gt=-1)


class LiftOverride(StrictModel):
    """Per-segment override of a tone's lifts; ``None`` keeps the tone's value."""

    open_rate: float | None = Field(default=None, gt=-1)
    click_rate: float | None = Field(default=None, gt=-1)
    conversion_per_click: float | None = Field(default=None, gt=-1)


def _default_effects() -> dict[str, Lifts]:
    # Small and heterogeneous on purpose: one tone helps clicks, one helps
    # conversion, one lifts opens but not clicks and slightly hurts conversion.
    return {
        "urgent": Lifts(open_rate=0.05, click_rate=0.08, conversion_per_click=0.0),
        "informational": Lifts(open_rate=0.0, click_rate=0.04, conversion_per_click=0.10),
        "friendly": Lifts(open_rate=0.03, click_rate=0.0, conversion_per_click=-0.05),
    }


def _default_segment_effects() -> dict[str, dict[str, LiftOverride]]:
    # Segments (of the default rules) answer tones differently, so the segment
    # breakdown has something to find: pressure backfires with lapsed customers.
    return {
        "At-Risk": {
            "urgent": LiftOverride(click_rate=-0.05),
            "friendly": LiftOverride(click_rate=0.06),
        },
        "High-Value Recent": {"informational": LiftOverride(click_rate=0.10)},
        "New Customer": {"friendly": LiftOverride(open_rate=0.06, click_rate=0.08)},
    }


class SimulationSettings(StrictModel):
    """The response model used when no engagement file is given.

    Attributes:
        history_emails: How many emails each customer's historical rates are
            taken to summarize (the weight of their own history).
        prior_strength: Weight (in pseudo-emails) of the population mean that
            each customer's history is shrunk toward. The customer's baseline is
            ``(history_emails * own + prior_strength * mean) /
            (history_emails + prior_strength)``.
        conversion_per_click: Probability that a clicker converts under the control.
        organic_conversion_share: A customer's probability of converting with no
            email at all, as a share of their conversion probability under the
            control message (only the simulated holdout of adaptive waves uses it).
        effects: True lifts per tone (tones not listed have no effect).
        segment_effects: Overrides per segment name, then tone. Names of
            segments that do not exist in a run are reported and ignored.
    """

    history_emails: float = Field(default=20.0, gt=0)
    prior_strength: float = Field(default=10.0, ge=0)
    conversion_per_click: float = Field(default=0.10, ge=0, le=1)
    organic_conversion_share: float = Field(default=0.5, ge=0, le=1)
    effects: dict[str, Lifts] = Field(default_factory=_default_effects)
    segment_effects: dict[str, dict[str, LiftOverride]] = Field(
        default_factory=_default_segment_effects
    )

    def lifts_for(self, tone: str, segment: str) -> Lifts:
        """The true lifts of ``tone`` in ``segment`` (control tone: none)."""
        base = self.effects.get(tone, Lifts())
        override = self.segment_effects.get(segment, {}).get(tone)
        if override is None:
            return base
        merged = base.model_dump()
        merged.update({k: v for k, v in override.model_dump().items() if v is not None})
        return Lifts(**merged)
