"""Charts for the report as inline SVG, written by hand (no plotting library).

Each function takes plain numbers and returns an SVG string ready to embed:
no XML prolog, no fixed size (a ``viewBox`` only, so it scales to its
container), no ids, no dates, so the same run gives the same bytes. Text stays
text (searchable, escaped here). A chart costs well under a millisecond; the
matplotlib charts this module replaced cost about 0.3 s each and made the PDF
slow to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

EMPHASIS = "#1b6ca8"
MUTED = "#6b7b8c"
NEGATIVE = "#b5412b"
ZERO_LINE = "#333333"
GRID = "#dddddd"
INK = "#1d2733"

#: Width of every chart in SVG user units (the report scales it to the page).
WIDTH = 720.0
FONT = 11.0
TITLE_FONT = 11.5
ROW_HEIGHT = 22.0
_CHAR_WIDTH = 0.58  # average DejaVu Sans advance per font-size unit, for label space
_FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class ForestRow:
    """One estimate with its interval in a forest panel.

    Attributes:
        label: Row label (arm, bin, segment).
        estimate: Point estimate, or None (row drawn empty with "n/a").
        lower: Lower bound, or None (drawn as an open-ended arrow).
        upper: Upper bound, or None (drawn as an open-ended arrow).
        emphasis: Draw in the emphasis colour (e.g. the primary metric or best arm).
    """

    label: str
    estimate: float | None
    lower: float | None
    upper: float | None
    emphasis: bool = False


@dataclass(frozen=True)
class ForestPanel:
    """A titled group of forest rows sharing one x axis."""

    title: str
    rows: tuple[ForestRow, ...]


@dataclass(frozen=True)
class _Box:
    """A panel's plot area in SVG units and the data range it shows."""

    left: float
    top: float
    width: float
    height: float
    low: float
    high: float

    def x(self, value: float) -> float:
        """The SVG x of a data value."""
        return self.left + (value - self.low) / (self.high - self.low) * self.width


def forest_chart(
    panels: Sequence[ForestPanel],
    *,
    xlabel: str,
    scale: float = 100.0,
    reference: float = 0.0,
    columns: int = 2,
    description: str = "",
) -> str:
    """Small multiples of point estimates with interval bars.

    Args:
        panels: One panel per metric / attribute / segment.
        xlabel: Axis label (after scaling, e.g. "lift (percentage points)").
        scale: Multiply values by this for display (100 = percentage points).
        reference: Vertical reference line (0 = no effect; 1 for ratios).
        columns: Panels per row.
        description: Accessible description of the chart.

    Returns:
        An inline SVG string ("" when no panel has rows).
    """
    shown = [p for p in panels if p.rows]
    if not shown:
        return ""
    columns = max(1, min(columns, len(shown)))
    slots = max(len(p.rows) for p in shown)
    panel_width = WIDTH / columns
    panel_height = _panel_height(slots)
    parts = []
    for index, panel in enumerate(shown):
        left = (index % columns) * panel_width
        top = (index // columns) * panel_height
        parts.append(
            _forest_panel(panel, left, top, panel_width, slots, scale, reference * scale, xlabel)
        )
    height = math.ceil(len(shown) / columns) * panel_height
    return _svg(height, "".join(parts), description or xlabel)


def rate_chart(
    labels: Sequence[str],
    rates: Sequence[float | None],
    lowers: Sequence[float | None],
    uppers: Sequence[float | None],
    *,
    title: str,
    emphasis: Sequence[bool] | None = None,
    description: str = "",
) -> str:
    """Rates per arm with their intervals (a one-panel forest on the rate scale, no zero line)."""
    rows = tuple(
        ForestRow(label, rate, low, high, bool(emphasis[i]) if emphasis else False)
        for i, (label, rate, low, high) in enumerate(
            zip(labels, rates, lowers, uppers, strict=True)
        )
    )
    if not rows:
        return ""
    body = _forest_panel(
        ForestPanel(title, rows), 0.0, 0.0, WIDTH, len(rows), 100.0, None, "rate (%)"
    )
    return _svg(_panel_height(len(rows)), body, description or title)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    xlabel: str,
    highlight: Sequence[bool] | None = None,
    description: str = "",
) -> str:
    """Horizontal bars, top to bottom as given (e.g. citations per document).

    Args:
        labels: One label per bar (top to bottom).
        values: Bar lengths (non-negative).
        xlabel: Axis label.
        highlight: Bars to draw in the emphasis colour.
        description: Accessible description.

    Returns:
        An inline SVG string ("" when there is nothing to draw).
    """
    if not labels:
        return ""
    marks = list(highlight or [False] * len(labels))
    texts = [_shorten(label, 58) for label in labels]
    label_width = _label_width(texts, FONT * 0.9)
    top_value = max(values) if max(values) > 0 else 1.0
    ticks = _nice_ticks(0.0, top_value * 1.12, integer=True)
    box = _Box(
        label_width, 6.0, WIDTH - label_width - 14.0, ROW_HEIGHT * len(labels), 0.0, ticks[-1]
    )
    parts = [_x_axis(box, ticks, xlabel)]
    for i, (text, value, mark) in enumerate(zip(texts, values, marks, strict=True)):
        y = box.top + ROW_HEIGHT * (i + 0.5)
        end = box.x(value)
        colour = EMPHASIS if mark else MUTED
        parts.append(
            f'<rect x="{_n(box.left)}" y="{_n(y - 7)}" width="{_n(end - box.left)}" height="14" '
            f'fill="{colour}"/>'
            + _text(box.left - 6, y + 4, text, size=FONT * 0.9, anchor="end")
            + _text(end + 4, y + 4, f"{value:g}", size=FONT * 0.85)
        )
    return _svg(box.top + box.height + 42.0, "".join(parts), description or xlabel)


