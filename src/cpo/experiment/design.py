"""The experiment design: arms, allocation, per-segment availability, expected counts, power.

Arms are ``control`` (the generic message) and one treatment arm per tone,
``treatment_1``, ``treatment_2``, ... in tone order. A customer in a treatment
arm receives their own segment's variant of that tone, so an arm is available in
a segment only when that segment's variant of the tone may be sent: it passed
screening (or was approved after review) and its text is the text that was
screened. When a segment's variant is blocked, awaiting review, rejected, failed
generation or missing, the segment's allocation is renormalized over its
remaining arms and the design records which arm was dropped and why. Without a
sendable control message there is no experiment, and the design refuses.

Expected counts per arm (overall and per segment) come from the same
apportionment the assignment uses, so the analysis can check the sample ratio
against them. The power section gives the minimum detectable effect per metric
for the design's sample sizes, with alpha divided by the number of treatment
comparisons (Bonferroni, via :func:`cpo.experiment.stats.mde_for_n`).

The design is pure: segment sizes, variants, screening decisions and settings in;
a :class:`Design` out. The ``assign`` stage reads the files and writes
``experiment_design.json`` from :meth:`Design.to_dict`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cpo.errors import StageError
from cpo.experiment import catalog, stats
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.settings import (
    CONTROL_ARM,
    HOLDOUT_ARM,
    ExperimentSettings,
    PowerSettings,
    treatment_arm_name,
)
from cpo.models import CONTROL_TONE, TONES, Variant

if TYPE_CHECKING:  # imported lazily: cpo.safety imports cpo.config, which imports this package
    from cpo.decisions import FinalDecision

CONTROL_VARIANT_ID = "control"


@dataclass(frozen=True)
class Arm:
    """One arm of the experiment.

    Attributes:
        name: ``control`` or ``treatment_<i>``.
        tone: ``control`` or the tone of the variants it sends.
        weight: Configured allocation share among recipients (sums to 1 over arms).
    """

    name: str
    tone: str
    weight: float


@dataclass(frozen=True)
class DroppedArm:
    """Why an arm is not available in a segment.

    Attributes:
        code: ``blocked``, ``review-pending``, ``rejected``, ``generation-failed``,
            ``not-screened``, ``content-changed`` or ``missing``.
        message: A sentence for people.
        variant_id: The variant that could not be sent (``None`` when missing).
    """

    code: str
    message: str
    variant_id: str | None = None


@dataclass(frozen=True)
class SegmentPlan:
    """The design inside one segment.

    Attributes:
        segment: Segment name.
        customers: Customers in the segment (holdout included).
        variant_ids: Arm -> variant sent to this segment, for available arms.
        shares: Arm -> share of the segment's recipients (renormalized, sums to 1).
        dropped: Arm -> why it is unavailable here.
        expected_counts: Arm (and ``holdout``) -> expected customers. Exact
            integers for ``stratified_block``; ``n * share`` for ``hash``.
    """

    segment: str
    customers: int
    variant_ids: dict[str, str]
    shares: dict[str, float]
    dropped: dict[str, DroppedArm]
    expected_counts: dict[str, float]

    @property
    def arms_available(self) -> list[str]:
        """Arms this segment's customers can be assigned to, in arm order."""
        return list(self.shares)


