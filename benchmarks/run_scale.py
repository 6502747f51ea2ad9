"""Benchmark: `cpo run` on N generated customers — wall, CPU, memory of the process tree, disk.

Generates N customers once (`cpo sample-data`, cached in the work folder), then runs
`cpo run --customers FILE --out DIR -q` as a subprocess and samples, every 0.2 s, the
resident memory of the command and all its descendants (the notebook kernel included)
from /proc, so "peak RSS together" is the largest sum seen at one moment. CPU seconds
are the children's user + system time (resource.getrusage). The manifest's stage
durations and the run folder's size on disk are printed too.

    python benchmarks/run_scale.py --customers 1000000
    python benchmarks/run_scale.py --customers 10000000 --work /tmp/cpo-scale --keep
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


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        members.update(children)
        frontier.extend(children)
    total = 0
    for pid in members:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total


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


def run(cpo: Path, customers: Path, out: Path, extra: Sequence[str] = ()) -> dict:
    """One `cpo run` (``extra`` flags added); wall, CPU, peak memory of the tree, stage
    durations, folder size."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(cpo), "run", "--customers", str(customers), "--out", str(out), "-q", *extra],
        stdout=subprocess.DEVNULL,
    )
    peak, by_stage = 0, {}
    while process.poll() is None:
        rss, stage = tree_rss(process.pid), running_stage(out)
        peak = max(peak, rss)
        by_stage[stage] = max(by_stage.get(stage, 0), rss)
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
        "peak_tree_mib": peak / 2**20,
        "stage_peaks_mib": {name: rss / 2**20 for name, rss in by_stage.items()},
        "stages": stages,
        "folder_mb": size / 1e6,
        "largest_process_mib": after.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--work", type=Path, default=None, help="keeps generated data")
    parser.add_argument("--keep", action="store_true", help="keep the run folder")
    args = parser.parse_args()
    cpo = args.python.parent / "cpo"
    work = args.work or Path(tempfile.mkdtemp(prefix="cpo-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print_machine()
    customers = customers_file(cpo, work, args.customers)
    out = work / f"run-{args.customers}"
    shutil.rmtree(out, ignore_errors=True)
    result = run(cpo, customers, out)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items() if v is not None)
    print(f"customers: {args.customers:,}")
    print(
        f"wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, "
        f"peak RSS of the process tree {result['peak_tree_mib']:.0f} MiB "
        f"(largest process {result['largest_process_mib']:.0f} MiB), "
        f"run folder {result['folder_mb']:.0f} MB"
    )
    print(f"stages (wall s): {stages}")
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in result["stage_peaks_mib"].items())
    print(f"peak RSS of the tree while each stage ran (MiB): {peaks}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
