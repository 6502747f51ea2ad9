"""Adaptive waves (shown in the results section only for a run of more than one wave).

Presents what ``waves.json`` (each wave's allocation, recipients and responses)
and the ``waves`` section of ``metrics.json`` (the wave-stratified estimate
beside the pooled one, and the holdout's incremental lift) recorded; nothing is
re-estimated here.
"""

from __future__ import annotations

from typing import Any

from cpo import run_folder
from cpo.reporting import charts
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import CONTROL_ARM

STRATIFIED_GUIDE = (
    "How to read this: every wave is its own randomized experiment, so each wave's "
    "treatment-minus-control difference is fair. The decision uses their average weighted "
    "by wave size. The pooled difference adds all waves together; it is shown for comparison "
    "only, because later waves gave more customers to the arms that were doing well, and if "
    "response rates changed between waves (a holiday, a new product) pooling mixes that change "
    "into the lift."
)
HOLDOUT_GUIDE = (
    "How to read this: the holdout customers were picked at random before wave 1 and never "
    "received the campaign, in any wave. Comparing everyone who was mailed (any arm, any wave) "
    "with them measures what the whole program added, not which message won. Conversion is "
    "the outcome compared, because it is the only one a customer without an email still has."
)
ALLOCATION_GUIDE = (
    "How to read this: wave 1 uses the planned allocation. Each later wave keeps control's "
    "share fixed and gives the rest to the treatment arms by top-two Thompson sampling: about "
    "half to the arm most likely to be best so far, the rest mostly to its closest challenger, "
    "and never less than the minimum share to any arm, so every arm keeps being measured."
)


def waves_section(art: RunArtifacts) -> dict[str, Any] | None:
    """The waves block of the results section, or None for a run of one wave."""
    plan = run_folder.read_waves(art.run_dir)
    section = art.metrics.get("waves")
    if plan is None or section is None:
        return None
    arms = list(plan["allocations"][0]["shares"])
    return {
        "count": plan["count"],
        "metric": fmt.metric_label(section["metric"]),
        "arms": arms,
        "allocations": [_allocation_row(a, arms) for a in plan["allocations"]],
        "settings": {
            "min_share": fmt.pct(plan.get("min_share"), 0),
            "beta": plan.get("top_two_beta"),
            "draws": fmt.num(plan.get("posterior_draws")),
        },
        "comparisons": [_comparison_row(c) for c in section["comparisons"]],
        "method": section["method"],
        "holdout": _holdout(section.get("holdout")),
        "guides": {
            "allocation": ALLOCATION_GUIDE,
            "stratified": STRATIFIED_GUIDE,
            "holdout": HOLDOUT_GUIDE,
        },
    }


def _allocation_row(allocation: dict[str, Any], arms: list[str]) -> dict[str, Any]:
    """One wave: its method, customers, and per arm share, recipients and P(best)."""
    shares = allocation.get("shares") or {}
    recipients = allocation.get("recipients") or {}
    leader = allocation.get("leader_probability") or {}
    return {
        "wave": allocation["wave"],
        "method": "planned allocation"
        if allocation.get("method") == "design"
        else "top-two Thompson",
        "customers": fmt.num(allocation.get("customers")),
        "holdout": fmt.num(allocation.get("holdout")),
        "cells": [
            {
                "share": fmt.pct(shares.get(arm), 1),
                "recipients": fmt.num(recipients.get(arm)),
                "leader": fmt.pct(leader[arm], 0) if arm in leader else "",
            }
            for arm in arms
        ],
    }


def _comparison_row(record: dict[str, Any]) -> dict[str, Any]:
    """One treatment arm: the stratified estimate beside the pooled one."""
    return {
        "arm": record["arm"],
        "difference": fmt.pp(record.get("difference")),
        "ci": fmt.interval(record.get("ci_lower"), record.get("ci_upper")),
        "relative": fmt.rel(record.get("relative_lift")),
        "p_adjusted": fmt.pval(record.get("p_value_adjusted")),
        "significant": record.get("significant"),
        "pooled": fmt.pp(record.get("pooled_difference")),
        "reason": record.get("reason"),
    }


def _holdout(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The program's incremental lift, formatted (None without a holdout)."""
    if record is None:
        return None
    return {
        "mailed": fmt.num(record.get("mailed")),
        "holdout": fmt.num(record.get("holdout")),
        "mailed_rate": fmt.pct(record.get("mailed_rate"), 2),
        "holdout_rate": fmt.pct(record.get("holdout_rate"), 2),
        "difference": fmt.pp(record.get("difference")),
        "ci": fmt.interval(record.get("ci_lower"), record.get("ci_upper")),
        "relative": fmt.rel(record.get("relative_lift")),
        "p": fmt.pval(record.get("p_value")),
        "source": record.get("engagement_source") or "not recorded",
        "reason": record.get("reason"),
    }


def allocation_chart(art: RunArtifacts) -> str:
    """Each wave's allocation as one stacked bar (empty for a run of one wave)."""
    plan = run_folder.read_waves(art.run_dir)
    if plan is None:
        return ""
    arms = list(plan["allocations"][0]["shares"])
    arms = [CONTROL_ARM, *(a for a in arms if a != CONTROL_ARM)] if CONTROL_ARM in arms else arms
    return charts.stacked_bar_chart(
        [f"wave {a['wave']}" for a in plan["allocations"]],
        arms,
        [[float(a["shares"].get(arm, 0.0)) for arm in arms] for a in plan["allocations"]],
        xlabel="share of the wave's recipients",
        description="Each wave's allocation of recipients to the arms",
    )
