"""Benchmark: start-up time of the ``cpo`` command line against ``import pandas``.

Times ``cpo --version``, ``cpo --help``, ``cpo run --help`` and
``python -c "import pandas"``, each as a fresh subprocess, and prints the minimum
and median wall time of ``--repeat`` runs side by side (interleaved, so load on the
machine affects every case alike). ``cpo`` is the console script beside this
Python, exactly what a user types; without one, the same entry point is run
with ``python -c "from cpo.cli import main; main()"``.

    python benchmarks/startup.py             # 5 runs each
    python benchmarks/startup.py --repeat 11
    python benchmarks/startup.py --src /tmp/old/src   # an older checkout's cpo, for comparison
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine


def cpo_command(src: Path | None = None) -> list[str]:
    """The ``cpo`` console script of this Python, else its entry point via ``-c``.

    Args:
        src: Run the entry point of the package in this source folder instead
            (put first on PYTHONPATH by :func:`environment`).
    """
    if src is not None:
        return [sys.executable, "-c", "from cpo.cli import main; main()"]
    script = Path(sys.executable).with_name("cpo")
    if script.is_file():
        return [str(script)]
    found = shutil.which("cpo")
    if found:
        return [found]
    return [sys.executable, "-c", "from cpo.cli import main; main()"]


def environment(src: Path | None) -> dict[str, str]:
    """This process's environment, with ``src`` first on PYTHONPATH when given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def cases(src: Path | None = None) -> dict[str, list[str]]:
    """Label -> command line of every case."""
    cpo = cpo_command(src)
    return {
        "cpo --version": [*cpo, "--version"],
        "cpo --help": [*cpo, "--help"],
        "cpo run --help": [*cpo, "run", "--help"],
        'python -c "import pandas"': [sys.executable, "-c", "import pandas"],
    }


def time_once(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one fresh subprocess (which must exit 0)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def measure(
    commands: dict[str, list[str]], repeat: int, env: dict[str, str]
) -> dict[str, list[float]]:
    """Run every case ``repeat`` times, interleaved; return the seconds per case."""
    for command in commands.values():  # warm the file cache once, not measured
        time_once(command, env)
    seconds: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, command in commands.items():
            seconds[label].append(time_once(command, env))
    return seconds


def main() -> None:
    """Measure and print a table of min/median seconds per case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="Fresh runs per case.")
    parser.add_argument(
        "--src", type=Path, help="Time the cpo package in this source folder (e.g. old/src)."
    )
    args = parser.parse_args()
    print_machine()
    results = measure(cases(args.src), args.repeat, environment(args.src))
    print(f"runs per case: {args.repeat}; cpo from: {args.src or 'this install'}")
    print(f"{'case':<28} {'min s':>7} {'median s':>9}")
    for label, seconds in results.items():
        print(f"{label:<28} {min(seconds):>7.3f} {statistics.median(seconds):>9.3f}")


if __name__ == "__main__":
    main()
