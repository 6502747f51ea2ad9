"""Monitoring while the campaign runs (only with ``analysis.sequential: true``).

Presents the look history that metrics.json's ``sequential`` section recorded
(:class:`cpo.experiment.sequential.Monitoring`): each look's always-valid
p-value and confidence sequence for the primary metric, the current look's
result on every metric, and a chart of the confidence sequence over looks.
Nothing is re-estimated here.
"""

from __future__ import annotations

from typing import Any

from cpo.experiment.sequential import Monitoring, SequentialComparison
from cpo.reporting import charts
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import adjustment_name, primary_metric

GUIDE = (
    "How to read this: every time new engagement was imported the results were looked at "
    "again; each look is a row. The band is the confidence sequence: it holds the true "
    "difference at every look at once, so it may be read as often as you like, and it only "
    "ever narrows. While it includes 0 the data cannot yet tell the arm from control: keep "
    "collecting. Once it lies wholly above (or below) 0 the always-valid p-value is below "
    "alpha and the arm is better (or worse) than control, however many times you looked. "
    "The fixed-horizon p-values in the table above are valid only once, at the planned "
    "sample size."
)
METHOD = (
    "Mixture sequential probability ratio test (Johari, Koomen, Pekelis & Walsh 2017) with a "
    "normal mixture of standard deviation tau = {tau:g} outcome standard deviations; "
    "always-valid p-values are the running minimum over looks, {adjustment} across arms; each "
    "confidence sequence at level {level} (Bonferroni over the arms) is the running "
    "intersection over looks."
)


def monitoring_section(art: RunArtifacts) -> dict[str, Any] | None:
    """The monitoring block, or None when the run was not monitored."""
    history = _history(art)
    if history is None or history.current is None:
        return None
    primary = primary_metric(art)
    current = history.comparisons(primary)
    level = fmt.pct(current[0].cs_level, 1) if current else fmt.MISSING
    adjustment = adjustment_name(current[0].adjustment) if current else fmt.MISSING
    return {
        "metric": fmt.metric_label(primary),
        "look": history.current.look,
        "source": history.current.engagement_source,
        "history": [
            _look_row(look.look, look.computed_at, look.recipients, c)
            for look in history.looks
            for c in look.comparisons
            if c.metric == primary
        ],
        "current": [_current_row(c) for c in history.current.comparisons],
        "method": METHOD.format(tau=history.tau, adjustment=adjustment, level=level),
        "guide": GUIDE,
    }


def sequence_chart(art: RunArtifacts) -> str:
    """The primary metric's confidence sequence over looks, one panel per arm ("" if none)."""
    history = _history(art)
    if history is None or history.current is None:
        return ""
    primary = primary_metric(art)
    arms = [c.treatment_arm for c in history.comparisons(primary)]
    panels = []
    for arm in arms:
        rows = []
        for look in history.looks:
            record = look.comparison(primary, arm)
            if record is not None:
                latest = look is history.current
                rows.append(
                    charts.ForestRow(
                        f"look {look.look}",
                        record.estimate,
                        record.cs_lower,
                        record.cs_upper,
                        latest,
                    )
                )
        panels.append(charts.ForestPanel(arm, tuple(rows)))
    return charts.forest_chart(
        panels,
        xlabel=f"{fmt.metric_label(primary).lower()}: treatment - control (pp)",
        description="Difference from control at each look with its confidence sequence",
    )


def _history(art: RunArtifacts) -> Monitoring | None:
    """metrics.json's look history as records (None when not monitored)."""
    section = art.metrics.get("sequential")
    return None if section is None else Monitoring.from_dict(section)


def _look_row(
    look: int, computed_at: str, recipients: int, record: SequentialComparison
) -> dict[str, Any]:
    """One look of one arm on the primary metric."""
    return {
        "look": look,
        "at": computed_at[:16].replace("T", " "),
        "recipients": fmt.num(recipients),
        "arm": record.treatment_arm,
        "difference": fmt.pp(record.estimate),
        "sequence": fmt.interval(record.cs_lower, record.cs_upper),
        "p": fmt.pval(record.p_value),
        "p_adjusted": fmt.pval(record.p_value_adjusted),
        "significant": record.significant,
        "reason": record.reason,
    }


def _current_row(record: SequentialComparison) -> dict[str, Any]:
    """The current look's result on one metric and arm."""
    return {
        "metric": fmt.metric_label(record.metric),
        "primary": not record.exploratory,
        "arm": record.treatment_arm,
        "difference": fmt.pp(record.estimate),
        "sequence": fmt.interval(record.cs_lower, record.cs_upper),
        "level": fmt.pct(record.cs_level, 1),
        "p_adjusted": fmt.pval(record.p_value_adjusted),
        "adjustment": adjustment_name(record.adjustment),
        "significant": record.significant,
    }


def summary_sentences(art: RunArtifacts) -> list[str]:
    """The executive summary's sentence on the always-valid result (empty when not monitored)."""
    history = _history(art)
    if history is None or history.current is None:
        return []
    look = history.current.look
    records = history.comparisons(primary_metric(art))
    decided = [r for r in records if r.significant]
    if not decided:
        return [
            f"Monitored with always-valid inference: at look {look} no arm's confidence "
            "sequence excludes zero yet, so keep collecting; stopping now is safe but undecided."
        ]
    parts = [
        f"{r.treatment_arm} is {'better' if (r.estimate or 0) > 0 else 'worse'} than control "
        f"({fmt.interval(r.cs_lower, r.cs_upper)}, "
        f"always-valid adj. p {fmt.pval(r.p_value_adjusted)})"
        for r in decided
    ]
    return [
        f"Monitored with always-valid inference, at look {look}: "
        + "; ".join(parts)
        + ". This holds however many times the results were looked at."
    ]
