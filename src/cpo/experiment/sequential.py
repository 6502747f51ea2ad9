"""Valid monitoring: always-valid p-values and confidence sequences (mixture SPRT).

A campaign's engagement arrives over days, and people look at the results as it
does. A fixed-horizon test read at every look rejects a true null far more
often than its alpha says (twenty looks at alpha 0.05 reject in roughly a
quarter of A/A tests). The mixture sequential probability ratio test (mSPRT) of
Johari, Koomen, Pekelis and Walsh ("Peeking at A/B tests", KDD 2017; "Always
valid inference", Operations Research 70(3), 2022) gives p-values and intervals
that stay valid however often, and whenever, the data are looked at.

For one treatment arm against control on one rate metric, with estimate
``d = p_t - p_c``, its plug-in variance ``V = p_c(1-p_c)/n_c + p_t(1-p_t)/n_t``
and a normal mixture ``N(0, tau_a^2)`` over the true difference, the mixture
likelihood ratio against ``H0: difference = theta0`` is (their eq. for two
streams, with ``2 sigma^2 / n`` replaced by ``V``)::

    Lambda(theta0) = sqrt(V / (V + tau_a^2)) * exp(tau_a^2 (d - theta0)^2 / (2 V (V + tau_a^2)))

The always-valid p-value after look ``n`` is ``min(1, min_{k<=n} 1/Lambda_k(0))``
(the running minimum: it never goes up), and the confidence sequence is the
running intersection of ``{theta0: Lambda(theta0) < 1/alpha}``, i.e. of
``d +- sqrt(V (V + tau_a^2) / tau_a^2 * (2 log(1/alpha) + log((V + tau_a^2) / V)))``.

The mixing standard deviation is set in standard deviations of one recipient's
outcome (``analysis.sequential_tau``): ``tau_a^2 = tau^2 p(1-p)`` with ``p`` the
pooled rate, so one setting fits metrics whose rates differ by an order of
magnitude (opens near 20%, conversions near 1%).

Multiplicity is handled as the fixed-horizon analysis does: the always-valid
p-values of a metric's treatment arms are Holm-adjusted for the primary metric
and Benjamini-Hochberg-adjusted for secondary metrics (both are valid on any
valid p-values, and an always-valid p-value is valid at any stopping time); each
confidence sequence has level ``1 - alpha / m`` for ``m`` treatment arms
(Bonferroni), so the arms' sequences hold simultaneously.

The core (:func:`msprt`) is vectorized NumPy over any shape of counts. The
records (:class:`Monitoring`, :class:`Look`, :class:`SequentialComparison`) are
what ``monitoring.json`` holds and what ``metrics.json`` carries under
``sequential``; :func:`record_look` adds one look to a history.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cpo.errors import ConfigError
from cpo.run_folder import MONITORING, read_versioned

if TYPE_CHECKING:
    from cpo.experiment.results import Comparison, MetricsDocument

#: The method's name as recorded in metrics.json and monitoring.json.
METHOD = "msprt-normal-mixture"
#: Default mixing standard deviation, in standard deviations of one recipient's outcome.
DEFAULT_TAU = 0.03
#: Multiplicity adjustments, named as the fixed-horizon analysis names them
#: (:mod:`cpo.experiment.comparisons`; spelled here so that reading the records,
#: as the report does, imports no SciPy).
HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini-hochberg"

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------
# The pure core (vectorized)
# --------------------------------------------------------------------------


class MsprtArrays(NamedTuple):
    """One look of the mSPRT, element-wise over the inputs' shape.

    Attributes:
        estimate: Difference of the rates, treatment minus control (NaN without trials).
        variance: Plug-in variance of the difference (NaN without trials).
        log_likelihood_ratio: ``log Lambda(0)`` (0 where the variance is 0 or undefined).
        p_value: ``min(1, 1 / Lambda(0))`` at this look alone (1 where undefined).
        lower: Lower bound of this look's confidence set (NaN where undefined).
        upper: Upper bound of this look's confidence set (NaN where undefined).
    """

    estimate: np.ndarray
    variance: np.ndarray
    log_likelihood_ratio: np.ndarray
    p_value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def msprt(
    control_events: Any,
    control_trials: Any,
    treatment_events: Any,
    treatment_trials: Any,
    *,
    tau: float = DEFAULT_TAU,
    alpha: Any = 0.05,
) -> MsprtArrays:
    """The mixture SPRT of one look from cumulative counts (arrays broadcast).

    Args:
        control_events: Events (e.g. clicks) of control so far.
        control_trials: Trials (e.g. sends) of control so far.
        treatment_events: Events of the treatment arm so far.
        treatment_trials: Trials of the treatment arm so far.
        tau: Mixing standard deviation in standard deviations of one outcome.
        alpha: Level of the confidence set (``1 - alpha`` coverage); a number or an
            array broadcast with the counts.

    Returns:
        The look's estimate, variance, log likelihood ratio, p-value and
        confidence set, each an array of the broadcast shape. Where an arm has
        no trials, or the outcomes do not vary yet, there is no evidence: the
        p-value is 1 and the bounds are NaN (unbounded).
    """
    x_c, n_c, x_t, n_t = (
        np.asarray(v, dtype=float)
        for v in (control_events, control_trials, treatment_events, treatment_trials)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_c, rate_t = x_c / n_c, x_t / n_t
        estimate = rate_t - rate_c
        variance = rate_c * (1 - rate_c) / n_c + rate_t * (1 - rate_t) / n_t
        pooled = (x_c + x_t) / (n_c + n_t)
        mixing = tau * tau * pooled * (1 - pooled)
        informative = (variance > 0) & (mixing > 0)
        v = np.where(informative, variance, 1.0)
        m = np.where(informative, mixing, 1.0)
        log_lr = 0.5 * np.log(v / (v + m)) + m * estimate**2 / (2 * v * (v + m))
        log_lr = np.where(informative, log_lr, 0.0)
        level = np.log(1 / np.asarray(alpha, dtype=float))
        half = np.sqrt(v * (v + m) / m * (2 * level + np.log((v + m) / v)))
    p_value = np.minimum(1.0, np.exp(-log_lr))
    lower = np.where(informative, np.maximum(estimate - half, -1.0), np.nan)
    upper = np.where(informative, np.minimum(estimate + half, 1.0), np.nan)
    return MsprtArrays(estimate, variance, log_lr, p_value, lower, upper)


def running_p_values(p_values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Always-valid p-values over looks: the running minimum along ``axis``."""
    return np.minimum.accumulate(p_values, axis=axis)


