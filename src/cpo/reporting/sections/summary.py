"""Section 1, the executive summary: the primary result in plain words, and what to do.

A simulated run gets no recommendation: the estimates beside the simulator's
true effects instead. The sample size the next test needs is read from
metrics.json (``next_test``, computed by :mod:`cpo.experiment.next_test`); nothing
here computes a statistic.
"""

from __future__ import annotations

from typing import Any

from cpo.experiment.next_test import best_comparison
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    adjustment_name,
    alpha_text,
    arm_tone,
    cell,
    confidence,
    engagement_source,
    interval_of,
    is_simulated,
    level_text,
    lift_key,
    lift_records,
    mde_for,
    percent_interval,
    power_level,
    primary_metric,
    recipients_frame,
    relative_interval,
    significance,
    simulation_truth,
    srm_mismatch,
    truth_cell,
)
from cpo.reporting.sections.cuped import decision_flag, decision_sentences
from cpo.reporting.sections.monitoring import summary_sentences
from cpo.reporting.sections.safety import safety_counts
from cpo.reporting.simulated import (
    PIPELINE_CHECK,
    TruthCheck,
    check_sentence,
    control_sentence,
    coverage_sentence,
    read_true_effects,
    true_effect_text,
)


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The treatment with the largest absolute lift (None when nothing is comparable)."""
    return best_comparison(records)


def executive_summary(art: RunArtifacts) -> dict[str, Any]:
    """Headline, recommendation and key numbers."""
    metric = primary_metric(art)
    records = lift_records(art.metrics, metric)
    best = best_record(records)
    winners = [
        r
        for r in records
        if significance(r).get("significant") and (r.get("lift_absolute") or 0) > 0
    ]
    losers = [
        r
        for r in records
        if significance(r).get("significant") and (r.get("lift_absolute") or 0) < 0
    ]
    if is_simulated(art):
        return _simulated_summary(art, metric, best)
    return {
        "metric": metric,
        "best": _best_block(art, best, metric) if best else None,
        "verdict": "winner" if winners else ("inconclusive" if best else "no-comparison"),
        "headline": _headline(art, metric, best, winners),
        "recommendation": [
            *_recommendation(art, metric, best, winners, losers),
            *decision_sentences(art),
            *summary_sentences(art),
        ],
        "cautions": _cautions(art),
        "key_numbers": key_numbers(art),
    }


def _simulated_summary(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None
) -> dict[str, Any]:
    """Simulated data never decides: no winner, no adopt/avoid advice, the truth beside it."""
    truth = {c.arm: c for c in simulation_truth(art, metric)}
    block = _best_block(art, best, metric) if best else None
    if block is not None and best is not None:
        block["true_effect"] = truth_cell(truth.get(best["treatment_arm"]))
    return {
        "metric": metric,
        "best": block,
        "verdict": "simulated",
        "headline": _simulated_headline(art, metric, best, truth),
        "recommendation": _simulated_recommendation(art, metric),
        "cautions": _cautions(art),
        "key_numbers": key_numbers(art),
    }


def _simulated_headline(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None, truth: dict[str, TruthCheck]
) -> str:
    """The headline of a simulated run: what the analysis estimated, beside the truth."""
    label = fmt.metric_label(metric).lower()
    if best is None:
        return f"Pipeline check on simulated engagement: no arm could be compared on {label}."
    arm = best["treatment_arm"]
    sig = significance(best)
    lower, upper = interval_of(sig.get("confidence_interval"))
    check = truth.get(arm)
    true_text = (
        f"; the simulator's true effect is {true_effect_text(check)}"
        if check and check.true_effect is not None
        else ""
    )
    return (
        f"Pipeline check on simulated engagement, no recommendation: the largest estimated "
        f"lift in {label} is {arm} ({arm_tone(art, arm)}) with {fmt.pp(best.get('lift_absolute'))} "
        f"({level_text(confidence(art))} CI {fmt.interval(lower, upper, 'pp')}; "
        f"{adjustment_name(sig.get('adjustment'))}-adjusted p = "
        f"{fmt.pval(sig.get('p_value_adjusted'))}){true_text}."
    )


def _simulated_recommendation(art: RunArtifacts, metric: str) -> list[str]:
    """In place of a recommendation: what a simulated run checks, and estimate against truth."""
    lines = [PIPELINE_CHECK]
    if srm_mismatch(art):
        lines.append(
            "The arm sizes do not match the design (sample-ratio mismatch, see Data quality): "
            "the pipeline has a problem to find before any real send."
        )
    checks = simulation_truth(art, metric)
    if checks and all(c.true_effect is None for c in checks):
        lines.append(
            "The simulator's true effects are not recorded in engagement_report.json (a run "
            "from an earlier cpo): rerun it to compare the estimates with them."
        )
        return lines
    lines += [check_sentence(c, arm_tone(art, c.arm)) for c in checks]
    control = control_sentence(art.metrics, read_true_effects(art.run_dir), metric)
    if control:
        lines.append(control)
    level = confidence(art)
    coverage = coverage_sentence(checks, level) if level is not None else None
    if coverage:
        lines.append(coverage)
    return lines


def _best_block(art: RunArtifacts, record: dict[str, Any], metric: str) -> dict[str, Any]:
    """Cells for the best arm's numbers (each traceable to metrics.json)."""
    arm = record["treatment_arm"]
    sig = significance(record)
    lower, upper = interval_of(sig.get("confidence_interval"))
    rel_lower, rel_upper = relative_interval(record)
    return {
        "arm": arm,
        "tone": arm_tone(art, arm),
        "control_value": cell(
            lift_key(arm, metric, "control_value"),
            record.get("control_value"),
            fmt.pct(record.get("control_value")),
        ),
        "treatment_value": cell(
            lift_key(arm, metric, "treatment_value"),
            record.get("treatment_value"),
            fmt.pct(record.get("treatment_value")),
        ),
        "lift_absolute": cell(
            lift_key(arm, metric, "lift_absolute"),
            record.get("lift_absolute"),
            fmt.pp(record.get("lift_absolute")),
        ),
        "ci": fmt.interval(lower, upper, "pp"),
        "lift_percent": cell(
            lift_key(arm, metric, "lift_percent"),
            record.get("lift_percent"),
            fmt.signed_pct(record.get("lift_percent")),
        ),
        "rel_ci": percent_interval(rel_lower, rel_upper),
        "p_adjusted": cell(
            lift_key(arm, metric, "statistical_significance.p_value_adjusted"),
            sig.get("p_value_adjusted"),
            fmt.pval(sig.get("p_value_adjusted")),
        ),
        "adjustment": adjustment_name(sig.get("adjustment")),
        "significant": bool(sig.get("significant")),
        "prob_beat_control": (record.get("bayesian") or {}).get("prob_beat_control"),
    }


