"""Adaptive waves with a persistent holdout.

A campaign of ``N`` waves is sent in ``N`` parts. The method (also in
``docs/experiment.md``, "Adaptive waves"):

* **Wave membership.** A customer's wave is a pure function of (salt, customer
  id): customers are ordered by a keyed hash of their id under a salt derived
  from the experiment salt (``"<salt>\\0waves"``, independent of the arm hash) and
  dealt into contiguous blocks of the apportioned wave sizes (``waves.shares``,
  default equal).
* **The persistent holdout.** The design's holdout (``holdout_share``) is
  assigned once over all customers, so it is the same in every wave and never
  mailed; the program's incremental lift is all mailed customers against it.
* **Allocation.** Wave 1 uses the design's allocation. Wave ``k > 1`` gives
  control a fixed share and splits the rest over the treatment arms by top-two
  Thompson sampling (Russo 2020) on Beta(1 + x, 1 + n - x) posteriors of the
  primary metric per treatment arm from waves ``1..k-1``, with a minimum share
  per arm. The leader probabilities are estimated from seeded Monte Carlo
  draws, so an allocation is deterministic given the seed and the data.
* **Final analysis.** Each wave is a randomized experiment of its own (its
  allocation was fixed before its customers responded), so its treatment minus
  control difference is unbiased. The final estimate combines them with fixed
  weights proportional to wave size: ``d = sum_k w_k d_k`` and
  ``var(d) = sum_k w_k**2 var(d_k)``. Pooling all waves instead is biased when
  rates drift between waves, because the arm shares change with the wave.

The functions up to :func:`stratified_difference` are pure (numbers in,
numbers out); :func:`assign_waves` runs the whole loop over a response function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from cpo.errors import ConfigError
from cpo.experiment.assignment import assign, hash_ids
from cpo.experiment.design import Arm, Design, apportion, plan_segment
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM, WaveSettings

#: The column of assignments.csv (and of each wave's rows) holding the wave (1-based).
WAVE_COLUMN = "wave"
METHOD_DESIGN = "design"
METHOD_TOP_TWO = "top_two_thompson"


# --------------------------------------------------------------------------
# Wave membership
# --------------------------------------------------------------------------


def wave_salt(salt: str) -> str:
    """The salt of the wave hash: derived from, and independent of, the arm salt."""
    return f"{salt}\0waves"


def wave_sizes(total: int, shares: Sequence[float] | None, count: int) -> list[int]:
    """Customers per wave: ``total`` apportioned by ``shares`` (equal when ``None``)."""
    weights = list(shares) if shares is not None else [1.0] * count
    return apportion(total, weights, list(range(count)))


def wave_of(customer_ids: pd.Series, salt: str, sizes: Sequence[int]) -> np.ndarray:
    """Each customer's wave (1-based), dealt by their keyed hash into blocks of ``sizes``.

    Raises:
        ValueError: ``sizes`` does not add up to the number of customers.
    """
    if sum(sizes) != len(customer_ids):
        raise ValueError(f"wave sizes add up to {sum(sizes)}, not {len(customer_ids)} customers")
    order = np.argsort(hash_ids(customer_ids, wave_salt(salt)), kind="stable")
    waves = np.empty(len(customer_ids), dtype=np.int64)
    waves[order] = np.repeat(np.arange(1, len(sizes) + 1), sizes)
    return waves


# --------------------------------------------------------------------------
# Top-two Thompson sampling
# --------------------------------------------------------------------------


def leader_probabilities(
    successes: np.ndarray, trials: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """P(arm is best) and P(arm is runner-up) under Beta(1 + x, 1 + n - x) posteriors.

    Args:
        successes: Events per arm.
        trials: Denominators per arm.
        draws: Monte Carlo draws.
        rng: The seeded generator.

    Returns:
        ``(leader, runner_up)``: the share of draws in which each arm is the
        largest, and the second largest.
    """
    successes = np.asarray(successes, dtype=float)
    failures = np.asarray(trials, dtype=float) - successes
    samples = rng.beta(1.0 + successes, 1.0 + failures, size=(draws, len(successes)))
    ranked = np.argsort(-samples, axis=1, kind="stable")
    arms = len(successes)
    leader = np.bincount(ranked[:, 0], minlength=arms) / draws
    runner_up = np.bincount(ranked[:, 1], minlength=arms) / draws if arms > 1 else leader
    return leader, runner_up


def top_two_probabilities(leader: np.ndarray, runner_up: np.ndarray, beta: float) -> np.ndarray:
    """Probability that top-two Thompson sampling plays each arm (Russo 2020).

    With probability ``beta`` the sampled leader ``I`` is played; otherwise the
    posterior is sampled again until another arm ``J`` leads, so
    ``P(J = i | I = j) = leader_i / (1 - leader_j)``. When one arm leads in
    every draw that ratio is undefined; the challenger is then the runner-up
    of the same draws.
    """
    if len(leader) == 1:
        return np.ones(1)
    challenger = np.zeros_like(leader)
    for j, lead in enumerate(leader):
        if lead == 0:
            continue
        rest = 1.0 - lead
        given = leader / rest if rest > 0 else runner_up.copy()
        given[j] = 0.0
        if given.sum() == 0:
            given = np.where(np.arange(len(leader)) == j, 0.0, 1.0)
        challenger += lead * given / given.sum()
    return beta * leader + (1.0 - beta) * challenger


def floor_shares(weights: np.ndarray, total: float, minimum: float) -> np.ndarray:
    """Scale ``weights`` to sum to ``total`` with every part at least ``minimum``.

    Parts below the floor are raised to it and the others share what is left in
    proportion to their weights (repeated until no part is below the floor).

    Raises:
        ValueError: ``minimum`` times the number of parts exceeds ``total``.
    """
    count = len(weights)
    if minimum * count > total + 1e-12:
        raise ValueError(f"{count} arms x minimum share {minimum:g} exceed {total:g}")
    shares = np.zeros(count)
    floored = np.zeros(count, dtype=bool)
    while True:
        free = ~floored
        remaining = total - minimum * floored.sum()
        mass = weights[free].sum()
        shares[free] = weights[free] / mass * remaining if mass > 0 else remaining / free.sum()
        shares[floored] = minimum
        below = free & (shares < minimum - 1e-15)
        if not below.any():
            return shares
        floored |= below


@dataclass(frozen=True)
class WaveAllocation:
    """One wave's allocation and what it was based on.

    Attributes:
        wave: The wave (1-based).
        method: ``design`` (wave 1) or ``top_two_thompson``.
        shares: Arm -> share of the wave's recipients, control first.
        leader_probability: Treatment arm -> posterior probability of being the
            best treatment (empty for wave 1).
        posterior_mean: Treatment arm -> posterior mean of the primary metric.
        observed: Arm -> ``[events, denominator]`` of the primary metric in the
            waves before this one (empty for wave 1).
    """

    wave: int
    method: str
    shares: dict[str, float]
    leader_probability: dict[str, float] = field(default_factory=dict)
    posterior_mean: dict[str, float] = field(default_factory=dict)
    observed: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (one entry of ``waves.json``'s ``allocations``)."""
        return {
            "wave": self.wave,
            "method": self.method,
            "shares": {arm: round(share, 10) for arm, share in self.shares.items()},
            "leader_probability": self.leader_probability,
            "posterior_mean": {arm: round(m, 10) for arm, m in self.posterior_mean.items()},
            "observed": self.observed,
        }