@dataclass(frozen=True)
class Design:
    """A complete experiment design (see the module docstring).

    Attributes:
        experiment_name: The campaign name.
        arms: Every arm, control first.
        holdout_share: Share of customers who receive nothing.
        method: ``stratified_block`` or ``hash``.
        salt: The experiment salt (never written out; only its sha256).
        segments: Per-segment plans, in segment order.
        power: The minimum detectable effect per metric (see :func:`design_power`).
        warnings: ``{code, message}`` records for people.
    """

    experiment_name: str
    arms: tuple[Arm, ...]
    holdout_share: float
    method: str
    salt: str
    segments: tuple[SegmentPlan, ...]
    power: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[dict[str, str], ...] = ()

    @property
    def arm_names(self) -> list[str]:
        """Arm names, control first."""
        return [arm.name for arm in self.arms]

    @property
    def salt_sha256(self) -> str:
        """sha256 of the salt: identifies it without revealing it."""
        return hashlib.sha256(self.salt.encode("utf-8")).hexdigest()

    def expected_counts(self) -> dict[str, float]:
        """Expected customers per arm and in the holdout, over all segments."""
        names = [*self.arm_names, HOLDOUT_ARM]
        totals = dict.fromkeys(names, 0.0)
        for plan in self.segments:
            for name, count in plan.expected_counts.items():
                totals[name] += count
        return {name: _tidy(totals[name]) for name in names}

    def expected_shares(self) -> dict[str, float]:
        """Each arm's expected share of all recipients (holdout excluded), for the SRM check."""
        counts = self.expected_counts()
        recipients = sum(counts[name] for name in self.arm_names)
        if recipients == 0:
            return dict.fromkeys(self.arm_names, 0.0)
        return {name: counts[name] / recipients for name in self.arm_names}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``experiment_design.json``."""
        return {
            "experiment_name": self.experiment_name,
            "assignment_method": self.method,
            "salt_sha256": self.salt_sha256,
            "holdout_share": self.holdout_share,
            "tones": [arm.tone for arm in self.arms if arm.name != CONTROL_ARM],
            "arms": [{"name": a.name, "tone": a.tone, "allocation": a.weight} for a in self.arms],
            "allocation": {arm.name: arm.weight for arm in self.arms},
            "total_customers": sum(plan.customers for plan in self.segments),
            "expected_counts": self.expected_counts(),
            "expected_shares": self.expected_shares(),
            "segments": [_plan_dict(plan, self.arm_names) for plan in self.segments],
            "power": self.power,
            "warnings": list(self.warnings),
        }


def _plan_dict(plan: SegmentPlan, arm_names: list[str]) -> dict[str, Any]:
    recipients = sum(v for k, v in plan.expected_counts.items() if k != HOLDOUT_ARM)
    return {
        "segment": plan.segment,
        "customers": plan.customers,
        "arms_available": plan.arms_available,
        "shares": plan.shares,
        "variant_ids": plan.variant_ids,
        "dropped": {
            arm: {"code": d.code, "reason": d.message, "variant_id": d.variant_id}
            for arm, d in plan.dropped.items()
        },
        "expected_counts": {k: _tidy(v) for k, v in plan.expected_counts.items()},
        "expected_shares": {
            arm: (plan.expected_counts.get(arm, 0) / recipients if recipients else 0.0)
            for arm in arm_names
        },
    }


def _tidy(value: float) -> float:
    """Integers as int (block designs), other values rounded for JSON."""
    return int(value) if float(value).is_integer() else round(float(value), 6)


# --------------------------------------------------------------------------
# Arms and allocation
# --------------------------------------------------------------------------


def build_arms(settings: ExperimentSettings, tones: Sequence[str]) -> tuple[Arm, ...]:
    """Control plus one treatment arm per tone, with normalized allocation weights.

    Raises:
        StageError: the allocation names an arm that the tones do not create.
    """
    names = [CONTROL_ARM, *(treatment_arm_name(i) for i in range(len(tones)))]
    raw = settings.allocation or dict.fromkeys(names, 1.0)
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise StageError(
            "assign",
            f"experiment.allocation names arm(s) {unknown}; with tones {list(tones)} "
            f"the arms are {names}",
            hint="remove those keys from experiment.allocation or add tones",
        )
    total = sum(raw.get(name, 0.0) for name in names)
    tone_of = {CONTROL_ARM: CONTROL_TONE, **{treatment_arm_name(i): t for i, t in enumerate(tones)}}
    return tuple(Arm(name, tone_of[name], raw.get(name, 0.0) / total) for name in names)


def resolve_tones(
    settings: ExperimentSettings, generation_tones: Sequence[str] | None
) -> list[str]:
    """The tones that become treatment arms: configured, else generated, else the defaults."""
    if settings.tones is not None:
        return list(settings.tones)
    if generation_tones:
        return list(generation_tones)
    return list(TONES)


def experiment_salt(settings: ExperimentSettings, campaign_name: str, seed: int) -> str:
    """The configured salt, or ``"<campaign>:<seed>"`` so a new seed re-randomizes."""
    return settings.salt if settings.salt is not None else f"{campaign_name}:{seed}"


# --------------------------------------------------------------------------
# Availability per segment
# --------------------------------------------------------------------------


def check_control(variants: Sequence[Variant], decisions: Mapping[str, FinalDecision]) -> Variant:
    """Return the control message, or fail: there is no experiment without it.

    Raises:
        StageError: the control is missing or may not be sent.
    """
    control = next((v for v in variants if v.variant_id == CONTROL_VARIANT_ID), None)
    if control is None:
        raise StageError(
            "assign",
            "variants.json has no control message (variant_id 'control')",
            hint="the generate stage writes it from prompts/control_message.txt; rerun the run",
        )
    problem = unavailable_reason(control, decisions)
    if problem is not None:
        raise StageError(
            "assign",
            f"the control message cannot be sent ({problem.code}): {problem.message}. "
            "There is no experiment without a control",
            hint="fix prompts/control_message.txt and start a new run, or approve it with "
            "`cpo approve RUN_DIR --by NAME` if it awaits review",
        )
    return control


def unavailable_reason(
    variant: Variant | None, decisions: Mapping[str, FinalDecision]
) -> DroppedArm | None:
    """Why ``variant`` may not be sent, or ``None`` when it may."""
    if variant is None:
        return DroppedArm("missing", "no variant was generated for this segment and tone")
    from cpo.decisions import may_send

    vid = variant.variant_id
    decision = decisions.get(vid)
    if variant.status == "failed":
        return DroppedArm("generation-failed", f"generation failed: {variant.error or ''}", vid)
    if decision is None:
        return DroppedArm("not-screened", "no screening decision in the audit log", vid)
    if decision.status == "block":
        return DroppedArm("blocked", "blocked by screening: " + "; ".join(decision.reasons), vid)
    if decision.status == "review-pending":
        return DroppedArm("review-pending", "in review and not approved", vid)
    if decision.status == "rejected":
        return DroppedArm("rejected", f"rejected by {decision.decided_by or 'a reviewer'}", vid)
    if not may_send(variant, decisions):
        return DroppedArm("content-changed", "the text differs from the screened text", vid)
    return None


def segment_availability(
    arms: Sequence[Arm],
    segment: str,
    variants: Sequence[Variant],
    decisions: Mapping[str, FinalDecision],
) -> tuple[dict[str, str], dict[str, DroppedArm]]:
    """Which arms a segment can use (arm -> variant id) and why the others cannot.

    Raises:
        StageError: two variants claim the same segment and tone.
    """
    by_key: dict[tuple[str, str], Variant] = {}
    for variant in variants:
        key = (variant.segment, variant.tone)
        if key in by_key and variant.segment == segment:
            raise StageError(
                "assign",
                f"variants.json has two variants for segment '{segment}' and tone "
                f"'{variant.tone}': {by_key[key].variant_id}, {variant.variant_id}",
            )
        by_key[key] = variant
    available: dict[str, str] = {}
    dropped: dict[str, DroppedArm] = {}
    for arm in arms:
        if arm.weight == 0:
            continue
        if arm.name == CONTROL_ARM:
            available[arm.name] = CONTROL_VARIANT_ID
            continue
        candidate = by_key.get((segment, arm.tone))
        problem = unavailable_reason(candidate, decisions)
        if problem is not None:
            dropped[arm.name] = problem
        elif candidate is not None:  # always, when there is no problem
            available[arm.name] = candidate.variant_id
    return available, dropped


# --------------------------------------------------------------------------
# Apportionment
# --------------------------------------------------------------------------


def apportion(total: int, weights: Sequence[float], tie_order: Sequence[int]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder).

    Every part is within one of its exact quota ``total * w / sum(w)``. Equal
    remainders go first to the group earliest in ``tie_order`` (a permutation of
    group indices), which the design derives from the salt and segment so that
    no arm systematically wins the spare customer across segments.
    """
    weight_sum = float(sum(weights))
    if total <= 0 or weight_sum <= 0:
        return [0] * len(weights)
    quotas = [total * w / weight_sum for w in weights]
    counts = [math.floor(q + 1e-9) for q in quotas]
    spare = total - sum(counts)
    rank = {group: position for position, group in enumerate(tie_order)}
    # Round remainders so float noise does not break ties between equal quotas.
    order = sorted(range(len(weights)), key=lambda i: (-round(quotas[i] - counts[i], 9), rank[i]))
    for index in order[:spare]:
        counts[index] += 1
    return counts


