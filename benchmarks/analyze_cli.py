"""Benchmark: ``cpo analyze EXPORT --assignments ASSIGNMENTS`` against a per-record loop.

Generates two CSV files for ``--rows`` recipients (not timed, kept and reused):

- ``assignments.csv`` as ``cpo run`` writes it (customer_id, segment,
  experiment_arm, variant_id, assigned_at, assignment_method), four arms;
- ``engagement.csv``, a per-recipient export of an email service
  (customer_id, opened, clicked, converted) in another (shuffled) order.

Then runs, each as its own process and ``--repeats`` times in turn:

- ``cpo``: ``cpo analyze engagement.csv --assignments assignments.csv --json``
  (output discarded): reading, validation, the join and the whole metrics.json
  document (every metric, segments, CMH, SRM, power, Bayes);
- ``loop``: a plain Python script that reads the same two files with the
  ``csv`` module into a dict of customer id -> arm, loops over the export
  counting sends/opens/clicks/conversions per arm, and runs scipy's
  chi-square test of each treatment arm against control on each metric.

``--src LABEL=DIR`` (repeatable) adds a case that runs the same ``cpo analyze``
from another source tree, e.g. a ``git archive`` export of an earlier commit
(``git archive COMMIT src | tar -x -C /tmp/before``, then ``--src
before=/tmp/before/src``), so before and after are timed side by side in one
run. Every cpo case is started the same way (``python -c`` importing
``cpo.cli``), the current tree from the installed package.

Each process is timed from the outside (wall clock, including interpreter
start-up and imports) with its CPU seconds and peak RSS (``wait4``). Prints
min and median per case and the ratio of medians (loop / cpo).

    python benchmarks/analyze_cli.py --rows 1000000
    python benchmarks/analyze_cli.py --rows 10000000 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

ARMS = ("control", "treatment_1", "treatment_2", "treatment_3")
SEGMENTS = ("High-Value Recent", "At-Risk", "New Customer", "Standard")
CHUNK = 1_000_000

LOOP = r"""
import csv, sys
from scipy.stats import chi2_contingency

assignments_path, export_path = sys.argv[1], sys.argv[2]
arm_of = {}
with open(assignments_path, newline="", encoding="utf-8") as handle:
    for row in csv.DictReader(handle):
        arm_of[row["customer_id"]] = row["experiment_arm"]
counts = {}
with open(export_path, newline="", encoding="utf-8") as handle:
    for row in csv.DictReader(handle):
        arm = arm_of.get(row["customer_id"])
        if arm is None:
            continue
        cell = counts.setdefault(arm, [0, 0, 0, 0])
        cell[0] += 1
        cell[1] += int(row["opened"])
        cell[2] += int(row["clicked"])
        cell[3] += int(row["converted"])
control = counts["control"]
for arm, cell in sorted(counts.items()):
    if arm == "control":
        continue
    for index, name in ((1, "open"), (2, "click"), (3, "conversion")):
        treated, base = cell[index], control[index]
        table = [[treated, cell[0] - treated], [base, control[0] - base]]
        chi2, p, _, _ = chi2_contingency(table, correction=False)
        print(arm, name, cell[index] / cell[0], p)
"""


def generate(folder: Path, rows: int, seed: int = 7) -> tuple[Path, Path]:
    """Write assignments.csv and a shuffled engagement export for ``rows`` recipients."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    folder.mkdir(parents=True, exist_ok=True)
    assignments, export = folder / "assignments.csv", folder / "engagement.csv"
    if assignments.exists() and export.exists():
        return assignments, export
    rng = np.random.default_rng(seed)
    order = rng.permutation(rows)
    options = pacsv.WriteOptions(quoting_style="none")
    with (
        pacsv.CSVWriter(str(assignments), _assignment_schema(), write_options=options) as a_out,
        pacsv.CSVWriter(str(export), _export_schema(), write_options=options) as e_out,
    ):
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            ids = _ids(np.arange(start, start + n))
            arms = np.array(ARMS)[rng.integers(0, len(ARMS), n)]
            a_out.write_table(
                pa.table(
                    {
                        "customer_id": ids,
                        "segment": np.array(SEGMENTS)[rng.integers(0, len(SEGMENTS), n)],
                        "experiment_arm": arms,
                        "variant_id": np.where(arms == "control", "control", "v-" + arms),
                        "assigned_at": ["2026-11-30T12:00:00.000Z"] * n,
                        "assignment_method": ["stratified_block"] * n,
                    },
                    schema=_assignment_schema(),
                )
            )
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            opened = rng.random(n) < 0.30
            clicked = opened & (rng.random(n) < 0.12)
            converted = clicked & (rng.random(n) < 0.10)
            e_out.write_table(
                pa.table(
                    {
                        "customer_id": _ids(order[start : start + n]),
                        "opened": opened.astype(np.int8),
                        "clicked": clicked.astype(np.int8),
                        "converted": converted.astype(np.int8),
                    },
                    schema=_export_schema(),
                )
            )
    return assignments, export


