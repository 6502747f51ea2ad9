"""The experiment analysis: sufficient statistics in, the ``metrics.json`` dict out.

Records are first reduced to counts per (arm, segment) by
:mod:`cpo.experiment.aggregate`; everything here works on those counts, so
the same analysis serves 500 rows in a notebook and billions aggregated by SQL.
The document (schema in ``docs/statistics.md``, "Analysis: from records to
metrics.json") holds, overall and per segment, every arm's counts and rates
with Wilson intervals; every treatment-versus-control lift with a Newcombe
interval for the difference, a score interval for the relative lift, a
chi-square or Fisher p-value adjusted for multiplicity and a Bayesian
readout; a stratified (CMH) estimate; the sample-ratio check; the power the
observed sample sizes give; and warnings.

Nothing here raises on degenerate counts: an empty arm, a control without
events or a single customer produce results with ``None`` values and a
``reason``, plus a warning. The output is valid JSON (no NaN or infinity) and
deterministic apart from ``computed_at``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cpo import run_folder
from cpo.experiment.aggregate import COUNT_COLUMNS, SufficientStatistics
from cpo.experiment.analysis_checks import make_warning, power_section, srm_section
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.comparisons import (
    BENJAMINI_HOCHBERG,
    HOLM,
    PROB_BEST_POINTS,
    adjust,
    bayes_records,
    compare,
    metric_definitions,
    prob_best,
    rate,
    rate_intervals,
    stratified_record,
)
from cpo.experiment.results import (
    SCHEMA_VERSION,
    AnalysisWarning,
    ArmSummary,
    BayesianResult,
    Comparison,
    Interval,
    MetricsDocument,
    PowerResult,
    SampleRatioCheck,
    SegmentResult,
    StratifiedComparison,
    json_safe,
)
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM
from cpo.logs import utc_now

__all__ = [
    "SCHEMA_VERSION",
    "AnalysisPlan",
    "analyze",
    "analyze_document",
    "json_safe",
    "plan_from_design",
]
SIMULATED = "simulated"
UNSPECIFIED_SOURCE = "unspecified"
ZERO_COUNTS: dict[str, int] = {**dict.fromkeys(COUNT_COLUMNS, 0), "clicked_without_open": 0}


@dataclass(frozen=True)
class AnalysisPlan:
    """What the analysis compares, and what it expects to see.

    Attributes:
        settings: The ``analysis`` section (metrics, alpha, confidence, ...).
        experiment_id: Stable identifier written to metrics.json.
        experiment_name: The campaign name.
        arms: Planned arms, control first (empty = the arms found in the data).
        tones: Arm -> tone (arms without a known tone are absent).
        allocation: Arm -> planned share of recipients (None = equal shares).
        segment_shares: Segment -> arm -> planned share within the segment.
        segment_order: Planned segment order (segments not listed follow, sorted).
        expected_from: Where the expected shares come from (for the SRM record).
        expected_relative_lift: The lift the experiment should detect (power).
        design_power: The design's power section, copied for comparison.
    """

    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    experiment_id: str = "experiment"
    experiment_name: str = "experiment"
    arms: tuple[str, ...] = ()
    tones: Mapping[str, str] = field(default_factory=dict)
    allocation: Mapping[str, float] | None = None
    segment_shares: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    segment_order: tuple[str, ...] = ()
    expected_from: str = "equal allocation"
    expected_relative_lift: float = 0.10
    design_power: Mapping[str, Any] | None = None

    @property
    def metrics(self) -> list[str]:
        """The primary metric, then the secondary metrics."""
        return [self.settings.primary_metric, *self.settings.secondary_metrics]


def plan_from_design(
    design: Mapping[str, Any],
    settings: AnalysisSettings,
    *,
    default_relative_lift: float = 0.10,
) -> AnalysisPlan:
    """An analysis plan from ``experiment_design.json``.

    Expected shares overall and per segment are the design's (holdout
    excluded, renormalized where a segment lost an arm). The planned lift for
    the power section is the design's ``power.expected_relative_lift`` (what
    the experiment was planned for), else ``default_relative_lift``.
    """
    arms = tuple(arm["name"] for arm in design.get("arms", []))
    segments = design.get("segments", [])
    power = design.get("power") or None
    lift = (power or {}).get("expected_relative_lift") or default_relative_lift
    name = str(design.get("experiment_name") or "experiment")
    return AnalysisPlan(
        settings=settings,
        experiment_id=design.get("experiment_id") or _experiment_id(name, design),
        experiment_name=name,
        arms=arms,
        tones={arm["name"]: arm.get("tone") for arm in design.get("arms", [])},
        allocation=dict(design.get("expected_shares") or design.get("allocation") or {}) or None,
        segment_shares={s["segment"]: dict(s.get("expected_shares") or {}) for s in segments},
        segment_order=tuple(s["segment"] for s in segments),
        expected_from=run_folder.EXPERIMENT_DESIGN.name,
        expected_relative_lift=float(lift),
        design_power=power,
    )


def _experiment_id(name: str, design: Mapping[str, Any]) -> str:
    """``<campaign-slug>-<first 12 hex of the salt's sha256>`` (stable across reruns)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "experiment"
    salt = str(design.get("salt_sha256") or "")
    return f"{slug}-{salt[:12]}" if salt else slug


