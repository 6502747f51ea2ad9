"""The CLI's progress display: rich on a terminal, plain lines (and no rich) elsewhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cpo.console import TerminalReporter

_PLAIN_CHILD = textwrap.dedent(
    """
    import sys

    from cpo.console import TerminalReporter

    reporter = TerminalReporter(interactive=False)
    reporter.stage_started("segment", "Segmenting")
    reporter.stage_finished("segment", "completed", 0.5, "4 segments")
    reporter.event({"level": "warning", "stage": "assign", "message": "underpowered"})
    print(sorted(name for name in sys.modules if name.split(".")[0] == "rich"))
    """
)


def test_plain_lines_import_no_rich() -> None:
    """Off a terminal (a pipe, CI) the reporter prints plain lines without importing rich."""
    completed = subprocess.run(
        [sys.executable, "-c", _PLAIN_CHILD], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
    lines = completed.stderr.splitlines()
    assert lines[0].split() == ["segment", "completed", "0.50s", "4", "segments"]
    assert lines[1] == "warning (assign): underpowered"


def test_terminal_output_goes_through_rich(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the lines are printed by rich (markup rendered, not shown)."""
    reporter = TerminalReporter(interactive=True)
    reporter.stage_started("segment", "Segmenting")
    reporter.stage_finished("segment", "completed", 0.5, "4 segments")
    reporter.event({"level": "warning", "stage": "assign", "message": "underpowered"})
    err = capsys.readouterr().err
    assert "segment    completed   0.50s  4 segments" in err
    assert "warning (assign): underpowered" in err
    assert "[green]" not in err and "[yellow]" not in err
    assert reporter.warnings == ["underpowered"]


def test_quiet_shows_only_warnings_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """-q: a completed stage prints nothing, a failed one and a warning do."""
    reporter = TerminalReporter(quiet=True, interactive=False)
    reporter.stage_finished("segment", "completed", 0.5, "4 segments")
    reporter.stage_finished("assign", "failed", 0.1, "no customers")
    reporter.event({"level": "warning", "stage": "assign", "message": "underpowered"})
    assert capsys.readouterr().err.splitlines() == [
        "assign     failed      0.10s  no customers",
        "warning (assign): underpowered",
    ]
