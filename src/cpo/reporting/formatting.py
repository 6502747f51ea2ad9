"""How numbers read in the report (also Jinja filters).

One function per kind of number so the HTML, the PDF and the tests agree on
what a value looks like. Missing values (None, NaN) read as an en dash.
"""

from __future__ import annotations

import math
from typing import Any

from cpo.experiment import catalog

MISSING = "–"


def is_missing(value: Any) -> bool:
    """True for None, NaN and non-numbers."""
    if value is None or isinstance(value, bool):
        return value is None
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a percentage: 0.1234 -> '12.3%'."""
    if is_missing(value):
        return MISSING
    return f"{100 * float(value):.{digits}f}%"


def signed_pct(value: Any, digits: int = 1) -> str:
    """A relative lift already in percent: 12.34 -> '+12.3%'."""
    if is_missing(value):
        return MISSING
    return f"{float(value):+.{digits}f}%"


def rel(value: Any, digits: int = 1) -> str:
    """A relative change as a fraction: 0.1234 -> '+12.3%'."""
    if is_missing(value):
        return MISSING
    return f"{100 * float(value):+.{digits}f}%"


def pp(value: Any, digits: int = 2) -> str:
    """An absolute difference of rates in percentage points: 0.0123 -> '+1.23 pp'."""
    if is_missing(value):
        return MISSING
    return f"{100 * float(value):+.{digits}f} pp"


def loss(value: Any) -> str:
    """An expected loss (never negative) in percentage points: 0.02355 -> '2.355 pp'."""
    if is_missing(value):
        return MISSING
    return f"{100 * float(value):.3f} pp"


def pval(value: Any) -> str:
    """A p-value: '0.034', '< 0.001'."""
    if is_missing(value):
        return MISSING
    value = float(value)
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def num(value: Any) -> str:
    """A count with thousands separators (fractions to one decimal)."""
    if is_missing(value):
        return MISSING
    value = float(value)
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def dec(value: Any, digits: int = 3) -> str:
    """A plain decimal."""
    if is_missing(value):
        return MISSING
    return f"{float(value):.{digits}f}"


def prob(value: Any) -> str:
    """A probability as a percentage with one decimal."""
    return pct(value, 1)


def interval(lower: Any, upper: Any, kind: str = "pp") -> str:
    """An interval 'lower to upper' in the unit of ``kind`` (pp, pct, rel, dec)."""
    fmt = {"pp": pp, "pct": pct, "rel": rel, "dec": dec}[kind]
    if is_missing(lower) and is_missing(upper):
        return MISSING
    low = fmt(lower) if not is_missing(lower) else "−∞"
    high = fmt(upper) if not is_missing(upper) else "+∞"
    return f"{low} to {high}"


def metric_label(metric: str) -> str:
    """'click_rate' -> 'Click rate' (the label of :mod:`cpo.experiment.catalog`)."""
    return catalog.label(metric)


def yes_no(value: Any) -> str:
    """True -> 'yes', False -> 'no', None -> dash."""
    if value is None:
        return MISSING
    return "yes" if value else "no"


def raw(value: Any) -> str:
    """The exact value for a ``data-value`` attribute (repr of floats, '' for missing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


FILTERS = {
    "pct": pct,
    "signed_pct": signed_pct,
    "rel": rel,
    "pp": pp,
    "loss": loss,
    "pval": pval,
    "num": num,
    "dec": dec,
    "prob": prob,
    "metric_label": metric_label,
    "yes_no": yes_no,
    "raw": raw,
}