def _ids(numbers: object) -> list[str]:
    return [f"C{number:09d}" for number in numbers]  # type: ignore[attr-defined]


def _assignment_schema() -> object:
    import pyarrow as pa

    names = ("customer_id", "segment", "experiment_arm", "variant_id", "assigned_at")
    return pa.schema([(name, pa.string()) for name in (*names, "assignment_method")])


def _export_schema() -> object:
    import pyarrow as pa

    return pa.schema(
        [("customer_id", pa.string())]
        + [(flag, pa.int8()) for flag in ("opened", "clicked", "converted")]
    )


def cpo_command(src: Path | None) -> list[str]:
    """``cpo`` as a ``python -c`` command, importing cpo from ``src`` when given."""
    path = f"sys.path.insert(0, {str(src)!r}); " if src is not None else ""
    return [sys.executable, "-c", f"import sys; {path}from cpo.cli import main; main()"]


def parse_sources(values: list[str]) -> dict[str, Path]:
    """``LABEL=DIR`` options as {label: directory}."""
    sources = {}
    for value in values:
        label, _, directory = value.partition("=")
        if not directory or not (Path(directory) / "cpo").is_dir():
            raise SystemExit(f"--src {value!r}: expected LABEL=DIR with DIR/cpo a package")
        sources[label] = Path(directory)
    return sources


def run_process(command: list[str]) -> dict[str, float]:
    """Run one process to completion: wall seconds, CPU seconds, peak RSS in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    """Generate the files if needed, run both cases side by side, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, help="Folder for the two CSV files (reused).")
    parser.add_argument("--cases", nargs="+", default=["cpo", "loop"])
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="Also time cpo imported from DIR (a source tree's src folder), as case LABEL.",
    )
    args = parser.parse_args()
    sources = parse_sources(args.src)
    folder = args.data or Path(tempfile.gettempdir()) / f"cpo-analyze-cli-{args.rows}"
    print_machine()
    print(f"generating / reusing {args.rows:,} recipients in {folder} ...", flush=True)
    assignments, export = generate(folder, args.rows)
    size = (assignments.stat().st_size + export.stat().st_size) / 2**20
    print(f"files: {assignments.name} + {export.name}, {size:.0f} MiB")
    analyze = ["analyze", str(export), "--assignments", str(assignments), "--json"]
    commands = {
        "cpo": [*cpo_command(None), *analyze],
        "loop": [sys.executable, "-c", LOOP, str(assignments), str(export)],
    }
    commands.update({label: [*cpo_command(src), *analyze] for label, src in sources.items()})
    cases = [*sources, *args.cases]
    results: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    for _ in range(args.repeats):
        for case in cases:
            results[case].append(run_process(commands[case]))
    print_results(results)


def print_results(results: dict[str, list[dict[str, float]]]) -> None:
    """Min/median per case, then the loop's time over each cpo case's (medians)."""
    print(f"{'case':<8} {'wall min s':>11} {'wall median s':>14} {'CPU median s':>13} "
          f"{'peak RSS MiB':>13}")  # fmt: skip
    for case, runs in results.items():
        walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
        print(
            f"{case:<8} {min(walls):>11.2f} {statistics.median(walls):>14.2f} "
            f"{statistics.median(cpus):>13.2f} {max(r['rss_mib'] for r in runs):>13.0f}"
        )
    if "loop" not in results:
        return
    for case in (c for c in results if c != "loop"):
        wall, cpu = (
            statistics.median(r[key] for r in results["loop"])
            / statistics.median(r[key] for r in results[case])
            for key in ("wall_s", "cpu_s")
        )
        print(f"ratio loop / {case}: wall {wall:.1f}x, CPU {cpu:.1f}x")


if __name__ == "__main__":
    main()
