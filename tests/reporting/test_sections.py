"""The report's section modules: each from the run's artifacts, presenting what they recorded.

The fixture run (tests/reporting/conftest.py) is a synthetic outdoor-gear
campaign; these tests change one recorded value at a time and check that the
sections show it, or say it was not recorded, instead of a default.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.errors import DataValidationError
from cpo.reporting.artifacts import RunArtifacts, load_run
from cpo.reporting.sections import common, design, explain, summary
from cpo.reporting.simulated import binomial_two_sided_p


@pytest.fixture(scope="module")
def art(fixture_run: Path) -> RunArtifacts:
    return load_run(fixture_run)


def _without(art: RunArtifacts, *keys: str) -> RunArtifacts:
    metrics = {k: v for k, v in art.metrics.items() if k not in keys}
    return replace(art, metrics=metrics)


def test_settings_are_read_from_metrics_json(art: RunArtifacts) -> None:
    changed = replace(art, metrics={**art.metrics, "alpha": 0.01, "confidence_level": 0.9})
    assert common.alpha(changed) == 0.01
    assert common.confidence(changed) == 0.9
    assert common.alpha_text(changed) == "α = 0.01"
    headline = summary.executive_summary(changed)["headline"]
    assert "90% CI" in headline and "95% CI" not in headline


def test_missing_settings_are_said_not_invented(art: RunArtifacts) -> None:
    bare = _without(art, "alpha", "confidence_level")
    bare = replace(
        bare, metrics={**bare.metrics, "lift_analysis": _strip_alpha(bare.metrics["lift_analysis"])}
    )
    assert common.alpha(bare) is None and common.confidence(bare) is None
    assert common.alpha_text(bare) == "α not recorded in metrics.json"
    assert "level not recorded CI" in summary.executive_summary(bare)["headline"]


def _strip_alpha(records: list[dict]) -> list[dict]:
    return [
        {
            **r,
            "statistical_significance": {
                k: v for k, v in r["statistical_significance"].items() if k != "alpha"
            },
        }
        for r in records
    ]


def test_power_comes_from_the_design_or_is_not_recorded(art: RunArtifacts) -> None:
    planned = replace(art, design={**art.design, "power": {**art.design["power"], "power": 0.9}})
    assert design.design_section(planned)["power_meta"]["power"] == 0.9
    unplanned = replace(art, design={k: v for k, v in art.design.items() if k != "power"})
    unplanned = replace(unplanned, metrics={**art.metrics, "power": {}})
    assert common.power_level(unplanned) is None
    assert summary.next_sample_size(unplanned, "click_rate", {"control_value": 0.1}) is None


def test_a_metrics_json_without_primary_metric_is_one_clear_error(fixture_run, tmp_path) -> None:
    run = tmp_path / "old-run"
    _copy_run(fixture_run, run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    del metrics["primary_metric"]
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    with pytest.raises(DataValidationError, match="no primary_metric"):
        common.primary_metric(load_run(run))
    result = CliRunner().invoke(cli, ["report", str(run), "--no-pdf", "--no-notebook"])
    assert result.exit_code == 1
    assert "metrics.json: no primary_metric recorded" in result.output
    assert "Traceback" not in result.output


def _copy_run(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("report.*"))


def test_metric_order_follows_the_catalog_after_the_primary(art: RunArtifacts) -> None:
    names = common.metric_names(art)
    assert names[0] == "click_rate"
    assert names[1:] == ["open_rate", "conversion_rate", "click_to_open_rate"]
    primary_open = replace(art, metrics={**art.metrics, "primary_metric": "open_rate"})
    assert common.metric_names(primary_open)[:2] == ["open_rate", "click_rate"]


def test_explain_section_lays_out_moderators_json(art: RunArtifacts) -> None:
    assert art.moderators is not None
    view = explain.explain_section(art.moderators)
    result = art.moderators["result"]
    assert view["available"] and view["narrative"] == result["narrative"]
    assert [r["rank"] for r in view["ranking"]] == [r["rank"] for r in result["ranking"]]
    keys = [a["key"] for a in view["attributes"]]
    assert keys == [a["key"] for a in result["attributes"]]
    assert "<svg" in explain.bins_chart(art.moderators)
    assert explain.explain_section(None)["note"] == explain.NO_ARTIFACT
    skipped = {"metric": "click_rate", "result": None, "note": "no customer file"}
    assert explain.explain_section(skipped) == {"available": False, "note": "no customer file"}
    assert explain.bins_chart(skipped) == ""


@pytest.mark.parametrize(
    ("events", "trials", "rate"),
    [(4, 124, 0.08), (0, 50, 0.3), (50, 50, 0.3), (7, 9, 0.5), (1200, 100_000, 0.0123)],
)
def test_exact_binomial_p_matches_scipy(events: int, trials: int, rate: float) -> None:
    from scipy.stats import binomtest

    expected = binomtest(events, trials, rate).pvalue
    assert binomial_two_sided_p(events, trials, rate) == pytest.approx(expected, rel=1e-9)


def test_building_the_report_imports_no_statistics_or_plotting_library(fixture_run: Path) -> None:
    """In a fresh interpreter: load the run, build every section and chart, render the HTML.

    The moderator analysis is read from moderators.json, the charts are SVG text:
    neither SciPy, statsmodels, scikit-learn nor matplotlib is imported. (Only a
    run where no arm won loads the statistics core, for the next test's sample size.)
    """
    code = (
        "import sys\n"
        "from cpo.reporting.artifacts import load_run\n"
        "from cpo.reporting.html import render_html\n"
        f"render_html(load_run({str(fixture_run)!r}))\n"
        "heavy = ('scipy', 'statsmodels', 'sklearn', 'matplotlib', 'cpo.experiment.moderators')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_results_cells_carry_the_metrics_json_values(art: RunArtifacts) -> None:
    from cpo.reporting.sections import results

    record = next(r for r in art.metrics["lift_analysis"] if r["metric"] == "click_rate")
    row = next(
        r
        for r in results.lift_rows(art, art.metrics, "click_rate")
        if r["arm"] == record["treatment_arm"]
    )
    assert row["lift"]["key"] == f"lift:{record['treatment_arm']}:click_rate:lift_absolute"
    assert float(row["lift"]["value"]) == record["lift_absolute"]
    assert row["adjustment"] == "Holm"


def test_safety_coverage_is_counted_from_the_audit_log_not_copied(art: RunArtifacts) -> None:
    from cpo.reporting.sections import safety

    section = safety.safety_section(art)
    assert section["total"] == len(art.variants) and section["screened"] == len(art.variants)
    claimed = {**art.manifest, "safety": {**art.manifest["safety"], "coverage": 0.5}}
    assert safety.safety_section(replace(art, manifest=claimed))["coverage_disagrees"]
    assert not section["coverage_disagrees"]


def test_citation_counts_add_up_to_the_variants_citations(art: RunArtifacts) -> None:
    from cpo.reporting.sections import citations

    section = citations.citations_section(art)
    cited = sum(len(v.get("citations") or []) for v in art.variants if v.get("status") != "failed")
    assert sum(d["citations"] for d in section["documents"]) == cited
    assert [d["citations"] for d in section["documents"]] == sorted(
        (d["citations"] for d in section["documents"]), reverse=True
    )


def test_the_next_tests_size_is_presented_from_metrics_json(art: RunArtifacts) -> None:
    record = {
        "metric": "click_rate",
        "treatment_arm": "treatment_2",
        "baseline": 0.04,
        "effect": 0.02,
        "basis": "observed",
        "planned_relative_lift": 0.25,
        "alpha": 0.05,
        "power": 0.9,
        "comparisons": 2,
        "n_per_arm": 2946,
        "total": 8838,
    }
    recorded = replace(art, metrics={**art.metrics, "next_test": record})
    best = {"control_value": 0.04, "lift_absolute": 0.02}
    needed = summary.next_sample_size(recorded, "click_rate", best)
    assert needed is not None and needed["total"] == 8838
    assert "plan about 2,946 recipients per arm (8,838 across 3 arms" in needed["sentence"]
    assert "90% power" in needed["sentence"] and "split over 2 comparisons" in needed["sentence"]
    assert summary.next_sample_size(recorded, "open_rate", best) is None  # another metric
    older = replace(art, metrics={k: v for k, v in art.metrics.items() if k != "next_test"})
    assert summary.next_sample_size(older, "click_rate", best) is None  # not recorded


def test_config_snapshot_reads_back_as_the_manifest_config(art: RunArtifacts) -> None:
    # Dumped by libyaml when PyYAML has it: the same text as PyYAML's own emitter.
    import yaml

    from cpo.reporting.sections import appendix

    text = appendix.appendix_section(art)["config_yaml"]
    config = {k: v for k, v in art.manifest["config"].items() if k != appendix.PROMPTS_KEY}
    assert config and yaml.safe_load(text) == config
    options = {"sort_keys": False, "allow_unicode": True, "default_flow_style": None}
    assert text == yaml.safe_dump(config, width=120, **options)
