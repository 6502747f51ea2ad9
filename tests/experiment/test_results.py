"""The frozen result records behind metrics.json (cpo.experiment.results).

metrics.json is written from a MetricsDocument; reading it back gives the same
records and writing those gives the same JSON, key order included. The
documents here cover the shapes the analysis can produce: several segments
with a design's per-segment shares, a missing control, empty arms, a holdout,
unplanned arms, mixed engagement sources and carried-in warnings with scope.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.errors import DataValidationError
from cpo.experiment import calculate_metrics
from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.analysis import AnalysisPlan, analyze, analyze_document
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.results import (
    SCHEMA_VERSION,
    Comparison,
    MetricsDocument,
    read_metrics,
)
from cpo.run_folder import METRICS

STAMP = "2026-01-02T03:04:05.000Z"


def _counts(sent: int, opened: int = 0, clicked: int = 0, converted: int = 0) -> dict[str, int]:
    return {"sent": sent, "opened": opened, "clicked": clicked, "converted": converted}


def _insurance_renewals() -> dict[str, object]:
    """Three regions of a renewal campaign; the design planned 40/30/30 overall."""
    statistics = SufficientStatistics.from_counts(
        {
            ("control", "north"): _counts(400, 120, 30, 6),
            ("treatment_1", "north"): _counts(300, 99, 31, 9),
            ("treatment_2", "north"): _counts(300, 80, 19, 2),
            ("control", "coastal"): _counts(210, 40, 0, 0),
            ("treatment_1", "coastal"): _counts(160, 35, 4, 1),
            ("treatment_2", "coastal"): _counts(150, 33, 5, 0),
            ("control", "inland"): _counts(9, 2, 1, 0),
            ("treatment_1", "inland"): _counts(7, 7, 7, 7),
            ("holdout", "inland"): _counts(30),
        },
        engagement_sources=["imported"],
    )
    plan = AnalysisPlan(
        settings=AnalysisSettings(alpha=0.01, secondary_metrics=["conversion_rate"]),
        experiment_id="renewals-q3",
        experiment_name="Renewals Q3",
        arms=("control", "treatment_1", "treatment_2"),
        tones={"control": "control", "treatment_1": "reassuring", "treatment_2": "direct"},
        allocation={"control": 0.4, "treatment_1": 0.3, "treatment_2": 0.3},
        segment_shares={
            "north": {"control": 0.4, "treatment_1": 0.3, "treatment_2": 0.3},
            "inland": {"control": 0.5, "treatment_1": 0.5},
        },
        segment_order=("north", "coastal", "inland"),
        expected_from="experiment_design.json",
        expected_relative_lift=0.2,
        design_power={"alpha": 0.01, "metrics": {"click_rate": {"baseline": 0.07}}},
    )
    carried = [{"code": "late_events", "message": "12 events after the window", "source": "x"}]
    return analyze(statistics, plan, extra_warnings=carried, computed_at=STAMP)


def _no_control_mixed_sources() -> dict[str, object]:
    """No control records, an unplanned arm and two engagement sources."""
    records = [
        {"experiment_arm": "treatment_1", "opened": 1, "clicked": 0, "converted": 0,
         "engagement_source": "imported"},
        {"experiment_arm": "treatment_7", "opened": 0, "clicked": 1, "converted": 0,
         "engagement_source": "simulated"},
    ]  # fmt: skip
    metrics = calculate_metrics(
        records, {"analysis": {"primary_metric": "open_rate", "secondary_metrics": ["click_rate"]}}
    )
    return {**metrics, "computed_at": STAMP}


def _everything_empty() -> dict[str, object]:
    """Arms with no recipients at all (every statistic undefined)."""
    statistics = SufficientStatistics.from_counts({"control": _counts(0, 0, 0)})
    plan = AnalysisPlan(arms=("control", "treatment_1"))
    return analyze(statistics, plan, computed_at=STAMP)


DOCUMENTS = {
    "segments-design-holdout": _insurance_renewals,
    "no-control-mixed-sources": _no_control_mixed_sources,
    "everything-empty": _everything_empty,
}


@pytest.mark.parametrize("build", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_json_to_records_to_json_is_identical(build, tmp_path: Path) -> None:
    """Written, read into records and written again: the same bytes."""
    path = tmp_path / "metrics.json"
    text = json.dumps(build(), indent=2, allow_nan=False)
    path.write_text(text, encoding="utf-8")
    document = read_metrics(path)
    assert json.dumps(document.to_dict(), indent=2, allow_nan=False) == text
    assert MetricsDocument.from_json(path) == document


def test_the_document_is_what_analyze_returns() -> None:
    """analyze() is the dict form of analyze_document(): one producer of metrics.json."""
    statistics = SufficientStatistics.from_counts(
        {"control": _counts(500, 200, 40), "treatment_1": _counts(500, 210, 61)}
    )
    document = analyze_document(statistics, computed_at=STAMP)
    assert analyze(statistics, computed_at=STAMP) == document.to_dict()
    assert document.schema_version == SCHEMA_VERSION == METRICS.schema_version
    assert next(iter(document.to_dict())) == "schema_version"
    (record,) = document.comparisons("click_rate")
    assert isinstance(record, Comparison)
    assert (record.treatment.events, record.control.events) == (61, 40)
    assert record.significance.family_size == 1 and record.exploratory is False


def test_records_are_frozen() -> None:
    """A result cannot be changed after the analysis produced it."""
    document = MetricsDocument.from_dict(_insurance_renewals())
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.alpha = 0.5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.lift_analysis[0].significance.p_value = 0.0  # type: ignore[misc]


def test_typed_fields_hold_the_analysis() -> None:
    """Sections read as records: segments, SRM per segment, power per arm, warning scope."""
    document = MetricsDocument.from_dict(_insurance_renewals())
    assert [s.segment for s in document.segment_breakdown] == ["north", "coastal", "inland"]
    assert document.srm.by_segment is not None
    assert document.srm.by_segment["inland"].expected_shares["treatment_1"] == 0.5
    assert document.power.metrics["click_rate"].by_arm["treatment_2"].n_per_arm > 0
    assert document.stratified["conversion_rate"]["treatment_1"].exploratory is True
    late = next(w for w in document.warnings if w.code == "late_events")
    assert late.scope == {"source": "x"}
    assert document.arms["treatment_1"].tone == "reassuring"


def test_cpo_analyze_output_reads_back_into_records(tmp_path: Path) -> None:
    """The metrics file `cpo analyze --out` writes reads into records and back unchanged."""
    engagement = tmp_path / "newsletter.csv"
    rows = ["experiment_arm,segment,opened,clicked,converted"]
    rows += [f"control,b2b,{i % 2},{int(i % 9 == 0)},0" for i in range(60)]
    rows += [f"treatment_1,b2b,{i % 2},{int(i % 5 == 0)},{int(i % 30 == 0)}" for i in range(60)]
    engagement.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "metrics.json"
    result = CliRunner().invoke(cli, ["analyze", str(engagement), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    document = read_metrics(out)
    assert document.to_dict() == written
    assert document.total_customers == 120


def test_reading_a_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"metrics\.json: not found"):
        read_metrics(tmp_path / "metrics.json")


def test_reading_a_newer_schema_version_says_so(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**_everything_empty(), "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DataValidationError, match="schema_version") as caught:
        read_metrics(path)
    assert str(path) in str(caught.value)


def test_reading_a_document_without_a_section_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    document = _everything_empty()
    del document["srm"]
    path.write_text(json.dumps(document))
    with pytest.raises(DataValidationError, match="'srm'"):
        read_metrics(path)


def test_reading_text_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("arm,rate\n")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        read_metrics(path)


def test_summary_is_the_primary_metric_per_treatment_arm() -> None:
    """The manifest's analysis record: one result per treatment arm, warning codes sorted."""
    metrics = _insurance_renewals()
    summary = MetricsDocument.from_dict(metrics).summary().to_dict()
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == "click_rate"]
    assert [r["arm"] for r in summary["results"]] == ["treatment_1", "treatment_2"]
    first = summary["results"][0]
    significance = primary[0]["statistical_significance"]
    assert first["tone"] == "reassuring"
    assert first["p_value_adjusted"] == significance["p_value_adjusted"]
    assert first["ci_lower"] == significance["confidence_interval"]["lower"]
    assert summary["recipients"] == metrics["total_customers"] == 1536  # holdout left out
    assert summary["warnings"] == sorted({w["code"] for w in metrics["warnings"]})
    assert "late_events" in summary["warnings"]
    assert summary["srm_mismatch"] is metrics["srm"]["mismatch"]
