"""Benchmark: assignment of 1M customers (vectorized) beside a per-record Python loop.

Cases, each in a fresh subprocess so peak memory (max RSS) is its own:

* ``stratified_block`` and ``hash``: :func:`cpo.experiment.assignment.assign`
  (keyed SipHash over all ids, then per-segment dealing / cumulative lookup);
* ``loop``: the straightforward baseline: for each customer, sha256 of
  ``salt:id`` with hashlib, append to the segment's list, sort each list and
  deal arms in a Python loop (the same apportioned sizes);
* ``sends``: rendering the send list (merge fields, 150-word bodies) for the
  assigned customers and writing ``sends.csv`` (about 1 GB);
* ``import_recipients`` / ``import_events``: importing engagement from Parquet,
  one row per recipient (1M rows) or one row per event (about 2M events:
  delivered, open, click with 1% duplicates and 1% before the send).

Timing covers assignment (or rendering) only, not data generation or design.

    python benchmarks/assignment.py                  # 1M customers
    python benchmarks/assignment.py --size 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

# About 150 words, like a real variant body.
FILLER = "Our trail-tested gear is ready for the season ahead. " * 17
SEGMENT_SHARES = {"High-Value Recent": 0.15, "At-Risk": 0.30, "New Customer": 0.2, "Standard": 0.35}


def make_customers(size: int):
    """``size`` customers with ids, names, emails and one of four segments."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    names = list(SEGMENT_SHARES)
    segment = rng.choice(len(names), size=size, p=list(SEGMENT_SHARES.values()))
    ids = pd.Series(np.arange(size)).map("C{:08d}".format)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "segment": np.asarray(names, dtype=object)[segment],
            # 5,000 distinct first names (real lists repeat names a lot), 1% blank.
            "first_name": np.where(
                rng.random(size) < 0.01,
                "",
                pd.Series(rng.integers(0, 5000, size)).map("Name{}".format),
            ),
            "email": ids + "@example.org",
        }
    )


def make_design(customers, method: str):
    """A design over the customers' segments with every variant sendable."""
    from cpo.decisions import FinalDecision, content_sha256
    from cpo.experiment.analysis_settings import AnalysisSettings
    from cpo.experiment.design import build_design
    from cpo.experiment.settings import ExperimentSettings
    from cpo.models import Variant

    tones = ["urgent", "informational", "friendly"]
    variants = [Variant("control", "all", "control", "Hello {first_name}", "Hi {first_name},")]
    for s, name in enumerate(SEGMENT_SHARES):
        for tone in tones:
            body = f"Hi {{first_name}},\n\n{tone} news for {name}. " + FILLER
            variants.append(Variant(f"s{s}-{tone}", name, tone, f"{tone} {{first_name}}", body))
    decisions = {
        v.variant_id: FinalDecision(
            v.variant_id, v.segment, v.tone, "pass", "pass", (), content_sha256(v)
        )
        for v in variants
    }
    design = build_design(
        experiment_name="bench",
        settings=ExperimentSettings(assignment_method=method),
        tones=tones,
        segment_sizes=customers["segment"].value_counts(sort=False).to_dict(),
        variants=variants,
        decisions=decisions,
        salt="bench-salt",
        analysis=AnalysisSettings(),
        baselines={
            "open_rate": 0.25,
            "click_rate": 0.04,
            "conversion_rate": 0.004,
            "click_to_open_rate": 0.16,
        },
    )
    return design, {v.variant_id: v for v in variants}


def loop_assign(ids: list[str], segments: list[str], design) -> list[str]:
    """The per-record baseline: hash each id, group, sort and deal in Python."""
    by_segment: dict[str, list[tuple[int, int]]] = {}
    for position, (customer_id, segment) in enumerate(zip(ids, segments, strict=True)):
        digest = hashlib.sha256(f"{design.salt}:{customer_id}".encode()).digest()
        by_segment.setdefault(segment, []).append((int.from_bytes(digest[:8], "big"), position))
    arms = [""] * len(ids)
    plans = {plan.segment: plan for plan in design.segments}
    for segment, members in by_segment.items():
        members.sort()
        plan = plans[segment]
        labels = []
        for group in ["holdout", *plan.shares]:
            labels.extend([group] * int(plan.expected_counts.get(group, 0)))
        for (_, position), label in zip(members, labels, strict=True):
            arms[position] = label
    return arms


