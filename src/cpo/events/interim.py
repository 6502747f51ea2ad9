"""An interim analysis of the webhook events a run has received so far.

The web app stores each event posted to ``/hooks/{provider}/{run_id}``; the run
page analyses them with the run's own settings: the same normalisation as an
event file (repeats, unknown recipients, machine opens), the engagement
import's checks and the full analysis. It is labelled *interim*: events keep
arriving for days after a send, and deciding on an early look inflates false
positives. A run analysed with ``analysis.sequential: true`` also gets
always-valid p-values and confidence sequences (:mod:`cpo.experiment.sequential`),
computed as the next look after the looks recorded in the run folder; viewing
never records a look (a page view does not change the run folder), and the
always-valid guarantee holds at any look, recorded or not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo import run_folder
from cpo.errors import CpoError
from cpo.events import mailgun, sendgrid
from cpo.events.formats import parse_payload
from cpo.events.normalise import SendIndex, normalise
from cpo.events.records import Event

#: How a provider's stored events become one payload its parser reads.
_PAYLOADS = {
    sendgrid.PROVIDER: lambda events: events,
    mailgun.PROVIDER: lambda events: {"items": events},
}


@dataclass(frozen=True)
class Interim:
    """An interim look at a run's webhook events.

    Attributes:
        received: Events stored for the run.
        metrics: The analysis (``metrics.json`` form), None when there is none.
        counts: Normalisation counts (repeats, unknown recipients, machine events).
        warnings: Messages of the normalisation, the import and the analysis.
        problem: Why there is no analysis ("" when there is one).
    """

    received: int
    metrics: dict[str, Any] | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problem: str = ""

    def arm_rows(self) -> list[dict[str, Any]]:
        """Per arm: counts, the primary metric and its lift over control (for the run page)."""
        if self.metrics is None:
            return []
        primary = self.metrics["primary_metric"]
        lifts = {
            lift["treatment_arm"]: lift
            for lift in self.metrics.get("lift_analysis", [])
            if lift["metric"] == primary
        }
        looks = (self.metrics.get("sequential") or {}).get("looks") or [{"comparisons": []}]
        valid = {c["treatment_arm"]: c for c in looks[-1]["comparisons"] if c["metric"] == primary}
        return [
            {
                **_arm_row(name, arm, primary, lifts.get(name)),
                **_always_valid(valid.get(name)),
            }
            for name, arm in self.metrics["arms"].items()
        ]

    @property
    def look(self) -> int | None:
        """The look this interim analysis is (with ``analysis.sequential``), else None."""
        sequential = (self.metrics or {}).get("sequential")
        return None if sequential is None else int(sequential["look"])


def _always_valid(record: dict[str, Any] | None) -> dict[str, Any]:
    """The arm's always-valid adjusted p-value and confidence sequence (None without one)."""
    record = record or {}
    return {
        "p_always_valid": record.get("p_value_adjusted"),
        "cs_lower": record.get("cs_lower"),
        "cs_upper": record.get("cs_upper"),
    }


def _arm_row(
    name: str, arm: dict[str, Any], primary: str, lift: dict[str, Any] | None
) -> dict[str, Any]:
    significance = (lift or {}).get("statistical_significance") or {}
    interval = significance.get("confidence_interval") or {}
    return {
        "arm": name,
        "tone": arm.get("tone", ""),
        **arm["counts"],
        "rate": arm["metrics"].get(primary),
        "lift": None if lift is None else lift["lift_absolute"],
        "lower": interval.get("lower"),
        "upper": interval.get("upper"),
        "p_adjusted": significance.get("p_value_adjusted"),
    }


def interim_analysis(run_dir: Path, stored: Sequence[tuple[str, str]]) -> Interim:
    """Analyse the stored ``(provider, event JSON)`` pairs of a run.

    Never raises for bad data: a problem is returned in :attr:`Interim.problem`.
    """
    if not stored:
        return Interim(received=0, problem="no events received yet")
    try:
        return _analyse(run_dir, stored)
    except CpoError as exc:
        return Interim(received=len(stored), problem=exc.message)


def _analyse(run_dir: Path, stored: Sequence[tuple[str, str]]) -> Interim:
    from cpo.experiment.engagement import import_event_rows
    from cpo.experiment.metrics import calculate_metrics

    config = run_experiment_config(run_folder.read_manifest(run_dir))
    settings = config.experiment.events
    events = parse_stored(stored, settings.conversion_event)
    normalised = normalise(events, SendIndex.from_run(run_dir), settings)
    if normalised.frame.empty:
        return Interim(
            received=len(stored),
            counts=normalised.counts,
            problem="none of the events received so far concerns a recipient of this run",
        )
    assignments = run_folder.read_assignments(run_dir)
    imported = import_event_rows(Path("webhook events"), normalised.frame, assignments)
    metrics = calculate_metrics(imported.frame, config, design=run_folder.read_design(run_dir))
    if config.analysis.sequential:
        from cpo.experiment.results import MetricsDocument
        from cpo.experiment.sequential import monitor_metrics

        tau = config.analysis.sequential_tau
        document = MetricsDocument.from_dict(metrics)
        metrics = monitor_metrics(document, tau=tau, run_dir=run_dir).to_dict()
    messages = [w["message"] for w in normalised.warnings + imported.warnings]
    messages += [str(w["message"]) for w in metrics.get("warnings", [])]
    return Interim(len(stored), metrics, normalised.counts, list(dict.fromkeys(messages)))


def parse_stored(stored: Sequence[tuple[str, str]], conversion_event: str) -> list[Event]:
    """The events of stored ``(provider, event JSON)`` pairs, in their order per provider."""
    by_provider: dict[str, list[Any]] = defaultdict(list)
    for provider, text in stored:
        by_provider[provider].append(json.loads(text))
    events: list[Event] = []
    for provider, items in by_provider.items():
        payload = _PAYLOADS[provider](items)
        events += parse_payload(provider, payload, f"{provider} webhook", conversion_event)
    return events


def run_experiment_config(manifest: dict[str, Any]) -> Any:
    """The run's ``experiment_config.yaml`` model from its manifest (defaults if unreadable)."""
    from pydantic import ValidationError

    from cpo.config import EXPERIMENT_CONFIG_FILE, ExperimentConfigFile

    snapshot = (manifest.get("config") or {}).get(EXPERIMENT_CONFIG_FILE)
    try:
        return ExperimentConfigFile.model_validate(snapshot or {})
    except ValidationError:
        return ExperimentConfigFile()