def next_allocation(
    wave: int,
    observed: Mapping[str, tuple[int, int]],
    control_share: float,
    settings: WaveSettings,
    seed: int,
) -> WaveAllocation:
    """Allocation of wave ``wave > 1`` from the primary metric observed so far.

    Args:
        wave: The wave being allocated.
        observed: Arm -> (events, denominator) over the earlier waves; control
            and every treatment arm to allocate.
        control_share: Control's fixed share of the wave's recipients.
        settings: ``experiment.waves`` (beta, minimum share, draws).
        seed: Run seed; with ``wave`` it seeds the Monte Carlo draws.
    """
    treatments = [arm for arm in observed if arm != CONTROL_ARM]
    if not treatments:  # every treatment arm was dropped: control is all there is
        return WaveAllocation(wave, METHOD_DESIGN, {CONTROL_ARM: 1.0})
    successes = np.array([observed[a][0] for a in treatments], dtype=float)
    trials = np.array([observed[a][1] for a in treatments], dtype=float)
    rng = np.random.default_rng([seed, wave])
    leader, runner_up = leader_probabilities(successes, trials, settings.posterior_draws, rng)
    played = top_two_probabilities(leader, runner_up, settings.top_two_beta)
    shares = floor_shares(played, 1.0 - control_share, settings.min_share)
    return WaveAllocation(
        wave=wave,
        method=METHOD_TOP_TWO,
        shares={CONTROL_ARM: control_share, **dict(zip(treatments, shares.tolist(), strict=True))},
        leader_probability=dict(zip(treatments, leader.tolist(), strict=True)),
        posterior_mean=dict(
            zip(treatments, ((1 + successes) / (2 + trials)).tolist(), strict=True)
        ),
        observed={arm: [int(x), int(n)] for arm, (x, n) in observed.items()},
    )


