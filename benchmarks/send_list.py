"""Benchmark: the send list written as sends.csv vs sends.parquet, and exported back to CSV.

For each size, in fresh subprocesses (so peak memory, max RSS, is each step's own):

* ``write``: render the send list (not timed; the customers, design and variants
  of ``benchmarks/assignment.py``: 150-word bodies, 5,000 distinct first names,
  each screened once by the local merge screen), then time
  :func:`cpo.experiment.sends.write_send_list` (``sends.csv``) and
  :func:`cpo.experiment.sends.write_send_list_parquet` (``sends.parquet``)
  side by side, and write the Parquet file a second time to check it is
  byte-identical (deterministic);
* ``export``: time :func:`cpo.experiment.sends.export_send_list` from the
  Parquet file to CSV (what ``cpo export-sends`` runs), check the result equals
  ``sends.csv`` byte for byte, and (``--gzip``) to ``csv.gz``.

    python benchmarks/send_list.py                         # 100k and 1M
    python benchmarks/send_list.py --sizes 100000 --gzip
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def peak_mib() -> int:
    """This process's peak resident memory (MiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def write_case(size: int, folder: Path) -> dict[str, object]:
    """Render the send list, write both forms, time each write."""
    from assignment import make_customers, make_design

    from cpo.experiment.assignment import assign
    from cpo.experiment.sends import build_send_list, write_send_list, write_send_list_parquet
    from cpo.safety.local import LocalSafetyAnalyzer
    from cpo.safety.merge import MergeScreener
    from cpo.safety.settings import SafetyPolicySettings

    customers = make_customers(size)
    design, variants = make_design(customers, "stratified_block")
    assignments = assign(customers, design)
    screen = MergeScreener(LocalSafetyAnalyzer(), SafetyPolicySettings())
    frame = build_send_list(assignments, customers, variants, screen=screen).frame
    timings = {}
    for name, write in (("csv", write_send_list), ("parquet", write_send_list_parquet)):
        started = time.perf_counter()
        write(folder / f"sends.{name}", frame)
        timings[name] = round(time.perf_counter() - started, 3)
    first = sha256(folder / "sends.parquet")
    write_send_list_parquet(folder / "again.parquet", frame)
    return {
        "case": "write",
        "rows": len(frame),
        "csv_s": timings["csv"],
        "parquet_s": timings["parquet"],
        "csv_mb": round((folder / "sends.csv").stat().st_size / 1e6, 1),
        "parquet_mb": round((folder / "sends.parquet").stat().st_size / 1e6, 1),
        "parquet_deterministic": first == sha256(folder / "again.parquet"),
        "peak_rss_mib": peak_mib(),
    }


def export_case(folder: Path, gzipped: bool) -> dict[str, object]:
    """Export sends.parquet to CSV (or csv.gz); compare a CSV export with sends.csv."""
    from cpo.experiment.sends import export_send_list
    from cpo.run_folder import SENDS_PARQUET, SendListFile

    source = SendListFile(SENDS_PARQUET, folder / "sends.parquet")
    out = folder / ("export.csv.gz" if gzipped else "export.csv")
    started = time.perf_counter()
    rows = export_send_list(source, out, gzipped=gzipped)
    seconds = round(time.perf_counter() - started, 3)
    result: dict[str, object] = {
        "case": "export_gz" if gzipped else "export",
        "rows": rows,
        "seconds": seconds,
        "out_mb": round(out.stat().st_size / 1e6, 1),
        "peak_rss_mib": peak_mib(),
    }
    if not gzipped:
        result["equals_sends_csv"] = sha256(out) == sha256(folder / "sends.csv")
    out.unlink()
    return result


def in_subprocess(*args: str) -> dict[str, object]:
    """Run this script with ``args`` in a fresh interpreter; return its JSON line."""
    output = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Parse arguments; run the cases per size and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--gzip", action="store_true", help="also time the csv.gz export")
    parser.add_argument("--case", choices=["write", "export", "export_gz"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        size = args.sizes[0]
        if args.case == "write":
            print(json.dumps(write_case(size, args.folder)))
        else:
            print(json.dumps(export_case(args.folder, args.case == "export_gz")))
        return
    print_machine()
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir="/tmp") as folder:
            cases = ["write", "export", *(["export_gz"] if args.gzip else [])]
            for case in cases:
                result = in_subprocess("--case", case, "--sizes", str(size), "--folder", folder)
                print(json.dumps({"customers": size, **result}), flush=True)


if __name__ == "__main__":
    main()
