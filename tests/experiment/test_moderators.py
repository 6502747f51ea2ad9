"""Moderator analysis: bins, the treatment x attribute regression, the ranking, moderators.json.

The analyze stage computes it once per run and writes moderators.json; the
tests at the end run that stage on a run folder of a non-sample brand (a
software company's plans Starter / Team / Business) and check the file holds
what the analysis of the joined engagement and customer attributes gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpo.errors import DataValidationError
from cpo.experiment import stats
from cpo.experiment.analysis_stage import AnalyzeStage
from cpo.experiment.catalog import Metric, register_metric, unregister_metric
from cpo.experiment.moderators import (
    SCHEMA_VERSION,
    ModeratorsDocument,
    explain_moderators,
    read_moderators,
)
from cpo.pipeline import run_pipeline
from cpo.run_folder import MODERATORS
from cpo.runfiles import sha256_file
from cpo.sample_data.customers import generate_customers
from cpo.stage_api import RunContext, StageBase, StageOutcome


def _experiment(n: int, seed: int, effect) -> pd.DataFrame:
    """Customers randomized 1:3 to control/treatment; click probability from ``effect``."""
    customers = generate_customers(n, seed=seed)
    # A different stream from the generator's, so outcomes are independent of attributes.
    rng = np.random.default_rng([seed, 2024])
    arms = rng.choice(["control", "treatment_1", "treatment_2", "treatment_3"], size=n)
    treated = arms != "control"
    p_click = effect(customers, treated)
    clicked = rng.random(n) < p_click
    opened = clicked | (rng.random(n) < 0.3)
    return customers.assign(
        experiment_arm=arms,
        opened=opened.astype(int),
        clicked=clicked.astype(int),
        converted=(clicked & (rng.random(n) < 0.3)).astype(int),
    )


def _gold_only(customers: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
    gold = customers["tier"].to_numpy() == "Gold"
    return np.where(treated & gold, 0.26, 0.08)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_planted_moderator_ranks_first(seed: int) -> None:
    # The treatment lifts clicks only for Gold customers (8% -> 26%): tier ranks
    # first on every seed, Gold has the largest bin lift and its interval
    # excludes zero. (Tier is correlated with purchase frequency in the sample
    # generator, so the Holm-adjusted test is not always below 0.05 at n = 4000.)
    result = explain_moderators(_experiment(4000, seed, _gold_only), "click_rate")
    top = result.ranking[0]
    assert top.attribute == "tier"
    assert top.basis == "interaction-wald"
    assert top.best_bin == "Gold"
    gold = next(b for b in result.bins_for("tier") if b.bin == "Gold")
    assert gold.lower > 0
    others = [b for b in result.bins_for("tier") if b.bin != "Gold"]
    assert all(gold.lift_absolute > b.upper for b in others)
    assert top.p_value < 0.05


def test_strong_planted_moderator_is_named_in_the_narrative() -> None:
    result = explain_moderators(_experiment(8000, 1, _gold_only), "click_rate")
    top = result.ranking[0]
    assert top.attribute == "tier" and top.p_value_holm < 0.05
    gold_term = next(t for t in result.regression.terms if t.term == "treated:tier=Gold")
    assert gold_term.lower > 0
    assert "Loyalty tier shows the strongest evidence" in " ".join(result.narrative)


def test_no_moderator_is_not_claimed() -> None:
    # The same small lift for everyone: no attribute survives the Holm adjustment,
    # and the narrative says so instead of naming a "driver".
    data = _experiment(3000, 11, lambda c, t: np.where(t, 0.10, 0.08))
    result = explain_moderators(data, "click_rate")
    assert all(r.p_value_holm is None or r.p_value_holm >= 0.05 for r in result.ranking)
    text = " ".join(result.narrative)
    assert "No attribute shows moderation that survives adjustment" in text
    assert "not that the attribute causes it" in text


def test_bins_match_the_counts_and_the_stats_module() -> None:
    data = _experiment(1500, 5, _gold_only)
    result = explain_moderators(data, "click_rate")
    for spec in result.attributes:
        bins = result.bins_for(spec.key)
        assert sum(b.n_control + b.n_treatment for b in bins) == len(data)
    gold = next(b for b in result.bins_for("tier") if b.bin == "Gold")
    rows = data[data["tier"] == "Gold"]
    treated = rows[rows["experiment_arm"] != "control"]
    control = rows[rows["experiment_arm"] == "control"]
    expected = stats.newcombe_difference_interval(
        treated["clicked"].sum(), len(treated), control["clicked"].sum(), len(control)
    )
    assert gold.n_treatment == len(treated) and gold.n_control == len(control)
    assert gold.lift_absolute == pytest.approx(expected.estimate)
    assert (gold.lower, gold.upper) == pytest.approx((expected.lower, expected.upper))


def test_age_and_recency_bands_are_labelled_ranges() -> None:
    result = explain_moderators(_experiment(800, 2, _gold_only), "click_rate")
    ages = [b.bin for b in result.bins_for("age_band")]
    assert ages[0] == "18–24" and ages[-1] == "65+"
    assert result.bins_for("recency_band")[0].bin == "0–30 d"
    assert len(result.bins_for("frequency_band")) == 4


def test_click_to_open_uses_openers_and_holdout_is_ignored() -> None:
    data = _experiment(1200, 4, _gold_only)
    data.loc[data.index[:100], "experiment_arm"] = "holdout"
    result = explain_moderators(data, "click_to_open_rate")
    analysed = data[(data["experiment_arm"] != "holdout") & (data["opened"] == 1)]
    assert result.n_control + result.n_treatment == len(analysed)
    assert "holdout" not in result.treatment_arms


def test_no_events_is_reported_not_fitted() -> None:
    data = _experiment(600, 6, lambda c, t: np.zeros(len(c)))
    result = explain_moderators(data, "click_rate")
    assert not result.regression.fitted
    assert "does not vary" in result.regression.reason
    assert all(r.basis == "bin-spread" for r in result.ranking)
    assert "was not fitted" in " ".join(result.narrative)


def test_separation_is_reported_with_a_reason() -> None:
    # Only treated Gold customers ever click: the Gold interaction diverges.
    def only_gold_treated(customers, treated):
        return np.where(treated & (customers["tier"].to_numpy() == "Gold"), 0.5, 0.0)

    result = explain_moderators(_experiment(1500, 8, only_gold_treated), "click_rate")
    assert not result.regression.fitted
    assert "separation" in result.regression.reason
    assert result.ranking[0].basis == "bin-spread"


def test_missing_attribute_columns_are_skipped_with_a_note() -> None:
    data = _experiment(800, 9, _gold_only).drop(columns=["age"])
    result = explain_moderators(data, "click_rate")
    assert "age_band" in result.missing_attributes
    assert all(spec.key != "age_band" for spec in result.attributes)


def test_large_input_is_sampled_for_the_regression() -> None:
    data = _experiment(3000, 10, _gold_only)
    result = explain_moderators(data, "click_rate", max_regression_rows=1000, seed=1)
    assert result.regression.sampled_from == 3000
    assert result.regression.n == 1000
    # Bins always use every row.
    assert sum(b.n_control + b.n_treatment for b in result.bins_for("tier")) == 3000


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        explain_moderators(_experiment(100, 1, _gold_only), "revenue")


def test_a_registered_metric_is_explained_among_its_denominator() -> None:
    """A catalog metric (converted among clickers) needs no change here."""
    definition = Metric(
        name="click_to_convert_rate",
        label="Click-to-convert rate",
        description="Share of clickers who converted.",
        numerator="converted",
        denominator="clicked",
    )
    register_metric(definition)
    try:
        data = _experiment(2000, 12, _gold_only)
        result = explain_moderators(data, "click_to_convert_rate")
    finally:
        unregister_metric(definition.name)
    clickers = data[data["clicked"] == 1]
    assert (result.outcome, result.n_control + result.n_treatment) == ("converted", len(clickers))


# --------------------------------------------------------------------------
# moderators.json
# --------------------------------------------------------------------------

PLANS = ("Starter", "Team", "Business")


def _software_customers(n: int, seed: int) -> pd.DataFrame:
    """Accounts of a software company: plan tier, seat age, recency, logins a year."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"acct-{i:05d}" for i in range(n)],
            "tier": rng.choice(PLANS, size=n, p=[0.5, 0.3, 0.2]),
            "age": rng.integers(22, 70, size=n),
            "last_engagement_days": rng.integers(0, 200, size=n),
            "purchase_frequency": rng.gamma(2.0, 3.0, size=n).round(1),
            "historical_click_rate": rng.beta(2, 30, size=n).round(4),
        }
    )