def engagement_file(assignments, case: str):
    """A synthetic engagement export for the assigned recipients."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    ids = assignments["customer_id"].to_numpy(dtype=object)
    if case == "import_recipients":
        opened = rng.random(len(ids)) < 0.3
        clicked = opened & (rng.random(len(ids)) < 0.2)
        return pd.DataFrame(
            {"customer_id": ids, "opened": opened, "clicked": clicked, "converted": False}
        )
    events = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, 3),
            "event": np.tile(["delivered", "open", "click"], len(ids)),
            "timestamp": pd.Timestamp("2026-01-02T10:00:00Z"),
        }
    )
    events = events.loc[rng.random(len(events)) < np.tile([1.0, 0.35, 0.08], len(ids))]
    early = events.sample(frac=0.01, random_state=1).assign(
        timestamp=pd.Timestamp("2025-12-31T10:00:00Z")
    )
    duplicates = events.sample(frac=0.01, random_state=2)
    return pd.concat([events, early, duplicates], ignore_index=True)


def run_case(case: str, size: int) -> dict[str, object]:
    """Run one case in this process and return its measurements."""
    from cpo.experiment.assignment import assign
    from cpo.experiment.engagement import import_engagement
    from cpo.experiment.sends import build_send_list, write_send_list
    from cpo.safety.local import LocalSafetyAnalyzer
    from cpo.safety.merge import MergeScreener
    from cpo.safety.settings import SafetyPolicySettings

    customers = make_customers(size)
    method = "hash" if case == "hash" else "stratified_block"
    design, variants = make_design(customers, method)
    size_mb = 0.0
    started = time.perf_counter()
    if case == "loop":
        ids, segments = customers["customer_id"].tolist(), customers["segment"].tolist()
        started = time.perf_counter()
        arms = loop_assign(ids, segments, design)
        rows = len(arms)
    elif case == "sends":
        assignments = assign(customers, design)
        started = time.perf_counter()
        # the real merge screen: each of the ~5,000 distinct names is screened once
        screen = MergeScreener(LocalSafetyAnalyzer(), SafetyPolicySettings())
        frame = build_send_list(assignments, customers, variants, screen=screen).frame
        with tempfile.TemporaryDirectory() as folder:
            write_send_list(Path(folder) / "sends.csv", frame)
            size_mb = (Path(folder) / "sends.csv").stat().st_size / 1e6
        rows = len(frame)
    elif case.startswith("import"):
        assignments = assign(customers, design, "2026-01-01T00:00:00Z")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "engagement.parquet"
            engagement_file(assignments, case).to_parquet(path)
            started = time.perf_counter()
            rows = len(import_engagement(path, assignments).frame)
    else:
        rows = len(assign(customers, design, "2026-01-01T00:00:00Z"))
    seconds = time.perf_counter() - started
    return {
        "case": case,
        "customers": size,
        "rows": rows,
        "seconds": round(seconds, 3),
        "customers_per_s": round(size / seconds),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "file_mb": round(size_mb),
    }


def main() -> None:
    """Run every case in a subprocess and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["stratified_block", "hash", "loop", "sends", "import_recipients", "import_events"],
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs per case (min and median).")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return
    print_machine()
    print(
        f"{'case':<17} {'customers':>10} {'min s':>7} {'median s':>9} {'cust/s (min)':>13} "
        f"{'peak RSS MiB':>13}"
    )
    for case in args.cases:
        rows = [_run_subprocess(case, args.size) for _ in range(args.repeat)]
        times = sorted(row["seconds"] for row in rows)
        print(
            f"{case:<17} {args.size:>10} {times[0]:>7.2f} {statistics.median(times):>9.2f} "
            f"{round(args.size / times[0]):>13} {max(r['peak_rss_mib'] for r in rows):>13}"
            + (f"   sends.csv {rows[0]['file_mb']} MB" if rows[0]["file_mb"] else "")
        )


def _run_subprocess(case: str, size: int) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, __file__, "--case", case, str(size)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
