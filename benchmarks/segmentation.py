"""Benchmark: rules and k-means segmentation on generated customers (100k, 1M).

Each case runs in a fresh subprocess so peak memory (max RSS) is its own.
Timing covers segmentation only (including profiles), not data generation.

    python benchmarks/segmentation.py            # 100k and 1M
    python benchmarks/segmentation.py --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine


def run_case(method: str, size: int) -> dict[str, float]:
    """Run one case in this process and return its measurements."""
    from cpo.config import load_config
    from cpo.sample_data.customers import generate_customers
    from cpo.segmentation import segment

    settings = load_config().experiment.segmentation.model_copy(update={"method": method})
    customers = generate_customers(size, seed=1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = segment(customers, settings, seed=1)
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "method": method,
        "customers": size,
        "seconds": round(seconds, 3),
        "customers_per_s": round(size / seconds),
        "peak_rss_mib": round(rss_after),
        "rss_before_mib": round(rss_before),
        "segments": len(result.profiles),
    }


def main() -> None:
    """Run every (method, size) case in a subprocess and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["rules", "kmeans"])
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return
    print_machine()
    print(f"{'method':<8} {'customers':>10} {'seconds':>8} {'cust/s':>10} {'peak RSS MiB':>13}")
    for method in args.methods:
        for size in args.sizes:
            output = subprocess.run(
                [sys.executable, __file__, "--case", method, str(size)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            row = json.loads(output.strip().splitlines()[-1])
            print(
                f"{row['method']:<8} {row['customers']:>10} {row['seconds']:>8.2f} "
                f"{row['customers_per_s']:>10} {row['peak_rss_mib']:>13}"
            )


if __name__ == "__main__":
    main()
