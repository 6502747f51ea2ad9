"""Adaptive waves with a persistent holdout (cpo.experiment.waves).

The simulation tests draw binomial outcomes per wave and arm with numpy (seeded),
allocate each later wave with the module's top-two Thompson sampling, and check
the properties the method promises:

* regret (expected conversions lost against always sending the best arm) is lower
  than a fixed equal allocation, on average over 200 seeds;
* the wave-stratified estimate is unbiased (|mean error| < 3 Monte Carlo SE) and
  its 95% interval covers the true difference 95 +- 2.5% of the time over 2,000
  seeds, even with baseline rates drifting between waves;
* the naive pooled estimate is biased in that drifting scenario (why we stratify).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpo.errors import ConfigError
from cpo.experiment.design import Arm, Design, plan_segment
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM, WaveSettings
from cpo.experiment.waves import (
    WAVE_COLUMN,
    assign_waves,
    floor_shares,
    leader_probabilities,
    next_allocation,
    pooled_difference,
    simulate_program,
    stratified_difference,
    top_two_probabilities,
    wave_of,
    wave_sizes,
)

ARMS = [CONTROL_ARM, "treatment_1", "treatment_2", "treatment_3"]


def _regret(rates: np.ndarray, sent: np.ndarray) -> float:
    """Expected events lost against sending every recipient the best arm of each wave."""
    return float(((rates.max(axis=1, keepdims=True) - rates) * sent).sum())


def test_adaptive_waves_lose_fewer_conversions_than_a_fixed_allocation() -> None:
    rates = np.tile([0.05, 0.05, 0.06, 0.08], (4, 1))
    settings = WaveSettings(count=4, posterior_draws=4000)
    adaptive, fixed = [], []
    for seed in range(200):
        _, sent = simulate_program(rates, 2000, True, seed, settings)
        adaptive.append(_regret(rates, sent))
        _, sent = simulate_program(rates, 2000, False, seed, settings)
        fixed.append(_regret(rates, sent))
    # Fixed: 3 of 4 arms lose 0.03, 0.03, 0.02 per recipient in every wave.
    assert np.mean(fixed) == pytest.approx(4 * 500 * (0.03 + 0.03 + 0.02))
    # Control's fixed quarter loses 4 x 500 x 0.03 = 60 under both; the treatments' part
    # is what adaptation can win back (docs/experiment.md records the numbers).
    saved = np.asarray(fixed) - np.asarray(adaptive)
    assert saved.mean() > 5 * saved.std(ddof=1) / np.sqrt(len(saved))
    assert np.mean(adaptive) - 60 < 0.85 * (np.mean(fixed) - 60)


def _stratified_errors(
    rates: np.ndarray, seeds: int, settings: WaveSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed and treatment arm: stratified error, covered flag, pooled error."""
    waves, arms = rates.shape
    sizes = np.full(waves, 3000)
    truth = (rates[:, 1:] - rates[:, :1]).mean(axis=0)
    errors = np.zeros((seeds, arms - 1))
    covered = np.zeros((seeds, arms - 1), dtype=bool)
    pooled = np.zeros((seeds, arms - 1))
    for seed in range(seeds):
        events, sent = simulate_program(rates, 3000, True, seed, settings)
        control = np.stack([events[:, 0], sent[:, 0]], axis=1)
        for a in range(1, arms):
            treatment = np.stack([events[:, a], sent[:, a]], axis=1)
            estimate = stratified_difference(treatment, control, sizes)
            assert estimate.difference is not None and estimate.ci_lower is not None
            assert estimate.ci_upper is not None
            errors[seed, a - 1] = estimate.difference - truth[a - 1]
            covered[seed, a - 1] = estimate.ci_lower <= truth[a - 1] <= estimate.ci_upper
            pooled[seed, a - 1] = (pooled_difference(treatment, control) or 0.0) - truth[a - 1]
    return errors, covered, pooled


@pytest.fixture(scope="module")
def drifting() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2,000 seeds of 4 adaptive waves whose baseline rates rise from 3% to 12%."""
    base = np.array([0.03, 0.06, 0.09, 0.12])[:, None]
    rates = base + np.array([0.0, 0.0, 0.005, 0.02])
    return _stratified_errors(rates, 2000, WaveSettings(count=4, posterior_draws=2000))


def test_stratified_estimate_is_unbiased_with_nominal_coverage(
    drifting: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    errors, covered, _ = drifting
    monte_carlo_se = errors.std(axis=0, ddof=1) / np.sqrt(len(errors))
    assert np.all(np.abs(errors.mean(axis=0)) < 3 * monte_carlo_se)
    coverage = covered.mean(axis=0)
    assert np.all((coverage >= 0.925) & (coverage <= 0.975)), coverage


def test_pooled_estimate_is_biased_when_rates_drift_between_waves(
    drifting: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The best arm gets more of the later, higher-rate waves, so pooling inflates its lift."""
    _, _, pooled = drifting
    best = pooled[:, 2]
    monte_carlo_se = best.std(ddof=1) / np.sqrt(len(best))
    assert best.mean() > 10 * monte_carlo_se


