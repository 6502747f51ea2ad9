"""Simulation: false positives of peeking, mSPRT against naive fixed-horizon tests.

Simulates A/A experiments (control and treatment share one true rate) whose
engagement arrives in equal batches, analysed at every batch ("look"). At each
look it computes:

- the always-valid p-value of :func:`cpo.experiment.sequential.msprt` (the
  running minimum over looks), and
- the naive fixed-horizon two-proportion z-test (Pearson chi-square without
  continuity correction, what a dashboard shows), rejecting when any look's
  p-value falls below alpha.

An experiment is a false positive when it is ever rejected. With ``k`` looks
the looks are spread evenly over the same final sample (k = 1: the final look
only). Also reported: power against a real relative lift, and how often the
confidence sequence covers the true difference (0) at every look at once.

Everything is vectorized NumPy (cumulative binomial counts per look); no
Python loop over experiments. ``tests/experiment/test_sequential.py`` runs the
same function with the same defaults and checks the acceptance criteria; the
table in ``docs/statistics.md`` ("Monitoring while a campaign runs") is this
script's output::

    python benchmarks/sequential_monitoring.py
    python benchmarks/sequential_monitoring.py --experiments 10000 --tau 0.05
    python benchmarks/sequential_monitoring.py --timing   # also: how long it takes

``--timing`` adds the machine, the simulation's wall time, and the median time
of one look in the analyze stage (:func:`cpo.experiment.sequential.record_look`
on a four-arm, four-metric analysis with nine looks recorded before it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from cpo.experiment.sequential import DEFAULT_TAU, msprt, record_look, running_bounds

LOOK_COUNTS = (1, 5, 10, 20)


@dataclass(frozen=True)
class Simulation:
    """The simulation's settings.

    Attributes:
        experiments: Simulated experiments.
        looks: Interim analyses per experiment (the finest grid).
        per_look: Recipients per arm arriving between two looks.
        rate: The true rate of both arms (A/A).
        lift: Relative lift of the treatment for the power check.
        tau: Mixing standard deviation of the mSPRT.
        alpha: Significance level.
        seed: Random seed.
    """

    experiments: int = 2000
    looks: int = 20
    per_look: int = 500
    rate: float = 0.05
    lift: float = 0.20
    tau: float = DEFAULT_TAU
    alpha: float = 0.05
    seed: int = 20261201


@dataclass(frozen=True)
class Outcome:
    """What the simulation found.

    Attributes:
        msprt_fpr: Look count -> share of A/A experiments the mSPRT ever rejected.
        naive_fpr: Look count -> share the naive z-test ever rejected.
        monte_carlo_se: Standard error of a rate of alpha over the experiments.
        power: Share of experiments with a real lift that the mSPRT rejected (any look).
        fixed_power: Share a single fixed-horizon z-test at the last look rejected.
        coverage: Share of A/A experiments whose confidence sequence held 0 at every look.
        p_monotone: Every always-valid p-value path is non-increasing.
    """

    msprt_fpr: dict[int, float]
    naive_fpr: dict[int, float]
    monte_carlo_se: float
    power: float
    fixed_power: float
    coverage: float
    p_monotone: bool


def cumulative_counts(
    rng: np.random.Generator, sim: Simulation, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative events and trials at each look, shape (experiments, looks)."""
    batches = rng.binomial(sim.per_look, rate, size=(sim.experiments, sim.looks))
    trials = np.broadcast_to(sim.per_look * np.arange(1, sim.looks + 1), batches.shape)
    return np.cumsum(batches, axis=1), trials


def naive_p_values(
    x_c: np.ndarray, n_c: np.ndarray, x_t: np.ndarray, n_t: np.ndarray
) -> np.ndarray:
    """Two-sided pooled two-proportion z-test p-values (1 where the outcome does not vary)."""
    pooled = (x_c + x_t) / (n_c + n_t)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x_t / n_t - x_c / n_c) / se, 0.0)
    return 2 * special.ndtr(-np.abs(z))


def look_indices(looks: int, count: int) -> np.ndarray:
    """``count`` looks spread evenly over ``looks`` (the last look always included)."""
    return np.round(np.linspace(looks / count, looks, count)).astype(int) - 1


