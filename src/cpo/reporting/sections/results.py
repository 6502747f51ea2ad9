"""Section 3, results by arm: counts, rates, lifts per metric and the stratified estimate."""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    CONTROL_ARM,
    adjustment_name,
    arm_key,
    arm_tone,
    cell,
    interval_of,
    is_simulated,
    lift_key,
    lift_records,
    metric_names,
    percent_interval,
    primary_metric,
    relative_interval,
    significance,
    simulation_truth,
    truth_cell,
)


def arm_rows(art: RunArtifacts, block: dict[str, Any], segment: str | None = None) -> list[dict]:
    """Per arm: counts and each metric with its Wilson interval (control first)."""
    arms = block.get("arms") or {}
    order = sorted(arms, key=lambda a: (a != CONTROL_ARM, a))
    rows = []
    for arm in order:
        record = arms[arm]
        counts = record.get("counts") or {}
        rates = []
        for metric in metric_names(art):
            value = (record.get("metrics") or {}).get(metric)
            lower, upper = interval_of((record.get("intervals") or {}).get(metric))
            rates.append(
                cell(
                    arm_key(arm, f"metrics.{metric}", segment),
                    value,
                    fmt.pct(value),
                    fmt.interval(lower, upper, "pct"),
                )
            )
        rows.append(
            {
                "arm": arm,
                "tone": record.get("tone") or arm_tone(art, arm),
                "counts": [
                    cell(
                        arm_key(arm, f"counts.{name}", segment),
                        counts.get(name),
                        fmt.num(counts.get(name)),
                    )
                    for name in ("sent", "opened", "clicked", "converted")
                ],
                "rates": rates,
            }
        )
    return rows


#: Lift-record fields shown in the lift tables: (row key, field path, formatter).
_LIFT_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("control", "control_value", fmt.pct),
    ("treatment", "treatment_value", fmt.pct),
    ("lift", "lift_absolute", fmt.pp),
    ("lift_percent", "lift_percent", fmt.signed_pct),
    ("p", "statistical_significance.p_value", fmt.pval),
    ("p_adj", "statistical_significance.p_value_adjusted", fmt.pval),
    ("prob_beat", "bayesian.prob_beat_control", fmt.prob),
    ("loss", "bayesian.expected_loss", fmt.loss),
)


def _field(record: dict[str, Any], dotted: str) -> Any:
    """A nested value by dotted path, None when any part is missing."""
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def lift_rows(
    art: RunArtifacts, block: dict[str, Any], metric: str, segment: str | None = None
) -> list[dict[str, Any]]:
    """Per treatment arm: the full comparison with control for one metric."""
    records = sorted(lift_records(block, metric), key=lambda r: r.get("treatment_arm", ""))
    return [_lift_row(art, record, metric, segment) for record in records]


def _lift_row(
    art: RunArtifacts, record: dict[str, Any], metric: str, segment: str | None
) -> dict[str, Any]:
    """One arm's cells (each traceable to metrics.json) with intervals as notes."""
    arm = record.get("treatment_arm", "")
    row: dict[str, Any] = {
        name: cell(
            lift_key(arm, metric, path, segment), _field(record, path), show(_field(record, path))
        )
        for name, path, show in _LIFT_FIELDS
    }
    sig = significance(record)
    row["lift"]["note"] = fmt.interval(*interval_of(sig.get("confidence_interval")), "pp")
    row["lift_percent"]["note"] = percent_interval(*relative_interval(record))
    prob_best = _field(record, "bayesian.prob_best")
    row["prob_beat"]["note"] = f"P(best) {fmt.prob(prob_best)}" if prob_best is not None else ""
    row.update(
        arm=arm,
        tone=arm_tone(art, arm),
        test=sig.get("test") or "not computed",
        adjustment=adjustment_name(sig.get("adjustment")),
        significant=bool(sig.get("significant")),
        reason=sig.get("reason") or "",
    )
    return row


def results_section(art: RunArtifacts) -> dict[str, Any]:
    """Tables of arms and lifts per metric, plus the stratified estimates."""
    metrics = metric_names(art)
    return {
        "metrics": [{"name": m, "label": fmt.metric_label(m)} for m in metrics],
        "primary": primary_metric(art),
        "arms": arm_rows(art, art.metrics),
        "lifts": [
            {
                "metric": m,
                "label": fmt.metric_label(m),
                "primary": m == primary_metric(art),
                "rows": _with_truth(art, lift_rows(art, art.metrics, m), m),
            }
            for m in metrics
        ],
        "stratified": stratified_rows(art),
        # Simulated runs show the simulator's true effect beside each estimate.
        "truth": is_simulated(art),
    }


def _with_truth(art: RunArtifacts, rows: list[dict[str, Any]], metric: str) -> list[dict]:
    """Add each arm's true effect (``None`` when not simulated or not recorded)."""
    truth = {c.arm: c for c in simulation_truth(art, metric)}
    for row in rows:
        row["true_effect"] = truth_cell(truth.get(row["arm"]))
    return rows


def stratified_rows(art: RunArtifacts) -> list[dict[str, Any]]:
    """CMH / Mantel–Haenszel rows from metrics.json's ``stratified`` block."""
    rows = []
    for metric, block in (art.metrics.get("stratified") or {}).items():
        if not isinstance(block, dict):
            continue
        entries = block.items() if _is_per_arm(block) else [("all treatments", block)]
        for arm, record in entries:
            # Flat records (p_value at the top) or nested (statistical_significance).
            merged = {**record, **significance(record)}
            lower, upper = interval_of(merged.get("confidence_interval"))
            if lower is None and upper is None:
                lower, upper = merged.get("lower"), merged.get("upper")
            rows.append(
                {
                    "metric": fmt.metric_label(metric),
                    "primary": metric == primary_metric(art),
                    "arm": arm,
                    "rd": fmt.pp(_first_present(merged, ("risk_difference", "estimate"))),
                    "ci": fmt.interval(lower, upper, "pp"),
                    "p": fmt.pval(merged.get("p_value")),
                    "p_adj": fmt.pval(merged.get("p_value_adjusted")),
                    "adjustment": adjustment_name(merged["adjustment"])
                    if merged.get("adjustment")
                    else "",
                    "note": merged.get("reason") or "",
                }
            )
    return rows


def _is_per_arm(block: dict[str, Any]) -> bool:
    return bool(block) and all(isinstance(v, dict) for v in block.values())


def _first_present(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None
