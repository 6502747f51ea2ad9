"""Benchmark: importing an email service's event file (SendGrid Event Webhook JSON).

Generates, for ``--rows`` recipients (not timed), a minimal run folder
(``manifest.json``, ``sends.csv`` with customer_id and email,
``assignments.csv``) and a SendGrid event file with what a send produces:
``processed`` and ``delivered`` for everyone, a human ``open`` for 30 %, an
Apple Mail Privacy Protection open (``sg_machine_open``) for another 20 %, a
``click`` for 5 %, a scanner click 2 s after delivery for 2 %, and 1 % of the
events posted twice. Then times each step of
:func:`cpo.events.imports.import_provider_events` separately, ``--repeats``
times, in this process:

- ``read``: decoding the JSON and parsing it into events;
- ``index``: reading the send list into the join index;
- ``normalise``: repeats, the join, machine rules, suppression candidates;
- ``import``: the engagement import's checks and per-recipient flags.

Prints the machine, the event count, min and median seconds per step, and the
peak RSS of the process.

    python benchmarks/event_import.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

ARMS = ("control", "treatment_1", "treatment_2", "treatment_3")


def write_inputs(folder: Path, rows: int) -> Path:
    """The run folder and the event file (returned)."""
    import pandas as pd

    run = folder / "run"
    run.mkdir(parents=True, exist_ok=True)
    ids = [f"C{i:08d}" for i in range(rows)]
    (run / "manifest.json").write_text(json.dumps({"run_id": "bench-run", "status": "completed"}))
    pd.DataFrame(
        {
            "customer_id": ids,
            "segment": "all",
            "experiment_arm": [ARMS[i % 4] for i in range(rows)],
            "variant_id": "v",
            "assigned_at": "2025-01-01T00:00:00Z",
            "assignment_method": "hash",
        }
    ).to_csv(run / "assignments.csv", index=False)
    pd.DataFrame({"customer_id": ids, "email": [f"{c.lower()}@example.org" for c in ids]}).to_csv(
        run / "sends.csv", index=False
    )
    events: list[dict[str, Any]] = []
    start = 1735700000

    def add(i: int, email: str, kind: str, at: int, **extra: Any) -> None:
        events.append(
            {"email": email, "timestamp": at, "event": kind, "sg_event_id": f"{i}-{kind}-{at}",
             "sg_message_id": f"m{i}", "category": "bench", **extra}
        )  # fmt: skip

    for i, customer in enumerate(ids):
        email = f"{customer.lower()}@example.org"
        add(i, email, "processed", start)
        add(i, email, "delivered", start + 30)
        if i % 10 < 3:
            add(i, email, "open", start + 3600 + i % 997, useragent="Mozilla/5.0 (Windows NT 10.0)")
        elif i % 10 < 5:
            add(i, email, "open", start + 40, useragent="Mozilla/5.0", sg_machine_open=True)
        if i % 20 == 0:
            add(i, email, "click", start + 3700, url="https://example.com/a")
        elif i % 50 == 1:
            add(i, email, "click", start + 32, url="https://example.com/a")
    events += events[:: max(1, len(events) // (len(events) // 100 or 1))][: len(events) // 100]
    path = folder / "sendgrid_events.json"
    path.write_text(json.dumps(events))
    return path


def timed(repeats: int, step: Callable[[], Any]) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - began)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from cpo import run_folder
    from cpo.events.formats import read_events
    from cpo.events.normalise import SendIndex, normalise
    from cpo.events.settings import EventSettings
    from cpo.experiment.engagement import import_event_rows

    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_inputs(Path(tmp), args.rows)
        run = Path(tmp) / "run"
        assignments = run_folder.read_assignments(run)
        settings = EventSettings()
        steps: dict[str, list[float]] = {}
        steps["read"], (_, events) = timed(args.repeats, lambda: read_events(path, "conversion"))
        steps["index"], index = timed(args.repeats, lambda: SendIndex.from_run(run))
        steps["normalise"], result = timed(args.repeats, lambda: normalise(events, index, settings))
        steps["import"], imported = timed(
            args.repeats, lambda: import_event_rows(path, result.frame, assignments)
        )
    print(f"recipients {args.rows:,}, events {len(events):,}, file {path.name}")
    for name, times in steps.items():
        print(f"{name:10s} min {min(times):7.2f} s  median {statistics.median(times):7.2f} s")
    total = sum(statistics.median(t) for t in steps.values())
    print(f"{'total':10s} median sum {total:7.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; opened {int(imported.frame['opened'].sum()):,}, "
          f"machine opens {result.counts['machine_opens']:,}")  # fmt: skip


if __name__ == "__main__":
    main()
