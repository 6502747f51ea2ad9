"""Simulation coverage: the analysis recovers the simulator's configured effects.

The simulator (cpo.experiment.simulate) knows nothing of the analysis. Its
``expected_rates`` gives the true rate of every arm for the assigned customers,
so the true effect of a treatment is its rate minus the control's. Over 200
seeds, the 95% Newcombe interval for the difference, computed from the counts
the analysis reduces the records to, must cover that true effect in 92-98% of
runs (nominal 95%; 200 runs per interval give a binomial standard error of
about 1.5 points, 0.9 points when the three treatment arms are pooled).
"""

from __future__ import annotations

import numpy as np
import pytest

from cpo.config import load_config
from cpo.experiment.aggregate import aggregate_records
from cpo.experiment.analysis import AnalysisPlan, analyze
from cpo.experiment.comparisons import metric_definitions
from cpo.experiment.simulate import (
    default_arm_tones,
    expected_rates,
    simulate_engagement,
    true_differences,
)
from cpo.experiment.stats import newcombe_difference_interval
from cpo.sample_data.customers import generate_customers
from cpo.segmentation import segment

SEEDS = range(200)
ARMS = ["control", "treatment_1", "treatment_2", "treatment_3"]


@pytest.fixture(scope="module")
def experiment():
    """4,000 generated customers, rules segments, arms dealt round-robin within each segment."""
    config = load_config()
    customers = generate_customers(4000, seed=5)
    assignments = segment(customers, config.experiment.segmentation, seed=1).assignments
    assignments = assignments[["customer_id", "segment"]].copy()
    position = assignments.groupby("segment").cumcount().to_numpy()
    assignments["experiment_arm"] = np.array(ARMS)[position % len(ARMS)]
    settings = config.experiment.simulation
    tones = default_arm_tones()
    truth = true_differences(expected_rates(customers, assignments, settings, tones))
    return customers, assignments, settings, tones, truth.set_index("experiment_arm")


def simulated_counts(experiment, seed):
    customers, assignments, settings, tones, _ = experiment
    frame = simulate_engagement(customers, assignments, tones, settings, seed).frame
    return aggregate_records(frame, check_duplicates=False).by_arm()


@pytest.mark.slow
def test_newcombe_interval_covers_the_configured_effect(experiment):
    truth = experiment[4]
    covered = {metric: [] for metric in metric_definitions()}
    estimates = {metric: [] for metric in metric_definitions()}
    for seed in SEEDS:
        counts = simulated_counts(experiment, seed)
        for metric, (numerator, denominator) in metric_definitions().items():
            control = counts["control"]
            for arm in ARMS[1:]:
                treatment = counts[arm]
                interval = newcombe_difference_interval(
                    treatment[numerator], treatment[denominator],
                    control[numerator], control[denominator],
                )  # fmt: skip
                effect = truth.loc[arm, metric]
                covered[metric].append(interval.lower <= effect <= interval.upper)
                estimates[metric].append(interval.estimate - effect)
    rates = {metric: float(np.mean(hits)) for metric, hits in covered.items()}
    pooled = float(np.mean([hit for hits in covered.values() for hit in hits]))
    assert 0.92 <= pooled <= 0.98, rates
    for metric, rate in rates.items():
        assert 0.92 <= rate <= 0.98, (metric, rates)
    # The estimates are centred on the configured effect (no bias): the mean
    # error over 600 estimates is within 4 standard errors of zero.
    for metric, errors in estimates.items():
        errors = np.asarray(errors)
        assert abs(errors.mean()) < 4 * errors.std() / np.sqrt(len(errors)), metric


@pytest.mark.slow
def test_metrics_json_reports_the_same_intervals(experiment):
    # The document is built from the same counts: one seed through analyze().
    customers, assignments, settings, tones, _ = experiment
    frame = simulate_engagement(customers, assignments, tones, settings, 0).frame
    metrics = analyze(aggregate_records(frame), AnalysisPlan())
    counts = simulated_counts(experiment, 0)
    assert metrics["engagement_source"] == "simulated"
    for record in metrics["lift_analysis"]:
        numerator, denominator = metric_definitions()[record["metric"]]
        treatment, control = counts[record["treatment_arm"]], counts["control"]
        interval = newcombe_difference_interval(
            treatment[numerator], treatment[denominator], control[numerator], control[denominator]
        )
        reported = record["statistical_significance"]["confidence_interval"]
        assert (reported["lower"], reported["upper"]) == (interval.lower, interval.upper)
