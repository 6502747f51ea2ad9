"""``cpo suppressions list|add|remove|export``: the suppression list beside the runs.

Over :mod:`cpo.suppressions`. The list is ``suppressions.sqlite`` in the folder
the runs are written under (``cpo send``'s default: the run folder's parent).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cpo.cli import cli, common_options
from cpo.suppressions import REASONS

if TYPE_CHECKING:
    from cpo.suppressions import Suppressions

LIST_OPTION = click.option(
    "--suppressions",
    "location",
    type=click.Path(path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder holding suppressions.sqlite (the folder the runs are under), or the file.",
)


def _open(location: Path) -> Suppressions:
    """Open the list ``--suppressions`` names (created if missing)."""
    from cpo.suppressions import open_suppressions, suppressions_file

    return open_suppressions(suppressions_file(location))


@cli.group("suppressions")
@common_options
def suppressions_group() -> None:
    """Manage the addresses and customer ids `cpo send` never sends to.

    Reasons: unsubscribe, hard_bounce, complaint, manual. `cpo send` adds hard
    bounces; imported email-service events add unsubscribes, bounces and
    complaints. Values are stored stripped and lower-cased. See docs/send.md.
    """


@suppressions_group.command("list")
@LIST_OPTION
@click.option("--counts", "counts_only", is_flag=True, help="Only the count per reason.")
def list_command(location: Path, counts_only: bool) -> None:
    """Print every entry (value, reason, source, added) and the counts per reason."""
    with _open(location) as suppressions:
        if not counts_only:
            for entry in suppressions.entries():
                click.echo(f"{entry.value}\t{entry.reason}\t{entry.source}\t{entry.added_at}")
        counts = suppressions.counts()
    summary = ", ".join(f"{reason} {count:,}" for reason, count in counts.items())
    click.echo(f"{sum(counts.values()):,} suppressed ({summary})", err=not counts_only)


@suppressions_group.command("add")
@click.argument("values", nargs=-1, required=True)
@LIST_OPTION
@click.option(
    "--reason", type=click.Choice(REASONS), default="manual", show_default=True, help="Why."
)
@click.option("--source", default="manual", show_default=True, help="Where it came from.")
def add_command(values: tuple[str, ...], location: Path, reason: str, source: str) -> None:
    """Suppress each of VALUES (email addresses or customer ids)."""
    with _open(location) as suppressions:
        new = sum(suppressions.add(value, reason, source) for value in values)
    click.echo(f"added {new:,}; {len(values) - new:,} already listed")


@suppressions_group.command("remove")
@click.argument("values", nargs=-1, required=True)
@LIST_OPTION
def remove_command(values: tuple[str, ...], location: Path) -> None:
    """Take each of VALUES off the list (e.g. a customer who subscribed again)."""
    with _open(location) as suppressions:
        removed = sum(suppressions.remove(value) for value in values)
    click.echo(f"removed {removed:,}; {len(values) - removed:,} were not listed")


@suppressions_group.command("export")
@LIST_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="CSV file to write: value, reason, source, added_at.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def export_command(location: Path, out: Path, force: bool) -> None:
    """Write the list as CSV, to load into an email service's suppression list.

    Cells a spreadsheet would run as formulas are escaped with a leading quote.
    """
    from cpo.errors import OutputPathError
    from cpo.runfiles import atomic_open, escape_formula

    if out.exists() and not force:
        raise OutputPathError(f"{out}: already exists", hint="pass --force, or another --out")
    rows = 0
    with _open(location) as suppressions, atomic_open(out, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["value", "reason", "source", "added_at"])
        for entry in suppressions.entries():
            cells = (entry.value, entry.reason, entry.source, entry.added_at)
            writer.writerow([escape_formula(cell) for cell in cells])
            rows += 1
    click.echo(f"wrote {rows:,} entries to {out}")
