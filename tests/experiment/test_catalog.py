"""The metric catalog: definitions, registration rules, baselines and what derives from it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from pydantic import ValidationError

from cpo.experiment import catalog
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.comparisons import metric_definitions, rate
from cpo.experiment.design import estimate_baselines
from cpo.experiment.settings import PowerSettings
from cpo.reporting.formatting import metric_label

BUILTIN = ("open_rate", "click_rate", "conversion_rate", "click_to_open_rate")


@pytest.fixture
def open_to_convert():
    """A metric registered for one test only: the share of openers who converted."""
    found = catalog.register_metric(
        catalog.Metric(
            "open_to_convert_rate",
            "Open-to-convert rate",
            "Share of openers who converted.",
            "converted",
            "opened",
        )
    )
    yield found
    catalog.unregister_metric(found.name)


def test_builtin_metrics_and_their_definitions():
    assert catalog.metric_names() == BUILTIN
    assert metric_definitions() == {
        "open_rate": ("opened", "sent"),
        "click_rate": ("clicked", "sent"),
        "conversion_rate": ("converted", "sent"),
        "click_to_open_rate": ("clicked", "opened"),
    }
    cto = catalog.metric("click_to_open_rate")
    assert (cto.outcome, cto.among, cto.columns) == ("clicked", "opened", ("clicked", "opened"))
    assert catalog.metric("conversion_rate").columns == ("converted",)
    assert (catalog.metric("click_rate").outcome, catalog.metric("click_rate").among) == (
        "clicked",
        None,
    )
    assert metric_label("click_to_open_rate") == "Click-to-open rate"
    assert metric_label("not_registered_rate") == "Not registered rate"


@pytest.mark.parametrize(
    ("numerator", "denominator", "fragment"),
    [
        ("bounced", "sent", "unknown count 'bounced'"),
        ("opened", "opened", "must come after the denominator"),
        ("opened", "clicked", "must come after the denominator"),
        ("sent", "opened", "must come after the denominator"),
    ],
)
def test_register_rejects_counts_that_do_not_make_a_share(numerator, denominator, fragment):
    with pytest.raises(ValueError, match=fragment):
        catalog.register_metric(catalog.Metric("x_rate", "X", "x", numerator, denominator))
    assert "x_rate" not in catalog.metric_names()


def test_register_is_idempotent_but_refuses_a_different_definition():
    same = catalog.metric("click_rate")
    assert catalog.register_metric(same) is same
    with pytest.raises(ValueError, match="already registered differently"):
        catalog.register_metric(
            catalog.Metric("click_rate", "Clicks", "other", "converted", "sent")
        )
    with pytest.raises(KeyError, match="unknown metric 'nope'; known metrics: open_rate"):
        catalog.metric("nope")


def test_registered_metric_is_analysed_configurable_and_has_a_baseline(open_to_convert):
    name = open_to_convert.name
    assert catalog.metric_names()[-1] == name
    counts = {"sent": 100, "opened": 40, "clicked": 10, "converted": 6}
    assert rate(counts, name) == pytest.approx(6 / 40)
    assert rate({**counts, "opened": 0, "clicked": 0, "converted": 0}, name) is None
    settings = AnalysisSettings(secondary_metrics=[name])
    assert settings.secondary_metrics == [name]
    power = PowerSettings(baseline_rates={name: 0.2})
    customers = pd.DataFrame({"historical_open_rate": [0.4], "historical_click_rate": [0.05]})
    assert estimate_baselines(customers, power)[name] == 0.2
    estimated = estimate_baselines(customers, PowerSettings(conversion_per_click=0.5))
    # converted / opened = (click x conversion_per_click) / open.
    assert estimated[name] == pytest.approx(0.05 * 0.5 / 0.4)


def test_unknown_metric_names_fail_validation_listing_registered_ones(open_to_convert):
    with pytest.raises(ValidationError) as error:
        AnalysisSettings(primary_metric="ctr_rate")
    message = str(error.value)
    assert "Input should be 'open_rate', 'click_rate'" in message
    assert "or 'open_to_convert_rate'" in message
    with pytest.raises(ValidationError, match="unknown key.s. ctr; expected metric names"):
        PowerSettings(baseline_rates={"ctr": 0.1})
    with pytest.raises(ValidationError, match="less than 1"):
        PowerSettings(baseline_rates={"open_rate": 1.5})


def test_baselines_fall_back_and_stay_inside_the_unit_interval():
    no_history = estimate_baselines(pd.DataFrame(), PowerSettings())
    assert no_history["open_rate"] == 0.2 and no_history["click_rate"] == 0.03
    assert no_history["click_to_open_rate"] == pytest.approx(0.15)
    extreme = pd.DataFrame({"historical_open_rate": [0.0], "historical_click_rate": [1.0]})
    bounded = estimate_baselines(extreme, PowerSettings())
    assert bounded["open_rate"] == 1e-4 and bounded["click_rate"] == catalog.MAX_BASELINE
    assert bounded["click_to_open_rate"] == catalog.MAX_BASELINE


def test_catalog_is_a_leaf_that_imports_no_third_party_package():
    code = (
        "import sys, cpo.experiment.catalog; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'pydantic', 'scipy')))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_a_snapshot_of_the_catalog_is_adopted_in_order_with_run_time_metrics() -> None:
    """The report worker adopts the parent's catalog, metrics registered at run time included."""
    original = catalog.catalog_snapshot()
    added = catalog.Metric(
        "snapshot_probe_rate", "Probe rate", "A test metric.", "clicked", "opened"
    )
    catalog.register_metric(added)
    try:
        snapshot = catalog.catalog_snapshot()
        catalog.unregister_metric("snapshot_probe_rate")
        catalog.unregister_metric(original[0]["name"])  # this process now differs twice
        catalog.adopt_catalog(snapshot)
        assert list(catalog.metric_names()) == [m["name"] for m in snapshot]
        assert catalog.metric("snapshot_probe_rate") == added
    finally:
        catalog.adopt_catalog(original)
    assert catalog.catalog_snapshot() == original
