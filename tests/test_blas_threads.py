"""The cpo command runs NumPy's BLAS on one thread unless the user chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = (
    "import cpo.cli, numpy, threadpoolctl, json;"
    "print(json.dumps([p['num_threads'] for p in threadpoolctl.threadpool_info()"
    " if p['user_api'] == 'blas']))"
)


def _blas_threads(environment: dict[str, str]) -> list[int]:
    """The BLAS pools' thread counts in a fresh interpreter that imported the CLI first."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_the_cli_sets_one_blas_thread_before_numpy_loads() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    threads = _blas_threads(environment)
    assert threads and set(threads) == {1}


def test_a_users_setting_is_kept() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    environment["OPENBLAS_NUM_THREADS"] = "2"
    assert set(_blas_threads(environment)) == {2}