def simulate(sim: Simulation) -> Outcome:
    """Run the A/A and the power simulation."""
    rng = np.random.default_rng(sim.seed)
    x_c, n = cumulative_counts(rng, sim, sim.rate)
    x_t, _ = cumulative_counts(rng, sim, sim.rate)
    look = msprt(x_c, n, x_t, n, tau=sim.tau, alpha=sim.alpha)
    always_valid = np.minimum.accumulate(look.p_value, axis=1)
    naive = naive_p_values(x_c, n, x_t, n)
    msprt_fpr, naive_fpr = {}, {}
    for count in (c for c in LOOK_COUNTS if c <= sim.looks):
        chosen = look_indices(sim.looks, count)
        msprt_fpr[count] = float((look.p_value[:, chosen].min(axis=1) < sim.alpha).mean())
        naive_fpr[count] = float((naive[:, chosen].min(axis=1) < sim.alpha).mean())
    lower, upper = running_bounds(look.lower, look.upper, axis=1)
    x_lift, _ = cumulative_counts(rng, sim, sim.rate * (1 + sim.lift))
    effect = msprt(x_c, n, x_lift, n, tau=sim.tau, alpha=sim.alpha)
    return Outcome(
        msprt_fpr=msprt_fpr,
        naive_fpr=naive_fpr,
        monte_carlo_se=float(np.sqrt(sim.alpha * (1 - sim.alpha) / sim.experiments)),
        power=float((effect.p_value.min(axis=1) < sim.alpha).mean()),
        fixed_power=float((naive_p_values(x_c, n, x_lift, n)[:, -1] < sim.alpha).mean()),
        coverage=float(((lower <= 0) & (upper >= 0)).all(axis=1).mean()),
        p_monotone=bool((np.diff(always_valid, axis=1) <= 0).all()),
    )


def table(sim: Simulation, outcome: Outcome) -> str:
    """The Markdown table of docs/statistics.md."""
    rows = [
        "| looks | mSPRT (always-valid) | naive z-test at every look |",
        "| ---: | ---: | ---: |",
    ]
    for count in outcome.msprt_fpr:
        rows.append(
            f"| {count} | {outcome.msprt_fpr[count]:.2%} | {outcome.naive_fpr[count]:.2%} |"
        )
    return "\n".join(rows)


def time_one_look(repeats: int = 50) -> float:
    """Median seconds of one ``record_look`` after nine looks (4 arms x 4 metrics)."""
    from cpo.experiment.aggregate import SufficientStatistics
    from cpo.experiment.analysis import analyze_document
    from cpo.experiment.results import MetricsDocument

    def analysis(scale: int) -> MetricsDocument:
        counts = {
            arm: {"sent": 1000 * scale, "opened": 250 * scale, "clicked": (50 + 2 * i) * scale,
                  "converted": 5 * scale}
            for i, arm in enumerate(("control", "treatment_1", "treatment_2", "treatment_3"))
        }  # fmt: skip
        return analyze_document(SufficientStatistics.from_counts(counts))

    history = None
    for scale in range(1, 10):
        history = record_look(history, analysis(scale), tau=DEFAULT_TAU)
    latest = analysis(10)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        record_look(history, replace(latest), tau=DEFAULT_TAU)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    """Parse flags, simulate, print the settings, the table and the checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Simulation()
    for name in ("experiments", "looks", "per_look", "seed"):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    for name in ("rate", "lift", "tau", "alpha"):
        parser.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    parser.add_argument("--timing", action="store_true", help="also time it")
    args = vars(parser.parse_args())
    timing = args.pop("timing")
    sim = Simulation(**args)
    began = time.perf_counter()
    outcome = simulate(sim)
    seconds = time.perf_counter() - began
    print(
        f"{sim.experiments} A/A experiments, rate {sim.rate:.0%}, {sim.per_look} recipients per "
        f"arm per look, up to {sim.looks} looks ({sim.looks * sim.per_look} per arm at the end), "
        f"tau {sim.tau}, alpha {sim.alpha}, seed {sim.seed}\n"
    )
    print("False-positive rate (share of A/A experiments ever declared significant):\n")
    print(table(sim, outcome))
    print(
        f"\nMonte Carlo standard error at alpha: {outcome.monte_carlo_se:.2%}; "
        f"confidence sequence covered 0 at all {sim.looks} looks in {outcome.coverage:.1%}; "
        f"power against a {sim.lift:+.0%} relative lift: mSPRT (any look) {outcome.power:.1%}, "
        f"one fixed-horizon z-test at the last look {outcome.fixed_power:.1%}"
    )

    if timing:
        from _machine import print_machine

        print()
        print_machine()
        print(f"simulation wall time: {seconds:.2f} s")
        print(
            f"one look (record_look, 4 arms x 4 metrics, 10th look): {1e3 * time_one_look():.2f} ms"
        )


if __name__ == "__main__":
    main()