def tie_order(salt: str, segment: str, groups: Sequence[str]) -> list[int]:
    """A salted, deterministic permutation of group indices for tie-breaking."""
    keys = [hashlib.sha256(f"{salt}\0{segment}\0{g}".encode()).hexdigest() for g in groups]
    return sorted(range(len(groups)), key=lambda i: keys[i])


def plan_segment(
    segment: str,
    customers: int,
    arms: Sequence[Arm],
    available: dict[str, str],
    dropped: dict[str, DroppedArm],
    holdout_share: float,
    method: str,
    salt: str,
) -> SegmentPlan:
    """Renormalize the allocation over available arms and compute expected counts."""
    weights = {arm.name: arm.weight for arm in arms if arm.name in available}
    total = sum(weights.values())
    shares = {name: w / total for name, w in weights.items()}
    groups = [HOLDOUT_ARM, *shares]
    group_weights = [holdout_share, *((1 - holdout_share) * s for s in shares.values())]
    if method == "stratified_block":
        order = tie_order(salt, segment, groups)
        counts = apportion(customers, group_weights, order)
        expected = dict(zip(groups, (float(c) for c in counts), strict=True))
    else:
        expected = {g: customers * w for g, w in zip(groups, group_weights, strict=True)}
    expected = {name: expected.get(name, 0.0) for name in [*(a.name for a in arms), HOLDOUT_ARM]}
    return SegmentPlan(segment, customers, dict(available), shares, dict(dropped), expected)


