"""Benchmark: `cpo run` on N customers with the local and the Spark engine.

For each engine, writes a config folder (`cpo init`, then `compute.engine` set;
Spark: `compute.spark.master` local[2] and the driver memory given), runs
`cpo run --customers FILE --config DIR -q` as a subprocess and samples the
resident memory of the command and all its descendants every 0.2 s (the Spark
JVM and its Python workers included; see run_scale.py). Prints wall time, CPU
seconds, the peak memory of the process tree, every stage's duration, and
whether the two runs' segments, assignments (CSV on the local engine, Parquet
datasets on Spark), send lists (compared row by row, streamed), engagement and
metrics agree. ``--keep`` keeps the run
folders.

    python benchmarks/spark_engine.py --customers-file /tmp/d1m/customers.csv
    python benchmarks/spark_engine.py --customers 100000 --engines local spark
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "support"))

from _machine import print_machine
from golden import normalized
from run_scale import customers_file, run

from cpo.run_folder import read_assignments, read_engagement, read_segments, read_send_list

COMPARED = ("metrics.json",)


def config_folder(cpo: Path, work: Path, engine: str, driver_memory: str) -> Path:
    """A config folder (``cpo init``) with ``compute`` set for ``engine``."""
    folder = work / f"config-{engine}"
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([str(cpo), "init", str(folder)], check=True, stdout=subprocess.DEVNULL)
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    data["compute"]["spark"]["conf"] = {
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--customers-file", type=Path, default=None)
    parser.add_argument("--engines", nargs="+", default=["local", "spark"])
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    cpo = args.python.parent / "cpo"
    work = args.work or Path(tempfile.mkdtemp(prefix="cpo-spark-"))
    work.mkdir(parents=True, exist_ok=True)
    print_machine()
    customers = args.customers_file or customers_file(cpo, work, args.customers)
    print(f"customers file: {customers}")
    runs = {}
    for engine in args.engines:
        config = config_folder(cpo, work, engine, args.driver_memory)
        out = work / f"run-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        before = os.getloadavg()
        result = run(cpo, customers, out, ["--config", str(config)])
        after = os.getloadavg()
        stages = result["stages"]
        print(
            f"{engine}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s (children), "
            f"peak RSS of the process tree {result['peak_tree_mib']:.0f} MiB; load average "
            f"(1/5/15 min) before {_load(before)}, after {_load(after)}",
            flush=True,
        )
        durations = ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v is not None)
        print(f"  stages (s): {durations}", flush=True)
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in result["stage_peaks_mib"].items())
        print(f"  peak RSS of the tree while each stage ran (MiB): {peaks}", flush=True)
        runs[engine] = out
    if len(runs) == 2:
        same = _same(*runs.values())
        print(f"same on both engines: {same}")
        if not all(same.values()):  # keep them: `python tests/support/golden.py A B` shows how
            print(f"kept for comparison: {' '.join(str(out) for out in runs.values())}")
            return
    if not args.keep:
        for out in runs.values():
            shutil.rmtree(out, ignore_errors=True)


def _load(averages: tuple[float, float, float]) -> str:
    """The load averages as ``1.2/3.4/5.6``."""
    return "/".join(f"{value:.1f}" for value in averages)


def _same(local: Path, spark: Path) -> dict[str, bool]:
    """Which artifacts agree: segments and assignments by rows, the rest normalised."""
    left, right = normalized(local), normalized(spark)
    same = {name: left.get(name) == right.get(name) for name in COMPARED}
    same["segments"] = read_segments(local).equals(read_segments(spark))
    assigned = [read_assignments(out).drop(columns="assigned_at") for out in (local, spark)]
    same["assignments"] = assigned[0].equals(assigned[1])
    same["send list"] = _send_list_digest(local) == _send_list_digest(spark)
    engaged = [read_engagement(out).astype(str) for out in (local, spark)]  # CSV or dataset
    same["engagement"] = engaged[0].equals(engaged[1])
    return same


class _HashSink(io.RawIOBase):
    """A write-only file that keeps only the sha256 of what is written to it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return len(data)


def _send_list_digest(run_dir: Path) -> str:
    """sha256 of the send list's rows as CSV text, in order, whatever its form (streamed)."""
    sink = _HashSink()
    writer = None
    for batch in read_send_list(run_dir).record_batches():
        text = pa.RecordBatch.from_arrays(
            [pc.cast(column, pa.string()) for column in batch.columns], names=batch.schema.names
        )
        if writer is None:
            writer = pacsv.CSVWriter(sink, text.schema)
        writer.write_batch(text)
    if writer is not None:
        writer.close()
    return sink.digest.hexdigest()


if __name__ == "__main__":
    main()
