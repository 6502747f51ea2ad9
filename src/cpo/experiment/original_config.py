"""Translate the original specification's ``experiment_config`` dict to cpo's keys.

Users of the original ``calculate_metrics(records, experiment_config)`` pass
the dict they load from their ``experiment_config.yaml``, for example::

    experiment:
      name: Personalization POC
      experiment_id: exp-001
      description: Tone test
      design: A/B/n
      sample_allocation: {control: 0.25, treatment_1: 0.25, treatment_2: 0.25, treatment_3: 0.25}
      arms: [...]
    metrics:
      primary: click_rate
      secondary: [open_rate, conversion_rate]
    statistical_testing:
      alpha: 0.05
      power: 0.8
      minimum_detectable_effect: 0.10

The ``metrics``, ``statistical_testing`` and descriptive keys are accepted at
the top level or inside ``experiment``. What maps is used:

=======================================================  =======================================
original key                                             cpo key
=======================================================  =======================================
``experiment.name``                                      ``experiment_name`` of the result
``experiment_id``                                        ``experiment_id`` of the result
``metrics.primary``                                      ``analysis.primary_metric``
``metrics.secondary``                                    ``analysis.secondary_metrics``
``statistical_testing.alpha``                            ``analysis.alpha`` (and the interval
                                                         level ``1 - alpha`` unless
                                                         ``confidence_level`` is given)
``statistical_testing.confidence_level``                 ``analysis.confidence_level``
``statistical_testing.power``                            ``analysis.power``
``statistical_testing.minimum_detectable_effect``        ``experiment.power.expected_relative_lift``
``sample_allocation`` (arm -> weight, arms named         expected shares of the sample-ratio check
``control``, ``treatment_1``, ...)
=======================================================  =======================================

Everything else of the original (``description``, ``design``, ``arms``, a
``sample_allocation`` that does not name cpo arms, other keys inside those
sections) is ignored and listed in a ``config_keys_ignored`` warning of the
result. Keys that are neither the original's nor cpo's still fail validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cpo.errors import ConfigError
from cpo.experiment.catalog import metric_names
from cpo.experiment.settings import CONTROL_ARM, TREATMENT_PREFIX

#: Keys of the original's ``experiment`` section (cpo's ``experiment`` has none of them).
ORIGINAL_EXPERIMENT_KEYS = frozenset(
    {"name", "description", "experiment_id", "id", "design", "sample_allocation", "arms"}
)
#: Sections of the original that cpo's experiment_config.yaml does not have.
ORIGINAL_SECTIONS = frozenset({"metrics", "statistical_testing"})
#: Original metric names -> cpo metric names (besides cpo's own names, see :func:`metric_name`).
METRIC_ALIASES = {
    "open": "open_rate",
    "opens": "open_rate",
    "click": "click_rate",
    "clicks": "click_rate",
    "ctr": "click_rate",
    "click_through_rate": "click_rate",
    "clickthrough_rate": "click_rate",
    "conversion": "conversion_rate",
    "conversions": "conversion_rate",
    "cvr": "conversion_rate",
    "ctor": "click_to_open_rate",
    "click_to_open": "click_to_open_rate",
}
#: ``statistical_testing`` key -> (cpo section, cpo key).
TESTING_KEYS = {
    "alpha": ("analysis", "alpha"),
    "significance_level": ("analysis", "alpha"),
    "confidence_level": ("analysis", "confidence_level"),
    "power": ("analysis", "power"),
    "minimum_detectable_effect": ("experiment.power", "expected_relative_lift"),
}


@dataclass
class Translation:
    """The cpo form of a config dict, and what the original keys became.

    Attributes:
        config: The dict in cpo's shape (cpo keys passed through unchanged).
        name: ``experiment.name`` of the original, if given.
        experiment_id: ``experiment_id`` of the original, if given.
        allocation: ``sample_allocation`` when it names cpo arms, else None.
        used: Original keys that were mapped (dotted paths).
        ignored: Original keys that were ignored (dotted paths).
    """

    config: dict[str, Any]
    name: str | None = None
    experiment_id: str | None = None
    allocation: dict[str, float] | None = None
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def is_original(self) -> bool:
        """True when any key of the original specification was found."""
        return bool(self.used or self.ignored)

    def warning(self) -> dict[str, str] | None:
        """The ``config_keys_ignored`` warning, or None when nothing was ignored."""
        if not self.ignored:
            return None
        return {
            "code": "config_keys_ignored",
            "message": "keys of the original experiment_config that cpo does not use were "
            f"ignored: {', '.join(self.ignored)} (see docs/api.md, 'Migrating')",
        }


def translate(config: Mapping[str, Any]) -> Translation:
    """Split a config dict into cpo keys and the original specification's keys.

    Args:
        config: A dict in cpo's shape, the original's shape, or a mix.

    Returns:
        The translation; ``config`` holds cpo keys only (to validate as usual).

    Raises:
        ConfigError: an original key that maps has a value cpo cannot use
            (an unknown metric name, a non-numeric alpha, ...).
    """
    original = ORIGINAL_EXPERIMENT_KEYS | ORIGINAL_SECTIONS
    rest = dict(config)
    found: dict[str, tuple[str, Any]] = {}
    experiment = rest.get("experiment")
    if isinstance(experiment, Mapping) and set(experiment) & original:
        found = {k: (f"experiment.{k}", v) for k, v in experiment.items() if k in original}
        remaining = {k: v for k, v in experiment.items() if k not in original}
        if remaining:
            rest["experiment"] = remaining
        else:
            del rest["experiment"]
    duplicates = []
    for key in [k for k in rest if k in original]:
        value = rest.pop(key)
        if key in found:
            duplicates.append(key)  # also inside experiment: that one is used
        else:
            found[key] = (key, value)
    result = Translation(config=rest, ignored=duplicates)
    for key, (path, value) in found.items():
        _apply(result, key, path, value)
    return result


def _apply(result: Translation, key: str, path: str, value: Any) -> None:
    """Map one original key (or section) into ``result``."""
    if key == "name":
        result.name = str(value)
        result.used.append(path)
    elif key in ("experiment_id", "id"):
        result.experiment_id = str(value)
        result.used.append(path)
    elif key == "sample_allocation":
        result.allocation = _allocation(value)
        (result.used if result.allocation is not None else result.ignored).append(path)
    elif key == "metrics":
        _apply_metrics(result, path, value)
    elif key == "statistical_testing":
        _apply_testing(result, path, value)
    else:
        result.ignored.append(path)


def _section(result: Translation, dotted: str) -> dict[str, Any]:
    """The (created on demand) nested dict of ``result.config`` at ``dotted``."""
    node = result.config
    for part in dotted.split("."):
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    return node


def _set_default(result: Translation, dotted: str, key: str, value: Any, path: str) -> None:
    """Set a cpo key unless the cpo part of the config sets it explicitly."""
    _section(result, dotted).setdefault(key, value)
    result.used.append(path)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"config key '{path}': expected a mapping, found {value!r}",
            hint="see docs/api.md for the accepted experiment_config shapes",
        )
    return value


def _apply_metrics(result: Translation, path: str, value: Any) -> None:
    """``metrics.primary`` / ``metrics.secondary`` -> the analysis metrics."""
    metrics = _mapping(value, path)
    primary = None
    if "primary" in metrics:
        primary = metric_name(metrics["primary"], f"{path}.primary")
        _set_default(result, "analysis", "primary_metric", primary, f"{path}.primary")
    if "secondary" in metrics:
        raw = metrics["secondary"]
        items = [raw] if isinstance(raw, str) else list(raw or [])
        names = [metric_name(m, f"{path}.secondary") for m in items]
        chosen = primary or result.config.get("analysis", {}).get("primary_metric")
        unique = [m for m in dict.fromkeys(names) if m != chosen]
        _set_default(result, "analysis", "secondary_metrics", unique, f"{path}.secondary")
    elif primary is not None:
        # cpo's default secondaries minus the new primary (the primary cannot be both).
        secondary = [m for m in metric_names() if m != primary]
        _section(result, "analysis").setdefault("secondary_metrics", secondary)
    result.ignored += [f"{path}.{k}" for k in metrics if k not in ("primary", "secondary")]


def metric_name(value: Any, path: str) -> str:
    """A metric name of the original (``ctr``, ``click_rate``, ...) as cpo's name.

    Raises:
        ConfigError: the name is not a known metric.
    """
    text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {**{name: name for name in metric_names()}, **METRIC_ALIASES}
    if text not in aliases:
        raise ConfigError(
            f"config key '{path}': unknown metric {value!r}",
            hint=f"use one of {', '.join(metric_names())}",
        )
    return aliases[text]


def _apply_testing(result: Translation, path: str, value: Any) -> None:
    """``statistical_testing.*`` -> alpha, confidence level, power, planned lift."""
    testing = _mapping(value, path)
    for key, raw in testing.items():
        if key not in TESTING_KEYS:
            result.ignored.append(f"{path}.{key}")
            continue
        number = _number(raw, f"{path}.{key}")
        dotted, cpo_key = TESTING_KEYS[key]
        _set_default(result, dotted, cpo_key, number, f"{path}.{key}")
    alpha = result.config.get("analysis", {}).get("alpha")
    if alpha is not None and "confidence_level" not in testing and 0 < alpha < 0.5:
        # One level for tests and intervals, as in the original.
        _section(result, "analysis").setdefault("confidence_level", round(1 - alpha, 12))


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            f"config key '{path}': expected a number, found {value!r}",
            hint="write it as a decimal, e.g. 0.05",
        )
    return float(value)


def _allocation(value: Any) -> dict[str, float] | None:
    """``sample_allocation`` as arm -> weight when it names cpo arms, else None."""
    if not isinstance(value, Mapping) or not value:
        return None
    weights = {}
    for arm, weight in value.items():
        name = str(arm).strip().lower()
        is_arm = name == CONTROL_ARM or (
            name.startswith(TREATMENT_PREFIX) and name.removeprefix(TREATMENT_PREFIX).isdigit()
        )
        if not is_arm or isinstance(weight, bool) or not isinstance(weight, int | float):
            return None
        if not math.isfinite(weight) or weight < 0:
            return None
        weights[name] = float(weight)
    if weights.get(CONTROL_ARM, 0) <= 0:
        return None
    total = sum(weights.values())
    return {arm: weight / total for arm, weight in weights.items()}