def test_top_two_plays_the_leader_with_probability_beta() -> None:
    """A certain leader is played with probability beta; the rest goes to the runner-up."""
    played = top_two_probabilities(np.array([0.0, 1.0, 0.0]), np.array([0.7, 0.0, 0.3]), 0.5)
    assert played == pytest.approx([0.35, 0.5, 0.15])
    # Russo (2020): P(J = i | I = j) = a_i / (1 - a_j).
    leader = np.array([0.2, 0.5, 0.3])
    expected_0 = 0.5 * 0.2 + 0.5 * (0.5 * 0.2 / 0.5 + 0.3 * 0.2 / 0.7)
    played = top_two_probabilities(leader, leader, 0.5)
    assert played[0] == pytest.approx(expected_0)
    assert played.sum() == pytest.approx(1.0)


def test_leader_probabilities_match_the_exact_two_arm_value() -> None:
    """P(Beta(11, 91) > Beta(6, 96)) from Monte Carlo within 4 SE of numerical integration."""
    from scipy import integrate, stats

    rng = np.random.default_rng(7)
    leader, _ = leader_probabilities(np.array([10, 5]), np.array([100, 100]), 200_000, rng)
    a, b = stats.beta(11, 91), stats.beta(6, 96)
    exact, _ = integrate.quad(lambda x: a.pdf(x) * b.cdf(x), 0, 1)
    assert abs(leader[0] - exact) < 4 * np.sqrt(exact * (1 - exact) / 200_000)


def test_floor_shares_keeps_every_arm_measured() -> None:
    shares = floor_shares(np.array([0.98, 0.02, 0.0]), 0.75, 0.05)
    assert shares == pytest.approx([0.65, 0.05, 0.05])
    with pytest.raises(ValueError, match="exceed"):
        floor_shares(np.ones(4), 0.5, 0.2)


def test_allocation_is_deterministic_and_handles_an_arm_without_events() -> None:
    observed = {
        CONTROL_ARM: (4, 100),
        "treatment_1": (0, 100),
        "treatment_2": (9, 100),
        "treatment_3": (8, 100),
    }
    settings = WaveSettings(count=3, min_share=0.1)
    first = next_allocation(2, observed, 0.3, settings, seed=11)
    again = next_allocation(2, observed, 0.3, settings, seed=11)
    assert first == again
    assert first.shares[CONTROL_ARM] == 0.3
    assert sum(first.shares.values()) == pytest.approx(1.0)
    assert first.shares["treatment_1"] == pytest.approx(0.1)  # zero events: at the floor
    assert first.shares["treatment_2"] > first.shares["treatment_3"] > 0.1
    assert first.leader_probability["treatment_1"] < 0.01
    assert first.posterior_mean["treatment_1"] == pytest.approx(1 / 102)


def test_stratified_difference_weights_waves_by_size() -> None:
    treatment = np.array([[10, 100], [40, 200]])
    control = np.array([[5, 100], [20, 200]])
    estimate = stratified_difference(treatment, control, np.array([1000, 3000]))
    assert estimate.difference == pytest.approx(0.25 * 0.05 + 0.75 * 0.10)
    variances = np.array([0.1 * 0.9 / 100 + 0.05 * 0.95 / 100, 0.2 * 0.8 / 200 + 0.1 * 0.9 / 200])
    assert estimate.standard_error == pytest.approx(
        np.sqrt(0.25**2 * variances[0] + 0.75**2 * variances[1])
    )
    tiny = stratified_difference(np.array([[0, 0], [40, 200]]), control, np.array([1000, 3000]))
    assert tiny.waves_used == (2,) and tiny.difference == pytest.approx(0.10)


def test_wave_membership_is_a_pure_function_of_salt_and_id() -> None:
    ids = pd.Series([f"C{i:05d}" for i in range(1000)])
    sizes = wave_sizes(1000, [1, 1, 2], 3)
    assert sizes == [250, 250, 500]
    waves = wave_of(ids, "salt-a", sizes)
    assert np.bincount(waves)[1:].tolist() == sizes
    reordered = wave_of(ids.iloc[::-1].reset_index(drop=True), "salt-a", sizes)
    assert (reordered[::-1] == waves).all()
    assert (wave_of(ids, "salt-b", sizes) != waves).any()


