"""calculate_metrics(config=None) parses the packaged config once per process, immutably."""

from __future__ import annotations

import pydantic
import pytest

import cpo.config
from cpo.experiment import metrics
from cpo.experiment.metrics import calculate_metrics, experiment_config

RECORDS = [
    {"experiment_arm": arm, "opened": i % 2, "clicked": 0, "converted": 0}
    for i, arm in enumerate(["control", "treatment_1"] * 20)
]


def test_the_packaged_config_is_parsed_once(monkeypatch):
    calls = []
    original = cpo.config.load_config
    monkeypatch.setattr(cpo.config, "load_config", lambda *a: calls.append(a) or original(*a))
    metrics._packaged_experiment_config.cache_clear()
    first = calculate_metrics(RECORDS)
    second = calculate_metrics(RECORDS)
    assert len(calls) == 1
    assert first["primary_metric"] == second["primary_metric"]


def test_the_cached_config_cannot_be_changed_by_a_caller():
    cached = experiment_config(None)
    with pytest.raises(pydantic.ValidationError):
        cached.analysis.alpha = 0.5  # type: ignore[misc]
    assert (
        experiment_config(None).analysis.alpha == cpo.config.load_config().experiment.analysis.alpha
    )
