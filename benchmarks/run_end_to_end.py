"""Benchmark: `cpo run` end to end on the bundled data, the three reports included.

Runs `cpo run --out DIR -q` as a fresh subprocess, into a new temporary run
folder, several times. For each run it prints the wall time, the CPU time of
the command and every process it started (the report worker and the notebook
kernel included), the load average just before, the per-stage durations the
manifest records and the report's own breakdown (html, pdf, notebook; the
notebook runs beside the PDF, so the parts add up to more than the stage).

Several source trees can be compared side by side: ``--src NAME=PATH`` runs the
``cpo`` package found in PATH (e.g. a ``git archive`` export of an older commit),
and the variants take turns (interleaved), so that a change in the machine's load
hits them alike. Without ``--src`` the ``cpo`` console script of ``--python``'s
environment is run (e.g. a fresh virtualenv with ``pip install .``).

    python benchmarks/run_end_to_end.py
    python benchmarks/run_end_to_end.py --python /tmp/fresh/bin/python --repeat 3
    python benchmarks/run_end_to_end.py --src before=/tmp/old/src --src after=src --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine


def _variants(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Name -> (command prefix, environment) of each tree to time."""
    if not args.src:
        return {"cpo": ([str(args.python.parent / "cpo")], dict(os.environ))}
    variants = {}
    for spec in args.src:
        name, _, path = spec.partition("=")
        env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
        variants[name] = ([str(args.python), "-c", "from cpo.cli import main; main()"], env)
    return variants


def run_once(command: list[str], env: dict[str, str], out: Path) -> dict:
    """One `cpo run --out DIR -q`: wall and CPU seconds, load, the manifest's timings."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, started_at = time.perf_counter(), time.time()
    subprocess.run([*command, "run", "--out", str(out), "-q"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    wall, ended_at = time.perf_counter() - started, time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    manifest = json.loads((out / "manifest.json").read_text())
    stages = {name: record.get("duration_s") for name, record in manifest["stages"].items()}
    report = manifest["stages"]["report"].get("facts", {})
    sizes = {name: (out / name).stat().st_size for name in report.get("files", {})}
    first, last = _run_span(out / "logs" / "system.log")
    return {"wall": wall, "cpu": cpu, "load": load, "stages": stages,
            "report": report.get("seconds", {}), "sizes": sizes,
            "start": first - started_at, "end": ended_at - last}  # fmt: skip


def _run_span(log: Path) -> tuple[float, float]:
    """Epoch seconds of the run's ``run_started`` and ``run_finished`` log lines."""
    stamps = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("event") in ("run_started", "run_finished"):
            moment = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            stamps[record["event"]] = moment.timestamp()
    return stamps["run_started"], stamps["run_finished"]


def _print_run(name: str, index: int, result: dict) -> None:
    stages = ", ".join(f"{k} {v:.2f}" for k, v in result["stages"].items() if v is not None)
    print(
        f"{name} run {index + 1}: {result['wall']:.2f} s wall, {result['cpu']:.2f} s CPU, "
        f"load {result['load']:.2f}  [{stages}]"
    )
    start, end = result["start"], result["end"]
    print(f"        before the first stage {start:.2f} s, after the last {end:.2f} s")
    print(f"        report parts: {result['report']}  sizes: {result['sizes']}")


def main() -> None:
    """Parse the options, time the runs, print each and a summary per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", action="append", help="NAME=PATH of a source tree (repeatable)")
    args = parser.parse_args()
    print_machine()
    variants = _variants(args)
    print(f"environment: {args.python.parent.parent}; variants: {', '.join(variants)}")
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="cpo-bench-") as folder:
        for index in range(args.repeat):
            for name, (command, env) in variants.items():
                result = run_once(command, env, Path(folder) / f"{name}{index}")
                runs[name].append(result)
                _print_run(name, index, result)
    for name, results in runs.items():
        walls, cpus = [r["wall"] for r in results], [r["cpu"] for r in results]
        print(
            f"{name}: wall min {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
            f"CPU min {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s"
        )
        for part in ("start", "end"):
            values = [r[part] for r in results]
            print(f"    {part}: min {min(values):.2f} s, median {statistics.median(values):.2f} s")
        reports = [r["stages"]["report"] for r in results]
        print(
            f"    report stage: min {min(reports):.2f} s, median {statistics.median(reports):.2f} s"
        )


if __name__ == "__main__":
    main()