# --------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------


def analyze(
    statistics: SufficientStatistics,
    plan: AnalysisPlan | None = None,
    *,
    engagement_source: str | None = None,
    extra_warnings: Sequence[Mapping[str, Any]] = (),
    computed_at: str | None = None,
) -> dict[str, Any]:
    """Analyse an experiment from its sufficient statistics.

    The dict form of :func:`analyze_document` (what ``metrics.json`` holds).

    Args:
        statistics: Counts per (arm, segment), see :mod:`cpo.experiment.aggregate`.
        plan: Arms, expected shares and settings (default: equal allocation
            over the arms found, default settings).
        engagement_source: ``simulated``, ``imported``, ...; default: the
            records' ``engagement_source`` column, else ``unspecified``.
        extra_warnings: ``{code, message}`` records from earlier steps (the
            engagement import), copied into ``warnings``.
        computed_at: Timestamp to record (default: now, UTC).

    Returns:
        The metrics dict (the content of ``metrics.json``), JSON-safe.
    """
    return analyze_document(
        statistics,
        plan,
        engagement_source=engagement_source,
        extra_warnings=extra_warnings,
        computed_at=computed_at,
    ).to_dict()


def analyze_document(
    statistics: SufficientStatistics,
    plan: AnalysisPlan | None = None,
    *,
    engagement_source: str | None = None,
    extra_warnings: Sequence[Mapping[str, Any]] = (),
    computed_at: str | None = None,
) -> MetricsDocument:
    """Analyse an experiment from its sufficient statistics, as frozen result records.

    Arguments as for :func:`analyze`.

    Returns:
        The :class:`~cpo.experiment.results.MetricsDocument`.
    """
    plan = plan or AnalysisPlan()
    run = _Analysis(statistics, plan)
    source = engagement_source or _source_of(statistics, run.warnings)
    sections = run.sections()
    warnings = _leading_warnings(source, statistics, run)
    own = {w["code"] for w in warnings + run.warnings}
    # Earlier steps' warnings are kept unless the analysis reports the same finding.
    warnings += [dict(w) for w in extra_warnings if w.get("code") not in own] + run.warnings
    return MetricsDocument(
        schema_version=SCHEMA_VERSION,
        experiment_id=plan.experiment_id,
        experiment_name=plan.experiment_name,
        computed_at=computed_at or utc_now(),
        engagement_source=source,
        primary_metric=plan.settings.primary_metric,
        secondary_metrics=tuple(plan.settings.secondary_metrics),
        alpha=plan.settings.alpha,
        confidence_level=plan.settings.confidence_level,
        control_arm=CONTROL_ARM,
        total_customers=run.total,
        **sections,
        warnings=tuple(AnalysisWarning.from_dict(json_safe(w)) for w in warnings),
    )


def _source_of(statistics: SufficientStatistics, warnings: list[dict[str, Any]]) -> str:
    """The engagement source recorded in the records (``mixed`` warns)."""
    sources = statistics.engagement_sources
    if not sources:
        return UNSPECIFIED_SOURCE
    if len(sources) == 1:
        return sources[0]
    warnings.append(
        make_warning(
            "mixed_sources",
            f"records mix engagement sources {list(sources)}; "
            "simulated and measured engagement should not be analysed together",
        )
    )
    return SIMULATED if SIMULATED in sources else "mixed"


