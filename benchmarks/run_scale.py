"""Benchmark: `cpo run` on N generated customers — wall, CPU, memory of the process tree, disk.

Generates N customers once (`cpo sample-data`, cached in the work folder), then runs
`cpo run --customers FILE --out DIR -q` as a subprocess and samples, every 0.2 s, the
resident memory of the command and all its descendants (the notebook kernel included)
from /proc, so "peak RSS together" is the largest sum seen at one moment. CPU seconds
are the children's user + system time (resource.getrusage). The manifest's stage
durations and the run folder's size on disk are printed too, and the CPU seconds of
every process of the tree sampled from /proc (processes the command does not wait for,
such as the report worker, are missing from the first figure).

Several source trees are compared in turns with ``--src NAME=PATH`` (the ``cpo``
command runs with ``PYTHONPATH=PATH``) and ``--repeat N``: run 1 of every tree, then
run 2 of every tree, ..., each printed with the load average before and after it, so a
change in the machine's load hits the trees alike. Every run's metrics.json is compared
with the first run's (timing fields left out): the trees must give the same results.

    python benchmarks/run_scale.py --customers 1000000
    python benchmarks/run_scale.py --customers 10000000 --work /tmp/cpo-scale --keep
    python benchmarks/run_scale.py --work /tmp/scale1m --src before=/tmp/old/src \
        --src after=src --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

PAGE = os.sysconf("SC_PAGE_SIZE")


TICKS = os.sysconf("SC_CLK_TCK")


def tree_sample(root: int) -> tuple[int, dict[int, float]]:
    """Resident bytes of ``root`` and all its descendants, and each one's CPU seconds so far.

    Read from /proc (utime + stime of each process), so processes the command
    never waits for (the report worker, its notebook kernel) are counted too.
    """
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, fields in stats.items() if int(fields[1]) == parent]
        members.update(children)
        frontier.extend(children)
    total = 0
    cpu = {}
    for pid in members:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
        if pid in stats:  # fields from the state on: utime and stime are the 12th and 13th
            cpu[pid] = (int(stats[pid][11]) + int(stats[pid][12])) / TICKS
    return total, cpu


def running_stage(out: Path) -> str:
    """The stage the manifest says is running (``start`` before there is one)."""
    try:
        stages = json.loads((out / "manifest.json").read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return "start"
    running = [name for name, record in stages.items() if record.get("status") == "running"]
    return running[0] if running else "between stages"


def customers_file(cpo: Path, work: Path, count: int) -> Path:
    """The generated customer file for ``count`` customers (made once)."""
    folder = work / f"customers-{count}"
    path = folder / "customers.csv"
    if not path.is_file():
        flags = ["--customers", str(count), "--out", str(folder), "--no-content"]
        subprocess.run([str(cpo), "sample-data", *flags], check=True)
    return path


def run(
    cpo: Path,
    customers: Path,
    out: Path,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> dict:
    """One `cpo run` (``extra`` flags added, in ``env``); wall, CPU, peak memory of the
    tree, stage durations, folder size."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(cpo), "run", "--customers", str(customers), "--out", str(out), "-q", *extra],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    peak, by_stage, cpu_seen = 0, {}, {}
    while process.poll() is None:
        (rss, cpu), stage = tree_sample(process.pid), running_stage(out)
        peak = max(peak, rss)
        by_stage[stage] = max(by_stage.get(stage, 0), rss)
        for pid, seconds in cpu.items():
            cpu_seen[pid] = max(cpu_seen.get(pid, 0.0), seconds)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode:
        raise SystemExit(f"cpo run failed with exit code {process.returncode}")
    manifest = json.loads((out / "manifest.json").read_text())
    stages = {name: rec.get("duration_s") for name, rec in manifest["stages"].items()}
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall": wall,
        "cpu": cpu,
        "cpu_sampled": sum(cpu_seen.values()),
        "peak_tree_mib": peak / 2**20,
        "stage_peaks_mib": {name: rss / 2**20 for name, rss in by_stage.items()},
        "stages": stages,
        "folder_mb": size / 1e6,
        "largest_process_mib": after.ru_maxrss / 1024,
    }


#: Keys of metrics.json that hold the time of the analysis, not its result.
TIMING_KEYS = frozenset({"computed_at", "generated_at", "duration_s", "seconds"})


def without_timing(value: object) -> object:
    """``value`` (parsed JSON) without the :data:`TIMING_KEYS` at any depth."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def trees(specs: Sequence[str] | None) -> list[tuple[str, dict[str, str] | None]]:
    """``(name, environment)`` of each ``--src NAME=PATH`` (the installed tree without any)."""
    if not specs:
        return [("installed", None)]
    found = []
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--src {spec}: expected NAME=PATH")
        found.append((name, dict(os.environ, PYTHONPATH=str(Path(path).resolve()))))
    return found


def report(name: str, result: dict, loads: tuple[float, float]) -> None:
    """Print one run's numbers."""
    stages = ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items() if v is not None)
    print(
        f"[{name}] wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s "
        f"(sampled over the tree: {result['cpu_sampled']:.1f} s), "
        f"peak RSS of the process tree {result['peak_tree_mib']:.0f} MiB "
        f"(largest process {result['largest_process_mib']:.0f} MiB), "
        f"run folder {result['folder_mb']:.0f} MB, "
        f"load average {loads[0]:.1f} before / {loads[1]:.1f} after"
    )
    print(f"[{name}] stages (wall s): {stages}")
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in result["stage_peaks_mib"].items())
    print(f"[{name}] peak RSS of the tree while each stage ran (MiB): {peaks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--work", type=Path, default=None, help="keeps generated data")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--src", action="append", help="NAME=PATH of a source tree (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tree, in turns")
    args = parser.parse_args()
    cpo = args.python.parent / "cpo"
    work = args.work or Path(tempfile.mkdtemp(prefix="cpo-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print_machine()
    customers = customers_file(cpo, work, args.customers)
    print(f"customers: {args.customers:,}")
    reference = None
    for turn in range(1, args.repeat + 1):
        for name, env in trees(args.src):
            out = work / f"run-{args.customers}-{name}-{turn}"
            shutil.rmtree(out, ignore_errors=True)
            load_before = os.getloadavg()[0]
            result = run(cpo, customers, out, env=env)
            report(f"{name} {turn}", result, (load_before, os.getloadavg()[0]))
            metrics = without_timing(json.loads((out / "metrics.json").read_text()))
            reference = metrics if reference is None else reference
            print(f"[{name} {turn}] metrics.json same as the first run's: {metrics == reference}")
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
