"""Turn a run's artifacts into the report's content (one dict per section).

Every number the report prints comes from an artifact (metrics.json first) or
is computed here from artifacts with a method the appendix names; nothing is
re-estimated silently. The templates only lay out what this module returns.
Cells that show a number from metrics.json carry its location (``key``) and
exact value so a reader (or a test) can check the report against the file.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any

from cpo.experiment import stats
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.explain import ExplainResult
from cpo.reporting.simulated import (
    PIPELINE_CHECK,
    TruthCheck,
    check_sentence,
    control_sentence,
    coverage_sentence,
    read_true_effects,
    true_effect_text,
    truth_checks,
)

CONTROL_ARM = "control"
HOLDOUT_ARM = "holdout"
DEFAULT_METRICS = ("open_rate", "click_rate", "conversion_rate", "click_to_open_rate")
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def source_anchor(document_id: str) -> str:
    """The HTML id of a document in the source list."""
    return "src-" + _ANCHOR_UNSAFE.sub("-", document_id)


# --------------------------------------------------------------------------
# Small accessors (artifacts may lack optional keys)
# --------------------------------------------------------------------------


def primary_metric(art: RunArtifacts) -> str:
    """The primary metric: metrics.json, else the config, else click_rate."""
    if art.metrics.get("primary_metric"):
        return str(art.metrics["primary_metric"])
    analysis = _config(art).get("experiment_config.yaml", {}).get("analysis", {})
    return str(analysis.get("primary_metric", "click_rate"))


def _config(art: RunArtifacts) -> dict[str, Any]:
    return art.manifest.get("config") or {}


def analysis_settings(art: RunArtifacts) -> dict[str, Any]:
    """The analysis section of the config snapshot (alpha, confidence, power...)."""
    return _config(art).get("experiment_config.yaml", {}).get("analysis", {}) or {}


def alpha(art: RunArtifacts) -> float:
    """Significance level: from the lift records, else the config, else 0.05."""
    for record in art.metrics.get("lift_analysis") or []:
        value = (record.get("statistical_significance") or {}).get("alpha")
        if value is not None:
            return float(value)
    return float(analysis_settings(art).get("alpha", 0.05))


def confidence(art: RunArtifacts) -> float:
    """Interval level from the config (0.95 by default)."""
    return float(analysis_settings(art).get("confidence_level", 0.95))


def metric_names(art: RunArtifacts) -> list[str]:
    """Metrics in display order: the primary first, then the others present."""
    primary = primary_metric(art)
    seen = [r.get("metric") for r in art.metrics.get("lift_analysis") or []]
    others = [m for m in DEFAULT_METRICS if m != primary and (m in seen or not seen)]
    others += [m for m in dict.fromkeys(seen) if m and m != primary and m not in others]
    return [primary, *others]


def is_simulated(art: RunArtifacts) -> bool:
    """True when metrics.json or engagement.csv says the engagement was simulated."""
    if str(art.metrics.get("engagement_source", "")).lower() == "simulated":
        return True
    column = art.engagement.get("engagement_source")
    return column is not None and column.astype(str).str.lower().eq("simulated").any()


def engagement_source(art: RunArtifacts) -> str:
    """The engagement source as recorded (metrics.json first)."""
    source = art.metrics.get("engagement_source")
    if source:
        return str(source)
    column = art.engagement.get("engagement_source")
    if column is not None and len(column):
        return ", ".join(sorted(column.astype(str).unique()))
    return "unknown"


def arm_tone(art: RunArtifacts, arm: str) -> str:
    """The tone of an arm (metrics.json, else the design)."""
    record = (art.metrics.get("arms") or {}).get(arm) or {}
    if record.get("tone"):
        return str(record["tone"])
    for entry in art.design.get("arms") or []:
        if entry.get("name") == arm:
            return str(entry.get("tone", ""))
    return "control" if arm == CONTROL_ARM else ""


def lift_records(block: dict[str, Any], metric: str | None = None) -> list[dict[str, Any]]:
    """Lift records of a metrics block (overall or one segment), optionally one metric."""
    records = block.get("lift_analysis") or []
    return [r for r in records if metric is None or r.get("metric") == metric]


def significance(record: dict[str, Any]) -> dict[str, Any]:
    """The statistical_significance block (empty dict when absent)."""
    return record.get("statistical_significance") or {}


def interval_of(block: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(lower, upper) of an interval record."""
    block = block or {}
    return block.get("lower"), block.get("upper")


