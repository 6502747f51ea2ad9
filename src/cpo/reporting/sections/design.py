"""Section 2, the experiment design: arms, allocation, per-segment plan, power and MDE."""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    HOLDOUT_ARM,
    alpha,
    mde_for,
    metric_names,
    power_level,
    primary_metric,
    recipients_frame,
    round1,
)


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
        "cuped_note": _cuped_note(art),
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
                "planned_n": fmt.num(round1(_min_n(planned))),
                "planned_mde": fmt.pp(planned.get("mde_absolute")),
                "planned_mde_relative": fmt.rel(planned.get("mde_relative")),
                "planned_cuped": _planned_cuped(planned),
                "observed_baseline": fmt.pct(observed.get("baseline"), 2),
                "observed_n": fmt.num(round1(observed.get("n_per_arm"))),
                "observed_mde": fmt.pp(observed.get("mde_absolute")),
                "observed_mde_relative": fmt.rel(observed.get("mde_relative")),
                "achieved_power": fmt.pct(observed.get("achieved_power"), 0),
                "underpowered": observed.get("underpowered"),
                "reason": planned.get("reason") or observed.get("reason") or "",
            }
        )
    return rows


def _planned_cuped(planned: dict[str, Any]) -> str:
    """The planned relative MDE with the expected CUPED variance reduction ('' without one)."""
    cuped = planned.get("cuped") or {}
    if not cuped.get("variance_reduction") or cuped.get("mde_relative") is None:
        return ""
    return fmt.rel(cuped["mde_relative"])


def _cuped_note(art: RunArtifacts) -> str:
    """How the design planned for regression adjustment ('' when it did not)."""
    power = art.design.get("power") or {}
    if "variance_reduction" not in power:
        return ""
    used = power["variance_reduction"] == "cuped"
    return (
        "'With CUPED': the MDE if the analysis removes the share of variance that each "
        "metric's own history column (e.g. historical click rate) can explain, estimated from "
        "the customers as rho² = Var(x) / (x̄ (1 − x̄)), an upper bound that assumes a "
        "customer's history is their expected rate; it equals the MDE of 1 / (1 − rho²) times "
        "the recipients. "
        + (
            "The decision uses the adjusted estimates (analysis.variance_reduction: cuped)."
            if used
            else "The decision uses the unadjusted estimates (analysis.variance_reduction: none)."
        )
    )


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
        "power": power_level(art),
        "alpha_per_comparison": power.get("alpha_per_comparison"),
        "n_comparisons": power.get("n_comparisons"),
        "adjustment": power.get("adjustment", ""),
        "method": power.get("method", ""),
        "expected_relative_lift": power.get("expected_relative_lift"),
    }
