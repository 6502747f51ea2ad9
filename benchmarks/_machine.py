"""Machine description printed by every benchmark (so results can be compared)."""

from __future__ import annotations

import os
import platform
import subprocess


def machine_info() -> dict[str, str]:
    """CPU model, core count, memory, OS and Python version."""
    cpu = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            memory = f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def print_machine() -> None:
    """Print the machine description as ``key: value`` lines."""
    for key, value in machine_info().items():
        print(f"{key}: {value}")