#: Fill colours of the parts of a stacked bar, in series order (control first).
SERIES_COLOURS = ("#6b7b8c", "#1b6ca8", "#e08a2c", "#3a9a5b", "#8e5aa8", "#b5412b", "#c7a636")


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[str],
    shares: Sequence[Sequence[float]],
    *,
    xlabel: str,
    description: str = "",
) -> str:
    """One horizontal bar per label, split into the series' shares (each row sums to 1).

    Args:
        labels: One label per bar (top to bottom), e.g. waves.
        series: The parts, in order (a legend is drawn below the bars).
        shares: Per bar, the share of each series (0..1).
        xlabel: Axis label.
        description: Accessible description.

    Returns:
        An inline SVG string ("" when there is nothing to draw).
    """
    if not labels or not series:
        return ""
    label_width = _label_width(list(labels), FONT * 0.9)
    box = _Box(label_width, 6.0, WIDTH - label_width - 14.0, ROW_HEIGHT * len(labels), 0.0, 1.0)
    parts = [_x_axis(box, [0.0, 0.25, 0.5, 0.75, 1.0], xlabel)]
    for i, (label, row) in enumerate(zip(labels, shares, strict=True)):
        y = box.top + ROW_HEIGHT * (i + 0.5)
        parts.append(_text(box.left - 6, y + 4, label, size=FONT * 0.9, anchor="end"))
        start = 0.0
        for j, share in enumerate(row):
            colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
            width = box.x(start + share) - box.x(start)
            parts.append(
                f'<rect x="{_n(box.x(start))}" y="{_n(y - 8)}" width="{_n(width)}" height="16" '
                f'fill="{colour}"/>'
            )
            if share >= 0.08:
                middle = box.x(start + share / 2)
                parts.append(
                    _text(
                        middle,
                        y + 4,
                        f"{share:.0%}",
                        size=FONT * 0.8,
                        anchor="middle",
                        fill="#ffffff",
                    )
                )
            start += share
    legend_y = box.top + box.height + 50.0
    x = box.left
    for j, name in enumerate(series):
        colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(legend_y - 9)}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(_text(x + 14, legend_y, name, size=FONT * 0.85))
        x += 24 + len(name) * FONT * 0.85 * _CHAR_WIDTH
    return _svg(legend_y + 10.0, "".join(parts), description or xlabel)


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------


def _panel_height(slots: int) -> float:
    """Height of a panel with room for ``slots`` rows, its title and its axis."""
    return 26.0 + ROW_HEIGHT * slots + 44.0


