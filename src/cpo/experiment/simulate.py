"""Simulated engagement, for trying the pipeline before a real send.

The response model (also in ``docs/experiment.md``, "Simulation model"):

1. **Baselines.** Each customer's historical open and click rates are shrunk
   toward the population mean::

       w = history_emails / (history_emails + prior_strength)
       base_open_i  = w * historical_open_rate_i  + (1 - w) * mean(historical_open_rate)
       base_click_i = w * historical_click_rate_i + (1 - w) * mean(historical_click_rate)

   i.e. the posterior mean under a Beta prior centred on the population mean
   with ``prior_strength`` pseudo-emails, when the history summarizes
   ``history_emails`` emails (defaults 10 and 20: ``w = 2/3``).
2. **Effects.** A customer in an arm of tone ``t`` and segment ``s`` gets the
   true relative lifts ``L = lifts_for(t, s)`` (the control has none)::

       p_open_i  = min(1, base_open_i  * (1 + L.open_rate))
       p_click_i = min(p_open_i, base_click_i * (1 + L.click_rate))
       p_conv_i  = p_click_i * min(1, conversion_per_click * (1 + L.conversion_per_click))

   Clicks are capped by opens, and conversion is conditional on a click.
3. **Outcomes.** With independent uniforms ``u1, u2, u3`` per customer, each a
   keyed hash of (seed, customer id) (:func:`customer_uniforms`, so the draws do
   not depend on row order or partitioning)::

       opened    = u1 < p_open_i
       clicked   = opened  and u2 < p_click_i / p_open_i
       converted = clicked and u3 < p_conv_i / p_click_i

   so ``P(clicked) = p_click_i``, ``P(converted) = p_conv_i`` and
   converted <= clicked <= opened for every customer.

The simulator knows nothing of the analysis. :func:`expected_rates` exposes the
true expected rates per arm (and per arm and segment) so a test can check that
the analysis recovers them; the true effect of a treatment is
``expected_rates`` of the treatment minus that of control for the assigned
customers (the population-average difference given the assignment).
Every output says ``engagement_source: simulated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cpo.experiment import catalog
from cpo.experiment.assignment import hash_ids, unit_interval
from cpo.experiment.engagement import ENGAGEMENT_COLUMNS
from cpo.experiment.settings import (
    CONTROL_ARM,
    HOLDOUT_ARM,
    SimulationSettings,
    treatment_arm_name,
)
from cpo.models import CONTROL_TONE, TONES

SOURCE_SIMULATED = "simulated"
#: The customer columns the simulator reads (besides ``customer_id``).
SIMULATION_COLUMNS = ("historical_open_rate", "historical_click_rate")


@dataclass(frozen=True)
class SimulatedEngagement:
    """Simulated engagement and the model behind it.

    Attributes:
        frame: ``engagement.csv`` rows (recipients only), ``engagement_source`` simulated.
        model: Parameters of the response model actually used (for the report).
        warnings: ``{code, message}`` records (e.g. effects for segments that do not exist).
        source: ``simulated``.
    """

    frame: pd.DataFrame
    model: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)
    source: str = SOURCE_SIMULATED


def default_arm_tones(tones: tuple[str, ...] | list[str] = TONES) -> dict[str, str]:
    """Arm -> tone for control plus one treatment arm per tone."""
    return {CONTROL_ARM: CONTROL_TONE, **{treatment_arm_name(i): t for i, t in enumerate(tones)}}


def customer_baselines(
    customers: pd.DataFrame,
    settings: SimulationSettings,
    population: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Per customer: baseline open and click probabilities, shrunk toward the population.

    Args:
        customers: ``customer_id``, ``historical_open_rate``, ``historical_click_rate``.
        settings: The ``simulation`` section.
        population: The population's mean open and click rates, when ``customers``
            is a part of it (a partition); None: the means of ``customers``.

    Returns:
        customer_id, base_open, base_click.
    """
    weight = settings.history_emails / (settings.history_emails + settings.prior_strength)
    opens = customers["historical_open_rate"].to_numpy(dtype=float)
    clicks = customers["historical_click_rate"].to_numpy(dtype=float)
    open_mean, click_mean = population or (opens.mean(), clicks.mean())
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype(str).to_numpy(),
            "base_open": weight * opens + (1 - weight) * open_mean,
            "base_click": weight * clicks + (1 - weight) * click_mean,
        }
    )


