"""Simulation: adaptive waves against a fixed allocation, and the final estimate's honesty.

Simulates campaigns of four arms (control and three treatments) sent in waves.
Each wave's recipients are split by the allocation (wave 1: equal; later waves,
adaptive: control keeps its quarter and the rest follows
:func:`cpo.experiment.waves.next_allocation`, top-two Thompson sampling with
beta 0.5 and a 5% minimum share), and clicks are binomial draws at the true
rates. It reports:

- **regret**: expected clicks lost against sending every recipient the best arm,
  adaptive against the fixed equal allocation (same seeds);
- **bias and coverage** of the wave-stratified estimate of each treatment's
  difference with control (:func:`cpo.experiment.waves.stratified_difference`),
  with baseline rates drifting between waves;
- **the pooled estimate's bias** in the same drifting scenario: why the final
  analysis stratifies by wave.

``tests/experiment/test_waves.py`` checks the same properties with the same
scenarios; the table in ``docs/experiment.md`` ("Adaptive waves") is this
script's output::

    python benchmarks/adaptive_waves.py
"""

from __future__ import annotations

import argparse

import numpy as np

from cpo.experiment.settings import CONTROL_ARM, WaveSettings
from cpo.experiment.waves import pooled_difference, simulate_program, stratified_difference

ARMS = (CONTROL_ARM, "treatment_1", "treatment_2", "treatment_3")


def regret(seeds: int, draws: int) -> tuple[float, float, float]:
    """Mean regret (adaptive, fixed) and the standard error of their difference."""
    rates = np.tile([0.05, 0.05, 0.06, 0.08], (4, 1))
    settings = WaveSettings(count=4, posterior_draws=draws)
    best = rates.max(axis=1, keepdims=True)
    adaptive, fixed = [], []
    for seed in range(seeds):
        adaptive.append(
            ((best - rates) * simulate_program(rates, 2000, True, seed, settings)[1]).sum()
        )
        fixed.append(
            ((best - rates) * simulate_program(rates, 2000, False, seed, settings)[1]).sum()
        )
    saved = np.asarray(fixed) - np.asarray(adaptive)
    return (
        float(np.mean(adaptive)),
        float(np.mean(fixed)),
        float(saved.std(ddof=1) / np.sqrt(seeds)),
    )


def honesty(seeds: int, draws: int) -> list[tuple[str, float, float, float, float]]:
    """Per arm: true difference, stratified mean error and its MC SE, coverage, pooled error."""
    base = np.array([0.03, 0.06, 0.09, 0.12])[:, None]
    rates = base + np.array([0.0, 0.0, 0.005, 0.02])
    settings = WaveSettings(count=4, posterior_draws=draws)
    sizes = np.full(4, 3000)
    truth = (rates[:, 1:] - rates[:, :1]).mean(axis=0)
    errors = np.zeros((seeds, 3))
    covered = np.zeros((seeds, 3), dtype=bool)
    pooled = np.zeros((seeds, 3))
    for seed in range(seeds):
        events, sent = simulate_program(rates, 3000, True, seed, settings)
        control = np.stack([events[:, 0], sent[:, 0]], axis=1)
        for a in range(1, 4):
            treatment = np.stack([events[:, a], sent[:, a]], axis=1)
            estimate = stratified_difference(treatment, control, sizes)
            assert estimate.difference is not None
            errors[seed, a - 1] = estimate.difference - truth[a - 1]
            low, high = estimate.ci_lower or 0.0, estimate.ci_upper or 0.0
            covered[seed, a - 1] = low <= truth[a - 1] <= high
            pooled[seed, a - 1] = (pooled_difference(treatment, control) or 0.0) - truth[a - 1]
    se = errors.std(axis=0, ddof=1) / np.sqrt(seeds)
    return [
        (
            ARMS[a + 1],
            truth[a],
            errors[:, a].mean(),
            se[a],
            covered[:, a].mean(),
            pooled[:, a].mean(),
        )
        for a in range(3)
    ]  # type: ignore[misc]


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regret-seeds", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    adaptive, fixed, se = regret(args.regret_seeds, args.draws)
    print(f"regret over {args.regret_seeds} seeds (4 waves x 2,000; rates 5/5/6/8%):")
    print(f"  fixed equal allocation {fixed:.1f} clicks, adaptive {adaptive:.1f} clicks")
    print(f"  saved {fixed - adaptive:.1f} +- {se:.1f} (MC SE); control's fixed quarter costs 60.0")
    print(f"\nfinal estimate over {args.seeds} seeds (4 adaptive waves x 3,000; baseline 3->12%):")
    print("  arm          true diff  mean error (MC SE)   coverage  pooled mean error")
    for arm, truth, error, error_se, coverage, pooled in honesty(args.seeds, args.draws):
        print(
            f"  {arm:<12} {truth:+.4f}    {error:+.5f} ({error_se:.5f})  {coverage:6.1%}"
            f"    {pooled:+.5f}"
        )


if __name__ == "__main__":
    main()
