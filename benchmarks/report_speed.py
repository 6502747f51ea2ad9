"""Benchmark: the report of a run folder, and `cpo run` on the bundled sample.

Two cases, each in fresh subprocesses, wall and CPU seconds (the CPU time of the
process and of its children, i.e. the notebook's kernel), min and median over
``--repeat`` runs:

* ``report``: ``cpo report RUN_DIR`` (HTML, PDF and the executed notebook), with
  the per-step seconds the command records (``html``, ``pdf``, ``notebook``);
* ``run``: ``cpo run --out DIR`` on the bundled 500 customers, all three reports;
* ``steps`` (this checkout only): CPU seconds of each step of the report in one
  fresh process: imports, reading the run folder, the HTML (sections, charts,
  both templates: report.html and the printable one), importing WeasyPrint, the
  PDF, and the notebook (this process and its kernel).

    python benchmarks/report_speed.py                    # builds a bundled run first
    python benchmarks/report_speed.py --run-dir runs/demo --repeat 5
    python benchmarks/report_speed.py --src /tmp/old/src # an older checkout, for comparison

The machine is shared in this project: read CPU seconds beside wall seconds.
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
from pathlib import Path

from _machine import machine_info


def _environment(src: Path | None) -> dict[str, str]:
    """This process's environment, with ``src`` first on PYTHONPATH when given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children included) of one command; fails on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cpo(src: Path | None) -> list[str]:
    return [sys.executable, "-c", "from cpo.cli import main; main()"] if src else ["cpo"]


def _report_steps(run_dir: Path) -> dict[str, float]:
    """Per-step seconds the report stage recorded (when run by `cpo run`)."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    facts = ((manifest.get("stages") or {}).get("report") or {}).get("facts") or {}
    return dict(facts.get("seconds") or {})


_STEPS = """
import json, resource, sys
from pathlib import Path

def cpu(who=resource.RUSAGE_SELF):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime

steps, mark = {}, cpu()
def lap(name):
    global mark
    now = cpu(); steps[name] = round(now - mark, 2); mark = now

from cpo.reporting.artifacts import load_run
from cpo.reporting.html import render_documents
lap("import")
art = load_run(Path(sys.argv[1])); lap("read run folder")
html, printable = render_documents(art); lap("html (both documents)")
import weasyprint; lap("import weasyprint")
from cpo.reporting.pdf import render_pdf
render_pdf(printable, art.run_dir / "report.pdf"); lap("pdf")
from cpo.reporting.notebook import write_notebook
kernel = cpu(resource.RUSAGE_CHILDREN)
write_notebook(art.run_dir, "bench", True); lap("notebook (this process)")
steps["notebook kernel"] = round(cpu(resource.RUSAGE_CHILDREN) - kernel, 2)
print(json.dumps(steps))
"""


def _steps(run_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """CPU seconds per report step, measured inside one fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _STEPS, str(run_dir)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _summary(name: str, samples: list[tuple[float, float]]) -> str:
    walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
    return (
        f"{name:8s} wall min {min(walls):6.2f} s  median {statistics.median(walls):6.2f} s   "
        f"CPU min {min(cpus):6.2f} s  median {statistics.median(cpus):6.2f} s"
    )


def main() -> None:
    """Parse the options, run both cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="a completed run folder (default: build one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, help="run the cpo package in this source folder")
    args = parser.parse_args()
    env, cpo = _environment(args.src), _cpo(args.src)
    print(json.dumps(machine_info()))
    with tempfile.TemporaryDirectory(prefix="cpo-report-bench-") as scratch:
        runs: list[tuple[float, float]] = []
        for i in range(args.repeat):
            out = Path(scratch) / f"run{i}"
            runs.append(_timed([*cpo, "run", "--out", str(out)], env))
            print(f"run {i}: report steps {_report_steps(out)}")
        run_dir = args.run_dir or Path(scratch) / "run0"
        reports = [_timed([*cpo, "report", str(run_dir)], env) for _ in range(args.repeat)]
        print(_summary("run", runs))
        print(_summary("report", reports))
        if args.src is None:
            for i in range(args.repeat):
                print(f"steps {i}: CPU seconds {_steps(run_dir, env)}")


if __name__ == "__main__":
    main()