def _forest_panel(
    panel: ForestPanel,
    left: float,
    top: float,
    width: float,
    slots: int,
    scale: float,
    reference: float | None,
    xlabel: str,
) -> str:
    """One panel: title, label column, grid and ticks, then one row per estimate."""
    labels = [r.label for r in panel.rows]
    label_width = min(_label_width(labels, FONT * 0.9), width * 0.45)
    low, high = _data_range(panel.rows, scale, reference)
    ticks = _nice_ticks(low, high)
    box = _Box(
        left + label_width, top + 26.0, width - label_width - 14.0, ROW_HEIGHT * slots, low, high
    )
    parts = [
        _text(left + 4, top + 15, panel.title, size=TITLE_FONT, weight="bold"),
        _x_axis(box, ticks, xlabel),
    ]
    if reference is not None:
        x = _n(box.x(reference))
        parts.append(
            f'<line x1="{x}" y1="{_n(box.top)}" x2="{x}" y2="{_n(box.top + box.height)}" '
            f'stroke="{ZERO_LINE}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
    for i, row in enumerate(panel.rows):
        y = box.top + ROW_HEIGHT * (i + 0.5)
        parts.append(
            _text(box.left - 6, y + 4, _shorten(row.label, 40), size=FONT * 0.9, anchor="end")
        )
        parts.append(_forest_row(box, row, y, scale))
    return "".join(parts)


def _forest_row(box: _Box, row: ForestRow, y: float, scale: float) -> str:
    """An interval bar with its point, arrows where a bound is open, or "n/a"."""
    colour = EMPHASIS if row.emphasis else MUTED
    if row.estimate is None:
        middle = box.left + box.width / 2
        return _text(middle, y + 4, "n/a", size=FONT * 0.8, anchor="middle", fill=MUTED)
    low = box.x(row.lower * scale) if row.lower is not None else box.left
    high = box.x(row.upper * scale) if row.upper is not None else box.left + box.width
    parts = [
        f'<line x1="{_n(low)}" y1="{_n(y)}" x2="{_n(high)}" y2="{_n(y)}" stroke="{colour}" '
        'stroke-width="3"/>'
    ]
    if row.lower is None:
        parts.append(_arrow(low, y, -1, colour))
    if row.upper is None:
        parts.append(_arrow(high, y, 1, colour))
    parts.append(
        f'<circle cx="{_n(box.x(row.estimate * scale))}" cy="{_n(y)}" r="4.5" fill="{colour}"/>'
    )
    return "".join(parts)


def _arrow(x: float, y: float, direction: int, colour: str) -> str:
    """A small triangle pointing left (-1) or right (+1): the interval continues."""
    tip, back = x + 3 * direction, x - 5 * direction
    points = f"{_n(tip)},{_n(y)} {_n(back)},{_n(y - 5)} {_n(back)},{_n(y + 5)}"
    return f'<polygon points="{points}" fill="{colour}"/>'


def _x_axis(box: _Box, ticks: Sequence[float], xlabel: str) -> str:
    """Vertical grid lines with tick labels under the plot, and the axis label."""
    bottom = box.top + box.height
    parts = [
        f'<line x1="{_n(box.left)}" y1="{_n(bottom)}" x2="{_n(box.left + box.width)}" '
        f'y2="{_n(bottom)}" stroke="{INK}" stroke-width="0.8"/>'
    ]
    for tick in ticks:
        x = _n(box.x(tick))
        parts.append(
            f'<line x1="{x}" y1="{_n(box.top)}" x2="{x}" y2="{_n(bottom)}" stroke="{GRID}" '
            'stroke-width="0.6"/>'
            + _text(box.x(tick), bottom + 14, _tick_text(tick), size=FONT * 0.85, anchor="middle")
        )
    parts.append(
        _text(box.left + box.width / 2, bottom + 31, xlabel, size=FONT * 0.85, anchor="middle")
    )
    return "".join(parts)


def _data_range(
    rows: Sequence[ForestRow], scale: float, reference: float | None
) -> tuple[float, float]:
    """The x range of a panel: every value and the reference line, padded by 8%."""
    values = [v * scale for r in rows for v in (r.estimate, r.lower, r.upper) if v is not None]
    anchors = [*values, reference] if reference is not None else values
    if not values:
        return -1.0, 1.0
    low, high = min(anchors), max(anchors)
    pad = (high - low) * 0.08 or 1.0
    return low - pad, high + pad


def _nice_ticks(low: float, high: float, *, integer: bool = False, target: int = 6) -> list[float]:
    """Round tick values covering about [low, high]: steps of 1, 2, 2.5 or 5 times a power of 10."""
    span = high - low if high > low else 1.0
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)] or [low, high]


def _tick_text(value: float) -> str:
    """A tick label: no trailing zeros, a true minus sign."""
    text = f"{value:.6g}"
    return text.replace("-", "−") if value < 0 else text


# --------------------------------------------------------------------------
# SVG text
# --------------------------------------------------------------------------


def _svg(height: float, body: str, description: str) -> str:
    """The outer element: responsive (viewBox only), labelled for screen readers."""
    label = escape(description, quote=True)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(WIDTH)} {_n(height)}" '
        f'class="chart" role="img" aria-label="{label}" font-family="{_FONT_FAMILY}" '
        f'font-size="{_n(FONT)}" fill="{INK}">{body}</svg>'
    )


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: float = FONT,
    anchor: str = "start",
    weight: str = "",
    fill: str = "",
) -> str:
    """A text element with escaped content."""
    extra = f' font-weight="{weight}"' if weight else ""
    extra += f' fill="{fill}"' if fill else ""
    extra += f' text-anchor="{anchor}"' if anchor != "start" else ""
    text = escape(content, quote=False)
    return f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}"{extra}>{text}</text>'


def _label_width(labels: Sequence[str], size: float) -> float:
    """Room for the longest label at ``size``, plus a margin."""
    longest = max((len(label) for label in labels), default=0)
    return min(longest, 58) * size * _CHAR_WIDTH + 12.0


def _shorten(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _n(value: float) -> str:
    """A coordinate with at most two decimals (compact and deterministic)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