def _lift_columns(
    frame: pd.DataFrame, arm_tones: Mapping[str, str], settings: SimulationSettings
) -> pd.DataFrame:
    """Per row: the true lifts of its arm's tone in its segment (vectorized over pairs)."""
    pairs = frame[["experiment_arm", "segment"]].drop_duplicates()
    rows = []
    for arm, segment in pairs.itertuples(index=False):
        tone = arm_tones.get(arm)
        if tone is None:
            raise ValueError(f"arm '{arm}' has no tone; arms known: {sorted(arm_tones)}")
        lifts = settings.lifts_for(tone, segment) if tone != CONTROL_TONE else None
        values = (
            lifts.model_dump()
            if lifts
            else dict.fromkeys(("open_rate", "click_rate", "conversion_per_click"), 0.0)
        )
        rows.append({"experiment_arm": arm, "segment": segment, **values})
    table = pd.DataFrame(
        rows,
        columns=["experiment_arm", "segment", "open_rate", "click_rate", "conversion_per_click"],
    )
    # each row's (arm, segment) pair, found by position in the few distinct pairs
    keys = pd.MultiIndex.from_frame(table[["experiment_arm", "segment"]])
    position = keys.get_indexer(pd.MultiIndex.from_frame(frame[["experiment_arm", "segment"]]))
    return table.iloc[position].set_axis(frame.index)


