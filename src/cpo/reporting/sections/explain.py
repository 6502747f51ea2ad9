"""Section 8, explainability: the moderator analysis of ``moderators.json``, laid out.

The analysis runs once, in the analyze stage (:mod:`cpo.experiment.moderators`
writes ``moderators.json``); the HTML, the PDF and the notebook read that file.
This module only formats its content for the template and the charts; it fits
nothing and imports no statistics library.
"""

from __future__ import annotations

import math
from typing import Any

from cpo.reporting import charts
from cpo.reporting import formatting as fmt

#: What the section says when the run folder has no moderators.json.
NO_ARTIFACT = (
    "this run folder has no moderators.json (written by the analyze stage of cpo run since "
    "the moderator analysis moved there); run the campaign again to get it"
)


def explain_section(moderators: dict[str, Any] | None) -> dict[str, Any]:
    """Rankings, bins and regression terms of ``moderators.json``, ready for the template.

    Args:
        moderators: The parsed ``moderators.json``, or None when the file is absent.
    """
    if moderators is None:
        return {"available": False, "note": NO_ARTIFACT}
    result = moderators.get("result")
    if not result:
        return {"available": False, "note": moderators.get("note") or "it was not computed"}
    return {
        "available": True,
        "metric": result["metric"],
        "label": fmt.metric_label(result["metric"]),
        "narrative": list(result["narrative"]),
        "n_treatment": fmt.num(result["n_treatment"]),
        "n_control": fmt.num(result["n_control"]),
        "treatment_arms": ", ".join(result["treatment_arms"]),
        "missing": result["missing_attributes"],
        "ranking": [_rank_row(r) for r in result["ranking"]],
        "attributes": [
            {
                "key": spec["key"],
                "label": spec["label"],
                "bins": [_bin_row(b) for b in bins_for(result, spec["key"])],
            }
            for spec in result["attributes"]
        ],
        "regression": _regression_view(result["regression"]),
    }


def bins_for(result: dict[str, Any], attribute: str) -> list[dict[str, Any]]:
    """The bins of one attribute in display order."""
    return sorted(
        (b for b in result["bins"] if b["attribute"] == attribute), key=lambda b: b["order"]
    )


def _rank_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "rank": r["rank"],
        "label": r["label"],
        "basis": "joint interaction Wald test"
        if r["basis"] == "interaction-wald"
        else "spread of bin lifts",
        "p": fmt.pval(r["p_value"]),
        "p_holm": fmt.pval(r["p_value_holm"]),
        "max_z": fmt.dec(r["max_abs_z"], 2),
        "spread": fmt.pp(r["bin_spread"]).lstrip("+"),
        "best_bin": r["best_bin"] or "–",
        "worst_bin": r["worst_bin"] or "–",
    }


def _regression_view(regression: dict[str, Any]) -> dict[str, Any]:
    parameters = regression["parameters"]
    effect = regression["treatment_effect"]
    return {
        "fitted": regression["fitted"],
        "reason": regression["reason"] or "",
        "n": fmt.num(regression["n"]),
        "events": fmt.num(regression["events"]),
        "parameters": parameters,
        "epp": fmt.dec(regression["events"] / parameters if parameters else None, 1),
        "sampled_from": fmt.num(regression["sampled_from"]) if regression["sampled_from"] else "",
        "reference_tier": regression["reference_tier"] or "",
        "treatment": _term_row(effect) if effect else None,
        "terms": [_term_row(t) for t in regression["terms"]],
    }


def _bin_row(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "bin": b["bin"],
        "n_control": fmt.num(b["n_control"]),
        "n_treatment": fmt.num(b["n_treatment"]),
        "rate_control": fmt.pct(b["rate_control"]),
        "rate_treatment": fmt.pct(b["rate_treatment"]),
        "lift": fmt.pp(b["lift_absolute"]),
        "ci": fmt.interval(b["lower"], b["upper"], "pp"),
        "note": b["reason"] or "",
    }


def odds_ratio_text(log_odds: float) -> str:
    """exp(log_odds) with 3 significant digits; '> 1000' / '< 0.001' at the extremes."""
    if log_odds > math.log(1000):
        return "> 1000"
    if log_odds < math.log(0.001):
        return "< 0.001"
    return f"{math.exp(log_odds):.3g}"


def _term_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "term": t["term"],
        "estimate": fmt.dec(t["estimate"], 3),
        "ci": f"{t['lower']:.3f} to {t['upper']:.3f}",
        "odds_ratio": odds_ratio_text(t["estimate"]),
        "or_ci": f"{odds_ratio_text(t['lower'])} to {odds_ratio_text(t['upper'])}",
        "z": fmt.dec(t["z"], 2),
        "p": fmt.pval(t["p_value"]),
    }


def bins_chart(moderators: dict[str, Any] | None) -> str:
    """Lift by bin of each attribute, one panel per attribute (the top-ranked in blue)."""
    result = (moderators or {}).get("result")
    if not result:
        return ""
    top = {r["attribute"] for r in result["ranking"][:1]}
    panels = [
        charts.ForestPanel(
            spec.get("short") or spec["label"],
            tuple(
                charts.ForestRow(
                    b["bin"], b["lift_absolute"], b["lower"], b["upper"], spec["key"] in top
                )
                for b in bins_for(result, spec["key"])
            ),
        )
        for spec in result["attributes"]
    ]
    return charts.forest_chart(
        panels,
        xlabel="treatment − control (pp)",
        description="Lift by bin of each customer attribute, with Newcombe intervals",
    )


def terms_chart(moderators: dict[str, Any] | None) -> str:
    """The regression's interaction estimates with their Wald intervals ("" when not fitted)."""
    result = (moderators or {}).get("result")
    if not result or not result["regression"]["fitted"]:
        return ""
    rows = tuple(
        charts.ForestRow(
            t["term"].removeprefix("treated:"),
            t["estimate"],
            t["lower"],
            t["upper"],
            t["p_value"] < 0.05,
        )
        for t in result["regression"]["terms"]
    )
    return charts.forest_chart(
        [charts.ForestPanel("Treatment × attribute interactions (log-odds ratio)", rows)],
        xlabel="change in the treatment log-odds ratio (0 = no moderation)",
        scale=1.0,
        columns=1,
        description="Interaction estimates of the logistic regression with Wald intervals",
    )
