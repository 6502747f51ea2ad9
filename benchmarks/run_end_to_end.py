"""Benchmark: `cpo run` end to end on the bundled data, the three reports included.

Runs the `cpo` console script of a Python environment (by default this one; pass
`--python /path/to/venv/bin/python` to time a fresh virtualenv) as a subprocess,
into a new temporary run folder, several times. Prints the wall time of each
run, the per-stage durations the manifest records (the moderator analysis is
part of the analyze stage), and the report's own breakdown (html, pdf, notebook;
the notebook runs in parallel with the PDF, so the parts add up to more than
the stage).

    python benchmarks/run_end_to_end.py
    python benchmarks/run_end_to_end.py --python /tmp/fresh/bin/python --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine


def run_once(cpo: Path, workdir: Path, index: int) -> dict:
    """One `cpo run --out DIR -q`; returns wall seconds and the manifest's stage timings."""
    out = workdir / f"run{index}"
    started = time.perf_counter()
    subprocess.run([str(cpo), "run", "--out", str(out), "-q"], check=True, capture_output=True)
    wall = time.perf_counter() - started
    manifest = json.loads((out / "manifest.json").read_text())
    stages = {name: record.get("duration_s") for name, record in manifest["stages"].items()}
    report = manifest["stages"]["report"].get("facts", {})
    sizes = {name: (out / name).stat().st_size for name in report.get("files", {})}
    return {"wall": wall, "stages": stages, "report": report.get("seconds", {}), "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cpo = args.python.parent / "cpo"
    print_machine()
    print(f"environment: {args.python.parent.parent}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="cpo-bench-") as folder:
        for index in range(args.repeat):
            result = run_once(cpo, Path(folder), index)
            runs.append(result)
            stages = ", ".join(f"{k} {v:.2f}" for k, v in result["stages"].items() if v is not None)
            print(f"run {index + 1}: {result['wall']:.1f} s wall  [{stages}]")
            print(f"        report parts: {result['report']}  sizes: {result['sizes']}")
    walls = [r["wall"] for r in runs]
    print(f"wall time: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")


if __name__ == "__main__":
    main()