def _with_baselines(frame: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each recipient's ``base_open`` and ``base_click`` (NaN without a record).

    A hash lookup of the ids (:mod:`cpo.idjoin`; the customers' ids are
    unique, validated when they were loaded) instead of a pandas merge.
    """
    from cpo.idjoin import row_positions

    position = row_positions(frame["customer_id"], base["customer_id"])
    found = position >= 0
    for column in ("base_open", "base_click"):
        values = base[column].to_numpy(dtype=float)
        frame[column] = np.where(found, values[np.maximum(position, 0)], np.nan)
    return frame


def response_probabilities(
    customers: pd.DataFrame,
    assignments: pd.DataFrame,
    arm_tones: Mapping[str, str],
    settings: SimulationSettings,
    population: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Per recipient: the true probabilities of opening, clicking and converting.

    Args:
        customers: Customer records with historical rates.
        assignments: customer_id, segment, experiment_arm (holdout rows are dropped).
        arm_tones: Arm -> tone (``control`` for the control arm).
        settings: The ``simulation`` section.
        population: The population's mean open and click rates
            (:func:`customer_baselines`); None: those of ``customers``.

    Returns:
        customer_id, segment, experiment_arm, p_open, p_click, p_convert in
        assignment order.

    Raises:
        ValueError: a recipient has no customer record, or an arm has no tone.
    """
    recipients = assignments.loc[assignments["experiment_arm"] != HOLDOUT_ARM]
    frame = (
        recipients[["customer_id", "segment", "experiment_arm"]]
        .astype({"customer_id": str})
        .reset_index(drop=True)
    )
    frame = _with_baselines(frame, customer_baselines(customers, settings, population))
    if frame["base_open"].isna().any():
        missing = int(frame["base_open"].isna().sum())
        raise ValueError(f"{missing} recipient(s) have no customer record with historical rates")
    lifts = _lift_columns(frame, arm_tones, settings)
    p_open = np.minimum(1.0, frame["base_open"].to_numpy() * (1 + lifts["open_rate"].to_numpy()))
    p_click = np.minimum(
        p_open, frame["base_click"].to_numpy() * (1 + lifts["click_rate"]).to_numpy()
    )
    per_click = np.minimum(
        1.0, settings.conversion_per_click * (1 + lifts["conversion_per_click"].to_numpy())
    )
    frame["p_open"] = p_open
    frame["p_click"] = p_click
    frame["p_convert"] = p_click * per_click
    return frame.drop(columns=["base_open", "base_click"])


def simulate_engagement(
    customers: pd.DataFrame,
    assignments: pd.DataFrame,
    arm_tones: Mapping[str, str],
    settings: SimulationSettings,
    seed: int,
) -> SimulatedEngagement:
    """Draw opens, clicks and conversions for every recipient (seeded, vectorized).

    Args:
        customers: Customer records with historical rates.
        assignments: ``assignments.csv`` rows.
        arm_tones: Arm -> tone.
        settings: The ``simulation`` section.
        seed: Random seed; the same seed and inputs give the same outcomes.

    Returns:
        The simulated engagement (holdout excluded).
    """
    probs = response_probabilities(customers, assignments, arm_tones, settings)
    frame = draw_outcomes(probs, seed)
    model = model_description(customers, settings, arm_tones, seed)
    # The truth the analysis should recover; the report shows it beside each estimate.
    model["true_effects"] = true_effects(probs)
    return SimulatedEngagement(
        frame,
        model,
        simulation_warnings(assignments, arm_tones, settings),
    )


def customer_uniforms(customer_ids: pd.Series, seed: int) -> np.ndarray:
    """Three uniforms in [0, 1) per customer, a pure function of (seed, customer id).

    ``u_k = unit_interval(hash_ids(ids, salt=f"{seed}:simulate:{k}"))`` for k = 1, 2, 3:
    the keyed hash of the assignment (:func:`cpo.experiment.assignment.hash_ids`)
    under three salts. A customer's draws do not depend on the row order or on
    which other customers are in the run, so any partitioning of the customers
    (the Spark engine, :mod:`cpo.compute`) gives the same outcomes.

    Returns:
        A ``(len(customer_ids), 3)`` float array.
    """
    columns = [unit_interval(hash_ids(customer_ids, f"{seed}:simulate:{k}")) for k in (1, 2, 3)]
    return np.column_stack(columns) if len(customer_ids) else np.empty((0, 3))


def draw_outcomes(probs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Opens, clicks and conversions for :func:`response_probabilities` rows.

    Returns:
        ``engagement.csv`` rows in the order of ``probs``.
    """
    draws = customer_uniforms(probs["customer_id"], seed)
    p_open, p_click, p_convert = (probs[c].to_numpy() for c in ("p_open", "p_click", "p_convert"))
    # u * p < q is u < q / p without dividing by zero when p is 0.
    opened = draws[:, 0] < p_open
    clicked = opened & (draws[:, 1] * p_open < p_click)
    converted = clicked & (draws[:, 2] * p_click < p_convert)
    frame = probs[["customer_id", "experiment_arm", "segment"]].copy()
    frame["opened"] = opened.astype("int8")
    frame["clicked"] = clicked.astype("int8")
    frame["converted"] = converted.astype("int8")
    frame["engagement_source"] = SOURCE_SIMULATED
    return frame[list(ENGAGEMENT_COLUMNS)]


def model_description(
    customers: pd.DataFrame,
    settings: SimulationSettings,
    arm_tones: Mapping[str, str],
    seed: int,
    population: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The response model's parameters as used, for the record.

    ``population``: the mean open and click rates when ``customers`` is not the
    whole population (None: the means of ``customers``).
    """
    weight = settings.history_emails / (settings.history_emails + settings.prior_strength)
    open_mean, click_mean = population or (
        float(customers["historical_open_rate"].mean()),
        float(customers["historical_click_rate"].mean()),
    )
    return {
        "model": "shrunken historical baselines x relative lifts per tone and segment; "
        "conversion conditional on click (docs/experiment.md, Simulation model)",
        "seed": seed,
        "history_emails": settings.history_emails,
        "prior_strength": settings.prior_strength,
        "shrinkage_weight": weight,
        "population_open_rate": float(open_mean),
        "population_click_rate": float(click_mean),
        "conversion_per_click": settings.conversion_per_click,
        "arm_tones": dict(arm_tones),
        "effects": {t: lifts.model_dump() for t, lifts in settings.effects.items()},
        "segment_effects": {
            s: {t: o.model_dump(exclude_none=True) for t, o in tones.items()}
            for s, tones in settings.segment_effects.items()
        },
    }


def simulation_warnings(
    assignments: pd.DataFrame, arm_tones: Mapping[str, str], settings: SimulationSettings
) -> list[dict[str, str]]:
    """Simulated data is always flagged; unused effect settings are reported."""
    warnings = [
        {
            "code": "simulated_data",
            "message": "engagement is SIMULATED from the configured response model, not measured; "
            "results show what the analysis would report, not how customers behaved",
        }
    ]
    segments = set(assignments["segment"].astype(str).unique())
    unknown_segments = sorted(set(settings.segment_effects) - segments)
    if unknown_segments:
        warnings.append(
            {
                "code": "simulation_unknown_segments",
                "message": f"simulation.segment_effects names segment(s) {unknown_segments} that "
                "this run does not have; those settings were ignored",
            }
        )
    tones = set(arm_tones.values())
    configured = set(settings.effects) | {t for o in settings.segment_effects.values() for t in o}
    unused = sorted(configured - tones)
    if unused:
        warnings.append(
            {
                "code": "simulation_unknown_tones",
                "message": f"simulation effects name tone(s) {unused} that no arm uses; ignored",
            }
        )
    return warnings


def expected_rates(
    customers: pd.DataFrame,
    assignments: pd.DataFrame,
    settings: SimulationSettings,
    arm_tones: Mapping[str, str] | None = None,
    by_segment: bool = False,
) -> pd.DataFrame:
    """True expected rates per arm (or arm and segment) for the assigned customers.

    Every metric of :mod:`cpo.experiment.catalog`: a rate over all recipients
    (``open_rate``, ``click_rate``, ``conversion_rate``) is the mean of the
    recipients' true probabilities; a rate among some (``click_to_open_rate``)
    is the ratio of expected events, e.g. expected clicks to expected opens
    (what clicks / opens converges to). The
    true effect of a treatment arm on a metric is its rate minus the control's
    (see :func:`true_differences`).

    Args:
        customers: Customer records with historical rates.
        assignments: ``assignments.csv`` rows.
        settings: The ``simulation`` section.
        arm_tones: Arm -> tone; ``None`` = control plus the default three tones.
        by_segment: Group by arm and segment instead of arm only.

    Returns:
        One row per group: experiment_arm (, segment), n, and one rate per metric.
    """
    probs = response_probabilities(
        customers, assignments, arm_tones or default_arm_tones(), settings
    )
    keys = ["experiment_arm", "segment"] if by_segment else ["experiment_arm"]
    return _rates_of(probs, keys)


def _rates_of(probs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """True expected rate of every catalog metric per group of :func:`response_probabilities` rows.

    A metric over every recipient is the mean of its numerator's probability;
    one among some recipients (click-to-open: among openers) is expected
    numerator over expected denominator, NaN when the denominator is 0.
    """
    grouped = probs.groupby(keys, sort=True)
    columns = [c.simulated_probability for c in catalog.COUNTS.values() if c.simulated_probability]
    means, sums = grouped[columns].mean(), grouped[columns].sum()
    table = grouped.size().rename("n").to_frame()
    for name in catalog.metric_names():
        found = catalog.metric(name)
        numerator = catalog.COUNTS[found.numerator].simulated_probability
        denominator = catalog.COUNTS[found.denominator].simulated_probability
        if denominator is None:
            table[name] = means[numerator]
            continue
        below = sums[denominator].to_numpy()
        table[name] = np.divide(
            sums[numerator].to_numpy(), below, out=np.full(len(table), np.nan), where=below > 0
        )
    return table.reset_index()[[*keys, "n", *catalog.metric_names()]]


def true_effects(probs: pd.DataFrame, control: str = CONTROL_ARM) -> dict[str, Any]:
    """The true rates and effects per arm, JSON-ready, from :func:`response_probabilities` rows.

    Returns:
        ``{"control": {metric: rate}, "arms": {arm: {metric: {"rate",
        "lift_absolute", "lift_relative"}}}}`` for every treatment arm (relative
        lift ``None`` when the control's rate is 0); empty without a control arm.
    """
    return effects_of_rates(_rates_of(probs, ["experiment_arm"]), control)


def rates_from_sums(sums: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The :func:`expected_rates` table from per-group sums of the true probabilities.

    For an engine that sums :func:`response_probabilities` rows where they are
    (Spark): ``sums`` has the ``keys``, ``n`` and one sum per probability column
    (``p_open``, ``p_click``, ``p_convert``); a rate over every recipient is its
    sum over ``n``, one among some recipients a ratio of sums (NaN when 0).
    """
    table = sums.sort_values(keys, kind="stable").reset_index(drop=True)
    count = table["n"].to_numpy(dtype=float)
    for name in catalog.metric_names():
        found = catalog.metric(name)
        above = table[catalog.COUNTS[found.numerator].simulated_probability].to_numpy(dtype=float)
        denominator = catalog.COUNTS[found.denominator].simulated_probability
        below = count if denominator is None else table[denominator].to_numpy(dtype=float)
        table[name] = np.divide(above, below, out=np.full(len(table), np.nan), where=below > 0)
    return table[[*keys, "n", *catalog.metric_names()]]


def effects_of_rates(table: pd.DataFrame, control: str = CONTROL_ARM) -> dict[str, Any]:
    """:func:`true_effects` from an arm-level :func:`expected_rates` table."""
    rates = table.set_index("experiment_arm")
    if control not in rates.index:
        return {}
    base = {m: _number(rates.at[control, m]) for m in catalog.metric_names()}
    arms: dict[str, Any] = {}
    for arm in rates.index.drop(control):
        arms[str(arm)] = {}
        for metric in catalog.metric_names():
            rate, reference = _number(rates.at[arm, metric]), base[metric]
            absolute = None if rate is None or reference is None else rate - reference
            relative = absolute / reference if absolute is not None and reference else None
            arms[str(arm)][metric] = {
                "rate": rate,
                "lift_absolute": absolute,
                "lift_relative": relative,
            }
    return {"control": base, "arms": arms}


def _number(value: Any) -> float | None:
    """A float for JSON (``None`` for NaN)."""
    number = float(value)
    return None if np.isnan(number) else number


def true_differences(rates: pd.DataFrame, control: str = CONTROL_ARM) -> pd.DataFrame:
    """Treatment minus control of each rate, from an arm-level :func:`expected_rates` table."""
    indexed = rates.set_index("experiment_arm")[list(catalog.metric_names())]
    if control not in indexed.index:
        raise ValueError(f"no '{control}' arm in the rates table")
    treatments = indexed.drop(index=control)
    return (treatments - indexed.loc[control]).reset_index()