def relative_interval(record: dict[str, Any]) -> tuple[float | None, float | None]:
    """Relative-lift interval in percent, whatever unit metrics.json used.

    The record's lift_percent is in percent; an interval given as a fraction
    (|bounds| well below the percent estimate's scale) is converted.
    """
    lower, upper = interval_of(significance(record).get("relative_confidence_interval"))
    unit = (significance(record).get("relative_confidence_interval") or {}).get("unit")
    if unit == "fraction":
        return _times(lower, 100), _times(upper, 100)
    return lower, upper


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def mde_for(art: RunArtifacts, metric: str, *, planned: bool = False) -> dict[str, Any] | None:
    """The MDE record of a metric.

    By default the analysis's (metrics.json ``power``: observed arm sizes and
    control rate), falling back to the design's; ``planned=True`` reads only
    the design's (experiment_design.json ``power``).
    """
    sources = (
        [art.design.get("power")]
        if planned
        else [art.metrics.get("power"), art.design.get("power")]
    )
    for power in sources:
        record = ((power or {}).get("metrics") or {}).get(metric)
        if isinstance(record, dict) and "mde_absolute" in record:
            return record
    return None


def cell(key: str, value: Any, text: str, note: str = "") -> dict[str, Any]:
    """A table cell that shows ``text`` for ``value`` found at ``key`` in metrics.json."""
    return {"key": key, "value": fmt.raw(value), "text": text, "note": note}


def lift_key(arm: str, metric: str, field: str, segment: str | None = None) -> str:
    """Location of a lift-record field: ``[segment:NAME:]lift:ARM:METRIC:FIELD``."""
    prefix = f"segment:{segment}:" if segment is not None else ""
    return f"{prefix}lift:{arm}:{metric}:{field}"


def arm_key(arm: str, field: str, segment: str | None = None) -> str:
    """Location of an arm field: ``[segment:NAME:]arm:ARM:FIELD``."""
    prefix = f"segment:{segment}:" if segment is not None else ""
    return f"{prefix}arm:{arm}:{field}"