def _design(customers: int, holdout: float) -> Design:
    arms = tuple(Arm(name, name, 0.25) for name in ARMS)
    variants = {name: f"v-{name}" for name in ARMS}
    plan = plan_segment("All", customers, arms, variants, {}, holdout, "stratified_block", "s")
    return Design("test", arms, holdout, "stratified_block", "s", (plan,))


def _responder(rates: dict[str, float], seed: int):  # type: ignore[no-untyped-def]
    """Bernoulli clicks per recipient; records which rows were asked about."""
    asked: list[pd.DataFrame] = []

    def respond(wave: int, rows: pd.DataFrame) -> pd.DataFrame:
        asked.append(rows.copy())
        mailed = rows.loc[rows["experiment_arm"] != HOLDOUT_ARM]
        rng = np.random.default_rng([seed, wave])
        p = mailed["experiment_arm"].map(rates).to_numpy()
        return mailed.assign(clicked=(rng.random(len(mailed)) < p).astype(int))

    return respond, asked


def test_assign_waves_keeps_the_holdout_fixed_and_unmailed() -> None:
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(4000)], "segment": "All"})
    design = _design(4000, 0.1)
    rates = {CONTROL_ARM: 0.05, "treatment_1": 0.05, "treatment_2": 0.05, "treatment_3": 0.12}
    respond, asked = _responder(rates, 3)
    run = assign_waves(customers, design, WaveSettings(count=3), respond, ("clicked", None), 5)
    frame = run.assignments
    assert frame[WAVE_COLUMN].value_counts().sort_index().tolist() == run.sizes
    holdout = frame["experiment_arm"] == HOLDOUT_ARM
    assert holdout.sum() == 400
    assert (frame.loc[holdout, "variant_id"] == "").all()
    for rows in asked:  # every wave's responses came only from mailed customers
        assert (
            len(rows.loc[rows["experiment_arm"] == HOLDOUT_ARM])
            == (holdout & frame["customer_id"].isin(rows["customer_id"])).sum()
        )
    # Wave 1: the design's equal allocation; the best arm then gets the most.
    assert run.allocations[0].shares == pytest.approx(dict.fromkeys(ARMS, 0.25))
    last = run.allocations[-1].shares
    assert last[CONTROL_ARM] == pytest.approx(0.25)
    # A near-certain leader gets beta = 0.5 of the treatment traffic left after the third
    # arm's floor of 0.05; the challenger the rest.
    assert last["treatment_3"] == pytest.approx(0.5 * (0.75 - 0.05), abs=0.01)
    assert run.allocations[-1].leader_probability["treatment_3"] > 0.99
    wave3 = frame.loc[(frame[WAVE_COLUMN] == 3) & ~holdout, "experiment_arm"].value_counts()
    assert wave3["treatment_3"] == max(wave3)
    again = assign_waves(customers, design, WaveSettings(count=3), respond, ("clicked", None), 5)
    pd.testing.assert_frame_equal(again.assignments, frame)


def test_too_many_waves_for_the_customers_is_a_clear_error() -> None:
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(40)], "segment": "All"})
    respond, _ = _responder(dict.fromkeys(ARMS, 0.1), 1)
    with pytest.raises(ConfigError, match=r"experiment\.waves\.count 20") as caught:
        assign_waves(
            customers, _design(40, 0.0), WaveSettings(count=20), respond, ("clicked", None), 1
        )
    assert caught.value.hint and "fewer waves" in caught.value.hint


def _context(count: int, shares: list[float] | None, flag: int | None):  # type: ignore[no-untyped-def]
    """The parts of a RunContext that wave_settings reads."""
    from types import SimpleNamespace

    waves = WaveSettings(count=count, shares=shares)
    config = SimpleNamespace(experiment=SimpleNamespace(experiment=SimpleNamespace(waves=waves)))
    return SimpleNamespace(config=config, options=SimpleNamespace(waves=flag))


def test_the_waves_flag_overrides_the_configured_count() -> None:
    from cpo.errors import CpoError
    from cpo.experiment.wave_stage import wave_settings

    assert wave_settings(_context(1, None, None)).count == 1
    assert wave_settings(_context(1, None, 4)).count == 4
    assert wave_settings(_context(2, [1, 3], None)).shares == [1, 3]
    assert wave_settings(_context(2, [1, 3], 2)).shares == [1, 3]
    with pytest.raises(CpoError, match="experiment.waves.shares gives 2 wave sizes"):
        wave_settings(_context(2, [1, 3], 3))
    with pytest.raises(ValueError, match="shares has 2 entries but count is 3"):
        WaveSettings(count=3, shares=[1, 2])