def simulate_program(
    rates: np.ndarray,
    per_wave: int,
    adaptive: bool,
    seed: int,
    settings: WaveSettings,
    arms: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one wave program with binomial responses (for simulation studies).

    Wave 1 splits ``per_wave`` recipients equally over the arms (control first);
    a later wave does too, or, when ``adaptive``, follows :func:`next_allocation`
    from the responses of the earlier waves with control keeping an equal share.
    Responses are binomial draws at ``rates[wave, arm]``. The simulation tests
    and ``benchmarks/adaptive_waves.py`` use it (regret, bias, coverage).

    Args:
        rates: True rate per wave (rows) and arm (columns, control first).
        per_wave: Recipients per wave.
        adaptive: Allocate later waves by top-two Thompson sampling.
        seed: Seeds the draws and the allocations.
        settings: ``experiment.waves`` (beta, minimum share, draws).
        arms: Arm names, control first; default control, treatment_1, ...

    Returns:
        ``(events, recipients)``, two integer arrays shaped like ``rates``.
    """
    rng = np.random.default_rng(seed)
    waves, count = rates.shape
    names = list(arms or [CONTROL_ARM, *(f"treatment_{i}" for i in range(1, count))])
    events = np.zeros((waves, count), dtype=np.int64)
    sent = np.zeros((waves, count), dtype=np.int64)
    shares = np.full(count, 1.0 / count)
    for k in range(waves):
        if adaptive and k > 0:
            observed = {
                arm: (int(events[:k, a].sum()), int(sent[:k, a].sum()))
                for a, arm in enumerate(names)
            }
            allocation = next_allocation(k + 1, observed, 1.0 / count, settings, seed)
            shares = np.array([allocation.shares[arm] for arm in names])
        sent[k] = np.floor(per_wave * shares).astype(np.int64)
        sent[k, 0] += per_wave - sent[k].sum()
        events[k] = rng.binomial(sent[k], rates[k])
    return events, sent


# --------------------------------------------------------------------------
# The final analysis
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class StratifiedDifference:
    """Treatment minus control, stratified by wave.

    Attributes:
        difference: ``sum_k w_k (p_t,k - p_c,k)`` (None when no wave has both arms).
        standard_error: ``sqrt(sum_k w_k**2 var_k)``.
        ci_lower: Lower bound of the normal interval.
        ci_upper: Upper bound.
        p_value: Two-sided p-value of ``difference = 0``.
        control_rate: ``sum_k w_k p_c,k`` (the base of the relative lift).
        waves_used: Waves where both arms had recipients.
        weights: Wave -> weight (the wave sizes of ``waves_used``, normalized).
        reason: Why a value is missing, else None.
    """

    difference: float | None
    standard_error: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    control_rate: float | None
    waves_used: tuple[int, ...]
    weights: dict[int, float]
    reason: str | None = None

    @property
    def relative(self) -> float | None:
        """Relative lift: difference over the stratified control rate."""
        if self.difference is None or not self.control_rate:
            return None
        return self.difference / self.control_rate

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "difference": self.difference,
            "relative_lift": self.relative,
            "standard_error": self.standard_error,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "p_value": self.p_value,
            "control_rate": self.control_rate,
            "waves_used": list(self.waves_used),
            "weights": {str(k): v for k, v in self.weights.items()},
            "reason": self.reason,
        }


def stratified_difference(
    treatment: np.ndarray,
    control: np.ndarray,
    sizes: np.ndarray,
    confidence: float = 0.95,
) -> StratifiedDifference:
    """Wave-stratified difference of two rates with fixed weights.

    Args:
        treatment: Shape (waves, 2): events and denominator of the treatment per wave.
        control: Shape (waves, 2): the same for control (or for the holdout's
            comparison group).
        sizes: Customers per wave (fixed before any wave was sent): the weights.
        confidence: Interval level.

    Returns:
        The estimate. A wave where either group has no denominator is left out
        and the weights of the others are renormalized.
    """
    treatment, control = np.asarray(treatment, float), np.asarray(control, float)
    usable = (treatment[:, 1] > 0) & (control[:, 1] > 0)
    if not usable.any():
        return StratifiedDifference(
            None, None, None, None, None, None, (), {}, "no wave has recipients in both groups"
        )
    weights = np.asarray(sizes, float)[usable]
    weights = weights / weights.sum()
    p_t = treatment[usable, 0] / treatment[usable, 1]
    p_c = control[usable, 0] / control[usable, 1]
    variance = p_t * (1 - p_t) / treatment[usable, 1] + p_c * (1 - p_c) / control[usable, 1]
    difference = float(weights @ (p_t - p_c))
    se = float(np.sqrt(weights**2 @ variance))
    waves = tuple(int(k) + 1 for k in np.flatnonzero(usable))
    estimate = StratifiedDifference(
        difference=difference,
        standard_error=se,
        ci_lower=None,
        ci_upper=None,
        p_value=None,
        control_rate=float(weights @ p_c),
        waves_used=waves,
        weights=dict(zip(waves, weights.tolist(), strict=True)),
    )
    if se == 0:
        return replace(estimate, reason="no variation in either group")
    z = float(ndtri(0.5 + confidence / 2))
    return replace(
        estimate,
        ci_lower=difference - z * se,
        ci_upper=difference + z * se,
        p_value=float(2 * ndtr(-abs(difference) / se)),
    )


def pooled_difference(treatment: np.ndarray, control: np.ndarray) -> float | None:
    """The naive difference of the rates pooled over waves (biased under drift; for comparison)."""
    t, c = np.asarray(treatment, float).sum(axis=0), np.asarray(control, float).sum(axis=0)
    if t[1] == 0 or c[1] == 0:
        return None
    return float(t[0] / t[1] - c[0] / c[1])


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------

#: Responses of one wave: its assignment rows in, per-recipient 0/1 outcomes out
#: (``customer_id``, ``experiment_arm`` and the primary metric's columns).
Respond = Callable[[int, pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class WaveRun:
    """The result of :func:`assign_waves`.

    Attributes:
        assignments: Every customer's final assignment, input order, with ``wave``.
        sizes: Customers per wave.
        allocations: One allocation per wave.
        observed: Wave -> arm -> [events, denominator] of the primary metric.
    """

    assignments: pd.DataFrame
    sizes: list[int]
    allocations: list[WaveAllocation]
    observed: dict[int, dict[str, list[int]]]


def check_wave_count(design: Design, settings: WaveSettings, control_share: float) -> None:
    """Refuse more waves than the customers allow (at least one recipient per arm per wave).

    Raises:
        ConfigError: a wave would have fewer expected recipients than one per arm.
    """
    counts = design.expected_counts()
    recipients = sum(counts[name] for name in design.arm_names)
    arms = [a for a in design.arms if counts[a.name] > 0]
    smallest = min([a.weight for a in arms] + [control_share, settings.min_share or control_share])
    sizes = wave_sizes(int(recipients), settings.shares, settings.count)
    if not arms or min(sizes) * smallest < 1:
        most = max(1, int(recipients * smallest))
        raise ConfigError(
            f"experiment.waves.count {settings.count}: with {int(recipients)} recipients the "
            f"smallest wave has {min(sizes)}, fewer than one recipient per arm at the smallest "
            f"share ({smallest:.3g})",
            hint=f"use fewer waves (at most {most} with equal waves), more customers, "
            "or larger shares for the smallest arm",
        )
    treatments = sum(1 for a in arms if a.name != CONTROL_ARM)
    if settings.min_share * treatments > 1 - control_share:
        raise ConfigError(
            f"experiment.waves.min_share {settings.min_share:g} x {treatments} treatment arms "
            f"exceeds the {1 - control_share:g} left after control's share",
            hint="lower experiment.waves.min_share or experiment.waves.control_share",
        )


def wave_design(
    design: Design, wave: int, shares: Mapping[str, float], segments: pd.Series
) -> Design:
    """The design of one wave: the arms re-weighted by ``shares``, no holdout, its own salt."""
    arms = tuple(Arm(a.name, a.tone, float(shares.get(a.name, 0.0))) for a in design.arms)
    salt = f"{design.salt}\0wave{wave}"
    sizes = segments.value_counts()
    plans = tuple(
        plan_segment(
            plan.segment,
            int(sizes.get(plan.segment, 0)),
            arms,
            {arm: vid for arm, vid in plan.variant_ids.items() if shares.get(arm, 0) > 0},
            plan.dropped,
            0.0,
            design.method,
            salt,
        )
        for plan in design.segments
    )
    return replace(design, arms=arms, holdout_share=0.0, salt=salt, segments=plans)


def assign_waves(
    customers: pd.DataFrame,
    design: Design,
    settings: WaveSettings,
    respond: Respond,
    outcome: tuple[str, str | None],
    seed: int,
    assigned_at: str = "",
) -> WaveRun:
    """Assign every wave, each after the responses of the waves before it.

    Args:
        customers: ``customer_id`` and ``segment`` of every customer.
        design: The experiment design (its allocation is wave 1's; its holdout
            is the persistent holdout).
        settings: ``experiment.waves``.
        respond: Returns the responses of a wave's recipients (simulated offline).
        outcome: The primary metric's 0/1 outcome column and the column a
            recipient must have set to count (``None`` = every recipient).
        seed: Run seed (the Monte Carlo draws of each allocation).
        assigned_at: Timestamp written on every row.

    Raises:
        ConfigError: more waves than the customers allow.
    """
    control_share = settings.control_share or _design_share(design, CONTROL_ARM)
    check_wave_count(design, settings, control_share)
    base = assign(customers, design, assigned_at=assigned_at)
    sizes = wave_sizes(len(base), settings.shares, settings.count)
    base[WAVE_COLUMN] = wave_of(base["customer_id"], design.salt, sizes)
    active = [a.name for a in design.arms if design.expected_counts()[a.name] > 0]
    totals = {arm: [0, 0] for arm in active}
    allocations: list[WaveAllocation] = []
    observed: dict[int, dict[str, list[int]]] = {}
    for wave in range(1, settings.count + 1):
        if wave == 1:
            allocation = WaveAllocation(
                1, METHOD_DESIGN, {a: _design_share(design, a) for a in active}
            )
        else:
            counts = {arm: (totals[arm][0], totals[arm][1]) for arm in active}
            allocation = next_allocation(wave, counts, control_share, settings, seed)
        allocations.append(allocation)
        rows = base[WAVE_COLUMN].to_numpy() == wave
        # Wave 1 deals with the design's own weights, so a segment that lacks an arm
        # is renormalized exactly as the design did; later waves with their shares.
        weights = {a.name: a.weight for a in design.arms} if wave == 1 else allocation.shares
        assign_wave_rows(base, rows, design, wave, weights, assigned_at)
        observed[wave] = count_responses(respond(wave, base.loc[rows]), active, outcome)
        for arm, (events, denominator) in observed[wave].items():
            totals[arm][0] += events
            totals[arm][1] += denominator
    return WaveRun(base, sizes, allocations, observed)


def assign_wave_rows(
    base: pd.DataFrame,
    rows: np.ndarray,
    design: Design,
    wave: int,
    shares: Mapping[str, float],
    assigned_at: str,
) -> None:
    """Deal a wave's mailed customers into arms by ``shares`` (the holdout keeps its place)."""
    mailed = rows & (base["experiment_arm"].to_numpy() != HOLDOUT_ARM)
    if not mailed.any():
        return
    frame = base.loc[mailed, ["customer_id", "segment"]]
    dealt = assign(frame, wave_design(design, wave, shares, frame["segment"]), assigned_at)
    base.loc[mailed, "experiment_arm"] = dealt["experiment_arm"].to_numpy()
    base.loc[mailed, "variant_id"] = dealt["variant_id"].to_numpy()


def _design_share(design: Design, arm: str) -> float:
    """An arm's share of the design's recipients."""
    return float(design.expected_shares().get(arm, 0.0))


def count_responses(
    responses: pd.DataFrame, arms: Sequence[str], outcome: tuple[str, str | None]
) -> dict[str, list[int]]:
    """Arm -> [events, denominator] of the primary metric in one wave's responses."""
    flag, among = outcome
    frame = responses if among is None else responses.loc[responses[among].astype(int) == 1]
    events = frame.groupby("experiment_arm")[flag].agg(lambda s: int(s.astype(int).sum()))
    sizes = frame["experiment_arm"].value_counts()
    return {arm: [int(events.get(arm, 0)), int(sizes.get(arm, 0))] for arm in arms}
