"""The metric catalog: every metric of the experiment, defined once.

A metric is a ratio of two of the per-arm sufficient statistics (the
:data:`COUNTS`: ``sent``, ``opened``, ``clicked``, ``converted``). Everything
else derives from that one definition:

- the analysis (:mod:`cpo.experiment.comparisons`) takes the numerator and
  denominator counts of every registered metric;
- the per-recipient outcome (for models over individual recipients, e.g. the
  report's moderator analysis) is the numerator's flag among the recipients
  whose denominator flag is set (every recipient for ``sent``);
- the design's baseline is the ratio of the counts' baselines, each estimated
  from the customers' history (:class:`Count`), unless configured under
  ``experiment.power.baseline_rates``; the design's sample size for a metric
  is scaled by the denominator's baseline (click-to-open is measured among
  openers only);
- the simulator's true rate is expected numerator over expected denominator
  (the sums of the recipients' true probabilities);
- the report's and the CLI's labels come from :attr:`Metric.label`.

To add a metric over the existing counts, register it once, e.g. in the
module that needs it::

    from cpo.experiment.catalog import Metric, register_metric

    register_metric(Metric(
        name="click_to_convert_rate",
        label="Click-to-convert rate",
        description="Share of clickers who converted.",
        numerator="converted",
        denominator="clicked",
    ))

and name it in ``analysis.secondary_metrics`` (or ``primary_metric``). An
installed package can add metrics without being imported by anyone: each
entry point of the group ``cpo.metrics`` names a :class:`Metric` object, under
the metric's name, e.g. in its ``pyproject.toml``::

    [project.entry-points."cpo.metrics"]
    click_to_convert_rate = "my_package.metrics:CLICK_TO_CONVERT"

Entry points are loaded on the first lookup (:func:`metric_names`,
:func:`metric`, ...), so every process (the CLI, the report's notebook
kernel) knows the same metrics.

This module is a leaf: it imports only :mod:`cpo.errors` and no third-party package.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass

from cpo.errors import ConfigError

#: Upper bound of an estimated baseline (the power formulas need a rate below 1).
MAX_BASELINE = 0.999
#: Entry-point group through which installed packages add metrics.
ENTRY_POINT_GROUP = "cpo.metrics"


@dataclass(frozen=True)
class Count:
    """One sufficient statistic per arm: how many recipients had an event.

    Attributes:
        name: The count's name in the per-arm counts (``sent``, ``opened``, ...).
        flag: The 0/1 column of ``engagement.csv`` that marks a recipient with
            the event; ``None`` for ``sent`` (every recipient).
        simulated_probability: The column of the simulator's true per-recipient
            probabilities (``p_open``, ...); ``None`` for ``sent`` (probability 1).
        history_column: Customer column whose mean estimates the count's
            per-recipient baseline probability, or ``None``.
        history_fallback: Baseline used when the history column is missing or empty.
        derived_from: For a count without history: the count whose baseline it
            scales by ``experiment.power.conversion_per_click`` (conversion
            from clicks).
    """

    name: str
    flag: str | None
    simulated_probability: str | None
    history_column: str | None = None
    history_fallback: float | None = None
    derived_from: str | None = None


#: The sufficient statistics per arm, in funnel order.
COUNTS: dict[str, Count] = {
    "sent": Count("sent", None, None),
    "opened": Count("opened", "opened", "p_open", "historical_open_rate", 0.2),
    "clicked": Count("clicked", "clicked", "p_click", "historical_click_rate", 0.03),
    "converted": Count("converted", "converted", "p_convert", derived_from="clicked"),
}


@dataclass(frozen=True)
class Metric:
    """One metric: a ratio of two per-arm counts.

    Attributes:
        name: The metric's name in config and ``metrics.json`` (``click_rate``).
        label: How people read it (``Click rate``).
        description: One sentence on what it measures.
        numerator: The count of events (a key of :data:`COUNTS`).
        denominator: The count it is a share of (a key of :data:`COUNTS`).
    """

    name: str
    label: str
    description: str
    numerator: str
    denominator: str

    @property
    def outcome(self) -> str:
        """The per-recipient 0/1 column that is the metric's outcome."""
        flag = COUNTS[self.numerator].flag
        if flag is None:
            raise ValueError(f"metric '{self.name}' has no per-recipient outcome")
        return flag

    @property
    def among(self) -> str | None:
        """The 0/1 column a recipient must have set to count (``None`` = every recipient)."""
        return COUNTS[self.denominator].flag

    @property
    def columns(self) -> tuple[str, ...]:
        """The per-recipient columns a model of this metric needs: outcome (and ``among``)."""
        return (self.outcome,) if self.among is None else (self.outcome, self.among)


