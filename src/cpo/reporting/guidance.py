"""Sections 10 and 11: operationalization (scale, next steps, risks) and the appendix.

Advice is derived from the run's numbers (power, sample-ratio check, safety
outcomes, segment sizes, cost) rather than written once for every run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.context import (
    analysis_settings,
    best_record,
    design_section,
    is_simulated,
    lift_records,
    mde_for,
    next_sample_size,
    primary_metric,
    safety_counts,
    significance,
)

#: The config snapshot's key for prompt files (listed, not printed in full).
PROMPTS_KEY = "prompts"
#: Methods named in the appendix: (name, what it is used for, reference).
METHODS: tuple[tuple[str, str, str], ...] = (
    (
        "Wilson score interval",
        "interval of every rate (per arm, per segment, per attribute bin)",
        "Wilson (1927); Newcombe (1998a)",
    ),
    (
        "Newcombe hybrid score interval (method 10)",
        "interval of the absolute lift (difference of two rates)",
        "Newcombe (1998b), Stat Med 17:873–890",
    ),
    (
        "Koopman score ratio interval",
        "interval of the relative lift (ratio of two rates minus 1); "
        "unbounded when control has no events",
        "Koopman (1984); Fagerland, Lydersen & Laake (2015)",
    ),
    (
        "Pearson chi-square test without continuity correction / Fisher's exact test",
        "two-sided p-value of each treatment against control: chi-square when every expected "
        "cell is at least 5, otherwise Fisher's exact test (the test used is shown)",
        "Pearson (1900); Fisher (1935)",
    ),
    (
        "Holm step-down adjustment",
        "family-wise error control across the treatment arms for the primary metric",
        "Holm (1979)",
    ),
    (
        "Benjamini–Hochberg adjustment",
        "false discovery rate across secondary metrics and across segment breakdowns (exploratory)",
        "Benjamini & Hochberg (1995)",
    ),
    (
        "Cochran–Mantel–Haenszel test and Mantel–Haenszel risk difference (Sato variance)",
        "stratified overall estimate, because randomization is within segments",
        "Mantel & Haenszel (1959); Sato (1989)",
    ),
    (
        "Sample-ratio mismatch: chi-square goodness of fit / exact multinomial test",
        "arm sizes against the design (alert at p < 0.001); exact test when expected counts are "
        "below 5; an empty arm is always flagged",
        "Fabijan et al. (2019), KDD",
    ),
    (
        "Beta-binomial posterior, Beta(1, 1) prior",
        "probability each treatment beats control and the expected loss of choosing it",
        "Gelman et al., Bayesian Data Analysis",
    ),
    (
        "Power and minimum detectable effect (two-sample test of proportions)",
        "MDE per metric for the design's arm sizes, alpha split over the comparisons "
        "(Bonferroni); sample size for the next test",
        "R power.prop.test",
    ),
    (
        "Binomial GLM (logistic regression) with treatment × attribute interactions",
        "explainability: numeric attributes standardized, tier as dummies; Wald intervals; "
        "joint Wald test per attribute, Holm-adjusted across attributes",
        "statsmodels GLM; Peduzzi et al. (1996) on events per parameter",
    ),
)


def operations_section(art: RunArtifacts, sends_rows: int | None) -> dict[str, Any]:
    """How to scale, what to do next and the risks, from this run's numbers."""
    metric = primary_metric(art)
    records = lift_records(art.metrics, metric)
    best = best_record(records)
    winners = [
        r
        for r in records
        if significance(r).get("significant") and (r.get("lift_absolute") or 0) > 0
    ]
    return {
        "scale": _scale_points(art, sends_rows),
        "next": _next_steps(art, metric, best, winners),
        "risks": _risks(art),
    }


def _scale_points(art: RunArtifacts, sends_rows: int | None) -> list[str]:
    totals = art.manifest.get("totals") or {}
    generated = sum(1 for v in art.variants if v.get("tone") != "control")
    points = [
        f"Content cost grows with segments × tones, not with customers: this run wrote "
        f"{generated} variants plus the control with {fmt.num(totals.get('api_calls', 0))} API "
        f"calls (${float(totals.get('cost_usd', 0.0)):.2f}). A larger customer file reuses them.",
    ]
    if sends_rows is not None:
        points.append(
            f"sends.csv holds {sends_rows:,} messages ready for the email service; only "
            "screened-and-passed (or approved) content is in it."
        )
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
    if winners and not simulated:
        top = best_record(winners)
        steps.append(
            f"Adopt {top['treatment_arm']} for the next send and keep a control group (e.g. 10%) "
            f"to confirm the lift in {label} holds outside this test."
        )
    needed = next_sample_size(art, metric, best)
    if needed and not winners:
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
    if metric == "open_rate" or "open_rate" in {
        m for m in analysis_settings(art).get("secondary_metrics", [])
    }:
        risks.append(
            "Open rates are inflated by mail privacy proxies (e.g. Apple Mail Privacy "
            "Protection pre-loads images); judge the campaign on clicks and conversions."
        )
    small = _small_segments(art)
    if small:
        risks.append(
            "Small segments (fewer than "
            f"{analysis_settings(art).get('min_segment_size', 30)} recipients per arm): "
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


def _small_segments(art: RunArtifacts) -> list[str]:
    limit = int(analysis_settings(art).get("min_segment_size", 30))
    small = []
    for entry in art.metrics.get("segment_breakdown") or []:
        sizes = [a.get("sample_size") or 0 for a in (entry.get("arms") or {}).values()]
        if sizes and min(sizes) < limit:
            small.append(str(entry.get("segment")))
    return small


def _prompt_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt files of the snapshot: name, size, sha256 and first line (not the full text)."""
    prompts = config.get(PROMPTS_KEY) or {}
    rows = []
    for name, text in prompts.items():
        text = str(text)
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        rows.append(
            {
                "name": name,
                "chars": len(text),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "first_line": first if len(first) <= 90 else first[:89] + "…",
            }
        )
    return rows


def appendix_section(art: RunArtifacts) -> dict[str, Any]:
    """Methods, the configuration snapshot and a manifest summary."""
    manifest = art.manifest
    stages = [
        {
            "name": name,
            "status": record.get("status", ""),
            "duration": f"{record['duration_s']:.2f} s"
            if record.get("duration_s") is not None
            else "–",
            "summary": record.get("summary", ""),
        }
        for name, record in (manifest.get("stages") or {}).items()
    ]
    inputs = [
        {
            "name": name,
            "path": str(info.get("path", "")),
            "file": Path(str(info.get("path", ""))).name,
            "sha256": str(info.get("sha256", "")),
            "rows": info.get("rows"),
        }
        for name, info in (manifest.get("inputs") or {}).items()
        if isinstance(info, dict)
    ]
    return {
        "methods": [{"name": n, "use": u, "reference": r} for n, u, r in METHODS],
        "prompts": _prompt_rows(manifest.get("config") or {}),
        "config_yaml": yaml.safe_dump(
            {k: v for k, v in (manifest.get("config") or {}).items() if k != PROMPTS_KEY},
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,  # lists and maps of scalars inline: a shorter appendix
            width=120,
        ),
        "manifest": {
            "run_id": manifest.get("run_id", ""),
            "cpo_version": manifest.get("cpo_version", ""),
            "created_at": manifest.get("created_at", ""),
            "status": manifest.get("status", ""),
            "seed": manifest.get("seed"),
            "config_sha256": manifest.get("config_sha256", ""),
            "config_source": manifest.get("config_source", ""),
            "totals": manifest.get("totals") or {},
        },
        "inputs": inputs,
        "stages": stages,
    }