def _headline(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None, winners: list[dict[str, Any]]
) -> str:
    """One sentence with the primary result in plain words."""
    label = fmt.metric_label(metric).lower()
    level = alpha_text(art)
    if best is None:
        return f"No treatment arm could be compared with control on {label}."
    sig = significance(best)
    lower, upper = interval_of(sig.get("confidence_interval"))
    arm = best["treatment_arm"]
    numbers = (
        f"{fmt.pct(best.get('treatment_value'))} against {fmt.pct(best.get('control_value'))} "
        f"in control, a lift of {fmt.pp(best.get('lift_absolute'))} "
        f"({level_text(confidence(art))} CI {fmt.interval(lower, upper, 'pp')})"
    )
    adjusted = (
        f"{adjustment_name(sig.get('adjustment'))}-adjusted p = "
        f"{fmt.pval(sig.get('p_value_adjusted'))}"
    )
    if winners:
        top = best_record(winners) or best
        arm = top["treatment_arm"]
        return (
            f"{arm} ({arm_tone(art, arm)}) beat control on {label} at the adjusted level "
            f"({level}): {numbers}; {adjusted}."
        )
    return (
        f"No arm beat control on {label} at the adjusted level ({level}). The best observed "
        f"arm, {arm} ({arm_tone(art, arm)}), had {numbers}; {adjusted}."
    )


def _recommendation(
    art: RunArtifacts,
    metric: str,
    best: dict[str, Any] | None,
    winners: list[dict[str, Any]],
    losers: list[dict[str, Any]],
) -> list[str]:
    """What to do, in proportion to the evidence and the power of the test."""
    label = fmt.metric_label(metric).lower()
    lines = []
    if srm_mismatch(art):
        lines.append(
            "Do not act on these results yet: the arm sizes do not match the design "
            "(sample-ratio mismatch, see Data quality). Find the cause first."
        )
    top = best_record(winners)
    if top is not None:
        lower, _ = interval_of(significance(top).get("confidence_interval"))
        lines.append(
            f"Use the {arm_tone(art, top['treatment_arm'])} variants for this audience, and keep "
            f"a control group in the next send to confirm the effect: the true lift in {label} "
            f"could be as small as {fmt.pp(lower)}."
        )
    elif best is not None:
        lines.append(_power_statement(art, metric, best))
    for record in losers:
        lines.append(
            f"{record['treatment_arm']} ({arm_tone(art, record['treatment_arm'])}) did "
            f"significantly worse than control on {label}; do not send it."
        )
    return lines