def running_bounds(
    lower: np.ndarray, upper: np.ndarray, axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sequence over looks: the running intersection along ``axis``.

    NaN bounds (no information yet) do not narrow the sequence.
    """
    low = np.where(np.isnan(lower), -1.0, lower)
    high = np.where(np.isnan(upper), 1.0, upper)
    return np.maximum.accumulate(low, axis=axis), np.minimum.accumulate(high, axis=axis)


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialComparison:
    """One treatment arm against control on one metric, at one look.

    Attributes:
        metric: The metric.
        treatment_arm: The treatment arm.
        estimate: Difference of the rates at this look (rate units).
        p_value_look: ``min(1, 1/Lambda)`` of this look alone.
        p_value: Always-valid p-value: the running minimum over looks.
        p_value_adjusted: Holm (primary) or Benjamini-Hochberg adjusted ``p_value``.
        adjustment: ``"holm"`` or ``"benjamini-hochberg"``.
        significant: ``p_value_adjusted < alpha`` (None without a p-value).
        cs_level: Level of the confidence sequence (``1 - alpha / m``).
        cs_lower: Lower bound of the confidence sequence (running intersection).
        cs_upper: Upper bound of the confidence sequence.
        exploratory: True for secondary metrics.
        reason: Why a value is missing, else None.
    """

    metric: str
    treatment_arm: str
    estimate: float | None
    p_value_look: float
    p_value: float
    p_value_adjusted: float | None
    adjustment: str
    significant: bool | None
    cs_level: float
    cs_lower: float | None
    cs_upper: float | None
    exploratory: bool
    reason: str | None

    @property
    def key(self) -> tuple[str, str]:
        """``(metric, treatment_arm)``: what identifies the comparison across looks."""
        return self.metric, self.treatment_arm

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequentialComparison:
        """The record of one ``comparisons`` entry."""
        return cls(**{name: data[name] for name in _COMPARISON_FIELDS})

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {name: getattr(self, name) for name in _COMPARISON_FIELDS}


_COMPARISON_FIELDS = tuple(SequentialComparison.__dataclass_fields__)


@dataclass(frozen=True)
class Look:
    """One interim (or final) analysis of a run.

    Attributes:
        look: 1 for the first analysis, 2 for the next, ...
        computed_at: When it ran (UTC, ISO 8601).
        counts_sha256: Hash of the counts and metrics analysed (a re-analysis
            of the same data is the same look).
        recipients: Recipients analysed.
        engagement_source: ``simulated``, ``imported``, ... (a change of source
            starts the history afresh: simulated looks say nothing about customers).
        arms: Arm -> counts (``sent``, ``opened``, ``clicked``, ``converted``).
        comparisons: Every comparison's always-valid result.
    """

    look: int
    computed_at: str
    counts_sha256: str
    recipients: int
    engagement_source: str
    arms: Mapping[str, Mapping[str, int]]
    comparisons: tuple[SequentialComparison, ...]

    def comparison(self, metric: str, arm: str) -> SequentialComparison | None:
        """The comparison of ``arm`` on ``metric``, if this look has it."""
        return next((c for c in self.comparisons if c.key == (metric, arm)), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Look:
        """The record of one ``looks`` entry."""
        return cls(
            look=data["look"],
            computed_at=data["computed_at"],
            counts_sha256=data["counts_sha256"],
            recipients=data["recipients"],
            engagement_source=data["engagement_source"],
            arms={arm: dict(counts) for arm, counts in data["arms"].items()},
            comparisons=tuple(SequentialComparison.from_dict(c) for c in data["comparisons"]),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return {
            "look": self.look,
            "computed_at": self.computed_at,
            "counts_sha256": self.counts_sha256,
            "recipients": self.recipients,
            "engagement_source": self.engagement_source,
            "arms": {arm: dict(counts) for arm, counts in self.arms.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class Monitoring:
    """The look history of a run: ``monitoring.json`` and metrics.json's ``sequential``.

    Attributes:
        method: :data:`METHOD`.
        tau: Mixing standard deviation (standard deviations of one outcome).
        alpha: Significance level (the sequences' level before Bonferroni).
        looks: Every recorded look, oldest first; the last is the current one.
    """

    method: str
    tau: float
    alpha: float
    looks: tuple[Look, ...]

    @property
    def current(self) -> Look | None:
        """The latest look (None before the first)."""
        return self.looks[-1] if self.looks else None

    def comparisons(self, metric: str) -> list[SequentialComparison]:
        """The current look's comparisons of ``metric``."""
        current = self.current
        return [c for c in current.comparisons if c.metric == metric] if current else []

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Monitoring:
        """The record of a ``sequential`` dict or of ``monitoring.json``."""
        return cls(
            method=data["method"],
            tau=data["tau"],
            alpha=data["alpha"],
            looks=tuple(Look.from_dict(look) for look in data["looks"]),
        )

    def to_dict(self) -> JsonDict:
        """The JSON form (``look`` is the current look's number, 0 before the first)."""
        current = self.current
        return {
            "method": self.method,
            "tau": self.tau,
            "alpha": self.alpha,
            "look": current.look if current else 0,
            "looks": [look.to_dict() for look in self.looks],
        }


# --------------------------------------------------------------------------
# Recording a look
# --------------------------------------------------------------------------


def record_look(
    history: Monitoring | None,
    metrics: MetricsDocument,
    *,
    tau: float,
    source: str = MONITORING.name,
) -> Monitoring:
    """The history with the analysis ``metrics`` as its next look.

    A re-analysis of the data of the latest look (same counts, same metrics)
    adds nothing: the history comes back unchanged. When the engagement source
    changes (simulated engagement, then a real import), the earlier looks are
    dropped and this is look 1: simulated looks say nothing about customers.

    Args:
        history: The looks so far (None for the first look).
        metrics: The analysis of this look (its comparisons hold the counts).
        tau: Mixing standard deviation (``analysis.sequential_tau``).
        source: Where the history came from, for the error message.

    Raises:
        ConfigError: ``tau`` or alpha differ from the history's (changing
            either mid-campaign voids the guarantees).
    """
    fresh = Monitoring(METHOD, tau, metrics.alpha, ())
    if history is None or (
        history.current is not None
        and history.current.engagement_source != metrics.engagement_source
    ):
        history = fresh
    _check_same_settings(history, tau, metrics.alpha, source)
    arms = {name: dict(arm.counts) for name, arm in metrics.arms.items()}
    key = counts_key(arms, [c.metric for c in metrics.lift_analysis])
    previous = history.current
    if previous is not None and previous.counts_sha256 == key:
        return history
    look = Look(
        look=(previous.look if previous else 0) + 1,
        computed_at=metrics.computed_at,
        counts_sha256=key,
        recipients=metrics.total_customers,
        engagement_source=metrics.engagement_source,
        arms=arms,
        comparisons=_comparisons(metrics, previous, tau),
    )
    return replace(history, looks=(*history.looks, look))


def counts_key(arms: Mapping[str, Mapping[str, int]], metrics: Sequence[str]) -> str:
    """sha256 of the per-arm counts and the metrics compared (what makes a look new)."""
    text = json.dumps({"arms": arms, "metrics": sorted(set(metrics))}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_same_settings(history: Monitoring, tau: float, alpha: float, source: str) -> None:
    """Raise when this look's tau or alpha differ from the recorded looks'."""
    if not history.looks or (history.tau == tau and history.alpha == alpha):
        return
    raise ConfigError(
        f"{source}: earlier looks used sequential_tau {history.tau} and alpha {history.alpha}, "
        f"this analysis uses sequential_tau {tau} and alpha {alpha}; changing either while "
        "a campaign is monitored voids the always-valid guarantees",
        hint=f"set analysis.sequential_tau: {history.tau} and analysis.alpha: {history.alpha} "
        f"again, or delete {source} to start monitoring afresh (earlier looks are then forgotten)",
    )


def _comparisons(
    metrics: MetricsDocument, previous: Look | None, tau: float
) -> tuple[SequentialComparison, ...]:
    """Every comparison of ``metrics`` at this look, carried over from ``previous``, adjusted."""
    lifts = list(metrics.lift_analysis)
    if not lifts:
        return ()
    family = Counter(c.metric for c in lifts)
    levels = np.array([metrics.alpha / family[c.metric] for c in lifts])
    look = msprt(
        [c.control.events for c in lifts],
        [c.control.trials for c in lifts],
        [c.treatment.events for c in lifts],
        [c.treatment.trials for c in lifts],
        tau=tau,
        alpha=levels,
    )
    records = [
        _carry_over(_look_record(lift, look, i, metrics.primary_metric, levels[i]), previous)
        for i, lift in enumerate(lifts)
    ]
    return tuple(_adjust(records, metrics.alpha))


def _look_record(
    lift: Comparison, look: MsprtArrays, index: int, primary: str, alpha: float
) -> SequentialComparison:
    """One comparison at this look alone (before the running minimum and adjustment)."""
    p_value = float(look.p_value[index])
    return SequentialComparison(
        metric=lift.metric,
        treatment_arm=lift.treatment_arm,
        estimate=_finite(look.estimate[index]),
        p_value_look=p_value,
        p_value=p_value,
        p_value_adjusted=None,
        adjustment=HOLM if lift.metric == primary else BENJAMINI_HOCHBERG,
        significant=None,
        cs_level=float(1 - alpha),
        cs_lower=_finite(look.lower[index]),
        cs_upper=_finite(look.upper[index]),
        exploratory=lift.metric != primary,
        reason=_missing_reason(lift, float(look.variance[index])),
    )


def _missing_reason(lift: Comparison, variance: float) -> str | None:
    """Why a comparison has no evidence yet, else None."""
    for side, counts in (("control", lift.control), (lift.treatment_arm, lift.treatment)):
        if counts.trials <= 0:
            return f"empty: {side} has no {lift.metric} denominator yet"
    if not variance > 0:
        return "degenerate: the outcomes do not vary within either arm yet (no evidence)"
    return None


def _adjust(records: list[SequentialComparison], alpha: float) -> list[SequentialComparison]:
    """Holm (primary) or BH (secondary) across each metric's arms, on the running p-values."""
    from cpo.experiment.stats import benjamini_hochberg, holm

    out = list(records)
    for metric in dict.fromkeys(r.metric for r in records):
        indices = [i for i, r in enumerate(records) if r.metric == metric]
        method = holm if records[indices[0]].adjustment == HOLM else benjamini_hochberg
        adjusted = method([records[i].p_value for i in indices])
        for i, p in zip(indices, adjusted, strict=True):
            out[i] = replace(
                records[i], p_value_adjusted=p, significant=None if p is None else p < alpha
            )
    return out


def _carry_over(record: SequentialComparison, previous: Look | None) -> SequentialComparison:
    """The running minimum p-value and the running intersection of the bounds."""
    before = previous.comparison(*record.key) if previous else None
    if before is None:
        return record
    lower = _tighter(before.cs_lower, record.cs_lower, max)
    upper = _tighter(before.cs_upper, record.cs_upper, min)
    reason = record.reason
    if lower is not None and upper is not None and lower > upper:
        reason = (
            "inconsistent: the looks' confidence sets no longer overlap (has the effect changed?)"
        )
    return replace(
        record,
        p_value=min(before.p_value, record.p_value),
        cs_lower=lower,
        cs_upper=upper,
        reason=reason,
    )


def _tighter(before: float | None, now: float | None, pick: Any) -> float | None:
    """The tighter of two bounds, None (unbounded) losing to any number."""
    present = [b for b in (before, now) if b is not None]
    return float(pick(present)) if present else None


def _finite(value: np.ndarray) -> float | None:
    """A 0-d array as a float, None for NaN."""
    number = float(value)
    return None if np.isnan(number) else number


# --------------------------------------------------------------------------
# monitoring.json
# --------------------------------------------------------------------------


def read_monitoring(run_dir: Path | str) -> Monitoring | None:
    """The run's look history, or None before its first look.

    Raises:
        DataValidationError: the file is not JSON, of a newer schema version,
            or not in the schema's shape.
    """
    path = MONITORING.path(run_dir)
    if not path.is_file():
        return None
    return read_versioned(
        path,
        MONITORING,
        Monitoring.from_dict,
        missing_hint="the analyze stage writes it when analysis.sequential is true",
        invalid_hint=f"delete {MONITORING.name} to start monitoring afresh "
        "(earlier looks are then forgotten)",
    )


def write_monitoring(run_dir: Path | str, history: Monitoring) -> None:
    """Write ``monitoring.json`` atomically (the whole history, newest look last)."""
    from cpo.runfiles import write_json

    write_json(
        MONITORING.path(run_dir), {"schema_version": MONITORING.schema_version, **history.to_dict()}
    )


def sequential_summary(history: Monitoring, metric: str) -> JsonDict:
    """The current look's result on ``metric`` per treatment arm (for the run manifest).

    Returns:
        ``{"look": n, "method": ..., "results": [{arm, p_value, p_value_adjusted,
        significant, cs_lower, cs_upper}, ...]}``.
    """
    current = history.current
    return {
        "look": current.look if current else 0,
        "method": history.method,
        "results": [
            {
                "arm": c.treatment_arm,
                "p_value": c.p_value,
                "p_value_adjusted": c.p_value_adjusted,
                "significant": c.significant,
                "cs_lower": c.cs_lower,
                "cs_upper": c.cs_upper,
            }
            for c in history.comparisons(metric)
        ],
    }


def monitor_metrics(
    metrics: MetricsDocument, *, tau: float, run_dir: Path | None = None
) -> MetricsDocument:
    """The analysis with its ``sequential`` section, as the next look after ``run_dir``'s.

    For ``cpo analyze`` and the web app's interim analysis: the looks recorded
    in ``run_dir``'s monitoring.json (when there is one) are read but not
    changed, so the section shows the look this analysis would be. An
    unrecorded look is as valid as a recorded one.

    Args:
        metrics: The analysis.
        tau: Mixing standard deviation (``analysis.sequential_tau``).
        run_dir: A run folder whose recorded looks come first (None: this is look 1).

    Raises:
        ConfigError: ``tau`` or alpha differ from the recorded looks'.
    """
    history = read_monitoring(run_dir) if run_dir is not None else None
    source = str(MONITORING.path(run_dir)) if run_dir is not None else MONITORING.name
    return replace(metrics, sequential=record_look(history, metrics, tau=tau, source=source))
