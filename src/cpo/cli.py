"""The ``cpo`` command line: parse flags, call the library, print.

Every command reports a problem in one of three ways:

* **Usage error, exit 2**: anything wrong that the command line alone shows (a
  value out of range or badly formed, a missing flag, two flags that exclude each
  other) is a :class:`click.UsageError`, or a :class:`click.BadParameter` when one
  option's value is wrong (checked in a callback, see :func:`checked_value`). The
  message names the flag; click adds the command's usage line.
* **Error, exit 1**: anything found wrong in the files, the config, the run folder
  or the installed backends (including a flag value that names something they do
  not have, such as an unknown segment or tone) is a :class:`cpo.errors.CpoError`
  subclass whose message names the file, row or key and whose ``hint`` says how to
  fix it. Set ``CPO_DEBUG=1`` to see the traceback.
* **A result that is not a success** (a broken audit chain, a variant that failed,
  a screening verdict) is printed like any result, then the command exits with
  its documented status through ``click.get_current_context().exit(status)``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cpo import __version__
from cpo.errors import CpoError

DEBUG_ENV = "CPO_DEBUG"
#: BLAS thread pools for the small matrices cpo multiplies (a few dozen columns): one thread.
#: OpenBLAS' own threads spin while they wait; on a busy two-core machine they made one
#: 200,000-row logistic fit 10x slower (docs/benchmarks.md). Set the variable to override.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in BLAS_THREAD_VARIABLES:  # before anything imports NumPy
    os.environ.setdefault(_variable, "1")
#: Largest seed numpy's generators accept; every ``--seed`` is checked against it when parsed.
MAX_SEED = 2**32 - 1
#: The type of every ``--seed`` option: a whole number in 0..2**32-1.
SEED = click.IntRange(0, MAX_SEED)


class CpoGroup(click.Group):
    """A click group that turns CpoError into a clean message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report user errors without a traceback."""
        try:
            return super().invoke(ctx)
        except CpoError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def checked_value(
    check: Callable[[str], str],
) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback passing a given value through ``check`` (``None`` stays ``None``).

    ``check`` returns the normalized value or raises ``ValueError``, which becomes a
    usage error (exit status 2) naming the option.
    """

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def exactly_one(*options: tuple[str, object]) -> None:
    """Raise a usage error unless exactly one of ``options`` was given.

    Args:
        *options: ``(how the message names the flag, its parsed value)``; a value
            of ``None`` means the flag was not given.

    Raises:
        click.UsageError: none or more than one was given.
    """
    if sum(value is not None for _, value in options) != 1:
        raise click.UsageError("give exactly one of " + " or ".join(name for name, _ in options))


def not_with(flag: str, value: object, *others: tuple[str, object], reason: str) -> None:
    """Raise a usage error when ``flag`` was given together with any of ``others``.

    Args:
        flag: The flag that excludes the others, e.g. ``"--run"``.
        value: Its parsed value (``None``: not given, nothing to check).
        *others: ``(flag, parsed value)`` of the options it excludes.
        reason: Why, for the message, e.g. ``"the run folder has the segments"``.

    Raises:
        click.UsageError: ``flag`` and at least one of ``others`` were given.
    """
    given = [name for name, other in others if other is not None]
    if value is not None and given:
        raise click.UsageError(f"{' and '.join(given)}: not with {flag} ({reason})")


def common_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--version`` to a command (``--help`` comes with click)."""
    return click.version_option(__version__, prog_name="cpo")(function)


def config_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config DIR``."""
    return click.option(
        "--config",
        "config_dir",
        type=click.Path(path_type=Path),
        help="Config folder (from `cpo init`). Default: the packaged defaults.",
    )(function)


@click.group(cls=CpoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
def cli() -> None:
    """cpo: the Customer Personalization Orchestrator.

    Segments customers, retrieves approved brand content, generates cited
    variants per segment, screens them for safety with a tamper-evident audit
    log, runs an A/B/n experiment and writes a report. Runs offline by default.

    Start with `cpo run --out runs/demo` on the bundled sample data.
    """


def main() -> None:
    """Console-script entry point.

    When the command is done, every live object is frozen out of the garbage
    collector: the interpreter's teardown would otherwise scan the heap of every
    library the command imported (pandas, SciPy, ...) again and again while it
    unloads them, 0.3-0.5 s after a ``cpo run`` (docs/benchmarks.md). atexit
    handlers still run and objects are still freed when their last reference
    goes; only reference cycles left at exit are not collected (the OS frees them).
    """
    try:
        cli(prog_name="cpo")
    finally:
        gc.freeze()


from cpo import commands  # noqa: E402,F401  (registers the subcommands)

__all__ = [
    "MAX_SEED",
    "SEED",
    "checked_value",
    "cli",
    "common_options",
    "config_option",
    "exactly_one",
    "main",
    "not_with",
]