# --------------------------------------------------------------------------
# 1. Executive summary
# --------------------------------------------------------------------------


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The treatment with the largest absolute lift (None when nothing is comparable)."""
    usable = [r for r in records if r.get("lift_absolute") is not None]
    return (
        max(usable, key=lambda r: (r["lift_absolute"], r.get("treatment_arm", "")))
        if usable
        else None
    )


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
        "recommendation": _recommendation(art, metric, best, winners, losers),
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
        block["true_effect"] = _truth_cell(truth.get(best["treatment_arm"]))
    return {
        "metric": metric,
        "best": block,
        "verdict": "simulated",
        "headline": _simulated_headline(art, metric, best, truth),
        "recommendation": _simulated_recommendation(art, metric),
        "cautions": _cautions(art),
        "key_numbers": key_numbers(art),
    }


def simulation_truth(art: RunArtifacts, metric: str) -> list[TruthCheck]:
    """Each arm's estimate of ``metric`` beside the simulator's true effect (simulated runs)."""
    if not is_simulated(art):
        return []
    return truth_checks(art.metrics, read_true_effects(art.run_dir), metric)


def _truth_cell(check: TruthCheck | None) -> dict[str, Any] | None:
    """The true effect as shown in a table: text, and whether the interval contains it."""
    if check is None or check.true_effect is None:
        return None
    return {"text": true_effect_text(check), "covered": check.covered}


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
        f"({fmt.pct(confidence(art), 0)} CI {fmt.interval(lower, upper, 'pp')}; "
        f"{_adjustment_name(sig.get('adjustment'))}-adjusted p = "
        f"{fmt.pval(sig.get('p_value_adjusted'))}){true_text}."
    )


def _simulated_recommendation(art: RunArtifacts, metric: str) -> list[str]:
    """In place of a recommendation: what a simulated run checks, and estimate against truth."""
    lines = [PIPELINE_CHECK]
    if _srm_mismatch(art):
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
    coverage = coverage_sentence(checks, confidence(art))
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
        "rel_ci": _percent_interval(rel_lower, rel_upper),
        "p_adjusted": cell(
            lift_key(arm, metric, "statistical_significance.p_value_adjusted"),
            sig.get("p_value_adjusted"),
            fmt.pval(sig.get("p_value_adjusted")),
        ),
        "adjustment": _adjustment_name(sig.get("adjustment")),
        "significant": bool(sig.get("significant")),
        "prob_beat_control": (record.get("bayesian") or {}).get("prob_beat_control"),
    }


def _percent_interval(lower: float | None, upper: float | None) -> str:
    if lower is None and upper is None:
        return fmt.MISSING
    low = fmt.signed_pct(lower) if lower is not None else "−∞"
    high = fmt.signed_pct(upper) if upper is not None else "+∞ (unbounded)"
    return f"{low} to {high}"


def _adjustment_name(code: Any) -> str:
    names = {
        "holm": "Holm",
        "benjamini-hochberg": "Benjamini–Hochberg",
        "bh": "Benjamini–Hochberg",
        "fdr_bh": "Benjamini–Hochberg",
        "none": "none",
    }
    return names.get(str(code).lower(), str(code)) if code else "none"


def _headline(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None, winners: list[dict[str, Any]]
) -> str:
    """One sentence with the primary result in plain words."""
    label = fmt.metric_label(metric).lower()
    a = alpha(art)
    if best is None:
        return f"No treatment arm could be compared with control on {label}."
    sig = significance(best)
    lower, upper = interval_of(sig.get("confidence_interval"))
    arm = best["treatment_arm"]
    numbers = (
        f"{fmt.pct(best.get('treatment_value'))} against {fmt.pct(best.get('control_value'))} "
        f"in control, a lift of {fmt.pp(best.get('lift_absolute'))} "
        f"({fmt.pct(confidence(art), 0)} CI {fmt.interval(lower, upper, 'pp')})"
    )
    adjusted = (
        f"{_adjustment_name(sig.get('adjustment'))}-adjusted p = "
        f"{fmt.pval(sig.get('p_value_adjusted'))}"
    )
    if winners:
        top = best_record(winners) or best
        arm = top["treatment_arm"]
        return (
            f"{arm} ({arm_tone(art, arm)}) beat control on {label} at the adjusted level "
            f"(α = {a:g}): {numbers}; {adjusted}."
        )
    return (
        f"No arm beat control on {label} at the adjusted level (α = {a:g}). The best observed "
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
    if _srm_mismatch(art):
        lines.append(
            "Do not act on these results yet: the arm sizes do not match the design "
            "(sample-ratio mismatch, see Data quality). Find the cause first."
        )
    if winners:
        top = best_record(winners)
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
            f"detected with {fmt.pct(_power_level(art), 0)} power; smaller true effects are "
            "likely to go unseen, so this result is not evidence that there is no effect."
        )
    elif mde and str(mde.get("reason") or "").startswith("unreachable"):
        n = mde.get("n_per_arm")
        size = f"about {float(n):,.0f}" if n is not None else "so few"
        text += (
            f" With {size} recipients per arm, no lift in {label}, however large, could be "
            f"detected with {fmt.pct(_power_level(art), 0)} power: the test was too small to "
            "tell anything."
        )
    elif mde and mde.get("reason"):
        text += f" The power could not be computed ({mde['reason']})."
    needed = next_sample_size(art, metric, best)
    if needed:
        text += " " + needed["sentence"]
    return text


def _power_level(art: RunArtifacts) -> float:
    power = (art.design.get("power") or {}).get("power")
    return float(power if power is not None else analysis_settings(art).get("power", 0.8))


def next_sample_size(
    art: RunArtifacts, metric: str, best: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Customers per arm needed to detect the observed (or planned) lift next time.

    The baseline is the observed control rate, or the power section's baseline
    (the design's) when the control rate is 0, 1 or missing.
    """
    if best is None:
        return None
    baseline = best.get("control_value")
    if baseline is None or not 0 < baseline < 1:
        baseline = (mde_for(art, metric) or {}).get("baseline")
    if baseline is None or not 0 < baseline < 1:
        return None
    baseline = float(baseline)
    observed = best.get("lift_absolute")
    planned = (art.design.get("power") or {}).get("expected_relative_lift")
    if observed is not None and 0 < observed < 1 - baseline:
        effect, basis = float(observed), "the observed lift"
    elif planned:
        effect, basis = baseline * float(planned), f"the planned {float(planned):.0%} relative lift"
    else:
        return None
    comparisons = max(1, len(lift_records(art.metrics, metric)))
    result = stats.n_for_effect(
        baseline, effect, alpha=alpha(art), power=_power_level(art), n_comparisons=comparisons
    )
    if result.n_per_arm_ceil is None:
        return None
    arms = comparisons + 1
    return {
        "n_per_arm": result.n_per_arm_ceil,
        "total": result.n_per_arm_ceil * arms,
        "effect": effect,
        "baseline": baseline,
        "basis": basis,
        "sentence": (
            f"To detect {basis} ({fmt.pp(effect)} on a baseline of {fmt.pct(baseline)}) with "
            f"{fmt.pct(_power_level(art), 0)} power, plan about {result.n_per_arm_ceil:,} "
            f"recipients per arm ({result.n_per_arm_ceil * arms:,} across {arms} arms; "
            f"α = {alpha(art):g} split over {comparisons} comparisons)."
        ),
    }