_CATALOG: dict[str, Metric] = {}
_entry_points_loaded = False


def register_metric(definition: Metric) -> Metric:
    """Add a metric to the catalog (idempotent for an identical definition).

    Args:
        definition: The metric.

    Returns:
        The registered metric.

    Raises:
        ValueError: an unknown count, a numerator that is not a subset of the
            denominator (see :data:`COUNTS`), or another metric
            already registered under the same name.
    """
    for part in (definition.numerator, definition.denominator):
        if part not in COUNTS:
            raise ValueError(
                f"metric '{definition.name}': unknown count '{part}'; "
                f"counts are {', '.join(COUNTS)}"
            )
    funnel = list(COUNTS)
    if funnel.index(definition.numerator) <= funnel.index(definition.denominator):
        # Every event implies the ones before it (a click implies an open), so a
        # later count over an earlier one is a share in [0, 1].
        raise ValueError(
            f"metric '{definition.name}': the numerator must come after the denominator "
            f"in {' > '.join(funnel)}"
        )
    existing = _CATALOG.get(definition.name)
    if existing is not None and existing != definition:
        raise ValueError(f"metric '{definition.name}' is already registered differently")
    _CATALOG[definition.name] = definition
    return definition


def _registered() -> dict[str, Metric]:
    """The catalog, after the ``cpo.metrics`` entry points have been loaded once."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            _register_entry_point(entry_point)
    return _CATALOG


def _register_entry_point(entry_point: importlib.metadata.EntryPoint) -> None:
    """Load one ``cpo.metrics`` entry point and register the metric it names.

    Raises:
        ConfigError: it cannot be imported, is not a :class:`Metric` named like
            the entry point, or is not a valid metric; the message names it.
    """
    source = entry_point.dist.name if entry_point.dist else "an installed package"
    where = f"metric entry point '{entry_point.name} = {entry_point.value}' ({source})"
    hint = f"fix or uninstall {source}; a '{ENTRY_POINT_GROUP}' entry point names a Metric"
    try:
        found = entry_point.load()
    except Exception as exc:  # any import failure of a plugin is reported the same way
        raise ConfigError(f"{where} cannot be loaded: {exc}", hint=hint) from exc
    if not isinstance(found, Metric) or found.name != entry_point.name:
        raise ConfigError(
            f"{where} is {found!r}, not a Metric named '{entry_point.name}'", hint=hint
        )
    try:
        register_metric(found)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}", hint=hint) from exc


def unregister_metric(name: str) -> Metric:
    """Remove a metric from the catalog (for plugins and tests that clean up).

    Raises:
        KeyError: no metric of that name.
    """
    found = metric(name)
    del _CATALOG[name]
    return found


def metric(name: str) -> Metric:
    """The registered metric called ``name``.

    Raises:
        KeyError: no metric of that name (the message lists the known ones).
    """
    catalog = _registered()
    try:
        return catalog[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}'; known metrics: {', '.join(catalog)}") from None


def catalog_snapshot() -> list[dict[str, str]]:
    """Every registered metric as plain fields, for another process (the report worker)."""
    return [dataclasses.asdict(found) for found in _registered().values()]


def adopt_catalog(snapshot: list[dict[str, str]]) -> None:
    """Make this process's catalog the one :func:`catalog_snapshot` took elsewhere.

    A metric registered at run time in the parent (a script, a test) exists
    only in that process; the report worker adopts the parent's catalog, in
    its order, before it renders.
    """
    definitions = [Metric(**fields) for fields in snapshot]
    _registered().clear()  # entry points loaded first, so they are not loaded again later
    for definition in definitions:
        register_metric(definition)


def metric_names() -> tuple[str, ...]:
    """Names of every registered metric, in registration order."""
    return tuple(_registered())


def label(name: str) -> str:
    """The metric's label; an unregistered name reads as words (``a_b`` -> ``A b``)."""
    found = _registered().get(name)
    return found.label if found else name.replace("_", " ").capitalize()