def _power_statement(art: RunArtifacts, metric: str, best: dict[str, Any]) -> str:
    """'The test could only detect lifts >= X; to detect the observed lift you need N per arm.'"""
    label = fmt.metric_label(metric).lower()
    mde = mde_for(art, metric)
    text = "Do not roll out a variant on this evidence."
    if mde and mde.get("mde_absolute") is not None:
        text += (
            f" With the arm sizes of this test, a lift in {label} had to be at least "
            f"{fmt.pp(mde['mde_absolute'])} ({fmt.rel(mde.get('mde_relative'))} relative) to be "
            f"detected with {level_text(power_level(art))} power; smaller true effects are "
            "likely to go unseen, so this result is not evidence that there is no effect."
        )
    elif mde and str(mde.get("reason") or "").startswith("unreachable"):
        n = mde.get("n_per_arm")
        size = f"about {float(n):,.0f}" if n is not None else "so few"
        text += (
            f" With {size} recipients per arm, no lift in {label}, however large, could be "
            f"detected with {level_text(power_level(art))} power: the test was too small to "
            "tell anything."
        )
    elif mde and mde.get("reason"):
        text += f" The power could not be computed ({mde['reason']})."
    needed = next_sample_size(art, metric, best)
    if needed:
        text += " " + needed["sentence"]
    return text


def next_sample_size(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The next test's size as the analysis recorded it (metrics.json ``next_test``).

    None when the run recorded none (nothing comparable, no usable baseline or
    effect, or an analysis older than the record) or it is for another metric.
    """
    recorded = art.metrics.get("next_test")
    if not recorded or best is None or recorded.get("metric") != metric:
        return None
    n, arms = int(recorded["n_per_arm"]), int(recorded["comparisons"]) + 1
    effect, baseline = float(recorded["effect"]), float(recorded["baseline"])
    planned = recorded.get("planned_relative_lift")
    basis = (
        "the observed lift"
        if recorded["basis"] == "observed"
        else f"the planned {float(planned or 0):.0%} relative lift"
    )
    return {
        "n_per_arm": n,
        "total": int(recorded["total"]),
        "effect": effect,
        "baseline": baseline,
        "basis": basis,
        "sentence": (
            f"To detect {basis} ({fmt.pp(effect)} on a baseline of {fmt.pct(baseline)}) with "
            f"{fmt.pct(float(recorded['power']), 0)} power, plan about {n:,} "
            f"recipients per arm ({n * arms:,} across {arms} arms; "
            f"α = {float(recorded['alpha']):g} split over {arms - 1} comparisons)."
        ),
    }


def _cautions(art: RunArtifacts) -> list[str]:
    """Short flags shown beside the headline."""
    flags = []
    if is_simulated(art):
        flags.append("Simulated engagement")
    if srm_mismatch(art):
        flags.append("Sample-ratio mismatch")
    if not art.audit.ok:
        flags.append("Audit chain broken")
    codes = {w.get("code") for w in art.metrics.get("warnings") or []}
    codes |= {w.get("code") for w in art.design.get("warnings") or []}
    if "underpowered" in codes:
        flags.append("Underpowered")
    cuped = decision_flag(art)
    if cuped:
        flags.append(cuped)
    waves = art.metrics.get("waves")
    if waves:
        flags.append(f"{waves['count']} adaptive waves: decide on the stratified estimate")
    return flags


def key_numbers(art: RunArtifacts) -> list[dict[str, Any]]:
    """The run at a glance."""
    safety = safety_counts(art)
    engagement = recipients_frame(art)
    arms = sorted(art.metrics.get("arms") or {})
    segments = {r.get("segment") for r in art.metrics.get("segment_breakdown") or []}
    customers = ((art.manifest.get("inputs") or {}).get("customers") or {}).get("valid")
    if customers is None:
        customers = art.design.get("total_customers")
    return [
        {"label": "Customers", "text": fmt.num(customers)},
        {
            "label": "Segments",
            "text": fmt.num(len(segments) or len(art.design.get("segments") or [])),
        },
        {"label": "Variants screened", "text": f"{safety['screened']} of {safety['total']}"},
        {"label": "Passed / review / blocked", "text": _safety_triplet(safety)},
        {"label": "Arms", "text": fmt.num(len(arms))},
        {
            "label": "Recipients analysed",
            "key": "total_customers",
            "value": fmt.raw(art.metrics.get("total_customers")),
            "text": fmt.num(art.metrics.get("total_customers", len(engagement))),
        },
        {"label": "Engagement", "text": engagement_source(art)},
        {"label": "Primary metric", "text": fmt.metric_label(primary_metric(art))},
    ]


def _safety_triplet(safety: dict[str, Any]) -> str:
    return f"{safety['passed']} / {safety['review']} / {safety['blocked']}"
