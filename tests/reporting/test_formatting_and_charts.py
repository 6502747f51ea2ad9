"""Number formatting and the SVG charts."""

from __future__ import annotations

import math

import pytest

from cpo.reporting import charts
from cpo.reporting import formatting as fmt


@pytest.mark.parametrize(
    ("function", "value", "text"),
    [
        (fmt.pct, 0.1234, "12.3%"),
        (fmt.pct, 0, "0.0%"),
        (fmt.pct, None, "–"),
        (fmt.pct, math.nan, "–"),
        (fmt.pp, 0.0123, "+1.23 pp"),
        (fmt.pp, -0.05, "-5.00 pp"),
        (fmt.signed_pct, 12.34, "+12.3%"),
        (fmt.rel, 1.825, "+182.5%"),
        (fmt.loss, 0.02355, "2.355 pp"),
        (fmt.pval, 0.0004, "< 0.001"),
        (fmt.pval, 0.0412, "0.041"),
        (fmt.pval, 1.0, "1.000"),
        (fmt.num, 1234567, "1,234,567"),
        (fmt.num, 124.5, "124.5"),
        (fmt.raw, 0.1, "0.1"),
        (fmt.raw, None, ""),
        (fmt.raw, True, "true"),
    ],
)
def test_formats(function, value, text: str) -> None:
    assert function(value) == text


def test_interval_with_an_unbounded_side() -> None:
    assert fmt.interval(-0.01, 0.02) == "-1.00 pp to +2.00 pp"
    assert fmt.interval(-0.5, None, "rel") == "-50.0% to +∞"
    assert fmt.interval(None, None) == "–"


def _panel(label: str = "arm") -> list[charts.ForestPanel]:
    rows = (
        charts.ForestRow(label, 0.02, -0.01, 0.05, emphasis=True),
        charts.ForestRow("open ended", 0.01, None, 0.03),
        charts.ForestRow("missing", None, None, None),
    )
    return [charts.ForestPanel("Click rate", rows)]


def test_forest_chart_is_inline_responsive_and_deterministic() -> None:
    first = charts.forest_chart(_panel(), xlabel="lift (pp)", description="a chart")
    second = charts.forest_chart(_panel(), xlabel="lift (pp)", description="a chart")
    assert first == second
    head = first[: first.index(">")]
    assert first.startswith("<svg") and "<?xml" not in first and "DOCTYPE" not in first
    assert ' width="' not in head and ' height="' not in head and "viewBox" in head
    assert 'aria-label="a chart"' in head
    assert "lift (pp)" in first  # text stays text (svg.fonttype none)


def test_chart_labels_are_escaped_and_literal() -> None:
    svg = charts.forest_chart(_panel("<b>Save $20</b> & more"), xlabel="x")
    assert "<b>" not in svg
    assert "&lt;b&gt;Save $20&lt;/b&gt; &amp; more" in svg


def test_empty_inputs_draw_nothing() -> None:
    assert charts.forest_chart([], xlabel="x") == ""
    assert charts.bar_chart([], [], xlabel="x") == ""