def test_unequal_wave_shares_give_unequal_waves() -> None:
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(2000)], "segment": "All"})
    respond, _ = _responder(dict.fromkeys(ARMS, 0.1), 2)
    settings = WaveSettings(count=2, shares=[1, 3])
    run = assign_waves(customers, _design(2000, 0.0), settings, respond, ("clicked", None), 2)
    assert run.sizes == [500, 1500]
    assert run.assignments[WAVE_COLUMN].value_counts().to_dict() == {1: 500, 2: 1500}


def test_a_tiny_first_wave_still_allocates_and_analyses() -> None:
    """Wave 1 of 8 customers per arm (no clicks anywhere is possible) is allocated from."""
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(640)], "segment": "All"})
    respond, _ = _responder(dict.fromkeys(ARMS, 0.01), 9)
    settings = WaveSettings(count=2, shares=[1, 19])
    run = assign_waves(customers, _design(640, 0.0), settings, respond, ("clicked", None), 9)
    assert run.sizes == [32, 608]
    assert [sum(run.observed[1][arm][1] for arm in ARMS)] == [32]
    second = run.allocations[1]
    assert sum(second.shares.values()) == pytest.approx(1.0)
    assert min(second.shares.values()) >= settings.min_share - 1e-12
    counts = {arm: np.array([run.observed[k][arm] for k in (1, 2)]) for arm in ARMS}
    estimate = stratified_difference(
        counts["treatment_1"], counts[CONTROL_ARM], np.array(run.sizes)
    )
    assert estimate.waves_used == (1, 2) and estimate.difference is not None
    assert estimate.weights == {1: pytest.approx(0.05), 2: pytest.approx(0.95)}


def test_allocation_without_treatment_arms_keeps_everyone_in_control() -> None:
    allocation = next_allocation(2, {CONTROL_ARM: (3, 50)}, 0.25, WaveSettings(count=2), 1)
    assert allocation.shares == {CONTROL_ARM: 1.0}
    single = next_allocation(
        2, {CONTROL_ARM: (3, 50), "treatment_1": (5, 50)}, 0.25, WaveSettings(count=2), 1
    )
    assert single.shares == {CONTROL_ARM: 0.25, "treatment_1": pytest.approx(0.75)}


def test_the_metrics_section_round_trips() -> None:
    from cpo.experiment.wave_analysis import HoldoutLift, WaveAnalysis, WaveComparison

    section = WaveAnalysis(
        count=2,
        metric="click_rate",
        method="stratified",
        weights={"1": 0.5, "2": 0.5},
        comparisons=(WaveComparison("treatment_1", 0.01, 0.2, -0.01, 0.03, 0.3, 0.3, False, 0.02),),
        holdout=HoldoutLift(
            "conversion_rate", 0.01, 0.005, 0.005, 1.0, 0.0, 0.01, 0.04, 90, 10, "simulated"
        ),
    )
    assert WaveAnalysis.from_dict(section.to_dict()) == section
    assert WaveAnalysis.from_dict({**section.to_dict(), "holdout": None}).holdout is None


def test_wave_one_deals_each_segment_as_the_design_does() -> None:
    """Segment A lacks treatment_1 and B treatment_2: each splits wave 1 in equal thirds.

    (Dealing by the overall shares instead, 1/3, 2/9, 1/9, 1/3, would give B 3/8,
    2/8 and 3/8.)
    """
    from cpo.experiment.design import DroppedArm

    arms = tuple(Arm(name, name, 0.25) for name in ARMS)
    full = {name: f"v-{name}" for name in ARMS}
    blocked = DroppedArm("blocked", "blocked by screening")

    def without(arm: str) -> dict[str, str]:
        return {name: vid for name, vid in full.items() if name != arm}

    plans = (
        plan_segment(
            "A", 1200, arms, without("treatment_1"), {"treatment_1": blocked}, 0.0,
            "stratified_block", "s",
        ),
        plan_segment(
            "B", 2400, arms, without("treatment_2"), {"treatment_2": blocked}, 0.0,
            "stratified_block", "s",
        ),
    )  # fmt: skip
    design = Design("test", arms, 0.0, "stratified_block", "s", plans)
    customers = pd.DataFrame(
        {"customer_id": [f"C{i}" for i in range(3600)], "segment": ["A"] * 1200 + ["B"] * 2400}
    )
    respond, _ = _responder(dict.fromkeys(ARMS, 0.05), 4)
    run = assign_waves(customers, design, WaveSettings(count=2), respond, ("clicked", None), 4)
    frame = run.assignments
    first_b = frame.loc[(frame[WAVE_COLUMN] == 1) & (frame["segment"] == "B"), "experiment_arm"]
    shares = first_b.value_counts(normalize=True)
    assert "treatment_2" not in shares
    assert shares.to_dict() == pytest.approx(
        dict.fromkeys(["control", "treatment_1", "treatment_3"], 1 / 3), abs=0.002
    )
