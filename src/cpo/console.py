"""Terminal display for the CLI: rich progress on a terminal, plain lines otherwise.

The library reports progress through :class:`cpo.stage_api.Reporter`; this module
is the CLI's implementation of it. Nothing here is imported by the library.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

STATUS_STYLE = {
    "completed": "green",
    "skipped": "cyan",
    "paused": "yellow",
    "failed": "red",
}


def is_interactive() -> bool:
    """True when standard error is a terminal (progress bars make sense)."""
    return sys.stderr.isatty()


class TerminalReporter:
    """Shows stage progress: a live bar on a terminal, one line per stage otherwise.

    Args:
        quiet: Show only warnings and errors.
        interactive: Force rich progress on or off (default: detect a terminal).
    """

    def __init__(self, quiet: bool = False, interactive: bool | None = None) -> None:
        self.quiet = quiet
        self.interactive = is_interactive() if interactive is None else interactive
        # rich only on a terminal: plain lines elsewhere need none of it (~0.1 s of imports).
        self.console: Console | None = None
        if self.interactive:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self._progress: Progress | None = None
        self._task: Any = None
        self.warnings: list[str] = []

    def stage_started(self, name: str, description: str) -> None:
        """Start a spinner/bar for the stage on a terminal."""
        if self.quiet or self.console is None:
            return
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=None)

    def stage_progress(self, name: str, completed: int, total: int) -> None:
        """Advance the bar."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def stage_finished(self, name: str, status: str, seconds: float, summary: str) -> None:
        """Print one line per finished stage."""
        self._stop()
        if self.quiet and status != "failed":
            return
        style = STATUS_STYLE.get(status, "white")
        line = f"{name:<10} {status:<9} {seconds:6.2f}s  {summary}"
        if self.console is not None:
            self.console.print(f"[{style}]{line}[/{style}]")
        else:
            print(line, file=sys.stderr)

    def event(self, record: dict[str, Any]) -> None:
        """Show warnings as they happen."""
        if record.get("level") != "warning":
            return
        text = record.get("message") or record.get("event", "")
        self.warnings.append(str(text))
        if self.console is not None:
            self.console.print(f"[yellow]warning[/yellow] ({record.get('stage')}): {text}")
        else:
            print(f"warning ({record.get('stage')}): {text}", file=sys.stderr)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
