"""Charts for the report as inline SVG (matplotlib, no pyplot, no global state).

Each function takes plain numbers and returns an SVG string ready to embed:
no XML prolog, no fixed size (it scales to its container), deterministic ids
(``svg.hashsalt``) and no date metadata, so the same run gives the same bytes.
Text stays text (``svg.fonttype: none``): small, crisp and searchable.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend needed
from matplotlib.ticker import MaxNLocator

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "cpo-report",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "x",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
}
EMPHASIS = "#1b6ca8"
MUTED = "#6b7b8c"
NEGATIVE = "#b5412b"
ZERO_LINE = "#333333"


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
        An inline SVG string.
    """
    panels = [p for p in panels if p.rows]
    if not panels:
        return ""
    columns = max(1, min(columns, len(panels)))
    rows_of_panels = math.ceil(len(panels) / columns)
    tallest = max(len(p.rows) for p in panels)
    height = rows_of_panels * (0.75 + 0.28 * tallest) + 0.35
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.2, height), layout="constrained")
        axes = fig.subplots(rows_of_panels, columns, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            _draw_forest(ax, panel, scale, reference * scale, tallest)
            ax.set_xlabel(xlabel, fontsize=8)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        return _to_svg(fig, description or xlabel)


def _draw_forest(ax, panel: ForestPanel, scale: float, reference: float | None, slots: int) -> None:
    """Draw one panel: rows top to bottom, intervals as bars, arrows for open ends."""
    values = [
        v * scale for r in panel.rows for v in (r.estimate, r.lower, r.upper) if v is not None
    ]
    anchors = [*values, reference] if reference is not None else values
    span = (min(anchors), max(anchors)) if values else (-1.0, 1.0)
    pad = (span[1] - span[0]) * 0.08 or 1.0
    left, right = span[0] - pad, span[1] + pad
    # Rows fill the panel from the top, so panels with fewer rows line up with their neighbours.
    top = max(slots, len(panel.rows)) - 1
    ys = [top - i for i in range(len(panel.rows))]
    for y, row in zip(ys, panel.rows, strict=True):
        colour = EMPHASIS if row.emphasis else MUTED
        if row.estimate is None:
            ax.text((left + right) / 2, y, "n/a", ha="center", va="center", fontsize=7, color=MUTED)
            continue
        low = row.lower * scale if row.lower is not None else left
        high = row.upper * scale if row.upper is not None else right
        ax.plot([low, high], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
        for bound, edge, marker in ((row.lower, low, "<"), (row.upper, high, ">")):
            if bound is None:
                ax.plot([edge], [y], marker=marker, color=colour, markersize=5)
        ax.plot([row.estimate * scale], [y], "o", color=colour, markersize=5.5, zorder=3)
    if reference is not None:
        ax.axvline(reference, color=ZERO_LINE, linewidth=0.8, linestyle="--")
    ax.set_xlim(left, right)
    ax.set_yticks(ys, [plain(r.label) for r in panel.rows], fontsize=8)
    ax.set_ylim(-0.6, max(slots, len(panel.rows)) - 0.4)
    ax.set_title(plain(panel.title), loc="left")
    ax.tick_params(axis="y", length=0)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    xlabel: str,
    highlight: Sequence[bool] | None = None,
    description: str = "",
) -> str:
    """Horizontal bars, largest first as given (e.g. citations per document).

    Args:
        labels: One label per bar (top to bottom).
        values: Bar lengths.
        xlabel: Axis label.
        highlight: Bars to draw in the emphasis colour.
        description: Accessible description.

    Returns:
        An inline SVG string ("" when there is nothing to draw).
    """
    if not labels:
        return ""
    highlight = list(highlight or [False] * len(labels))
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.2, 0.5 + 0.26 * len(labels)), layout="constrained")
        ax = fig.subplots()
        ys = list(range(len(labels)))[::-1]
        colours = [EMPHASIS if h else MUTED for h in highlight]
        ax.barh(ys, values, color=colours, height=0.65)
        for y, value in zip(ys, values, strict=True):
            ax.text(value, y, f" {value:g}", va="center", fontsize=7.5)
        ax.set_yticks(ys, [_shorten(label, 58) for label in labels], fontsize=7.5)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_xlim(0, max(values) * 1.12 if max(values) > 0 else 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="y", length=0)
        return _to_svg(fig, description or xlabel)


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
    """Rates per arm with their intervals (a one-panel forest on the rate scale)."""
    rows = tuple(
        ForestRow(label, rate, low, high, bool(emphasis[i]) if emphasis else False)
        for i, (label, rate, low, high) in enumerate(
            zip(labels, rates, lowers, uppers, strict=True)
        )
    )
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.2, 0.9 + 0.3 * len(rows)), layout="constrained")
        ax = fig.subplots()
        _draw_forest(ax, ForestPanel(title, rows), 100.0, None, 0)
        ax.set_xlabel("rate (%)", fontsize=8)
        return _to_svg(fig, description or title)


def _shorten(text: str, limit: int) -> str:
    return plain(text if len(text) <= limit else text[: limit - 1] + "…")


def plain(text: str) -> str:
    """Label text drawn literally (a ``$`` would otherwise start matplotlib mathtext)."""
    return str(text).replace("$", r"\$")


_SIZE_ATTRS = re.compile(r'\s(width|height)="[^"]*"')


def _to_svg(fig: Figure, description: str) -> str:
    """Serialize a figure to an inline, responsive SVG element."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.index("<svg")
    head_end = text.index(">", start)
    head = _SIZE_ATTRS.sub("", text[start:head_end], count=2)
    title = description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    head += f' class="chart" role="img" aria-label="{title.replace(chr(34), "&quot;")}"'
    return head + text[head_end:].rstrip()
