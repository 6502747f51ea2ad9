"""Regression adjustment (CUPED), a block of the results section.

Presents the ``regression_adjustment`` section of ``metrics.json`` (every
treatment-versus-control difference adjusted for pre-experiment covariates,
beside the unadjusted one, and which of the two the decision uses); nothing
is re-estimated here. A run analysed before the section existed shows nothing.
"""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import primary_metric

READING_GUIDE = (
    "How to read this: customers who opened and clicked a lot before the campaign tend to do "
    "so again, whichever message they get. That spread between customers is noise in an A/B "
    "test. The adjusted estimate subtracts the part of each customer's result that their own "
    "history predicts (a regression on the covariates listed, fitted in each arm), so the same "
    "recipients give a narrower interval. It estimates the same lift: the covariates were "
    "recorded before the campaign, so the message cannot have changed them, and with random "
    "assignment the adjustment removes noise, not effect. 'Variance reduction' is how much "
    "smaller the adjusted estimate's variance is (about the squared correlation between the "
    "history and the outcome); with weak covariates and small arms it can be zero or slightly "
    "negative, which is why the choice of estimate is fixed in the configuration beforehand "
    "rather than picked after seeing both."
)


def cuped_section(art: RunArtifacts) -> dict[str, Any] | None:
    """The regression-adjustment block, or None when metrics.json has no such section."""
    section = art.metrics.get("regression_adjustment")
    if not section:
        return None
    primary = primary_metric(art)
    rows = [_row(record, primary) for record in section.get("comparisons", [])]
    rows.sort(key=lambda row: not row["primary"])
    return {
        "decision": section.get("decision"),
        "used_for_decision": bool(section.get("used_for_decision")),
        "setting": section.get("setting"),
        "reason": section.get("reason"),
        "notes": list(section.get("notes") or []),
        "rows": rows,
        "method": section.get("method"),
        "relative_method": section.get("relative_method"),
        "missing_values": section.get("missing_values"),
        "guide": READING_GUIDE,
    }


def _row(record: dict[str, Any], primary: str) -> dict[str, Any]:
    """One treatment arm on one metric: unadjusted and adjusted side by side."""
    unadjusted, adjusted = record["unadjusted"], record["adjusted"]
    return {
        "metric": fmt.metric_label(record["metric"]),
        "primary": record["metric"] == primary,
        "arm": record["treatment_arm"],
        "covariates": ", ".join(record.get("covariates") or []) or fmt.MISSING,
        "n": fmt.num(record["n_control"] + record["n_treatment"]),
        "unadjusted": fmt.pp(unadjusted.get("difference")),
        "unadjusted_ci": fmt.interval(unadjusted.get("lower"), unadjusted.get("upper")),
        "adjusted": fmt.pp(adjusted.get("difference")),
        "adjusted_ci": fmt.interval(adjusted.get("lower"), adjusted.get("upper")),
        "relative": fmt.rel(record.get("relative_lift")),
        "relative_ci": fmt.interval(
            record.get("relative_lower"), record.get("relative_upper"), "rel"
        ),
        "p": fmt.pval(adjusted.get("p_value")),
        "p_adjusted": fmt.pval(record.get("p_value_adjusted")),
        "significant": record.get("significant"),
        "reduction": fmt.rel(record.get("variance_reduction")),
        "width_ratio": _width_ratio(unadjusted, adjusted),
        "reason": adjusted.get("reason"),
    }


def _width_ratio(unadjusted: dict[str, Any], adjusted: dict[str, Any]) -> str:
    """The adjusted interval's width as a share of the unadjusted one's, e.g. '97%'."""
    before, after = unadjusted.get("standard_error"), adjusted.get("standard_error")
    if not before or after is None:
        return fmt.MISSING
    return fmt.pct(after / before, 0)


def decision_flag(art: RunArtifacts) -> str | None:
    """The summary's caution flag when the decision uses the CUPED estimates, else None."""
    section = art.metrics.get("regression_adjustment") or {}
    return "Decided on CUPED-adjusted estimates" if section.get("used_for_decision") else None


def decision_sentences(art: RunArtifacts) -> list[str]:
    """The primary metric's CUPED-adjusted result per arm, for the summary's recommendation.

    Empty when the decision uses the unadjusted estimates. Each sentence gives
    the adjusted lift, its interval and adjusted p-value, and says when its
    verdict differs from the unadjusted comparison shown beside it.
    """
    section = art.metrics.get("regression_adjustment") or {}
    if not section.get("used_for_decision"):
        return []
    metric = primary_metric(art)
    plain = {
        r.get("treatment_arm"): r
        for r in art.metrics.get("lift_analysis") or []
        if r.get("metric") == metric
    }
    sentences = []
    for record in section.get("comparisons") or []:
        if record["metric"] != metric:
            continue
        adjusted = record["adjusted"]
        significance = (plain.get(record["treatment_arm"]) or {}).get("statistical_significance")
        unadjusted = (significance or {}).get("significant")
        differs = record["significant"] is not None and unadjusted is not None
        differs = differs and bool(record["significant"]) != bool(unadjusted)
        sentences.append(
            f"Adjusted for customers' history (CUPED, the estimate this campaign decides on): "
            f"{record['treatment_arm']} {fmt.pp(adjusted.get('difference'))} "
            f"(CI {fmt.interval(adjusted.get('lower'), adjusted.get('upper'))}), "
            f"Holm-adjusted p = {fmt.pval(record.get('p_value_adjusted'))}"
            + (
                f"; {'significant' if record['significant'] else 'not significant'}, unlike "
                "the unadjusted comparison above, so read the adjusted result"
                if differs
                else ""
            )
            + "."
        )
    return sentences