def _srm_mismatch(art: RunArtifacts) -> bool:
    return bool((art.metrics.get("srm") or {}).get("mismatch"))


def _cautions(art: RunArtifacts) -> list[str]:
    """Short flags shown beside the headline."""
    flags = []
    if is_simulated(art):
        flags.append("Simulated engagement")
    if _srm_mismatch(art):
        flags.append("Sample-ratio mismatch")
    if not art.audit.ok:
        flags.append("Audit chain broken")
    codes = {w.get("code") for w in art.metrics.get("warnings") or []}
    codes |= {w.get("code") for w in art.design.get("warnings") or []}
    if "underpowered" in codes:
        flags.append("Underpowered")
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


def recipients_frame(art: RunArtifacts):
    """Engagement rows of recipients (holdout rows, if any, removed)."""
    arms = art.engagement["experiment_arm"].astype(str)
    return art.engagement.loc[arms != HOLDOUT_ARM]


# --------------------------------------------------------------------------
# 2. Experiment design
# --------------------------------------------------------------------------


def design_section(art: RunArtifacts) -> dict[str, Any]:
    """Arms, allocation, expected and actual sizes, per-segment plan, power and MDE."""
    design = art.design
    expected = design.get("expected_counts") or {}
    actual = _recipients_per_arm(art)
    arms = [
        {
            "name": a.get("name"),
            "tone": a.get("tone"),
            "allocation": fmt.pct(a.get("allocation"), 1),
            "expected": fmt.num(expected.get(a.get("name"))),
            "actual": fmt.num(int(actual.get(a.get("name"), 0))),
        }
        for a in design.get("arms") or []
    ]
    arm_names = [a["name"] for a in arms]
    return {
        "method": design.get("assignment_method", "–"),
        "holdout_share": fmt.pct(design.get("holdout_share", 0.0), 1),
        "holdout_expected": fmt.num(expected.get(HOLDOUT_ARM, 0)),
        "tones": design.get("tones") or [],
        "arms": arms,
        "arm_names": arm_names,
        "segments": [_segment_plan(plan, arm_names) for plan in design.get("segments") or []],
        "power": _power_rows(art),
        "power_meta": _power_meta(art),
        "warnings": design.get("warnings") or [],
    }


def _recipients_per_arm(art: RunArtifacts) -> Any:
    """Recipients per arm, counted in engagement.csv or taken from metrics.json.

    An import of counts per arm leaves engagement.csv without rows; the sample
    sizes in metrics.json then come from engagement_counts.csv.
    """
    if art.engagement.empty:
        arms = art.metrics.get("arms") or {}
        return {name: int(arm.get("sample_size") or 0) for name, arm in arms.items()}
    return recipients_frame(art)["experiment_arm"].astype(str).value_counts()


def _segment_plan(plan: dict[str, Any], arm_names: list[str]) -> dict[str, Any]:
    shares = plan.get("shares") or {}
    expected = plan.get("expected_counts") or {}
    return {
        "segment": plan.get("segment"),
        "customers": fmt.num(plan.get("customers")),
        "cells": [
            f"{fmt.pct(shares[a], 0)} ({fmt.num(expected.get(a))})" if a in shares else "dropped"
            for a in arm_names
        ],
        "dropped": [
            {"arm": arm, "reason": info.get("reason") or info.get("code")}
            for arm, info in (plan.get("dropped") or {}).items()
        ],
    }


