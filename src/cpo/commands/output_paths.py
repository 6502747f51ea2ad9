"""Click callbacks that check a command's output paths while its options are parsed.

A bad output path (a file where a folder is needed, a folder where a file is
needed, a parent that is a file, a folder the user cannot write) is reported
before any work starts, as one :class:`~cpo.errors.OutputPathError` (exit 1).
Nothing is created while parsing; the command creates what it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from cpo.outpaths import check_writable, output_dir, output_file

PathCallback = Callable[[click.Context, click.Parameter, Path | None], Path | None]


def output_folder(what: str) -> PathCallback:
    """A callback checking a folder the command writes into (it may not exist yet)."""

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None and not ctx.resilient_parsing:
            output_dir(value, what, create=False)
        return value

    return check


def output_file_path(what: str, *, writable: bool = True) -> PathCallback:
    """A callback checking a file the command writes (its folder may not exist yet).

    Args:
        what: How an error names the file, e.g. ``"CSV export"``.
        writable: Also check its folder can be written (off for a file that
            is only written when missing, like an index that may be reused).
    """

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None and not ctx.resilient_parsing:
            output_file(value, what, create=False, writable=writable)
        return value

    return check


def writable_run_folder(action: str) -> PathCallback:
    """A callback checking that an existing run folder can be written.

    A missing folder is left to the command's own "no such run folder" error.

    Args:
        action: What could not be done, e.g. ``"write the reports into the run folder"``.
    """

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None and not ctx.resilient_parsing and value.is_dir():
            check_writable(value, action)
        return value

    return check
