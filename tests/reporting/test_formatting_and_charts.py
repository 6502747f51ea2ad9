"""Number formatting and the SVG charts."""

from __future__ import annotations

import math
import re

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


def _floats(svg: str, element: str, attribute: str) -> list[float]:
    pattern = rf"<{element}\b[^>]*\b{attribute}=\"([-0-9.]+)\""
    return [float(v) for v in re.findall(pattern, svg)]


def test_forest_points_sit_inside_their_interval_bars_on_one_scale() -> None:
    """A point at 0 on a panel from -1 pp to +5 pp lies a sixth of the way along its bar."""
    rows = (charts.ForestRow("a", 0.0, -0.01, 0.05), charts.ForestRow("b", 0.03, 0.02, 0.04))
    svg = charts.forest_chart([charts.ForestPanel("Lift", rows)], xlabel="pp")
    (point_a, point_b) = _floats(svg, "circle", "cx")
    bars = [
        (float(x1), float(x2))
        for x1, x2 in re.findall(
            r'<line x1="([-0-9.]+)" y1="[-0-9.]+" x2="([-0-9.]+)"[^>]*'
            r'stroke-width="3"',
            svg,
        )
    ]
    (low_a, high_a) = bars[0]
    assert (point_a - low_a) / (high_a - low_a) == pytest.approx(1 / 6, abs=0.01)
    assert low_a < point_b < high_a  # same x scale: 3 pp lies inside row a's bar too


def test_open_interval_ends_are_arrows_and_missing_estimates_say_na() -> None:
    svg = charts.forest_chart(_panel(), xlabel="x")
    assert svg.count("<polygon") == 1  # "open ended" has no lower bound
    assert ">n/a</text>" in svg


def test_bar_lengths_are_proportional_to_the_values() -> None:
    svg = charts.bar_chart(["one", "two", "four"], [1, 2, 4], xlabel="citations")
    widths = _floats(svg, "rect", "width")
    assert widths[1] == pytest.approx(2 * widths[0], rel=1e-3)
    assert widths[2] == pytest.approx(4 * widths[0], rel=1e-3)


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [
        (0.0, 20.0, False, [0, 5, 10, 15, 20]),
        (-4.3, 12.1, False, [0, 5, 10]),
        (-0.37, 0.12, False, [-0.3, -0.2, -0.1, 0, 0.1]),
        (0.0, 4.5, True, [0, 1, 2, 3, 4]),
    ],
)
def test_ticks_are_round_numbers_inside_the_range(low, high, integer, expected) -> None:
    assert charts._nice_ticks(low, high, integer=integer) == expected