# --------------------------------------------------------------------------
# The design
# --------------------------------------------------------------------------


def build_design(
    *,
    experiment_name: str,
    settings: ExperimentSettings,
    tones: Sequence[str],
    segment_sizes: Mapping[str, int],
    variants: Sequence[Variant],
    decisions: Mapping[str, FinalDecision],
    salt: str,
    analysis: AnalysisSettings,
    baselines: Mapping[str, float],
    reductions: Mapping[str, Mapping[str, Any]] | None = None,
) -> Design:
    """Build the design from segment sizes, variants and their final screening decisions.

    Args:
        experiment_name: Campaign name.
        settings: The ``experiment`` section.
        tones: Tones that become treatment arms, in order.
        segment_sizes: Customers per segment, in segment order.
        variants: Every variant, the control included.
        decisions: Final decision per variant id (see ``cpo.safety.sendable_variants``).
        salt: The experiment salt.
        analysis: The ``analysis`` section (alpha, power, primary metric).
        baselines: Baseline rate per metric (see :func:`estimate_baselines`).
        reductions: Expected CUPED variance reduction per metric
            (:func:`cpo.experiment.cuped.expected_reductions`); None = not planned for.

    Raises:
        StageError: the control message is missing or may not be sent.
    """
    check_control(variants, decisions)
    arms = build_arms(settings, tones)
    plans = []
    for segment, size in segment_sizes.items():
        available, dropped = segment_availability(arms, segment, variants, decisions)
        plans.append(
            plan_segment(
                segment,
                int(size),
                arms,
                available,
                dropped,
                settings.holdout_share,
                settings.assignment_method,
                salt,
            )
        )
    design = Design(
        experiment_name=experiment_name,
        arms=arms,
        holdout_share=settings.holdout_share,
        method=settings.assignment_method,
        salt=salt,
        segments=tuple(plans),
    )
    power = design_power(design, baselines, analysis, settings.power, reductions)
    warnings = [*availability_warnings(design), *power_warnings(power, analysis, settings.power)]
    return replace(design, power=power, warnings=tuple(warnings))


def availability_warnings(design: Design) -> list[dict[str, str]]:
    """Warnings for arms dropped in segments (renormalized) or everywhere."""
    warnings = []
    for plan in design.segments:
        for arm_name, dropped in plan.dropped.items():
            warnings.append(
                {
                    "code": "arm_dropped_in_segment",
                    "message": f"segment '{plan.segment}': {arm_name} dropped ({dropped.code}: "
                    f"{dropped.message}); its allocation is renormalized over "
                    f"{', '.join(plan.arms_available)}",
                }
            )
    for arm in design.arms:
        if arm.weight > 0 and not any(arm.name in p.shares for p in design.segments):
            warnings.append(
                {
                    "code": "arm_unavailable",
                    "message": f"{arm.name} ({arm.tone}) has no sendable variant in any segment; "
                    "it receives no customers",
                }
            )
    return warnings


