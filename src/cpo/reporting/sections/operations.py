"""Section 10, operationalization: how to scale, what to do next, and the risks.

Advice is derived from the run's numbers (power, sample-ratio check, safety
outcomes, segment sizes, cost) rather than written once for every run.
"""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    analysis_settings,
    is_simulated,
    lift_records,
    mde_for,
    primary_metric,
    significance,
)
from cpo.reporting.sections.design import design_section
from cpo.reporting.sections.safety import safety_counts
from cpo.reporting.sections.summary import best_record, next_sample_size
from cpo.run_folder import SENDS, SendListFile


def operations_section(art: RunArtifacts, send_list: SendListFile | None) -> dict[str, Any]:
    """How to scale, what to do next and the risks, from this run's numbers.

    Args:
        art: The run's artifacts.
        send_list: The send list the run wrote (``None``: none yet).
    """
    metric = primary_metric(art)
    records = lift_records(art.metrics, metric)
    best = best_record(records)
    winners = [
        r
        for r in records
        if significance(r).get("significant") and (r.get("lift_absolute") or 0) > 0
    ]
    return {
        "scale": _scale_points(art, send_list),
        "next": _next_steps(art, metric, best, winners),
        "risks": _risks(art),
    }


def _scale_points(art: RunArtifacts, send_list: SendListFile | None) -> list[str]:
    totals = art.manifest.get("totals") or {}
    generated = sum(1 for v in art.variants if v.get("tone") != "control")
    points = [
        f"Content cost grows with segments × tones, not with customers: this run wrote "
        f"{generated} variants plus the control with {fmt.num(totals.get('api_calls', 0))} API "
        f"calls (${float(totals.get('cost_usd', 0.0)):.2f}). A larger customer file reuses them.",
    ]
    if send_list is not None:
        points.append(_send_list_point(art, send_list))
    method = art.design.get("assignment_method")
    if method == "stratified_block":
        points.append(
            "Assignment was stratified blocks (exact balance within each segment). For an "
            "ongoing programme where customers join over time, switch to `hash` assignment so "
            "no customer changes arm when others are added."
        )
    elif method:
        points.append(f"Assignment method: {method} (deterministic from the experiment salt).")
    points.append(
        "The per-customer steps (segment, assign, simulate, aggregate) are columnar; the "
        "analysis works from per-arm, per-segment counts, so a warehouse or Spark job can "
        "feed it aggregates instead of rows."
    )
    return points


def _send_list_point(art: RunArtifacts, send_list: SendListFile) -> str:
    """What the send list holds, which form it was written in and why."""
    text = (
        f"{send_list.artifact.name} holds {send_list.row_count():,} messages ready for the "
        "email service; only screened-and-passed (or approved) content is in it."
    )
    recorded = (art.manifest.get("experiment") or {}).get("send_list") or {}
    if recorded.get("file") == send_list.artifact.name and recorded.get("reason"):
        text += f" Written as {send_list.format.upper()}: {recorded['reason']}."
    if send_list.compact:
        text += (
            " Each distinct message is stored once (zstd Parquet); "
            f"`cpo export-sends RUN_DIR` writes the same rows as {SENDS.name}."
        )
    return text


def _next_steps(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None, winners: list[dict[str, Any]]
) -> list[str]:
    steps = []
    label = fmt.metric_label(metric).lower()
    simulated = is_simulated(art)
    if simulated:
        # Simulated data never decides: no arm is adopted or avoided on it.
        steps.append(
            "Send for real and import the engagement (`cpo run --engagement FILE` or `cpo "
            "analyze FILE`): this run checked the pipeline, not the customers, so it names no "
            "message to adopt or avoid."
        )
    top = best_record(winners)
    if top is not None and not simulated:
        steps.append(
            f"Adopt {top['treatment_arm']} for the next send and keep a control group (e.g. 10%) "
            f"to confirm the lift in {label} holds outside this test."
        )
    needed = None if winners else next_sample_size(art, metric, best)
    if needed:
        customers = art.design.get("total_customers") or 0
        steps.append(
            needed["sentence"]
            + (
                f" This run had {customers:,} customers; the next test needs "
                f"{needed['total'] / customers:.1f}× as many, or fewer arms."
                if customers
                else ""
            )
        )
    pending = (art.manifest.get("safety") or {}).get("pending_review") or []
    if pending:
        steps.append(f"{len(pending)} variant(s) await review: `cpo approve RUN_DIR --by NAME`.")
    steps.append(
        "Treat the segment breakdown and the explainability section as hypotheses: test a "
        "targeted variant in its own pre-registered experiment before relying on it."
    )
    return steps


def _risks(art: RunArtifacts) -> list[str]:
    risks = []
    metric = primary_metric(art)
    if is_simulated(art):
        risks.append("Simulated engagement: every number in this report is illustrative.")
    srm = art.metrics.get("srm") or {}
    if srm.get("mismatch"):
        risks.append(
            f"Sample-ratio mismatch (p = {fmt.pval(srm.get('p_value'))}): assignment or "
            "delivery lost customers unevenly; results may be biased."
        )
    risks.extend(_power_risk(art, metric))
    safety = safety_counts(art)
    if safety["blocked"] or safety["review"]:
        dropped = sum(len(p["dropped"]) for p in design_section(art)["segments"])
        risks.append(
            f"{safety['blocked']} variant(s) blocked and {safety['review']} in review by the "
            f"safety screen; {dropped} segment × arm combination(s) were dropped and the "
            "allocation renormalized, so arms differ slightly in segment mix (the stratified "
            "estimate accounts for it)."
        )
    if metric == "open_rate" or "open_rate" in (art.metrics.get("secondary_metrics") or []):
        risks.append(
            "Open rates are inflated by mail privacy proxies (e.g. Apple Mail Privacy "
            "Protection pre-loads images); judge the campaign on clicks and conversions."
        )
    limit = analysis_settings(art).get("min_segment_size")
    small = _small_segments(art, int(limit)) if limit is not None else []
    if small:
        risks.append(
            f"Small segments (fewer than {limit} recipients per arm): "
            f"{', '.join(small)}; their breakdown is especially noisy."
        )
    if not art.audit.ok:
        risks.append(f"The safety audit log failed verification: {art.audit.message}.")
    risks.append(
        "Novelty and timing: one send measures one moment; effects can fade with repetition "
        "or differ by season."
    )
    return risks


def _power_risk(art: RunArtifacts, metric: str) -> list[str]:
    mde = mde_for(art, metric)
    planned = (art.design.get("power") or {}).get("expected_relative_lift")
    if mde is None or mde.get("mde_relative") is None or planned is None:
        return []
    if mde["mde_relative"] > planned:
        return [
            f"Underpowered: the smallest detectable relative lift in "
            f"{fmt.metric_label(metric).lower()} was {fmt.rel(mde['mde_relative'])}, larger "
            f"than the plausible {float(planned):.0%}; a null result is weak evidence of no effect."
        ]
    return []


def _small_segments(art: RunArtifacts, limit: int) -> list[str]:
    """Segments with an arm of fewer than ``limit`` recipients (the config's min_segment_size)."""
    small = []
    for entry in art.metrics.get("segment_breakdown") or []:
        sizes = [a.get("sample_size") or 0 for a in (entry.get("arms") or {}).values()]
        if sizes and min(sizes) < limit:
            small.append(str(entry.get("segment")))
    return small