def _power_rows(art: RunArtifacts) -> list[dict[str, Any]]:
    """Per metric: the design's planned MDE and the MDE of the sample actually analysed."""
    rows = []
    for metric in metric_names(art):
        planned = mde_for(art, metric, planned=True) or {}
        observed = ((art.metrics.get("power") or {}).get("metrics") or {}).get(metric) or {}
        if not planned and not observed:
            continue
        rows.append(
            {
                "metric": fmt.metric_label(metric),
                "primary": metric == primary_metric(art),
                "planned_baseline": fmt.pct(planned.get("baseline"), 2),
                "planned_n": fmt.num(_round(_min_n(planned))),
                "planned_mde": fmt.pp(planned.get("mde_absolute")),
                "planned_mde_relative": fmt.rel(planned.get("mde_relative")),
                "observed_baseline": fmt.pct(observed.get("baseline"), 2),
                "observed_n": fmt.num(_round(observed.get("n_per_arm"))),
                "observed_mde": fmt.pp(observed.get("mde_absolute")),
                "observed_mde_relative": fmt.rel(observed.get("mde_relative")),
                "achieved_power": fmt.pct(observed.get("achieved_power"), 0),
                "underpowered": observed.get("underpowered"),
                "reason": planned.get("reason") or observed.get("reason") or "",
            }
        )
    return rows


def _min_n(record: dict[str, Any]) -> float | None:
    """Smallest per-arm n of an MDE record (its own, or over its arms)."""
    if record.get("n_per_arm") is not None:
        return record["n_per_arm"]
    values = [v.get("n_per_arm") for v in (record.get("by_arm") or {}).values()]
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _power_meta(art: RunArtifacts) -> dict[str, Any]:
    power = art.design.get("power") or {}
    return {
        "alpha": power.get("alpha", alpha(art)),
        "power": power.get("power", _power_level(art)),
        "alpha_per_comparison": power.get("alpha_per_comparison"),
        "n_comparisons": power.get("n_comparisons"),
        "adjustment": power.get("adjustment", ""),
        "method": power.get("method", ""),
        "expected_relative_lift": power.get("expected_relative_lift"),
    }


