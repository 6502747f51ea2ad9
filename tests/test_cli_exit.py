"""The ``cpo`` console script ends without the interpreter's long teardown.

:func:`cpo.cli.main` freezes the garbage collector's objects when a command is
done (the teardown would otherwise scan the heap of every library the command
imported while unloading them). Exit statuses, output and atexit handlers stay as
they were. Each case runs ``main()`` in a fresh interpreter, as the console script
does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_CHILD = textwrap.dedent(
    """
    import atexit
    import gc
    import sys

    import cpo.cli

    atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, flush=True))
    sys.argv = ["cpo", *sys.argv[1:]]
    cpo.cli.main()
    """
)


def _main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "status", "stream", "expected"),
    [
        (["--version"], 0, "stdout", "cpo, version"),
        (["run"], 2, "stderr", "give exactly one of --out DIR"),
        (["report", "{missing}"], 1, "stderr", "no such run folder"),
    ],
    ids=["success", "usage-error", "cpo-error"],
)
def test_status_and_output_are_kept_and_atexit_runs_frozen(
    tmp_path: Path, args: list[str], status: int, stream: str, expected: str
) -> None:
    """Success, a usage error and a CpoError exit as before; atexit still runs."""
    completed = _main(*[a.format(missing=tmp_path / "missing") for a in args])
    assert completed.returncode == status, completed.stderr
    assert expected in getattr(completed, stream)
    assert completed.stdout.splitlines()[-1] == "frozen at exit: True"
    assert "Traceback" not in completed.stderr
