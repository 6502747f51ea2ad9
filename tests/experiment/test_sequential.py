"""The mixture SPRT: always-valid p-values and confidence sequences (cpo.experiment.sequential).

References: Johari, Koomen, Pekelis, Walsh, "Peeking at A/B tests: why it
matters, and what to do about it", KDD 2017; Johari, Koomen, Pekelis, Walsh,
"Always valid inference: continuous monitoring of A/B tests", Operations
Research 70(3), 2022 (the two-stream mSPRT, section 4).
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cpo.errors import ConfigError, DataValidationError
from cpo.experiment import sequential
from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.analysis import AnalysisPlan, analyze_document
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.comparisons import BENJAMINI_HOCHBERG, HOLM
from cpo.experiment.results import MetricsDocument
from cpo.experiment.sequential import (
    DEFAULT_TAU,
    Monitoring,
    msprt,
    read_monitoring,
    record_look,
    running_bounds,
    write_monitoring,
)
from cpo.run_folder import MONITORING

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "sequential_monitoring.py"


def load_simulation() -> ModuleType:
    """benchmarks/sequential_monitoring.py as a module (the docs table comes from it)."""
    spec = importlib.util.spec_from_file_location("sequential_monitoring", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# The acceptance simulation
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aa_outcome() -> object:
    """2,000 A/A experiments x 20 looks with the defaults of the docs table."""
    simulation = load_simulation()
    sim = simulation.Simulation()
    assert (sim.experiments, sim.looks) == (2000, 20)
    return simulation.simulate(sim)


def test_msprt_keeps_the_false_positive_rate_at_alpha_over_20_looks(aa_outcome: object) -> None:
    """Ever rejecting an A/A test within 20 looks: at most alpha + 3 Monte Carlo SE."""
    outcome = aa_outcome
    bound = 0.05 + 3 * outcome.monte_carlo_se  # type: ignore[attr-defined]
    for looks, rate in outcome.msprt_fpr.items():  # type: ignore[attr-defined]
        assert rate <= bound, (looks, rate)


def test_naive_tests_at_the_same_looks_exceed_alpha(aa_outcome: object) -> None:
    """The naive z-test is nominal at one look and clearly inflated at 5, 10 and 20 looks."""
    outcome = aa_outcome
    se = outcome.monte_carlo_se  # type: ignore[attr-defined]
    naive = outcome.naive_fpr  # type: ignore[attr-defined]
    assert abs(naive[1] - 0.05) <= 3 * se
    for looks in (5, 10, 20):
        assert naive[looks] > 0.05 + 3 * se, (looks, naive[looks])
    assert naive[20] > 2 * 0.05
    assert naive[1] < naive[5] < naive[10] < naive[20]


def test_always_valid_p_values_never_increase_and_the_sequence_covers(
    aa_outcome: object,
) -> None:
    """Running-minimum p-values are monotone; the CS holds 0 at all looks in >= 95% of runs."""
    assert aa_outcome.p_monotone  # type: ignore[attr-defined]
    assert aa_outcome.coverage >= 0.95  # type: ignore[attr-defined]


def test_a_real_effect_is_detected() -> None:
    """Power sanity: +30% on a 10% rate with 20,000 per arm is found, and early."""
    simulation = load_simulation()
    sim = simulation.Simulation(experiments=500, rate=0.10, lift=0.30, per_look=1000)
    assert simulation.simulate(sim).power >= 0.95


def test_the_sequence_covers_a_nonzero_truth_at_every_look() -> None:
    """With a real difference, the running intersection holds the true difference in >= 95%."""
    rng = np.random.default_rng(7)
    experiments, looks, per_look, p_c, p_t = 2000, 20, 400, 0.08, 0.10
    n = per_look * np.arange(1, looks + 1)
    x_c = np.cumsum(rng.binomial(per_look, p_c, size=(experiments, looks)), axis=1)
    x_t = np.cumsum(rng.binomial(per_look, p_t, size=(experiments, looks)), axis=1)
    look = msprt(x_c, n, x_t, n, tau=DEFAULT_TAU, alpha=0.05)
    lower, upper = running_bounds(look.lower, look.upper, axis=1)
    truth = p_t - p_c
    covered = ((lower <= truth) & (upper >= truth)).all(axis=1).mean()
    assert covered >= 0.95


# --------------------------------------------------------------------------
# The formula
# --------------------------------------------------------------------------


def paper_likelihood_ratio(x_c: int, x_t: int, n: int, tau: float) -> float:
    """Lambda_n of Johari et al. (2022), section 4, for equal arm sizes ``n``.

    ``Lambda = sqrt(2 s2 / (2 s2 + n t2)) exp(n^2 t2 d^2 / (4 s2 (2 s2 + n t2)))``
    with ``s2`` the per-observation variance (here the mean of the arms'
    Bernoulli variances, so ``2 s2 / n`` is the plug-in variance of ``d``) and
    ``t2`` the mixing variance in rate units (``tau^2`` times the pooled variance).
    """
    p_c, p_t = x_c / n, x_t / n
    s2 = (p_c * (1 - p_c) + p_t * (1 - p_t)) / 2
    pooled = (x_c + x_t) / (2 * n)
    t2 = tau**2 * pooled * (1 - pooled)
    d = p_t - p_c
    return math.sqrt(2 * s2 / (2 * s2 + n * t2)) * math.exp(
        n**2 * t2 * d**2 / (4 * s2 * (2 * s2 + n * t2))
    )


def test_likelihood_ratio_matches_the_papers_definition() -> None:
    """100/1000 vs 130/1000 clicks, tau 0.05: Lambda from the paper's formula, by hand.

    Hand computation: V = 0.09/1000 + 0.1131/1000 = 2.031e-4; pooled 0.115, so
    t2 = 0.0025 * 0.115 * 0.885 = 2.544375e-4; log Lambda = 0.5 log(V / (V + t2))
    + t2 * 0.03^2 / (2 V (V + t2)) = -0.406063 + 1.232114 = 0.826051.
    """
    look = msprt(100, 1000, 130, 1000, tau=0.05)
    expected = paper_likelihood_ratio(100, 130, 1000, 0.05)
    assert float(look.log_likelihood_ratio) == pytest.approx(math.log(expected), rel=1e-12)
    assert float(look.log_likelihood_ratio) == pytest.approx(0.826051, abs=1e-6)
    assert float(look.p_value) == pytest.approx(1 / expected, rel=1e-12)


def test_confidence_set_bounds_are_where_the_likelihood_ratio_reaches_one_over_alpha() -> None:
    """At theta0 = a bound, Lambda(theta0) = 1/alpha (the set inverts the test)."""
    look = msprt(240, 3000, 300, 2800, tau=0.04, alpha=0.1)
    v, d = float(look.variance), float(look.estimate)
    pooled = 540 / 5800
    t2 = 0.04**2 * pooled * (1 - pooled)
    for bound in (float(look.lower), float(look.upper)):
        log_lr = 0.5 * math.log(v / (v + t2)) + t2 * (d - bound) ** 2 / (2 * v * (v + t2))
        assert log_lr == pytest.approx(math.log(1 / 0.1), rel=1e-10)


@pytest.mark.parametrize(
    ("counts", "expect_bounds"),
    [
        ((0, 0, 0, 0), False),  # nobody yet
        ((0, 0, 3, 10), False),  # an empty arm
        ((0, 10, 0, 12), False),  # zero events anywhere: no variation
        ((5, 5, 7, 7), False),  # everyone clicked
        ((0, 3, 1, 2), True),  # tiny samples
        ((0, 500, 4, 500), True),  # zero events in control only
    ],
)
def test_degenerate_counts_give_finite_results(
    counts: tuple[int, int, int, int], expect_bounds: bool
) -> None:
    """No NaN p-value, no warning: without evidence p is 1 and the sequence is unbounded."""
    x_c, n_c, x_t, n_t = counts
    with np.errstate(all="raise"):
        look = msprt(x_c, n_c, x_t, n_t)
    assert 0 < float(look.p_value) <= 1
    assert math.isfinite(float(look.log_likelihood_ratio))
    if expect_bounds:
        assert -1 <= float(look.lower) <= float(look.upper) <= 1
    else:
        assert float(look.p_value) == 1
        assert math.isnan(float(look.lower)) and math.isnan(float(look.upper))


# --------------------------------------------------------------------------
# Looks recorded from an analysis
# --------------------------------------------------------------------------


def analysis(counts: dict[str, dict[str, int]], **settings: object) -> MetricsDocument:
    """The analysis of counts per arm, with the given analysis settings."""
    plan = AnalysisPlan(settings=AnalysisSettings(**settings))  # type: ignore[arg-type]
    return analyze_document(
        SufficientStatistics.from_counts(counts), plan, computed_at="2026-12-01T00:00:00Z"
    )


def arms(scale: int, lift: float = 0.0) -> dict[str, dict[str, int]]:
    """Three arms after ``scale`` thousand sends (treatment_2 has ``lift`` more clicks)."""
    sent = 1000 * scale
    base = {"sent": sent, "opened": sent // 4, "clicked": sent // 20, "converted": sent // 200}
    better = {**base, "clicked": round(sent / 20 * (1 + lift))}
    return {"control": base, "treatment_1": dict(base), "treatment_2": better}


def test_record_look_numbers_looks_and_skips_a_reanalysis() -> None:
    """Two looks on growing counts; the same counts again add no look."""
    first = record_look(None, analysis(arms(1)), tau=0.03)
    second = record_look(first, analysis(arms(2)), tau=0.03)
    again = record_look(second, analysis(arms(2)), tau=0.03)
    assert [look.look for look in second.looks] == [1, 2]
    assert again == second
    assert second.to_dict()["look"] == 2
    assert len(second.current.comparisons) == 2 * 4  # type: ignore[union-attr]


def test_running_minimum_and_intersection_are_carried_across_looks() -> None:
    """A strong early signal that fades keeps its p-value; the sequence only narrows."""
    early = record_look(None, analysis(arms(4, lift=0.4)), tau=0.03)
    late = record_look(early, analysis(arms(8, lift=0.0)), tau=0.03)
    before = early.current.comparison("click_rate", "treatment_2")  # type: ignore[union-attr]
    after = late.current.comparison("click_rate", "treatment_2")  # type: ignore[union-attr]
    assert before is not None and after is not None
    assert after.p_value_look > before.p_value
    assert after.p_value == before.p_value
    assert after.cs_lower >= before.cs_lower and after.cs_upper <= before.cs_upper  # type: ignore[operator]


def test_primary_is_holm_adjusted_and_sequences_are_bonferroni() -> None:
    """Primary: Holm over the two arms; each CS at 1 - alpha/2; secondaries BH."""
    history = record_look(None, analysis(arms(20, lift=0.2)), tau=0.03)
    primary = history.comparisons("click_rate")
    raw = sorted(c.p_value for c in primary)
    assert [c.adjustment for c in primary] == ["holm", "holm"]
    assert [c.cs_level for c in primary] == pytest.approx([0.975, 0.975])
    assert min(c.p_value_adjusted for c in primary) == pytest.approx(min(1.0, 2 * raw[0]))  # type: ignore[type-var]
    winner = next(c for c in primary if c.treatment_arm == "treatment_2")
    assert winner.significant and winner.cs_lower > 0  # type: ignore[operator]
    assert {c.adjustment for c in history.comparisons("open_rate")} == {"benjamini-hochberg"}


def test_changing_tau_or_alpha_mid_campaign_is_refused() -> None:
    """The guarantees hold for one tau and alpha; the error names the file and the fix."""
    history = record_look(None, analysis(arms(1)), tau=0.03)
    with pytest.raises(ConfigError, match=r"(?s)sequential_tau 0\.03.*fix: set analysis"):
        record_look(history, analysis(arms(2)), tau=0.05, source="run/monitoring.json")
    with pytest.raises(ConfigError, match="alpha"):
        record_look(history, analysis(arms(2), alpha=0.01), tau=0.03)


def test_empty_arm_is_recorded_with_a_reason() -> None:
    """An arm without recipients yet: p 1, no bounds, a reason."""
    counts = arms(1)
    counts["treatment_1"] = {"sent": 0}
    history = record_look(None, analysis(counts), tau=0.03)
    record = history.current.comparison("click_rate", "treatment_1")  # type: ignore[union-attr]
    assert record is not None
    assert record.p_value == 1 and record.cs_lower is None and record.cs_upper is None
    assert record.reason is not None and record.reason.startswith("empty")


def test_monitoring_round_trips_through_the_run_folder(tmp_path: Path) -> None:
    """write/read monitoring.json and metrics.json's sequential section give the same records."""
    assert read_monitoring(tmp_path) is None
    history = record_look(None, analysis(arms(1)), tau=0.03)
    history = record_look(history, analysis(arms(3)), tau=0.03)
    write_monitoring(tmp_path, history)
    assert read_monitoring(tmp_path) == history
    document = replace(analysis(arms(3)), sequential=history)
    loaded = MetricsDocument.from_dict(document.to_dict())
    assert loaded.sequential == history
    assert loaded.to_dict() == document.to_dict()
    assert Monitoring.from_dict(history.to_dict()) == history


