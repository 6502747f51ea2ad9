"""``cpo export-sends RUN_DIR``: write a run's send list as CSV (plain or gzipped).

A large run writes its send list as ``sends.parquet`` (see
``experiment.send_list.compact_above``); this command writes the CSV form an
email service imports, byte for byte the ``sends.csv`` the run would have
written, streaming the Parquet file in batches so memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.commands.output_paths import output_file_path
from cpo.run_folder import SENDS

FORMATS = ("csv", "csv.gz")


@cli.command("export-sends")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    callback=output_file_path("send-list export"),
    help=f"File to write. Default: {SENDS.name} ({SENDS.name}.gz with --format csv.gz) "
    "in the current folder.",
)
@click.option(
    "--format",
    "form",
    type=click.Choice(FORMATS),
    help="csv, or csv.gz (gzipped). Default: csv.gz when --out ends in .gz, else csv.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@common_options
def export_sends_command(run_dir: Path, out: Path | None, form: str | None, force: bool) -> None:
    """Write the send list of the run in RUN_DIR as CSV, from sends.parquet or sends.csv.

    The CSV has the columns and row order of sends.csv, with the same quoting
    and the same escaping of cells a spreadsheet would run as formulas. A
    progress line goes to stderr while a long list is written.
    """
    from cpo.errors import OutputPathError
    from cpo.experiment.sends import export_send_list
    from cpo.run_folder import SEND_LIST_BATCH_ROWS, read_send_list

    source = read_send_list(run_dir)
    form = form or ("csv.gz" if out is not None and out.suffix == ".gz" else "csv")
    target = out if out is not None else Path(SENDS.name + (".gz" if form == "csv.gz" else ""))
    if target.exists() and target.resolve() == source.path.resolve():
        raise OutputPathError(
            f"{target}: is the run's send list itself", hint="give another --out file"
        )
    if target.exists() and not force:
        raise OutputPathError(
            f"{target}: already exists", hint="pass --force to overwrite it, or another --out"
        )

    def progress(done: int, total: int) -> None:
        if total > SEND_LIST_BATCH_ROWS:
            click.echo(f"export-sends: {done:,} / {total:,} rows ({done / total:.0%})", err=True)

    rows = export_send_list(source, target, gzipped=form == "csv.gz", progress=progress)
    click.echo(f"wrote {rows:,} rows to {target} (from {source.artifact.name})")
