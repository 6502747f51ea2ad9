"""Benchmark: the experiment analysis of 10 million per-recipient records from Parquet.

Measures, each case in a fresh subprocess so that its peak memory (max RSS) is
its own:

- ``vectorized``: :func:`cpo.experiment.aggregate.aggregate_file` (streamed
  Parquet batches, only the needed columns, duplicate customer check on) and
  :func:`cpo.experiment.analysis.analyze` (the whole metrics.json document);
- ``vectorized-no-dup-check``: the same without the duplicate customer check;
- ``python-loop``: the straightforward baseline, a per-record Python loop over
  the rows (``to_pylist``) with the same validation and duplicate check (a
  set of ids), then the same ``analyze``. It runs on the first
  ``--loop-rows`` rows and its time is extrapolated linearly to the full file
  (reported as such).

A separate small case (``--cases calculate-metrics``, also in the default
set) times :func:`cpo.experiment.metrics.calculate_metrics` on
``--small-records`` in-memory records (10,000 by default; median of
``--repeats`` calls after one warm-up), and how much of it the Bayesian
comparisons (:func:`cpo.experiment.stats.prob_beat_control`) take.

``--src LABEL=DIR`` (repeatable) times ``calculate_metrics`` of another
source tree too (e.g. a ``git archive`` export of an earlier commit): each
version and size runs in its own process, versions in turn, so before and
after are measured side by side in one run.

Data generation is not timed. The file is kept (``--data``) and reused.

    python benchmarks/analysis.py                   # 10M rows
    python benchmarks/analysis.py --rows 1000000    # smaller
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

ARMS = ("control", "treatment_1", "treatment_2", "treatment_3")
SEGMENTS = ("High-Value Recent", "At-Risk", "New Customer", "Standard")
FLAGS = ("opened", "clicked", "converted")


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """Write ``rows`` per-recipient records (1M-row groups), as a run's engagement would be."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    # Customer ids in random order, as an export would have them: the duplicate
    # check sorts the ids, and sorted input would flatter it.
    numbers = rng.permutation(rows)
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        opened = rng.random(n) < 0.30
        clicked = opened & (rng.random(n) < 0.12)
        converted = clicked & (rng.random(n) < 0.10)
        ids = np.char.add("C", np.char.zfill(numbers[start : start + n].astype(str), 9))
        table = pa.table(
            {
                "customer_id": pa.array(ids.tolist(), pa.string()),
                "experiment_arm": pa.array(np.array(ARMS)[rng.integers(0, 4, n)]),
                "segment": pa.array(np.array(SEGMENTS)[rng.integers(0, 4, n)]),
                "opened": opened.astype(np.int8),
                "clicked": clicked.astype(np.int8),
                "converted": converted.astype(np.int8),
                "engagement_source": pa.array(["simulated"] * n),
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
    writer.close()


def run_vectorized(path: Path, check_duplicates: bool) -> dict[str, float]:
    """Aggregate the file and build the metrics document."""
    from cpo.experiment.aggregate import aggregate_file
    from cpo.experiment.analysis import analyze
    from cpo.experiment.metrics import plan_from_config

    plan = plan_from_config(None)
    started = time.perf_counter()
    statistics = aggregate_file(path, check_duplicates=check_duplicates)
    aggregated = time.perf_counter()
    metrics = analyze(statistics, plan)
    finished = time.perf_counter()
    return {
        "rows": statistics.records,
        "rows_timed": statistics.records,
        "aggregate_s": aggregated - started,
        "analyze_s": finished - aggregated,
        "total_s": finished - started,
        "recipients": metrics["total_customers"],
    }


def run_loop(path: Path, limit: int) -> dict[str, float]:
    """The per-record Python loop on the first ``limit`` rows, then the same analysis."""
    import pyarrow.parquet as pq

    from cpo.experiment.aggregate import SufficientStatistics
    from cpo.experiment.analysis import analyze
    from cpo.experiment.metrics import plan_from_config

    plan = plan_from_config(None)
    total_rows = pq.ParquetFile(path).metadata.num_rows
    started = time.perf_counter()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    seen: set[str] = set()
    rows = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
        for record in batch.to_pylist():
            for flag in FLAGS:
                if record[flag] not in (0, 1):
                    raise ValueError(f"row {rows + 1}: {flag} is not 0/1")
            if record["customer_id"] in seen:
                raise ValueError(f"duplicate customer {record['customer_id']}")
            seen.add(record["customer_id"])
            key = (record["experiment_arm"], record["segment"])
            cell = counts.setdefault(key, {"sent": 0, "opened": 0, "clicked": 0, "converted": 0})
            cell["sent"] += 1
            cell["opened"] += record["opened"] or record["clicked"]
            cell["clicked"] += record["clicked"]
            cell["converted"] += record["converted"]
            rows += 1
            if rows >= limit:
                break
        if rows >= limit:
            break
    aggregated = time.perf_counter()
    metrics = analyze(SufficientStatistics.from_counts(counts), plan)
    finished = time.perf_counter()
    loop_s = aggregated - started
    return {
        "rows": total_rows,
        "rows_timed": rows,
        "aggregate_s": loop_s,
        "analyze_s": finished - aggregated,
        "total_s": loop_s * total_rows / rows + (finished - aggregated),
        "recipients": metrics["total_customers"],
    }


def small_records(rows: int, seed: int = 1) -> list[dict[str, object]]:
    """``rows`` per-recipient dicts with the same rates as :func:`generate`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    opened = rng.random(rows) < 0.30
    clicked = opened & (rng.random(rows) < 0.12)
    converted = clicked & (rng.random(rows) < 0.10)
    arms = np.array(ARMS)[rng.integers(0, 4, rows)]
    segments = np.array(SEGMENTS)[rng.integers(0, 4, rows)]
    columns = zip(arms, segments, opened, clicked, converted, strict=True)
    return [
        {"customer_id": f"C{i:09d}", "experiment_arm": str(arm), "segment": str(segment),
         "opened": int(o), "clicked": int(c), "converted": int(v)}
        for i, (arm, segment, o, c, v) in enumerate(columns)
    ]  # fmt: skip


def per_record_loop(records: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    """The original project's analysis: a loop over the records, then chi-square per arm.

    Counts sends, opens, clicks and conversions per arm record by record, then
    for each treatment arm and metric the rate, the relative lift and scipy's
    chi-square test against control.
    """
    from scipy.stats import chi2_contingency

    counts: dict[str, list[int]] = {}
    for record in records:
        cell = counts.setdefault(str(record["experiment_arm"]), [0, 0, 0, 0])
        cell[0] += 1
        cell[1] += int(record["opened"])  # type: ignore[call-overload]
        cell[2] += int(record["clicked"])  # type: ignore[call-overload]
        cell[3] += int(record["converted"])  # type: ignore[call-overload]
    control, results = counts["control"], {}
    for arm, cell in counts.items():
        if arm == "control":
            continue
        for index, metric in ((1, "open_rate"), (2, "click_rate"), (3, "conversion_rate")):
            rate, base = cell[index] / cell[0], control[index] / control[0]
            table = [
                [cell[index], cell[0] - cell[index]],
                [control[index], control[0] - control[index]],
            ]
            p_value = float(chi2_contingency(table, correction=False)[1])
            results[f"{arm}/{metric}"] = {"rate": rate, "lift": (rate - base) / base, "p": p_value}
    return results


def run_calculate_metrics(sizes: list[int], repeats: int) -> list[dict[str, float]]:
    """``calculate_metrics`` and the per-record loop side by side, per size.

    Both get the same list of dicts; each size is timed ``repeats`` times in
    turn after one warm-up (imports, first config load): min and median wall
    seconds, and process CPU seconds per call (``time.process_time``).
    """
    import statistics

    from cpo.experiment import stats
    from cpo.experiment.metrics import calculate_metrics

    rows = []
    calculate_metrics(small_records(1_000))  # warm-up: imports, first config load
    for size in sizes:
        records = small_records(size)
        timings: dict[str, list[tuple[float, float]]] = {"cpo": [], "loop": []}
        for _ in range(repeats):
            for name, function in (("cpo", calculate_metrics), ("loop", per_record_loop)):
                wall, cpu = time.perf_counter(), time.process_time()
                function(records)
                timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        bayes = _time_bayes(stats, calculate_metrics, records)
        row: dict[str, float] = {"rows": size, "prob_beat_control_s": bayes}
        for name, values in timings.items():
            walls = [wall for wall, _ in values]
            row[f"{name}_min_s"] = min(walls)
            row[f"{name}_median_s"] = statistics.median(walls)
            row[f"{name}_cpu_s"] = statistics.median(cpu for _, cpu in values)
        rows.append(row)
    return rows


def _time_bayes(stats: Any, calculate_metrics: Any, records: list[dict[str, object]]) -> float:
    """Seconds one ``calculate_metrics`` call spends in the Bayesian comparisons."""
    # prob_beat_control_arms since it exists (prob_beat_control calls it), else the older API.
    name = (
        "prob_beat_control_arms"
        if hasattr(stats, "prob_beat_control_arms")
        else "prob_beat_control"
    )
    spent = [0.0]
    original = getattr(stats, name)

    def timed(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        result = original(*args, **kwargs)
        spent[0] += time.perf_counter() - started
        return result

    setattr(stats, name, timed)
    try:
        calculate_metrics(records)
    finally:
        setattr(stats, name, original)
    return spent[0]


def calculate_metrics_table(
    sizes: list[int], repeats: int, sources: dict[str, Path | None]
) -> list[dict[str, Any]]:
    """Each (size, version) in its own process: ``run_calculate_metrics`` rows, labelled."""
    rows = []
    for size in sizes:
        for label, src in sources.items():
            command = [sys.executable, __file__, "--case", "calculate-metrics",
                       "--small-records", str(size), "--repeats", str(repeats)]  # fmt: skip
            command += ["--import-from", str(src)] if src is not None else []
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            row = json.loads(output.strip().splitlines()[-1])[0]
            rows.append({**row, "version": label})
    return rows


def parse_sources(values: list[str]) -> dict[str, Path | None]:
    """``LABEL=DIR`` options, then the current tree as ``after`` (or ``cpo`` alone)."""
    sources: dict[str, Path | None] = {}
    for value in values:
        label, _, directory = value.partition("=")
        if not directory or not (Path(directory) / "cpo").is_dir():
            raise SystemExit(f"--src {value!r}: expected LABEL=DIR with DIR/cpo a package")
        sources[label] = Path(directory)
    sources["after" if sources else "cpo"] = None
    return sources


def run_case(case: str, path: Path, loop_rows: int) -> dict[str, float]:
    """One case in this process, with its peak RSS."""
    if case == "python-loop":
        result = run_loop(path, loop_rows)
    else:
        result = run_vectorized(path, check_duplicates=case == "vectorized")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["case"] = case
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    # CPU time of the whole process (imports included): robust when other jobs
    # share the machine and stretch the wall-clock numbers.
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def main() -> None:
    """Generate the data if needed, run every case in a subprocess, print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--loop-rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="Parquet file to create or reuse.")
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["vectorized", "vectorized-no-dup-check", "python-loop", "calculate-metrics"],
    )
    parser.add_argument(
        "--small-records", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--import-from", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="Also time calculate_metrics imported from DIR (a source tree's src folder).",
    )
    args = parser.parse_args()
    if args.import_from is not None:
        sys.path.insert(0, str(args.import_from))
    if args.case == "calculate-metrics":
        print(json.dumps(run_calculate_metrics(args.small_records, args.repeats)))
        return
    data = args.data or Path(tempfile.gettempdir()) / f"cpo-analysis-{args.rows}.parquet"
    if args.case:
        print(json.dumps(run_case(args.case, data, args.loop_rows)))
        return
    print_machine()
    if "calculate-metrics" in args.cases:
        print(f"calculate_metrics vs the per-record loop ({args.repeats} runs each, in turn)")
        print(
            f"{'records':>10} {'version':>8} {'cpo min/median s':>17} {'cpo CPU s':>10} "
            f"{'loop min/median s':>18} {'loop CPU s':>11} {'cpo/loop CPU':>13} {'bayes s':>8}"
        )
        sources = parse_sources(args.src)
        for row in calculate_metrics_table(args.small_records, args.repeats, sources):
            print(
                f"{row['rows']:>10,} {row['version']:>8} "
                f"{row['cpo_min_s']:>8.3f}/{row['cpo_median_s']:<8.3f} "
                f"{row['cpo_cpu_s']:>10.3f} {row['loop_min_s']:>9.3f}/{row['loop_median_s']:<8.3f} "
                f"{row['loop_cpu_s']:>11.3f} {row['cpo_cpu_s'] / row['loop_cpu_s']:>12.2f}x "
                f"{row['prob_beat_control_s']:>8.3f}"
            )
        args.cases = [case for case in args.cases if case != "calculate-metrics"]
    if not args.cases:
        return
    if not data.exists():
        print(f"generating {args.rows:,} records into {data} ...", flush=True)
        generate(data, args.rows)
    print(f"data: {data} ({data.stat().st_size / 2**20:.0f} MiB)")
    header = f"{'case':<24} {'rows timed':>11} {'aggregate s':>12} {'analyze s':>10} "
    print(header + f"{'total s':>9} {'rows/s':>11} {'peak RSS MiB':>13} {'process CPU s':>14}")
    for case in args.cases:
        output = subprocess.run(
            [sys.executable, __file__, "--case", case, "--data", str(data),
             "--loop-rows", str(args.loop_rows)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        row = json.loads(output.strip().splitlines()[-1])
        note = " (extrapolated)" if row["rows_timed"] < row["rows"] else ""
        print(
            f"{row['case']:<24} {row['rows_timed']:>11,} {row['aggregate_s']:>12.2f} "
            f"{row['analyze_s']:>10.2f} {row['total_s']:>9.2f} "
            f"{row['rows'] / row['total_s']:>11,.0f} {row['peak_rss_mib']:>13.0f} "
            f"{row['process_cpu_s']:>14.2f}{note}"
        )


if __name__ == "__main__":
    main()