def test_metrics_without_sequential_have_no_section_and_old_documents_load() -> None:
    """The default analysis writes no ``sequential`` key; a document without it loads."""
    data = analysis(arms(1)).to_dict()
    assert "sequential" not in data
    assert MetricsDocument.from_dict(data).sequential is None


def test_a_damaged_monitoring_file_is_one_clear_error(tmp_path: Path) -> None:
    """Not in the schema's shape: the file is named and deleting it is the fix."""
    MONITORING.path(tmp_path).write_text('{"schema_version": 1, "looks": []}', encoding="utf-8")
    with pytest.raises(DataValidationError, match="monitoring.json") as caught:
        read_monitoring(tmp_path)
    assert "delete monitoring.json" in str(caught.value)


def test_default_tau_is_the_configured_default() -> None:
    """The config default and the module default agree; so do the adjustment names."""
    assert AnalysisSettings().sequential_tau == DEFAULT_TAU
    assert (sequential.HOLM, sequential.BENJAMINI_HOCHBERG) == (HOLM, BENJAMINI_HOCHBERG)


def test_reading_the_records_imports_no_scipy() -> None:
    """The report reads Monitoring records; that must not import SciPy (report start-up)."""
    code = (
        "import sys\n"
        "from cpo.experiment.sequential import Monitoring\n"
        "print('scipy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_change_of_engagement_source_starts_the_history_afresh() -> None:
    """Simulated looks are dropped when real engagement arrives: the import is look 1."""
    simulated = record_look(
        None, replace(analysis(arms(1)), engagement_source="simulated"), tau=0.03
    )
    imported = replace(analysis(arms(2)), engagement_source="imported")
    history = record_look(simulated, imported, tau=0.05)
    assert [look.look for look in history.looks] == [1]
    assert history.current.engagement_source == "imported"  # type: ignore[union-attr]
    assert history.tau == 0.05