# --------------------------------------------------------------------------
# 3. Results by arm
# --------------------------------------------------------------------------


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
    row["lift_percent"]["note"] = _percent_interval(*relative_interval(record))
    prob_best = _field(record, "bayesian.prob_best")
    row["prob_beat"]["note"] = f"P(best) {fmt.prob(prob_best)}" if prob_best is not None else ""
    row.update(
        arm=arm,
        tone=arm_tone(art, arm),
        test=sig.get("test") or "not computed",
        adjustment=_adjustment_name(sig.get("adjustment")),
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
        row["true_effect"] = _truth_cell(truth.get(row["arm"]))
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
                    "adjustment": _adjustment_name(merged["adjustment"])
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


# --------------------------------------------------------------------------
# 4. Segment breakdown
# --------------------------------------------------------------------------


def segments_section(art: RunArtifacts) -> dict[str, Any]:
    """Per segment: size, best arm, and the primary metric's lifts (exploratory)."""
    metric = primary_metric(art)
    segments = []
    for entry in art.metrics.get("segment_breakdown") or []:
        name = str(entry.get("segment"))
        segments.append(
            {
                "segment": name,
                "sample_size": cell(
                    f"segment:{name}:sample_size",
                    entry.get("sample_size"),
                    fmt.num(entry.get("sample_size")),
                ),
                "best_arm": entry.get("best_performing_arm") or fmt.MISSING,
                "control_best": entry.get("best_performing_arm") == CONTROL_ARM,
                "best_tone": arm_tone(art, entry.get("best_performing_arm") or ""),
                "lift_percent": cell(
                    f"segment:{name}:lift_percent",
                    entry.get("lift_percent"),
                    fmt.signed_pct(entry.get("lift_percent")),
                ),
                "arms": arm_rows(art, entry, segment=name),
                "lifts": lift_rows(art, entry, metric, segment=name),
            }
        )
    return {"metric": metric, "label": fmt.metric_label(metric), "segments": segments}


# --------------------------------------------------------------------------
# 5. Data quality
# --------------------------------------------------------------------------


def quality_section(art: RunArtifacts, log_warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """Sample-ratio check, warnings from every stage, the engagement source."""
    srm = art.metrics.get("srm") or {}
    expected, observed = srm.get("expected"), srm.get("observed")
    arms = _srm_arms(art, expected, observed)
    return {
        "srm": {
            "method": srm.get("method", "–"),
            "p_value": cell("srm:p_value", srm.get("p_value"), fmt.pval(srm.get("p_value"))),
            "mismatch": srm.get("mismatch"),
            "reason": srm.get("reason") or "",
            "rows": [
                {
                    "arm": arm,
                    "expected": fmt.num(_round(_pick(expected, i, arm))),
                    "observed": fmt.num(_pick(observed, i, arm)),
                }
                for i, arm in enumerate(arms)
            ],
            "segments": _srm_segments(srm),
        },
        "warnings": _all_warnings(art, log_warnings),
        "source": engagement_source(art),
        "simulated": is_simulated(art),
        "engagement_rows": len(art.engagement),
        "holdout_rows": int((art.engagement["experiment_arm"].astype(str) == HOLDOUT_ARM).sum()),
        "unmatched": _unmatched_assignments(art),
    }


def _srm_arms(art: RunArtifacts, expected: Any, observed: Any) -> list[str]:
    for value in (observed, expected):
        if isinstance(value, dict):
            return list(value)
    arms = sorted(art.metrics.get("arms") or {})
    return arms


def _pick(values: Any, index: int, arm: str) -> Any:
    if isinstance(values, dict):
        return values.get(arm)
    if isinstance(values, list | tuple) and index < len(values):
        return values[index]
    return None


def _round(value: Any) -> Any:
    return round(value, 1) if isinstance(value, float) else value


def _srm_segments(srm: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-segment SRM records when metrics.json has them (list or dict)."""
    raw = srm.get("segments") or srm.get("by_segment") or []
    items = raw.items() if isinstance(raw, dict) else [(r.get("segment"), r) for r in raw]
    return [
        {
            "segment": name,
            "method": record.get("method", "–"),
            "p_value": fmt.pval(record.get("p_value")),
            "mismatch": record.get("mismatch"),
            "reason": record.get("reason") or "",
        }
        for name, record in items
        if isinstance(record, dict)
    ]


def _all_warnings(art: RunArtifacts, log_warnings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Analysis, design and stage warnings, each once."""
    seen, result = set(), []
    sources = (
        ("analysis", art.metrics.get("warnings") or []),
        ("design", art.design.get("warnings") or []),
        ("run log", log_warnings),
    )
    for origin, warnings in sources:
        for warning in warnings:
            message = str(warning.get("message", ""))
            if message and message not in seen:
                seen.add(message)
                result.append(
                    {"origin": origin, "code": str(warning.get("code", "")), "message": message}
                )
    return result


def _unmatched_assignments(art: RunArtifacts) -> int | None:
    """Recipients in engagement.csv without an assignment (None when no assignments.csv)."""
    if art.assignments is None or "customer_id" not in art.assignments.columns:
        return None
    assigned = art.assignments["customer_id"].astype(str).to_numpy(dtype=object)
    recipients = recipients_frame(art)["customer_id"].astype(str).to_numpy(dtype=object)
    return _count_missing(recipients, assigned)


def _count_missing(values: Any, known: Any) -> int:
    """How many entries of ``values`` do not occur in ``known`` (two 1-d object arrays).

    One hash pass (``pandas.factorize`` over both) and a boolean lookup: no
    Python loop over the ids, and far faster than ``Series.isin`` on string
    columns (1M ids: ~0.7 s against ~11 s).
    """
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(np.concatenate([known, values]))
    present = np.zeros(len(uniques), dtype=bool)
    present[codes[: len(known)]] = True
    return int(np.count_nonzero(~present[codes[len(known) :]]))


# --------------------------------------------------------------------------
# 6. Safety audit
# --------------------------------------------------------------------------


def safety_counts(art: RunArtifacts) -> dict[str, Any]:
    """Coverage and outcomes computed from the audit log against variants.json."""
    from cpo.safety.approval import final_decisions

    run_id = art.manifest.get("run_id")
    ids = [str(v["variant_id"]) for v in art.variants]
    latest: dict[str, dict[str, Any]] = {}
    for entry in art.audit.entries:
        if entry.get("kind") == "screening" and entry.get("run_id") == run_id:
            latest[entry["variant_id"]] = entry
    screened = [vid for vid in ids if vid in latest]
    statuses = Counter(latest[vid].get("status") for vid in screened)
    finals = final_decisions(art.audit.entries, run_id)
    return {
        "total": len(ids),
        "screened": len(screened),
        "coverage": len(screened) / len(ids) if ids else 0.0,
        "unscreened": [vid for vid in ids if vid not in latest],
        "passed": statuses.get("pass", 0),
        "review": statuses.get("review", 0),
        "blocked": statuses.get("block", 0),
        "latest": latest,
        "final": {vid: finals[vid].status for vid in ids if vid in finals},
    }


def safety_section(art: RunArtifacts) -> dict[str, Any]:
    """Coverage, outcomes, categories, reasons and the audit chain's status."""
    counts = safety_counts(art)
    recorded = art.manifest.get("safety") or {}
    variants = {str(v["variant_id"]): v for v in art.variants}
    rows = []
    for vid, entry in counts["latest"].items():
        variant = variants.get(vid, {})
        rows.append(
            {
                "variant_id": vid,
                "segment": entry.get("segment", variant.get("segment", "")),
                "tone": entry.get("tone", variant.get("tone", "")),
                "status": entry.get("status", ""),
                "final": counts["final"].get(vid, ""),
                "severities": entry.get("severities") or {},
                "reasons": "; ".join(entry.get("reasons") or []) or "–",
            }
        )
    manifest_coverage = recorded.get("coverage")
    return {
        **{
            k: counts[k] for k in ("total", "screened", "passed", "review", "blocked", "unscreened")
        },
        "coverage": fmt.pct(counts["coverage"], 0 if counts["coverage"] in (0, 1) else 1),
        "complete": counts["screened"] == counts["total"] and counts["total"] > 0,
        "manifest_coverage": manifest_coverage,
        "coverage_disagrees": manifest_coverage is not None
        and not math.isclose(float(manifest_coverage), counts["coverage"]),
        "by_category": recorded.get("by_category") or {},
        "by_reason": recorded.get("by_reason") or {},
        "backend": recorded.get("backend", ""),
        "chain_ok": art.audit.ok,
        "chain_message": art.audit.message,
        "entries": len(art.audit.entries),
        "head_hash": (recorded.get("audit") or {}).get("head_hash") or "",
        "rows": rows,
        "categories": sorted({c for r in rows for c in r["severities"]}),
    }


# --------------------------------------------------------------------------
# 7. Citations
# --------------------------------------------------------------------------


def source_index(art: RunArtifacts) -> dict[str, dict[str, Any]]:
    """document_id -> title, source_url and the paragraphs retrieved or cited."""
    sources: dict[str, dict[str, Any]] = {}
    for segment in (art.retrieval or {}).get("segments") or []:
        for result in segment.get("results") or []:
            doc = sources.setdefault(
                str(result.get("document_id")),
                {
                    "title": result.get("title", ""),
                    "url": result.get("source_url", ""),
                    "paragraphs": set(),
                },
            )
            doc["url"] = doc["url"] or result.get("source_url", "")
    for variant in art.variants:
        for citation in variant.get("citations") or []:
            doc = sources.setdefault(
                str(citation.get("document_id")),
                {"title": citation.get("title", ""), "url": "", "paragraphs": set()},
            )
            doc["paragraphs"].add(int(citation.get("paragraph_index", 0)))
    return sources


def variant_for(art: RunArtifacts, segment: str, arm: str) -> dict[str, Any] | None:
    """The variant an arm sent to a segment (design variant_ids, else segment + tone)."""
    if arm == CONTROL_ARM:
        return next((v for v in art.variants if v.get("tone") == "control"), None)
    for plan in art.design.get("segments") or []:
        if plan.get("segment") == segment and (plan.get("variant_ids") or {}).get(arm):
            vid = plan["variant_ids"][arm]
            return next((v for v in art.variants if v.get("variant_id") == vid), None)
    tone = arm_tone(art, arm)
    return next(
        (v for v in art.variants if v.get("segment") == segment and v.get("tone") == tone), None
    )


def citations_section(art: RunArtifacts) -> dict[str, Any]:
    """Documents cited most, and the documents behind the best variants per segment."""
    metric = primary_metric(art)
    sources = source_index(art)
    counts, variants_citing, segments_citing = Counter(), defaultdict(set), defaultdict(set)
    for variant in art.variants:
        if variant.get("status", "generated") == "failed":
            continue
        for citation in variant.get("citations") or []:
            doc = str(citation.get("document_id"))
            counts[doc] += 1
            variants_citing[doc].add(variant["variant_id"])
            segments_citing[doc].add(variant.get("segment", ""))
    best = best_variants(art, metric)
    best_docs = Counter(d for b in best for d in b["documents"])
    documents = [
        {
            "document_id": doc,
            "anchor": source_anchor(doc),
            "title": sources.get(doc, {}).get("title", ""),
            "citations": n,
            "variants": len(variants_citing[doc]),
            "segments": len(segments_citing[doc]),
            "in_best": best_docs.get(doc, 0),
        }
        for doc, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        "metric": metric,
        "label": fmt.metric_label(metric),
        "documents": documents,
        "best": best,
    }


def best_variants(art: RunArtifacts, metric: str) -> list[dict[str, Any]]:
    """Per segment, the best-performing arm's variant, its lift and the documents it cites."""
    rows = []
    for entry in art.metrics.get("segment_breakdown") or []:
        segment, arm = str(entry.get("segment")), entry.get("best_performing_arm")
        if not arm:
            continue
        variant = variant_for(art, segment, arm) or {}
        record = next((r for r in lift_records(entry, metric) if r.get("treatment_arm") == arm), {})
        lower, upper = interval_of(significance(record).get("confidence_interval"))
        rows.append(
            {
                "segment": segment,
                "arm": arm,
                "tone": arm_tone(art, arm),
                "variant_id": variant.get("variant_id", "–"),
                "rate": fmt.pct(record.get("treatment_value")),
                "lift": fmt.pp(record.get("lift_absolute")),
                "ci": fmt.interval(lower, upper, "pp"),
                "documents": sorted(
                    {str(c.get("document_id")) for c in variant.get("citations") or []}
                ),
            }
        )
    return rows


# --------------------------------------------------------------------------
# 8. Explainability (tables; charts are added by html.py)
# --------------------------------------------------------------------------


def explain_section(art: RunArtifacts, result: ExplainResult | None, note: str | None) -> dict:
    """Rankings, bins and regression terms ready for the template."""
    if result is None:
        return {"available": False, "note": note or "explainability was not computed"}
    regression = result.regression
    return {
        "available": True,
        "metric": result.metric,
        "label": fmt.metric_label(result.metric),
        "narrative": list(result.narrative),
        "n_treatment": fmt.num(result.n_treatment),
        "n_control": fmt.num(result.n_control),
        "treatment_arms": ", ".join(result.treatment_arms),
        "missing": result.missing_attributes,
        "ranking": [
            {
                "rank": r.rank,
                "label": r.label,
                "basis": "joint interaction Wald test"
                if r.basis == "interaction-wald"
                else "spread of bin lifts",
                "p": fmt.pval(r.p_value),
                "p_holm": fmt.pval(r.p_value_holm),
                "max_z": fmt.dec(r.max_abs_z, 2),
                "spread": fmt.pp(r.bin_spread).lstrip("+"),
                "best_bin": r.best_bin or "–",
                "worst_bin": r.worst_bin or "–",
            }
            for r in result.ranking
        ],
        "attributes": [
            {
                "key": spec.key,
                "label": spec.label,
                "bins": [_bin_row(b) for b in result.bins_for(spec.key)],
            }
            for spec in result.attributes
        ],
        "regression": {
            "fitted": regression.fitted,
            "reason": regression.reason or "",
            "n": fmt.num(regression.n),
            "events": fmt.num(regression.events),
            "parameters": regression.parameters,
            "epp": fmt.dec(regression.events_per_parameter, 1),
            "sampled_from": fmt.num(regression.sampled_from) if regression.sampled_from else "",
            "reference_tier": regression.reference_tier or "",
            "treatment": _term_row(regression.treatment_effect)
            if regression.treatment_effect
            else None,
            "terms": [_term_row(t) for t in regression.terms],
        },
    }


def _bin_row(b) -> dict[str, Any]:
    return {
        "bin": b.bin,
        "n_control": fmt.num(b.n_control),
        "n_treatment": fmt.num(b.n_treatment),
        "rate_control": fmt.pct(b.rate_control),
        "rate_treatment": fmt.pct(b.rate_treatment),
        "lift": fmt.pp(b.lift_absolute),
        "ci": fmt.interval(b.lower, b.upper, "pp"),
        "note": b.reason or "",
    }


def odds_ratio_text(log_odds: float) -> str:
    """exp(log_odds) with 3 significant digits; '> 1000' / '< 0.001' at the extremes."""
    if log_odds > math.log(1000):
        return "> 1000"
    if log_odds < math.log(0.001):
        return "< 0.001"
    return f"{math.exp(log_odds):.3g}"


def _term_row(t) -> dict[str, Any]:
    return {
        "term": t.term,
        "estimate": fmt.dec(t.estimate, 3),
        "ci": f"{t.lower:.3f} to {t.upper:.3f}",
        "odds_ratio": odds_ratio_text(t.estimate),
        "or_ci": f"{odds_ratio_text(t.lower)} to {odds_ratio_text(t.upper)}",
        "z": fmt.dec(t.z, 2),
        "p": fmt.pval(t.p_value),
    }