def _software_engagement(customers: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Clicks lifted only for treated Business accounts."""
    rng = np.random.default_rng([seed, 5])
    arms = rng.choice(["control", "treatment_1", "treatment_2"], size=len(customers))
    business = customers["tier"].to_numpy() == "Business"
    p_click = np.where((arms != "control") & business, 0.30, 0.07)
    clicked = rng.random(len(customers)) < p_click
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "segment": np.where(business, "Enterprise", "SMB"),
            "experiment_arm": arms,
            "opened": (clicked | (rng.random(len(customers)) < 0.4)).astype(int),
            "clicked": clicked.astype(int),
            "converted": (clicked & (rng.random(len(customers)) < 0.2)).astype(int),
            "engagement_source": "imported",
        }
    )


class RecordCustomers(StageBase):
    """Stands in for the segment stage: records the customer file in the manifest."""

    name = "segment"
    description = "Recording the customer file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, ctx: RunContext) -> StageOutcome:
        """Record path and sha256, as the segment stage does."""
        record = {"path": str(self.path), "sha256": sha256_file(self.path), "reading": None}
        return StageOutcome(records={"inputs": {"customers": record}})


def _software_run(run_dir: Path, *, n: int = 1500, layout: str | None = None) -> Path:
    """A run folder as the engage stage leaves it, plus the customer file beside it."""
    customers = _software_customers(n, seed=21)
    customers_path = run_dir.parent / f"{run_dir.name}-accounts.csv"
    customers.to_csv(customers_path, index=False)
    engagement = _software_engagement(customers, seed=21)
    engagement.to_csv(run_dir / "engagement.csv", index=False)
    report: dict[str, object] = {"engagement_source": "imported", "warnings": []}
    if layout == "counts":
        counts = (
            engagement.groupby(["experiment_arm", "segment"])[["opened", "clicked", "converted"]]
            .sum()
            .assign(sent=engagement.groupby(["experiment_arm", "segment"]).size())
            .reset_index()
        )
        counts.to_csv(run_dir / "engagement_counts.csv", index=False)
        engagement.head(0).to_csv(run_dir / "engagement.csv", index=False)
        report.update(layout="counts", counts_file="engagement_counts.csv")
    (run_dir / "engagement_report.json").write_text(json.dumps(report))
    return customers_path


def _run_analyze(run_dir: Path, customers_path: Path, *, resume: bool = False) -> dict:
    stages = [RecordCustomers(customers_path), AnalyzeStage()]
    if resume:
        return run_pipeline(run_dir, stages=stages, resume=True)
    return run_pipeline(run_dir, stages=stages, force=True)


def test_analyze_stage_writes_the_moderator_analysis_of_the_joined_data(tmp_path: Path) -> None:
    """moderators.json holds exactly what the analysis of engagement + attributes gives."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    customers_path = _software_run(run_dir)
    manifest = _run_analyze(run_dir, customers_path)
    assert manifest["status"] == "completed"
    document = read_moderators(MODERATORS.path(run_dir))
    assert document.computed and document.note is None
    assert document.schema_version == SCHEMA_VERSION
    engagement = pd.read_csv(run_dir / "engagement.csv", dtype={"customer_id": str})
    customers = pd.read_csv(customers_path, dtype={"customer_id": str})
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = explain_moderators(
        engagement.merge(customers, on="customer_id"),
        metrics["primary_metric"],
        confidence=metrics["confidence_level"],
        alpha=metrics["alpha"],
        seed=manifest["seed"],
    )
    assert document.result == expected
    assert document.result.ranking[0].attribute == "tier"
    assert {b.bin for b in document.result.bins_for("tier")} == set(PLANS)


def test_moderators_are_computed_once_and_not_again_on_resume(tmp_path: Path) -> None:
    """A resume with unchanged inputs keeps the file (the analyze stage is skipped)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    customers_path = _software_run(run_dir, n=600)
    _run_analyze(run_dir, customers_path)
    first = MODERATORS.path(run_dir).stat().st_mtime_ns
    again = _run_analyze(run_dir, customers_path, resume=True)
    assert again["stages"]["analyze"]["status"] == "completed"
    assert MODERATORS.path(run_dir).stat().st_mtime_ns == first
    events = [json.loads(line) for line in (run_dir / "logs" / "experiment.log").open()]
    assert [e["computed"] for e in events if e["event"] == "moderators"] == [True]


def test_counts_import_writes_why_there_are_no_moderators(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    customers_path = _software_run(run_dir, n=400, layout="counts")
    _run_analyze(run_dir, customers_path)
    document = read_moderators(MODERATORS.path(run_dir))
    assert not document.computed and document.result is None
    assert "imported as counts per arm" in (document.note or "")


def test_a_changed_customer_file_is_not_used(tmp_path: Path) -> None:
    """The attributes must be the ones the run segmented; otherwise the note says why."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    customers_path = _software_run(run_dir, n=400)
    stages = [RecordCustomers(customers_path)]
    run_pipeline(run_dir, stages=stages, force=True)
    with customers_path.open("a", encoding="utf-8") as handle:
        handle.write("acct-99999,Team,30,5,1.0,0.02\n")
    run_pipeline(run_dir, stages=[AnalyzeStage()], resume=True)
    document = read_moderators(MODERATORS.path(run_dir))
    assert document.result is None
    assert "changed since the run" in (document.note or "")


def test_document_round_trip_is_identical(tmp_path: Path) -> None:
    """JSON -> records -> JSON gives the same text; the records compare equal."""
    result = explain_moderators(_experiment(1200, 3, _gold_only), "click_rate", seed=4)
    document = ModeratorsDocument("click_rate", result)
    text = json.dumps(document.to_dict(), indent=2, allow_nan=False)
    path = tmp_path / "moderators.json"
    path.write_text(text)
    back = read_moderators(path)
    assert back == document
    assert json.dumps(back.to_dict(), indent=2, allow_nan=False) == text
    assert back.result is not None and back.result.regression.wald == result.regression.wald


def test_reading_a_missing_or_newer_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "moderators.json"
    with pytest.raises(DataValidationError, match="moderators.json: not found"):
        read_moderators(path)
    newer = ModeratorsDocument("click_rate", None, "no customers", SCHEMA_VERSION + 1)
    path.write_text(json.dumps(newer.to_dict()))
    with pytest.raises(DataValidationError, match="schema_version"):
        read_moderators(path)


# --- the bins are counted as pandas would count them ---------------------------------


@pytest.mark.parametrize(
    "values",
    [
        ["Gold", "Bronze", "Silver", "Gold", "Platinum", "Bronze"],
        ["Zeta", "alpha", "Gold", "zeta", "Gold"],
        ["only"],
        [],
    ],
)
def test_categorical_bins_equal_pandas_categorical(values: list[str]) -> None:
    from cpo.experiment.moderators import _categorical_bins, _ordered_levels

    for dtype in (object, "str"):
        text = pd.Series(values, dtype=dtype)
        expected = pd.Categorical(
            text, categories=_ordered_levels(list(text.unique())), ordered=True
        )
        found = _categorical_bins(text)
        assert list(found.categories) == list(expected.categories)
        assert found.codes.tolist() == expected.codes.tolist()
        assert found.ordered


def test_bin_counts_equal_a_groupby() -> None:
    from cpo.experiment.moderators import _bin_counts

    rng = np.random.default_rng(5)
    labels = pd.Categorical.from_codes(
        rng.integers(-1, 4, 5_000), categories=["a", "b", "c", "d", "unused"], ordered=True
    )
    treated, outcome = rng.integers(0, 2, 5_000), rng.integers(0, 2, 5_000)
    units, events = _bin_counts(labels, treated, outcome)
    grouped = (
        pd.DataFrame({"bin": labels, "treated": treated, "y": outcome})
        .groupby(["bin", "treated"], observed=False)["y"]
        .agg(["size", "sum"])
    )
    for order, label in enumerate(labels.categories):
        for arm in (0, 1):
            row = grouped.loc[(label, arm)]
            assert (units[order, arm], events[order, arm]) == (row["size"], row["sum"])
    assert units[4].tolist() == [0, 0]  # a bin nobody falls in
    assert units.sum() == int((labels.codes >= 0).sum())  # rows without a bin left out