def count_baselines(
    configured: Mapping[str, float | None],
    history_means: Mapping[str, float | None],
    conversion_per_click: float,
) -> dict[str, float]:
    """Per-recipient baseline probability of every count.

    A count's baseline is the configured rate of the metric ``count / sent``
    when one is set, else the mean of its history column (kept inside
    (0, 1)), else its derivation (``conversion_per_click`` x the baseline it
    derives from), else its fallback.

    Args:
        configured: Metric name -> configured baseline (``None`` = estimate).
        history_means: Customer column -> mean (``None`` when missing or empty).
        conversion_per_click: The share of the derived-from count assumed to convert.
    """
    per_sent = {m.numerator: m.name for m in _registered().values() if m.denominator == "sent"}
    baselines: dict[str, float] = {"sent": 1.0}
    for count in COUNTS.values():
        if count.name == "sent":
            continue
        value = configured.get(per_sent.get(count.name, ""))
        if value is None and count.history_column is not None:
            value = _bounded(history_means.get(count.history_column), count.history_fallback)
        if value is None and count.derived_from is not None:
            value = baselines[count.derived_from] * conversion_per_click
        if value is None:
            raise ValueError(f"count '{count.name}' has neither a history column nor a derivation")
        baselines[count.name] = value
    return baselines


def _bounded(mean: float | None, fallback: float | None) -> float | None:
    """A history mean kept strictly inside (0, 1), or the fallback when there is none."""
    if mean is None:
        return fallback
    return min(max(mean, 1e-4), MAX_BASELINE)


def metric_baselines(
    configured: Mapping[str, float | None], counts: Mapping[str, float]
) -> dict[str, float]:
    """Baseline of every registered metric: configured, else numerator / denominator baselines.

    Args:
        configured: Metric name -> configured baseline (``None`` = estimate).
        counts: Per-recipient baseline of every count (:func:`count_baselines`).
    """
    result = {}
    for name, found in _registered().items():
        value = configured.get(name)
        if value is None:
            value = min(counts[found.numerator] / counts[found.denominator], MAX_BASELINE)
        result[name] = value
    return result


def denominator_share(name: str, baselines: Mapping[str, float]) -> float:
    """Expected share of recipients in the metric's denominator (1 for ``sent``).

    Args:
        name: A registered metric.
        baselines: Baseline of every metric (:func:`metric_baselines`); the
            share is the baseline of the metric ``denominator / sent``.

    Raises:
        ValueError: no registered metric measures the denominator per recipient.
    """
    denominator = metric(name).denominator
    if denominator == "sent":
        return 1.0
    for candidate in _registered().values():
        if candidate.numerator == denominator and candidate.denominator == "sent":
            return baselines[candidate.name]
    raise ValueError(f"metric '{name}': no metric measures '{denominator}' per recipient")


for _builtin in (
    Metric(
        "open_rate",
        "Open rate",
        "Share of recipients who opened (inflated by mail privacy proxies).",
        "opened",
        "sent",
    ),
    Metric("click_rate", "Click rate", "Share of recipients who clicked.", "clicked", "sent"),
    Metric(
        "conversion_rate",
        "Conversion rate",
        "Share of recipients who converted.",
        "converted",
        "sent",
    ),
    Metric(
        "click_to_open_rate",
        "Click-to-open rate",
        "Share of openers who clicked.",
        "clicked",
        "opened",
    ),
):
    register_metric(_builtin)