# --------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------


def history_columns() -> list[str]:
    """The customer columns the baselines are estimated from (the counts' history columns)."""
    return sorted({c.history_column for c in catalog.COUNTS.values() if c.history_column})


def estimate_baselines(customers: pd.DataFrame, power: PowerSettings) -> dict[str, float]:
    """Baseline rate of every catalog metric: configured, else estimated from customer history.

    Each count's per-recipient baseline comes from the mean of its history
    column (opens: ``historical_open_rate``, clicks: ``historical_click_rate``)
    or, for conversions, clicks x ``conversion_per_click``; a metric's baseline
    is its numerator's over its denominator's (capped below 1). See
    :func:`cpo.experiment.catalog.count_baselines`.
    """
    means = {column: _mean_of(customers, column) for column in history_columns()}
    counts = catalog.count_baselines(power.baseline_rates, means, power.conversion_per_click)
    return catalog.metric_baselines(power.baseline_rates, counts)


def _mean_of(customers: pd.DataFrame, column: str) -> float | None:
    """Mean of a rate column; None when the column is missing, empty or all NaN."""
    if column not in customers or customers.empty:
        return None
    value = float(np.nanmean(customers[column].to_numpy(dtype=float)))
    return value if math.isfinite(value) else None


def design_power(
    design: Design,
    baselines: Mapping[str, float],
    analysis: AnalysisSettings,
    power_settings: PowerSettings,
    reductions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Minimum detectable effect per metric for the design's expected arm sizes.

    Each treatment arm is compared with control. Unequal arms are summarized by
    the equal-size equivalent ``n = 2 / (1/n_control + 1/n_treatment)`` (the
    harmonic mean, which gives the same variance of the difference). Alpha is
    divided by the number of treatment arms that receive customers
    (Bonferroni, conservative next to the Holm correction the analysis uses).
    A metric whose denominator is not every recipient (click-to-open: among
    openers) has its n scaled by the denominator's baseline share. A metric's
    MDE is the largest over the treatment arms.

    With ``reductions``, each metric also gets a ``cuped`` record: the MDE when
    the analysis adjusts for covariates that remove the expected share ``R`` of
    the variance (:func:`cuped_mde`).
    """
    counts = design.expected_counts()
    treatments = [a.name for a in design.arms if a.name != CONTROL_ARM and counts[a.name] > 0]
    comparisons = max(1, len(treatments))
    metrics: dict[str, Any] = {}
    for metric in catalog.metric_names():
        share = catalog.denominator_share(metric, baselines)
        per_arm = {}
        for arm in treatments:
            n_eq = _equivalent_n(counts[CONTROL_ARM], counts[arm]) * share
            per_arm[arm] = _mde_record(n_eq, baselines[metric], analysis, comparisons)
        metrics[metric] = _worst(metric, baselines[metric], per_arm)
        if reductions is not None and metric in reductions:
            metrics[metric]["cuped"] = cuped_mde(
                per_arm, baselines[metric], reductions[metric], analysis, comparisons
            )
    extra = {} if reductions is None else {"variance_reduction": analysis.variance_reduction}
    return {
        "alpha": analysis.alpha,
        "power": analysis.power,
        "n_comparisons": comparisons,
        "alpha_per_comparison": analysis.alpha / comparisons,
        "adjustment": "bonferroni",
        "primary_metric": analysis.primary_metric,
        "expected_relative_lift": power_settings.expected_relative_lift,
        "method": "R power.prop.test (two-sided, two-sample), solved for p2 > baseline",
        **extra,
        "metrics": metrics,
    }


def cuped_mde(
    per_arm: Mapping[str, Mapping[str, Any]],
    baseline: float,
    expected: Mapping[str, Any],
    analysis: AnalysisSettings,
    comparisons: int,
) -> dict[str, Any]:
    """The metric's MDE with CUPED: each arm's n divided by ``1 - R`` (R: expected reduction).

    Removing the share R of the outcome's variance is worth the same as
    ``1 / (1 - R)`` times the recipients, so the MDE is the unadjusted formula
    at the effective sample size.
    """
    reduction = float(expected.get("variance_reduction") or 0.0)
    adjusted = {
        arm: _mde_record(record["n_per_arm"] / (1 - reduction), baseline, analysis, comparisons)
        if reduction
        else dict(record)
        for arm, record in per_arm.items()
    }
    worst = _worst("", baseline, adjusted)
    return {
        "covariate": expected.get("covariate"),
        "rho": expected.get("rho"),
        "variance_reduction": reduction,
        "mde_absolute": worst["mde_absolute"],
        "mde_relative": worst["mde_relative"],
        "reason": worst["reason"] or expected.get("reason"),
        "method": expected.get("method"),
    }


def _equivalent_n(n_control: float, n_treatment: float) -> float:
    if n_control <= 0 or n_treatment <= 0:
        return 0.0
    return 2.0 / (1.0 / n_control + 1.0 / n_treatment)


def _mde_record(
    n_eq: float, baseline: float, analysis: AnalysisSettings, comparisons: int
) -> dict[str, Any]:
    result = stats.mde_for_n(
        n_eq if n_eq > 0 else 0.0, baseline, analysis.alpha, analysis.power, comparisons
    )
    return {
        "n_per_arm": round(n_eq, 3),
        "mde_absolute": result.mde_absolute,
        "mde_relative": result.mde_relative,
        "reason": result.reason,
    }


def _worst(metric: str, baseline: float, per_arm: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The metric's MDE: the largest over arms (an unreachable MDE dominates)."""
    solved = [r for r in per_arm.values() if r["mde_absolute"] is not None]
    unsolved = [r for r in per_arm.values() if r["mde_absolute"] is None]
    if unsolved or not per_arm:
        reason = unsolved[0]["reason"] if unsolved else "empty: no treatment arm has customers"
        return {
            "baseline": baseline,
            "mde_absolute": None,
            "mde_relative": None,
            "reason": reason,
            "by_arm": per_arm,
        }
    worst = max(solved, key=lambda r: r["mde_absolute"])
    return {
        "baseline": baseline,
        "mde_absolute": worst["mde_absolute"],
        "mde_relative": worst["mde_relative"],
        "reason": None,
        "by_arm": per_arm,
    }


def power_warnings(
    power: Mapping[str, Any], analysis: AnalysisSettings, settings: PowerSettings
) -> list[dict[str, str]]:
    """An ``underpowered`` warning when the primary metric's MDE exceeds the expected lift."""
    primary = analysis.primary_metric
    record = power["metrics"][primary]
    expected = settings.expected_relative_lift
    if record["mde_relative"] is None and (record["reason"] or "").startswith("empty"):
        message = "no treatment arm receives customers: there is nothing to compare with control"
        return [{"code": "no_treatment_arm", "message": message}]
    if record["mde_relative"] is None:
        message = (
            f"the experiment cannot reach power {analysis.power:g} on the primary metric "
            f"{primary} ({record['reason']}); any result will be inconclusive"
        )
        return [{"code": "underpowered", "message": message}]
    mde, with_cuped = record["mde_relative"], _cuped_clause(record, analysis)
    if with_cuped:
        mde = record["cuped"]["mde_relative"]
    if mde > expected:
        message = (
            f"underpowered: with these arm sizes the smallest lift in {primary} detectable "
            f"with power {analysis.power:g} at alpha {power['alpha_per_comparison']:.4g} per "
            f"comparison is {record['mde_relative']:.1%} relative "
            f"({record['mde_absolute']:.4f} absolute on a baseline of {record['baseline']:.4f})"
            f"{with_cuped}, "
            f"larger than the plausible lift of {expected:.0%} "
            "(experiment.power.expected_relative_lift); expect an inconclusive result "
            "unless the true effect is larger"
        )
        return [{"code": "underpowered", "message": message}]
    return []


def _cuped_clause(record: Mapping[str, Any], analysis: AnalysisSettings) -> str:
    """', or X% with the expected CUPED variance reduction ...' when the decision uses CUPED."""
    cuped = record.get("cuped")
    if analysis.variance_reduction != "cuped" or not cuped or not cuped["variance_reduction"]:
        return ""
    if cuped["mde_relative"] is None:
        return ""
    return (
        f", or {cuped['mde_relative']:.1%} with the {cuped['variance_reduction']:.1%} variance "
        f"reduction CUPED can be expected to give ({cuped['covariate']}, rho {cuped['rho']:.2f})"
    )
