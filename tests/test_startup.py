"""Start-up stays light: ``cpo --help``/``--version`` import no data-science library.

Each check runs in a fresh interpreter, because the test process itself has long
imported pandas and friends; the child prints what it loaded as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Libraries the command line must not import before a command actually runs.
HEAVY = (
    "sklearn",
    "scipy",
    "statsmodels",
    "pandas",
    "numpy",
    "matplotlib",
    "weasyprint",
    "nbclient",
    "pyarrow",
    # The web app's stack: only `cpo serve` and `cpo users` import it, inside the command.
    "fastapi",
    "starlette",
    "uvicorn",
    "argon2",
    "multipart",
)

_CHILD = textwrap.dedent(
    """
    import json
    import sys

    import click
    from click.testing import CliRunner

    import cpo.cli

    def command_paths(group, prefix=()):
        ctx = click.Context(group, info_name="cpo")
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            yield (*prefix, name)
            if isinstance(command, click.Group):
                yield from command_paths(command, (*prefix, name))

    runner = CliRunner()
    invocations = [["--version"], ["--help"], ["-h"]]
    invocations += [[*path, "--help"] for path in command_paths(cpo.cli.cli)]
    results = []
    for args in invocations:
        result = runner.invoke(cpo.cli.cli, args, prog_name="cpo")
        results.append({"args": args, "exit_code": result.exit_code, "output": result.output})
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"results": results, "loaded": loaded}))
    """
)


@pytest.fixture(scope="module")
def child_report() -> dict:
    """What a fresh interpreter loaded after every help and the version were printed."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_help_of_every_command_is_printed(child_report: dict) -> None:
    """The walk reaches every command (and sub-command) and each help prints its usage."""
    paths = [r["args"][:-1] for r in child_report["results"] if r["args"][-1] == "--help"]
    for expected in (["run"], ["segment"], ["analyze"], ["report"], ["audit", "verify"]):
        assert expected in paths
    for result in child_report["results"]:
        assert result["exit_code"] == 0, result
        if result["args"] == ["--version"]:
            assert result["output"].startswith("cpo, version ")
        else:
            assert "Usage: cpo" in result["output"], result


def test_cli_start_up_imports_no_heavy_library(child_report: dict) -> None:
    """Importing cpo.cli and printing every help imports none of the heavy libraries."""
    loaded = set(child_report["loaded"])
    assert sorted(loaded & set(HEAVY)) == []


def test_console_script_version_is_light() -> None:
    """``cpo --version`` through the console-script entry point, checked at exit."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(m.split('.')[0] for m in sys.modules))))\n"
        "sys.argv = ['cpo', '--version']\n"
        "from cpo.cli import main\n"
        "main()\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    version_line, modules_line = completed.stdout.strip().splitlines()
    assert version_line.startswith("cpo, version ")
    assert sorted(set(json.loads(modules_line)) & set(HEAVY)) == []