def _leading_warnings(
    source: str, statistics: SufficientStatistics, run: _Analysis
) -> list[dict[str, Any]]:
    """Warnings that concern the whole document, shown first."""
    warnings = []
    if source == SIMULATED or SIMULATED in statistics.engagement_sources:
        warnings.append(
            make_warning(
                "simulated_data",
                "engagement is SIMULATED, not measured: these results describe the "
                "simulator's configured effects, not customers' behaviour",
            )
        )
    if run.holdout_rows:
        warnings.append(
            make_warning(
                "holdout_excluded",
                f"{run.holdout_rows} record(s) of the '{HOLDOUT_ARM}' arm were left out: the "
                "holdout receives no email, so it has no opens or clicks to compare",
            )
        )
    fixed = sum(c["clicked_without_open"] for c in run.overall.values())
    if fixed:
        warnings.append(
            make_warning(
                "click_without_open",
                f"{fixed} recipient(s) clicked without a recorded open; they are counted as "
                "opened (mail privacy proxies and image blocking hide opens)",
            )
        )
    return warnings


class _Analysis:
    """Holds the counts and builds each section of the document."""

    def __init__(self, statistics: SufficientStatistics, plan: AnalysisPlan) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.warnings: list[dict[str, Any]] = []
        table = statistics.table
        holdout = table["experiment_arm"] == HOLDOUT_ARM
        self.holdout_rows = int(table.loc[holdout, "sent"].sum())
        self.statistics = SufficientStatistics(
            table[~holdout].reset_index(drop=True), statistics.engagement_sources
        )
        self.data_arms = [a for a in self.statistics.arms if a != HOLDOUT_ARM]
        self.arms = _arm_order(plan.arms, self.data_arms)
        observed = self.statistics.by_arm()
        self.overall = {arm: observed.get(arm, dict(ZERO_COUNTS)) for arm in self.arms}
        self.total = sum(c["sent"] for c in self.overall.values())
        self.segments = _segment_order(plan.segment_order, self.statistics.segments)
        self.treatments = [a for a in self.arms if a != CONTROL_ARM]

    def sections(self) -> dict[str, Any]:
        """Every section after the header, as records, in schema order."""
        self._check_arms()
        arms = {arm: self._arm_record(arm, self.overall[arm]) for arm in self.arms}
        best = {m: prob_best(self.overall, m, self.settings) for m in self.plan.metrics}
        records = self._lift_analysis(self.overall, best=best)
        self._adjust_overall(records)
        lifts = tuple(Comparison.from_dict(json_safe(record)) for record in records)
        self._lift_warnings(lifts)
        segment_breakdown = self._segment_breakdown()
        return {
            "arms": arms,
            "lift_analysis": lifts,
            "bayesian": self._bayesian_summary(best),
            "stratified": self._stratified(),
            "segment_breakdown": segment_breakdown,
            "srm": self._srm_section(),
            "power": self._power_section(),
        }

    # ------------------------------------------------------------ arms

    def _arm_record(self, arm: str, counts: Mapping[str, int]) -> ArmSummary:
        """Counts, every metric's rate and its interval for one arm."""
        intervals = rate_intervals(counts, self.settings)
        return ArmSummary(
            arm_name=arm,
            tone=self.plan.tones.get(arm),
            sample_size=counts["sent"],
            counts={name: counts[name] for name in COUNT_COLUMNS},
            metrics={metric: rate(counts, metric) for metric in metric_definitions()},
            intervals={
                metric: Interval.from_dict(json_safe(found)) for metric, found in intervals.items()
            },
        )

    def _check_arms(self) -> None:
        """Warnings for missing, empty and unplanned arms, and zero counts."""
        planned = set(self.plan.arms)
        for arm in self.arms:
            counts = self.overall[arm]
            if arm not in self.data_arms:
                role = "the control arm" if arm == CONTROL_ARM else "planned"
                self.warnings.append(
                    make_warning(
                        "missing_arm",
                        f"arm '{arm}' ({role}) has no records; it is reported with zero counts"
                        + (
                            " and no comparison with control is possible"
                            if arm == CONTROL_ARM
                            else ""
                        ),
                        arm=arm,
                    )
                )
            elif counts["sent"] == 0:
                self.warnings.append(
                    make_warning("empty_arm", f"arm '{arm}' has no recipients", arm=arm)
                )
            elif planned and arm not in planned:
                self.warnings.append(
                    make_warning(
                        "unexpected_arm",
                        f"arm '{arm}' is in the records but not in the design; it is analysed, "
                        "and the sample-ratio check treats it as unplanned",
                        arm=arm,
                    )
                )
            zero = [
                m
                for m, (num, den) in metric_definitions().items()
                if counts[den] and not counts[num]
            ]
            if counts["sent"] and zero:
                self.warnings.append(
                    make_warning(
                        "zero_counts",
                        f"arm '{arm}' has no events for {', '.join(zero)} "
                        f"({counts['sent']} recipients)",
                        arm=arm,
                    )
                )

    # ------------------------------------------------------------ lifts

    def _lift_analysis(
        self,
        counts: Mapping[str, Mapping[str, int]],
        arms: Sequence[str] | None = None,
        best: Mapping[str, Mapping[str, float | None]] | None = None,
    ) -> list[dict[str, Any]]:
        """Lift records for every treatment arm and metric, primary metric first.

        ``best`` holds already computed probabilities of being best per metric.
        """
        control = counts.get(CONTROL_ARM, ZERO_COUNTS)
        treatments = [a for a in (arms or self.arms) if a != CONTROL_ARM]
        records = []
        for metric in self.plan.metrics:
            chances = best[metric] if best else prob_best(counts, metric, self.settings)
            arm_counts = [counts.get(arm, ZERO_COUNTS) for arm in treatments]
            bayes = bayes_records(metric, arm_counts, control, self.settings)  # all arms at once
            for arm, arm_count, bayesian in zip(treatments, arm_counts, bayes, strict=True):
                record = compare(metric, arm, arm_count, control, self.settings, bayesian)
                record["bayesian"]["prob_best"] = chances.get(arm)
                records.append(record)
        return records

    def _adjust_overall(self, lifts: list[dict[str, Any]]) -> None:
        """Holm across arms for the primary metric; BH across the secondary ones."""
        primary = [r for r in lifts if r["metric"] == self.settings.primary_metric]
        secondary = [r for r in lifts if r["metric"] != self.settings.primary_metric]
        adjust(primary, HOLM, self.settings.alpha)
        adjust(secondary, BENJAMINI_HOCHBERG, self.settings.alpha)
        for record in lifts:
            record["exploratory"] = record["metric"] != self.settings.primary_metric

    def _lift_warnings(self, lifts: Sequence[Comparison]) -> None:
        """control_rate_zero and test_not_computed, one warning per metric."""
        for metric in self.plan.metrics:
            records = [r for r in lifts if r.metric == metric]
            if not records:
                continue
            if records[0].control_value == 0:
                self.warnings.append(
                    make_warning(
                        "control_rate_zero",
                        f"control {metric} is 0: lift_percent and the relative lift are undefined "
                        "(null); read lift_absolute and its interval instead",
                        metric=metric,
                    )
                )
            untested = [r for r in records if r.significance.p_value is None]
            if untested:
                reasons = sorted({str(r.significance.reason) for r in untested})
                self.warnings.append(
                    make_warning(
                        "test_not_computed",
                        f"{metric}: no p-value for "
                        f"{', '.join(r.treatment_arm for r in untested)} "
                        f"({'; '.join(reasons)})",
                        metric=metric,
                    )
                )

    def _bayesian_summary(self, best: Mapping[str, Mapping[str, float | None]]) -> BayesianResult:
        """Probability of being best per metric over all arms."""
        return BayesianResult(
            method="beta-binomial posteriors; P(beat control) and expected loss by exact "
            "finite sums (Evan Miller's closed form), P(best) by Gauss-Legendre quadrature "
            "on panels between the posteriors' quantiles; deterministic "
            "(no Monte Carlo, so the result does not depend on a seed)",
            prior=tuple(self.settings.bayesian_prior),
            integration_points=PROB_BEST_POINTS,
            prob_best={metric: dict(arms) for metric, arms in best.items()},
        )

    # ------------------------------------------------------------ stratified

    def _stratified(self) -> dict[str, dict[str, StratifiedComparison]]:
        """CMH test and MH risk difference per metric and arm, segments as strata."""
        by_segment = {s: self.statistics.by_arm(s) for s in self.segments}
        section: dict[str, dict[str, Any]] = {}
        records = []
        for metric in self.plan.metrics:
            section[metric] = {}
            for arm in self.treatments:
                strata = [
                    (c.get(arm, ZERO_COUNTS), c.get(CONTROL_ARM, ZERO_COUNTS))
                    for c in by_segment.values()
                ]
                record = stratified_record(metric, arm, strata, self.settings)
                section[metric][arm] = record
                records.append(record)
        self._adjust_overall(records)
        return {
            metric: {arm: StratifiedComparison.from_dict(json_safe(r)) for arm, r in arms.items()}
            for metric, arms in section.items()
        }

    # ------------------------------------------------------------ segments

    def _segment_breakdown(self) -> tuple[SegmentResult, ...]:
        """Per-segment arms and lifts; exploratory, BH across all segment comparisons."""
        per_segment, all_lifts = [], []
        for segment in self.segments:
            counts = self.statistics.by_arm(segment)
            arms = self._segment_arms(segment, counts)
            full = {arm: counts.get(arm, dict(ZERO_COUNTS)) for arm in arms}
            lifts = self._lift_analysis(full, arms)
            for record in lifts:
                record["exploratory"] = True
            all_lifts += lifts
            per_segment.append((segment, full, lifts))
        adjust(all_lifts, BENJAMINI_HOCHBERG, self.settings.alpha)
        return tuple(
            self._segment_entry(
                segment, full, tuple(Comparison.from_dict(json_safe(r)) for r in lifts)
            )
            for segment, full, lifts in per_segment
        )

    def _segment_arms(self, segment: str, counts: Mapping[str, Any]) -> list[str]:
        """Arms planned in the segment (positive share) plus any observed there."""
        shares = self.plan.segment_shares.get(segment)
        planned = [a for a in self.arms if shares is None or shares.get(a, 0) > 0]
        if CONTROL_ARM not in planned:
            planned.insert(0, CONTROL_ARM)
        return [a for a in self.arms if a in planned or a in counts]

    def _segment_entry(
        self,
        segment: str,
        counts: Mapping[str, Mapping[str, int]],
        lifts: tuple[Comparison, ...],
    ) -> SegmentResult:
        """One segment's record (adds a ``small_segment`` warning for small arms)."""
        primary = self.settings.primary_metric
        rates = {arm: rate(c, primary) for arm, c in counts.items()}
        ranked = {arm: value for arm, value in rates.items() if value is not None}
        best = max(ranked, key=lambda arm: ranked[arm]) if ranked else None
        lift_percent = 0.0 if best == CONTROL_ARM else None
        for record in lifts:
            if record.metric == primary and record.treatment_arm == best:
                lift_percent = record.lift_percent
        small = {
            a: c["sent"] for a, c in counts.items() if c["sent"] < self.settings.min_segment_size
        }
        if small:
            self.warnings.append(
                make_warning(
                    "small_segment",
                    f"segment '{segment}': arm(s) "
                    + ", ".join(f"{a} ({n})" for a, n in small.items())
                    + f" have fewer than {self.settings.min_segment_size} recipients; "
                    "segment results are noisy and exploratory",
                    segment=segment,
                )
            )
        return SegmentResult(
            segment=segment,
            exploratory=True,
            sample_size=sum(c["sent"] for c in counts.values()),
            best_performing_arm=best,
            best_performing_metric=primary,
            lift_percent=lift_percent,
            arms={arm: self._arm_record(arm, c) for arm, c in counts.items()},
            lift_analysis=lifts,
        )

    # ------------------------------------------------------------ SRM and power

    def _srm_section(self) -> SampleRatioCheck:
        by_segment = {}
        for segment in self.segments:
            counts = self.statistics.by_arm(segment)
            arms = self._segment_arms(segment, counts)
            by_segment[segment] = {a: counts.get(a, ZERO_COUNTS)["sent"] for a in arms}
        observed = {arm: c["sent"] for arm, c in self.overall.items()}
        return SampleRatioCheck.from_dict(
            json_safe(srm_section(observed, by_segment, self.plan, self.warnings))
        )

    def _power_section(self) -> PowerResult:
        return PowerResult.from_dict(
            json_safe(power_section(self.overall, self.plan, self.warnings))
        )


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort ``treatment_2`` before ``treatment_10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _arm_order(planned: Sequence[str], observed: Sequence[str]) -> list[str]:
    """Control first, then planned arms in plan order, then unplanned ones (natural order)."""
    arms = [a for a in planned if a != HOLDOUT_ARM]
    arms += sorted((a for a in observed if a not in arms), key=_natural_key)
    return [CONTROL_ARM, *(a for a in arms if a != CONTROL_ARM)]


def _segment_order(planned: Sequence[str], observed: Sequence[str]) -> list[str]:
    """Planned segments that have records, in plan order, then the others sorted."""
    present = set(observed)
    ordered = [s for s in planned if s in present]
    return ordered + sorted(s for s in observed if s not in ordered)
