"""An email service's event file imported as a run's engagement.

``cpo run --resume DIR --engagement FILE`` comes here when FILE is a provider
event file (:func:`cpo.events.formats.detect_format`): the events are read,
normalised against the run's send list (:mod:`cpo.events.normalise`), the
unsubscribes, hard bounces and complaints go onto the suppression list beside
the runs (:mod:`cpo.suppressions`), and the remaining per-event rows go through
the engagement import's checks (:func:`cpo.experiment.engagement.import_event_rows`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cpo.events.formats import read_events
from cpo.events.normalise import SendIndex, normalise
from cpo.events.orders import read_orders
from cpo.events.records import EventFileError
from cpo.events.settings import EventSettings
from cpo.experiment.engagement import EngagementImport, import_event_rows
from cpo.suppressions import open_suppressions, resolve_suppressions_path


def import_provider_events(
    path: Path | str,
    run_dir: Path | str,
    assignments: pd.DataFrame,
    settings: EventSettings,
    orders: Path | str | None = None,
    suppressions: Path | str | None = None,
    check_only: bool = False,
    index: SendIndex | None = None,
) -> tuple[EngagementImport, dict[str, Any]]:
    """Import an event file as the run's engagement.

    Args:
        path: The event file (SendGrid, Mailgun, SES via SNS, or event CSV).
        run_dir: The run folder (its send list and manifest are read).
        assignments: The run's assignments.
        settings: ``experiment.events`` of the run's config.
        orders: An orders file whose orders are the conversions (None = the
            conversion event of ``settings`` only); see :mod:`cpo.events.orders`.
        suppressions: Folder or file of the suppression list; None = beside
            the run folder (``suppressions.sqlite`` in its parent).
        check_only: Check the file and report, but add nothing to the
            suppression list (the web upload's check before the import job).
        index: Who the run sent to (None = the run's send list); adaptive
            waves give every wave's recipients, since the send list holds the
            current wave only.

    Returns:
        The engagement import, and the ``provider_events`` report (provider,
        counts of repeats, unknown recipients, machine events, suppressions).

    Raises:
        EventFileError: the file is malformed, or none of its events is of a
            recipient of this run.
    """
    path = Path(path)
    provider, events = read_events(path, settings.conversion_event)
    index = index or SendIndex.from_run(run_dir)
    normalised = normalise(events, index, settings)
    added = (
        {}
        if check_only
        else apply_suppressions(
            normalised.suppress,
            resolve_suppressions_path(suppressions, run_dir),
            f"{index.run_id}:{path.name}",
        )
    )
    if normalised.frame.empty:
        raise EventFileError(
            f"{path}: no {provider} event of this file concerns a recipient of this run "
            f"({normalised.counts['unknown_recipient_events']} event(s) of unknown recipients, "
            f"{normalised.counts['other_run_events']} of another run)",
            hint="is this the event export of this run's send? events are matched by "
            "cpo's X-CPO-Customer header or custom argument, the address, or the Message-ID",
        )
    report: dict[str, Any] = {"provider": provider, **normalised.counts}
    rows = normalised.frame
    if orders is not None:
        conversions, report["orders"] = _orders(Path(orders), index, settings)
        rows = pd.concat([rows, conversions], ignore_index=True)
    result = import_event_rows(path, rows, assignments)
    result = dataclasses.replace(result, warnings=normalised.warnings + result.warnings)
    report["suppressions_added"] = added
    return result, {"provider_events": report}


def apply_suppressions(
    entries: Sequence[tuple[str, str, datetime]], list_path: Path, source: str
) -> dict[str, int]:
    """Add ``(value, reason, when)`` entries to the suppression list; new entries per reason."""
    added: Counter[str] = Counter()
    if not entries:
        return {}
    with open_suppressions(list_path) as listed:
        for value, reason, at in entries:
            if listed.add(value, reason, source, at):
                added[reason] += 1
    return dict(sorted(added.items()))


def _orders(
    path: Path, index: SendIndex, settings: EventSettings
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The conversion rows of an orders file, and its counts."""
    orders = read_orders(path)
    normalised = normalise(orders, index, settings)
    counts = {
        "file": path.name,
        "rows": len(orders),
        "repeated": normalised.counts["repeated_events"],
        "of_recipients": len(normalised.frame),
        "of_others": normalised.counts["unknown_recipient_events"],
    }
    return normalised.frame, counts
