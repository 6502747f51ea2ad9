"""Moderator analysis: which customer attributes moderate the treatment effect.

Exploratory by design. Customers are randomized to arms but not to attributes,
so an attribute whose bins show different lifts tells us the effect *differed*
between those customers in this sample, not why. Two views are computed:

* **Lift by bin** of each attribute (tier, age band, recency band, purchase
  frequency band, historical engagement band): the rate in control and in the
  pooled treatment arms, each with a Wilson interval, and the difference with a
  Newcombe hybrid score interval (``cpo.experiment.stats``).
* **Logistic regression** (binomial GLM, logit link, :mod:`cpo.experiment.logit`) of the
  primary outcome on treatment, the standardized numeric attributes and tier
  dummies, plus the interaction of treatment with each of them. An interaction
  estimate is the change in the treatment log-odds ratio per standard deviation
  of the attribute (or for a tier against the reference tier). A model that
  cannot be fitted (no events, separation, non-convergence, too few rows) is
  reported with its reason, never as zeros.

Attributes are ranked by the joint Wald test of their interaction terms (Holm
adjusted across attributes); when the regression is unavailable the ranking
falls back to the spread of the bin lifts. The outcome of a metric (and the
recipients it is measured among) comes from the metric catalog
(:mod:`cpo.experiment.catalog`).

The ``analyze`` stage of ``cpo run`` computes this once per run and writes
``moderators.json`` (:class:`ModeratorsDocument`, see :func:`run_moderators`);
the HTML and PDF reports and the notebook read that file (:func:`read_moderators`)
instead of fitting the model again. :func:`explain_moderators` itself reads no
files: the caller passes the engagement records joined with the customer
attributes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import special

from cpo.experiment import catalog
from cpo.experiment.logit import LogitFit, PerfectPrediction, fit_logit
from cpo.experiment.results import json_safe
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM
from cpo.experiment.stats import holm, newcombe_difference_interval, wilson_interval
from cpo.run_folder import MODERATORS, read_versioned

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_COLUMNS",
    "AttributeRank",
    "AttributeSpec",
    "BinLift",
    "ExplainResult",
    "InteractionTerm",
    "ModeratorsDocument",
    "RegressionResult",
    "explain_moderators",
    "read_customer_attributes",
    "read_moderators",
    "run_moderators",
    "write_moderators",
]

#: Layout version of moderators.json written by this module.
SCHEMA_VERSION = MODERATORS.schema_version
#: The regression is fitted on at most this many rows (a seeded sample above it).
MAX_REGRESSION_ROWS = 200_000
#: Fewer events than this per model parameter makes estimates unstable (Peduzzi et al. 1996).
EVENTS_PER_PARAMETER = 10
#: Bins with fewer units than this in either arm do not count for the bin-lift spread.
MIN_BIN_UNITS = 10
#: A coefficient this large on the logit scale means (quasi-)separation.
SEPARATION_COEFFICIENT = 15.0
_TIER_ORDER = ("bronze", "silver", "gold", "platinum", "diamond")


@dataclass(frozen=True)
class AttributeSpec:
    """How one customer attribute is binned and modelled.

    Attributes:
        key: Stable id used in the report (``tier``, ``age_band``, ...).
        label: Human name.
        column: Customer-file column it is computed from.
        kind: ``"categorical"`` (levels as they are), ``"fixed"`` (``edges``)
            or ``"quantile"`` (quartiles of the data).
        edges: Left-closed bin edges for ``"fixed"``.
        unit: Suffix for bin labels (e.g. ``" d"``).
        short: Short name for chart titles (the label when empty).
    """

    key: str
    label: str
    column: str
    kind: str
    edges: tuple[float, ...] = ()
    unit: str = ""
    short: str = ""

    @property
    def title(self) -> str:
        """The short name when there is one, else the label."""
        return self.short or self.label


ATTRIBUTES: tuple[AttributeSpec, ...] = (
    AttributeSpec("tier", "Loyalty tier", "tier", "categorical"),
    AttributeSpec("age_band", "Age band", "age", "fixed", (18, 25, 35, 45, 55, 65)),
    AttributeSpec(
        "recency_band",
        "Recency band (days since last engagement)",
        "last_engagement_days",
        "fixed",
        (0, 31, 61, 91, 181),
        " d",
        "Days since last engagement",
    ),
    AttributeSpec(
        "frequency_band",
        "Purchase frequency band (purchases a year)",
        "purchase_frequency",
        "quantile",
        short="Purchases a year",
    ),
    AttributeSpec(
        "engagement_band",
        "Historical engagement band (historical click rate)",
        "historical_click_rate",
        "quantile",
        short="Historical click rate",
    ),
)


@dataclass(frozen=True)
class BinLift:
    """Control and treatment rates in one bin of one attribute.

    Attributes:
        attribute: Attribute key.
        bin: Bin label.
        order: Position of the bin (for sorting).
        n_control: Control customers in the bin.
        n_treatment: Treated customers in the bin.
        events_control: Control customers with the outcome.
        events_treatment: Treated customers with the outcome.
        rate_control: Control rate (None when empty).
        rate_treatment: Treatment rate (None when empty).
        rate_control_lower / rate_control_upper: Wilson interval of the control rate.
        rate_treatment_lower / rate_treatment_upper: Wilson interval of the treatment rate.
        lift_absolute: Treatment minus control rate (None when an arm is empty).
        lower: Newcombe lower bound of the difference.
        upper: Newcombe upper bound of the difference.
        reason: Why a value is missing, else None.
    """

    attribute: str
    bin: str
    order: int
    n_control: int
    n_treatment: int
    events_control: int
    events_treatment: int
    rate_control: float | None
    rate_treatment: float | None
    rate_control_lower: float | None
    rate_control_upper: float | None
    rate_treatment_lower: float | None
    rate_treatment_upper: float | None
    lift_absolute: float | None
    lower: float | None
    upper: float | None
    reason: str | None = None


@dataclass(frozen=True)
class InteractionTerm:
    """One treatment × attribute coefficient of the logistic regression.

    Attributes:
        attribute: Attribute key the term belongs to.
        term: Column name, e.g. ``"treated:age (per SD)"`` or ``"treated:tier=Gold"``.
        estimate: Coefficient (change of the treatment log-odds ratio).
        lower: Lower Wald confidence bound.
        upper: Upper Wald confidence bound.
        z: Wald z statistic.
        p_value: Two-sided Wald p-value (unadjusted).
    """

    attribute: str
    term: str
    estimate: float
    lower: float
    upper: float
    z: float
    p_value: float


@dataclass(frozen=True)
class RegressionResult:
    """The treatment × attributes logistic regression, or why it was not fitted.

    Attributes:
        fitted: True when estimates are available.
        reason: Why not (or a caution when fitted), else None.
        n: Rows used.
        events: Rows with the outcome.
        parameters: Number of model parameters.
        sampled_from: Rows before sampling, when a sample was used.
        treatment_effect: The treatment main effect (log-odds ratio at average
            attributes and the reference tier), as an InteractionTerm-like record.
        terms: Interaction terms.
        wald: Per attribute: (chi-square, degrees of freedom, p-value) of the
            joint test that all its interaction terms are zero.
        standardization: Per numeric attribute column: (mean, standard deviation).
        reference_tier: The tier all tier terms are compared against.
    """

    fitted: bool
    reason: str | None
    n: int
    events: int
    parameters: int = 0
    sampled_from: int | None = None
    treatment_effect: InteractionTerm | None = None
    terms: tuple[InteractionTerm, ...] = ()
    wald: dict[str, tuple[float, int, float]] = field(default_factory=dict)
    standardization: dict[str, tuple[float, float]] = field(default_factory=dict)
    reference_tier: str | None = None


@dataclass(frozen=True)
class AttributeRank:
    """An attribute's place in the moderator ranking.

    Attributes:
        attribute: Attribute key.
        label: Human name.
        rank: 1 = strongest evidence of moderation.
        basis: ``"interaction-wald"`` or ``"bin-spread"``.
        p_value: Joint interaction p-value (None without a regression).
        p_value_holm: Holm-adjusted across the ranked attributes.
        max_abs_z: Largest |z| of its interaction terms.
        bin_spread: Largest minus smallest bin lift (bins with both arms present).
        best_bin: Bin with the largest lift.
        worst_bin: Bin with the smallest lift.
    """

    attribute: str
    label: str
    rank: int
    basis: str
    p_value: float | None
    p_value_holm: float | None
    max_abs_z: float | None
    bin_spread: float | None
    best_bin: str | None
    worst_bin: str | None


@dataclass(frozen=True)
class ExplainResult:
    """Everything the explainability section shows.

    Attributes:
        metric: The metric explained (the primary metric).
        outcome: Outcome column used.
        treatment_arms: Arms pooled as "treatment".
        n_control: Control customers analysed.
        n_treatment: Treated customers analysed.
        attributes: Specs of the attributes analysed (present in the data).
        missing_attributes: Attribute keys skipped (column missing), with why.
        bins: Lift by bin for every attribute.
        regression: The logistic regression.
        ranking: Attributes ranked, strongest evidence first.
        narrative: Plain sentences stating result and uncertainty.
        confidence: Level of every interval.
    """

    metric: str
    outcome: str
    treatment_arms: tuple[str, ...]
    n_control: int
    n_treatment: int
    attributes: tuple[AttributeSpec, ...]
    missing_attributes: dict[str, str]
    bins: tuple[BinLift, ...]
    regression: RegressionResult
    ranking: tuple[AttributeRank, ...]
    narrative: tuple[str, ...]
    confidence: float

    def bins_for(self, attribute: str) -> list[BinLift]:
        """The bins of one attribute in display order."""
        return sorted((b for b in self.bins if b.attribute == attribute), key=lambda b: b.order)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def explain_moderators(
    records: pd.DataFrame,
    metric: str = "click_rate",
    *,
    control_arm: str = CONTROL_ARM,
    confidence: float = 0.95,
    alpha: float = 0.05,
    max_regression_rows: int = MAX_REGRESSION_ROWS,
    seed: int = 0,
    attributes: Sequence[AttributeSpec] = ATTRIBUTES,
) -> ExplainResult:
    """Estimate how the treatment effect on ``metric`` varies with customer attributes.

    Args:
        records: One row per recipient: ``experiment_arm``, the outcome columns
            (``opened``, ``clicked``, ``converted``) and the customer attribute
            columns (``tier``, ``age``, ...). Holdout rows are ignored.
        metric: A metric of the catalog with a per-recipient outcome
            (:attr:`cpo.experiment.catalog.Metric.outcome`).
        control_arm: Name of the control arm; every other arm is pooled as treatment.
        confidence: Level of the intervals.
        alpha: Level used in the narrative to call a moderation signal.
        max_regression_rows: Fit the regression on a seeded sample above this.
        seed: Seed of that sample.
        attributes: Attributes to analyse.

    Returns:
        Bins, regression, ranking and narrative.

    Raises:
        ValueError: ``metric`` is unknown or ``records`` lacks the arm/outcome columns.
    """
    frame, outcome = _analysis_frame(records, metric, control_arm)
    present = [a for a in attributes if a.column in frame.columns]
    missing = {
        a.key: f"column '{a.column}' is not in the customer data"
        for a in attributes
        if a.column not in frame.columns
    }
    bins = tuple(
        b
        for a in present
        for b in _bin_lifts(frame, outcome, a.key, _bin_labels(frame[a.column], a), confidence)
    )
    regression = fit_interaction_model(
        frame, outcome, present, confidence=confidence, max_rows=max_regression_rows, seed=seed
    )
    treated = int(frame["treated"].sum())
    result = ExplainResult(
        metric=metric,
        outcome=outcome,
        treatment_arms=tuple(sorted(set(frame["experiment_arm"].unique()) - {control_arm})),
        n_control=len(frame) - treated,
        n_treatment=treated,
        attributes=tuple(present),
        missing_attributes=missing,
        bins=bins,
        regression=regression,
        ranking=_rank(present, bins, regression),
        narrative=(),
        confidence=confidence,
    )
    return replace(result, narrative=tuple(narrate(result, alpha)))


def _analysis_frame(
    records: pd.DataFrame, metric: str, control_arm: str
) -> tuple[pd.DataFrame, str]:
    """Rows analysed (no holdout; only the metric's denominator rows) with a ``treated`` flag."""
    try:
        definition = catalog.metric(metric)
        outcome = definition.outcome
    except (KeyError, ValueError) as exc:
        raise ValueError(str(exc.args[0]) if exc.args else str(exc)) from None
    among = definition.among
    needed = {"experiment_arm", outcome} | ({among} if among else set())
    absent = sorted(needed - set(records.columns))
    if absent:
        raise ValueError(f"records lack column(s) {', '.join(absent)}")
    frame = records.loc[records["experiment_arm"].astype(str) != HOLDOUT_ARM].copy()
    frame["experiment_arm"] = frame["experiment_arm"].astype(str)
    if among:
        frame = frame.loc[_as_flag(frame[among]) == 1]
    frame[outcome] = _as_flag(frame[outcome])
    frame["treated"] = (frame["experiment_arm"] != control_arm).astype(int)
    return frame.reset_index(drop=True), outcome


def _as_flag(values: pd.Series) -> pd.Series:
    """0/1 integers from booleans, numbers or 'true'/'false' text."""
    if values.dtype == bool:
        return values.astype(int)
    if pd.api.types.is_numeric_dtype(values):
        return (values.fillna(0) > 0).astype(int)
    text = values.astype(str).str.strip().str.lower()
    return text.isin({"1", "true", "yes", "y", "t"}).astype(int)


# --------------------------------------------------------------------------
# Bins
# --------------------------------------------------------------------------


def _bin_labels(values: pd.Series, spec: AttributeSpec) -> pd.Categorical[Any]:
    """Ordered categorical of bin labels for one attribute."""
    if spec.kind == "categorical":
        return _categorical_bins(values.astype(str))
    numeric = pd.to_numeric(values, errors="coerce")
    if spec.kind == "fixed":
        edges = [*spec.edges, math.inf]
        labels = [_range_label(lo, hi, spec.unit) for lo, hi in pairwise(edges)]
        cut = pd.cut(numeric, bins=[-math.inf, *edges[1:]], right=False, labels=labels)
        return pd.Categorical(cut, categories=labels, ordered=True)
    return _quantile_bins(numeric, spec.unit)


def _categorical_bins(text: pd.Series) -> pd.Categorical[Any]:
    """``pd.Categorical(text, categories=<its values in tier order>, ordered=True)``.

    The values are factorized once and their codes renumbered into the
    levels' order (a missing value stays missing), instead of hashing every
    row again to build the categorical.
    """
    codes, uniques = pd.factorize(text)
    levels = _ordered_levels([str(value) for value in uniques])
    position = {level: index for index, level in enumerate(levels)}
    renumber = np.array([position[str(value)] for value in uniques] + [-1], dtype=np.int64)
    return pd.Categorical.from_codes(renumber[codes], categories=pd.Index(levels), ordered=True)


def _ordered_levels(levels: Sequence[str]) -> list[str]:
    """Known tier names in their natural order, anything else alphabetically after."""
    known = [lv for name in _TIER_ORDER for lv in levels if lv.lower() == name]
    return known + sorted(lv for lv in levels if lv not in known)


def _range_label(lower: float, upper: float, unit: str) -> str:
    """'25–34' for integer edges [25, 35); '65+' for an open top bin."""
    if math.isinf(upper):
        return f"{lower:g}+{unit}"
    return f"{lower:g}–{upper - 1:g}{unit}"


def _quantile_bins(numeric: pd.Series, unit: str) -> pd.Categorical[Any]:
    """Quartile bins labelled with their value ranges (fewer when values repeat)."""
    valid = numeric.dropna()
    if valid.nunique() < 2:
        label = f"all {valid.iloc[0]:.3g}{unit}" if len(valid) else "missing"
        return pd.Categorical([label] * len(numeric), categories=[label], ordered=True)
    edges = np.unique(np.quantile(valid, [0.0, 0.25, 0.5, 0.75, 1.0]))
    labels = [
        f"Q{i + 1}: {lo:.3g}–{hi:.3g}{unit}" if len(edges) == 5 else f"{lo:.3g}–{hi:.3g}{unit}"
        for i, (lo, hi) in enumerate(pairwise(edges))
    ]
    cut = pd.cut(numeric, bins=edges.tolist(), include_lowest=True, labels=labels)
    return pd.Categorical(cut, categories=labels, ordered=True)


def _bin_lifts(
    frame: pd.DataFrame, outcome: str, key: str, labels: pd.Categorical[Any], confidence: float
) -> list[BinLift]:
    """Control/treatment counts per bin, with Wilson and Newcombe intervals."""
    units, events = _bin_counts(labels, frame["treated"].to_numpy(), frame[outcome].to_numpy())
    result = []
    for order, label in enumerate(labels.categories):
        n_c, n_t = int(units[order, 0]), int(units[order, 1])
        x_c, x_t = int(events[order, 0]), int(events[order, 1])
        if n_c + n_t == 0:
            continue
        result.append(_bin_lift(key, str(label), order, (x_c, n_c), (x_t, n_t), confidence))
    return result


def _bin_counts(
    labels: pd.Categorical[Any], treated: np.ndarray, outcome: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Units and events per (bin, arm): arrays of shape (bins, 2), control in column 0.

    Counted over the bin codes (a row without a bin is left out); ``treated``
    and ``outcome`` are 0/1 per row.
    """
    codes = np.asarray(labels.codes, dtype=np.int64)
    binned = codes >= 0
    cells = codes[binned] * 2 + treated[binned].astype(np.int64)
    size = 2 * len(labels.categories)
    units = np.bincount(cells, minlength=size)
    events = np.bincount(cells, weights=outcome[binned].astype(np.float64), minlength=size)
    return units.reshape(-1, 2), np.rint(events).astype(np.int64).reshape(-1, 2)


def _bin_lift(
    key: str,
    label: str,
    order: int,
    control: tuple[int, int],
    treatment: tuple[int, int],
    confidence: float,
) -> BinLift:
    """One BinLift from (events, units) of control and treatment."""
    (x_c, n_c), (x_t, n_t) = control, treatment
    rate_c, rate_t = wilson_interval(x_c, n_c, confidence), wilson_interval(x_t, n_t, confidence)
    diff = newcombe_difference_interval(x_t, n_t, x_c, n_c, confidence)
    return BinLift(
        attribute=key,
        bin=label,
        order=order,
        n_control=n_c,
        n_treatment=n_t,
        events_control=x_c,
        events_treatment=x_t,
        rate_control=rate_c.estimate,
        rate_treatment=rate_t.estimate,
        rate_control_lower=rate_c.lower,
        rate_control_upper=rate_c.upper,
        rate_treatment_lower=rate_t.lower,
        rate_treatment_upper=rate_t.upper,
        lift_absolute=diff.estimate,
        lower=diff.lower,
        upper=diff.upper,
        reason=diff.reason,
    )


# --------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------


def fit_interaction_model(
    frame: pd.DataFrame,
    outcome: str,
    attributes: Sequence[AttributeSpec],
    *,
    confidence: float = 0.95,
    max_rows: int = MAX_REGRESSION_ROWS,
    seed: int = 0,
) -> RegressionResult:
    """Logistic regression of ``outcome`` on treatment × attributes.

    Numeric attributes enter standardized (per SD); the categorical tier enters
    as dummies against its most common level. Problems are returned as a
    result with ``fitted=False`` and a reason.

    Args:
        frame: Rows with ``treated``, ``outcome`` and the attribute columns.
        outcome: The 0/1 outcome column.
        attributes: Attributes to include (their raw columns).
        confidence: Level of the Wald intervals.
        max_rows: Fit on a seeded random sample of this many rows above it.
        seed: Seed of the sample.

    Returns:
        The fitted terms and joint tests, or the reason there are none.
    """
    sampled_from = None
    if len(frame) > max_rows:
        sampled_from = len(frame)
        frame = frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)
    y = frame[outcome].to_numpy(dtype=float)
    n, events = len(y), int(y.sum())
    problem = _data_problem(frame, n, events)
    if problem:
        return RegressionResult(False, problem, n, events, sampled_from=sampled_from)
    design, groups, scaling, reference = _design_matrix(frame, attributes)
    base = RegressionResult(
        False,
        None,
        n,
        events,
        parameters=design.shape[1],
        sampled_from=sampled_from,
        standardization=scaling,
        reference_tier=reference,
    )
    if np.linalg.matrix_rank(design.to_numpy()) < design.shape[1]:
        return _replace(base, reason="the design is rank-deficient (an attribute level is empty)")
    fit, problem = _fit_glm(y, design)
    if fit is None:
        return _replace(base, reason=problem)
    return _summarize_fit(base, fit, design, groups, confidence)


def _data_problem(frame: pd.DataFrame, n: int, events: int) -> str | None:
    """Why a model cannot be fitted to these rows at all, else None."""
    if n == 0:
        return "no rows to fit"
    if events == 0 or events == n:
        return "the outcome does not vary (no events, or every row had the event)"
    treated = int(frame["treated"].sum())
    if treated in (0, n):
        return "only one group (treatment or control) is present"
    return None


def _design_matrix(
    frame: pd.DataFrame, attributes: Sequence[AttributeSpec]
) -> tuple[pd.DataFrame, dict[str, list[str]], dict[str, tuple[float, float]], str | None]:
    """Columns const, treated, attribute terms and treated × attribute terms."""
    treated = frame["treated"].astype(float)
    columns: dict[str, pd.Series] = {"const": pd.Series(1.0, index=frame.index), "treated": treated}
    groups: dict[str, list[str]] = {}
    scaling: dict[str, tuple[float, float]] = {}
    reference = None
    for spec in attributes:
        terms = _attribute_terms(frame[spec.column], spec, scaling)
        if spec.kind == "categorical" and terms:
            reference = _reference_level(frame[spec.column])
        groups[spec.key] = []
        for name, values in terms.items():
            columns[name] = values
            columns[f"treated:{name}"] = values * treated
            groups[spec.key].append(f"treated:{name}")
    return pd.DataFrame(columns), groups, scaling, reference


def _attribute_terms(
    values: pd.Series, spec: AttributeSpec, scaling: dict[str, tuple[float, float]]
) -> dict[str, pd.Series]:
    """Model columns of one attribute: dummies for a category, a z-score otherwise."""
    if spec.kind == "categorical":
        text = values.astype(str)
        reference = _reference_level(values)
        levels = [lv for lv in _ordered_levels(list(text.unique())) if lv != reference]
        return {f"{spec.column}={lv}": (text == lv).astype(float) for lv in levels}
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    mean, sd = float(numeric.mean()), float(numeric.std(ddof=0))
    if not math.isfinite(sd) or sd == 0:
        return {}
    scaling[spec.column] = (mean, sd)
    return {f"{spec.column} (per SD)": ((numeric - mean) / sd).fillna(0.0)}


def _reference_level(values: pd.Series) -> str:
    """The most common level (ties broken alphabetically): a stable comparison base."""
    counts = values.astype(str).value_counts()
    top = counts[counts == counts.max()].index
    return sorted(top)[0]


def _fit_glm(y: np.ndarray, design: pd.DataFrame) -> tuple[LogitFit | None, str | None]:
    """Fit the binomial GLM; return (result, None) or (None, reason)."""
    try:
        with np.errstate(all="ignore"):
            fit = fit_logit(y, design.to_numpy(dtype=float), max_iterations=100)
    except PerfectPrediction:
        return None, "perfect separation: some attribute level predicts the outcome exactly"
    except (np.linalg.LinAlgError, ValueError) as exc:
        return None, f"the model could not be fitted ({type(exc).__name__}: {exc})"
    if not fit.converged:
        return None, "the fit did not converge in 100 iterations"
    if not (np.all(np.isfinite(fit.params)) and np.all(np.isfinite(fit.bse))):
        return None, "the fit produced non-finite estimates"
    if np.max(np.abs(fit.params)) > SEPARATION_COEFFICIENT:
        return None, "quasi-separation: a coefficient diverges (an attribute level has no events)"
    return fit, None


def _summarize_fit(
    base: RegressionResult,
    fit: LogitFit,
    design: pd.DataFrame,
    groups: dict[str, list[str]],
    confidence: float,
) -> RegressionResult:
    """Terms with Wald intervals and per-attribute joint Wald tests."""
    names = list(design.columns)
    params, cov = fit.params, fit.cov
    z_crit = float(-special.ndtri((1 - confidence) / 2))

    def term(attribute: str, name: str) -> InteractionTerm:
        i = names.index(name)
        estimate, se = params[i], math.sqrt(cov[i, i])
        z = estimate / se
        return InteractionTerm(
            attribute,
            name,
            float(estimate),
            float(estimate - z_crit * se),
            float(estimate + z_crit * se),
            float(z),
            float(2 * special.ndtr(-abs(z))),
        )

    terms = tuple(term(attr, name) for attr, members in groups.items() for name in members)
    wald = {}
    for attribute, members in groups.items():
        if members:
            idx = [names.index(m) for m in members]
            b, v = params[idx], cov[np.ix_(idx, idx)]
            chi2 = float(b @ np.linalg.solve(v, b))
            wald[attribute] = (chi2, len(idx), float(special.chdtrc(len(idx), chi2)))
    caution = None
    if base.parameters and base.events / base.parameters < EVENTS_PER_PARAMETER:
        caution = (
            f"only {base.events / base.parameters:.1f} events per parameter "
            f"(fewer than {EVENTS_PER_PARAMETER}): estimates are unstable"
        )
    return _replace(
        base,
        fitted=True,
        reason=caution,
        treatment_effect=term("treatment", "treated"),
        terms=terms,
        wald=wald,
    )


def _replace(result: RegressionResult, **changes: Any) -> RegressionResult:
    """A copy of a frozen result with some fields changed."""
    return replace(result, **changes)


# --------------------------------------------------------------------------
# Ranking and narrative
# --------------------------------------------------------------------------


def _rank(
    attributes: Sequence[AttributeSpec], bins: Sequence[BinLift], regression: RegressionResult
) -> tuple[AttributeRank, ...]:
    """Rank attributes: joint interaction p-value when fitted, else bin-lift spread."""
    rows: list[dict[str, Any]] = []
    for spec in attributes:
        usable = [
            b
            for b in bins
            if b.attribute == spec.key
            and b.lift_absolute is not None
            and min(b.n_control, b.n_treatment) >= MIN_BIN_UNITS
        ]
        best = max(usable, key=_known_lift, default=None)
        worst = min(usable, key=_known_lift, default=None)
        spread = (
            _known_lift(best) - _known_lift(worst) if best and worst and len(usable) > 1 else None
        )
        wald = regression.wald.get(spec.key)
        zs = [abs(t.z) for t in regression.terms if t.attribute == spec.key]
        rows.append(
            {
                "spec": spec,
                "p": wald[2] if wald else None,
                "max_z": max(zs) if zs else None,
                "spread": spread,
                "best": best.bin if best else None,
                "worst": worst.bin if worst else None,
            }
        )
    adjusted = holm([r["p"] for r in rows])
    use_wald = regression.fitted and any(r["p"] is not None for r in rows)

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        if use_wald:
            return (row["p"] is None, row["p"] if row["p"] is not None else 1.0, row["spec"].key)
        return (row["spread"] is None, -(row["spread"] or 0.0), row["spec"].key)

    ordered = sorted(zip(rows, adjusted, strict=True), key=lambda pair: key(pair[0]))
    return tuple(
        AttributeRank(
            attribute=row["spec"].key,
            label=row["spec"].label,
            rank=position,
            basis="interaction-wald" if use_wald else "bin-spread",
            p_value=row["p"],
            p_value_holm=p_holm,
            max_abs_z=row["max_z"],
            bin_spread=row["spread"],
            best_bin=row["best"],
            worst_bin=row["worst"],
        )
        for position, (row, p_holm) in enumerate(ordered, start=1)
    )


def _known_lift(b: BinLift) -> float:
    """The lift of a bin whose lift is known (callers filter out the others)."""
    return cast(float, b.lift_absolute)


def narrate(result: ExplainResult, alpha: float = 0.05) -> list[str]:
    """Sentences for a reader: what was compared, what stands out, how sure we are."""
    metric = result.metric.replace("_", " ")
    events = sum(b.events_control + b.events_treatment for b in result.bins_for(_first(result)))
    lines = [
        f"Exploratory analysis of {metric}: {result.n_treatment:,} customers in the treatment "
        f"arms (pooled) against {result.n_control:,} in control, {events:,} with the outcome."
    ]
    regression = result.regression
    if not regression.fitted:
        lines.append(
            f"The logistic regression was not fitted: {regression.reason}. The ranking uses the "
            "spread of the bin lifts, which has no test attached."
        )
    top = result.ranking[0] if result.ranking else None
    if top is not None and top.p_value is not None:
        lines.append(_wald_sentence(result, top, alpha))
    elif top is not None and top.bin_spread is not None:
        lines.append(
            f"The largest spread of bin lifts is for {top.label.lower()}: from "
            f"{_pp(_bin_lift_of(result, top.attribute, top.worst_bin))} ({top.worst_bin}) to "
            f"{_pp(_bin_lift_of(result, top.attribute, top.best_bin))} ({top.best_bin})."
        )
    if regression.fitted and regression.reason:
        lines.append(f"Caution: {regression.reason}; read the intervals, not the point estimates.")
    lines.append(
        "Customers were randomized to arms but not to attributes: a difference between bins "
        "says the effect differed for these customers in this sample, not that the attribute "
        "causes it. Confirm any targeting idea in a new, pre-registered test."
    )
    return lines


def _first(result: ExplainResult) -> str:
    return result.attributes[0].key if result.attributes else ""


def _wald_sentence(result: ExplainResult, top: AttributeRank, alpha: float) -> str:
    """The headline sentence about the top-ranked attribute."""
    k = len([r for r in result.ranking if r.p_value is not None])
    p_adj = top.p_value_holm if top.p_value_holm is not None else top.p_value
    bins = (
        f" Its bin lifts range from {_pp(_bin_lift_of(result, top.attribute, top.worst_bin))} "
        f"({top.worst_bin}) to {_pp(_bin_lift_of(result, top.attribute, top.best_bin))} "
        f"({top.best_bin})."
        if top.best_bin and top.worst_bin and top.best_bin != top.worst_bin
        else ""
    )
    if p_adj is not None and p_adj < alpha:
        return (
            f"{top.label} shows the strongest evidence that the treatment effect differs across "
            f"customers (joint interaction test {_p(top.p_value)}; Holm-adjusted across {k} "
            f"attributes, {_p(p_adj)}).{bins}"
        )
    return (
        f"No attribute shows moderation that survives adjustment for the {k} attributes tested. "
        f"The strongest signal is {top.label.lower()} ({_p(top.p_value)}; Holm-adjusted, "
        f"{_p(p_adj)}), compatible with chance.{bins}"
    )


def _bin_lift_of(result: ExplainResult, attribute: str, label: str | None) -> float | None:
    for b in result.bins:
        if b.attribute == attribute and b.bin == label:
            return b.lift_absolute
    return None


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pp"


def _p(value: float | None) -> str:
    """'p = 0.034' or 'p < 0.001'."""
    if value is None:
        return "p n/a"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


# --------------------------------------------------------------------------
# moderators.json: computed once per run, read by every report
# --------------------------------------------------------------------------

#: Columns read from the customer file: the id and the attributes analysed (no PII).
ATTRIBUTE_COLUMNS: tuple[str, ...] = ("customer_id", *dict.fromkeys(a.column for a in ATTRIBUTES))


@dataclass(frozen=True)
class ModeratorsDocument:
    """The content of ``moderators.json``: the moderator analysis, or why there is none.

    Attributes:
        metric: The metric explained (the run's primary metric).
        result: The analysis, None when it was not computed.
        note: Why it was not computed (None when it was).
        schema_version: Layout version of the file.
    """

    metric: str
    result: ExplainResult | None
    note: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def computed(self) -> bool:
        """True when the analysis ran."""
        return self.result is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (JSON-safe)."""
        return json_safe(
            {
                "schema_version": self.schema_version,
                "metric": self.metric,
                "computed": self.computed,
                "note": self.note,
                "result": None if self.result is None else _result_to_dict(self.result),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModeratorsDocument:
        """The records of a ``moderators.json`` dict.

        Raises:
            KeyError, TypeError: the dict is not in the schema's shape.
        """
        result = data["result"]
        return cls(
            metric=data["metric"],
            result=None if result is None else _result_from_dict(result),
            note=data["note"],
            schema_version=data["schema_version"],
        )


def _result_to_dict(result: ExplainResult) -> dict[str, Any]:
    """An ExplainResult as JSON: joint tests and scalings as named fields, not tuples."""
    document = asdict(result)
    regression = document["regression"]
    regression["wald"] = {
        key: {"chi_square": chi2, "df": df, "p_value": p}
        for key, (chi2, df, p) in result.regression.wald.items()
    }
    regression["standardization"] = {
        column: {"mean": mean, "sd": sd}
        for column, (mean, sd) in result.regression.standardization.items()
    }
    return document


def _result_from_dict(data: Mapping[str, Any]) -> ExplainResult:
    """The ExplainResult of its JSON form."""
    return ExplainResult(
        metric=data["metric"],
        outcome=data["outcome"],
        treatment_arms=tuple(data["treatment_arms"]),
        n_control=data["n_control"],
        n_treatment=data["n_treatment"],
        attributes=tuple(
            AttributeSpec(**{**spec, "edges": tuple(spec["edges"])}) for spec in data["attributes"]
        ),
        missing_attributes=dict(data["missing_attributes"]),
        bins=tuple(BinLift(**b) for b in data["bins"]),
        regression=_regression_from_dict(data["regression"]),
        ranking=tuple(AttributeRank(**r) for r in data["ranking"]),
        narrative=tuple(data["narrative"]),
        confidence=data["confidence"],
    )


def _regression_from_dict(data: Mapping[str, Any]) -> RegressionResult:
    """The RegressionResult of its JSON form."""
    effect = data["treatment_effect"]
    return RegressionResult(
        fitted=data["fitted"],
        reason=data["reason"],
        n=data["n"],
        events=data["events"],
        parameters=data["parameters"],
        sampled_from=data["sampled_from"],
        treatment_effect=None if effect is None else InteractionTerm(**effect),
        terms=tuple(InteractionTerm(**t) for t in data["terms"]),
        wald={
            key: (test["chi_square"], test["df"], test["p_value"])
            for key, test in data["wald"].items()
        },
        standardization={
            column: (scale["mean"], scale["sd"])
            for column, scale in data["standardization"].items()
        },
        reference_tier=data["reference_tier"],
    )


def write_moderators(path: Path, document: ModeratorsDocument) -> None:
    """Write ``moderators.json`` atomically."""
    from cpo.runfiles import write_json

    write_json(path, document.to_dict())


def read_moderators(path: Path | str) -> ModeratorsDocument:
    """Read a ``moderators.json`` into its records.

    Raises:
        DataValidationError: the file is missing, not JSON, of a newer schema
            version, or not in the schema's shape.
    """
    return read_versioned(
        path,
        MODERATORS,
        ModeratorsDocument.from_dict,
        missing_hint="the analyze stage of `cpo run` writes it; run `cpo run --resume RUN_DIR`",
        invalid_hint="analyse the run again: `cpo run --resume RUN_DIR`",
    )


def read_customer_attributes(
    recorded: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame | None, str | None]:
    """The attribute columns of the run's customer file (no PII), or None and why.

    Args:
        recorded: The manifest's ``inputs.customers`` record: ``path``,
            ``sha256`` and ``reading`` (column mapping, encoding, delimiter),
            so the file is read as the run read it.

    Returns:
        One row per customer id (text) with the columns of :data:`ATTRIBUTE_COLUMNS`
        found in the file, or None and the reason it cannot be used.
    """
    from cpo.customer_reader import read_customer_columns
    from cpo.runfiles import sha256_file

    text = (recorded or {}).get("path")
    if not text:
        return None, "the manifest does not name the customer file"
    path = Path(text)
    if not path.is_file():
        return None, f"customer file {path} is no longer there"
    expected = (recorded or {}).get("sha256")
    if expected and sha256_file(path) != expected:
        return None, f"customer file {path} changed since the run (sha256 differs)"
    try:
        frame = read_customer_columns(path, (recorded or {}).get("reading"), ATTRIBUTE_COLUMNS)
    except (OSError, ValueError) as exc:
        return None, f"customer file {path} could not be read ({type(exc).__name__})"
    if "customer_id" not in frame.columns:
        return None, f"customer file {path} has no customer_id column"
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.drop_duplicates("customer_id"), None


def run_moderators(
    engagement: pd.DataFrame,
    customers: pd.DataFrame | None,
    *,
    metric: str,
    confidence: float,
    alpha: float,
    seed: int,
    unavailable: str | None = None,
) -> ModeratorsDocument:
    """The moderator analysis of a run: engagement joined with the customer attributes.

    Args:
        engagement: Per-recipient engagement (``customer_id`` as text,
            ``experiment_arm`` and the outcome flags).
        customers: Customer attributes from :func:`read_customer_attributes`.
        metric: The primary metric.
        confidence: Interval level (the analysis' ``confidence_level``).
        alpha: Significance level used in the narrative.
        seed: Seed of the regression's row sample (the run's seed).
        unavailable: Why the analysis cannot run (e.g. the customer file is
            gone, or engagement was imported as counts); skips it.

    Returns:
        The document to write as ``moderators.json``.
    """
    if unavailable is not None:
        return ModeratorsDocument(metric, None, unavailable)
    if customers is None:
        return ModeratorsDocument(metric, None, "the customer file is not available")
    from cpo.idjoin import inner_join

    joined = inner_join(engagement, customers)  # engagement order
    if joined.empty:
        return ModeratorsDocument(
            metric, None, "no engagement row matches a customer in the customer file"
        )
    result = explain_moderators(joined, metric, confidence=confidence, alpha=alpha, seed=seed)
    return ModeratorsDocument(metric, result)
