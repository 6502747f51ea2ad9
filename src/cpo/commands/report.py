"""``cpo report RUN_DIR``: regenerate the reports of a completed run."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.commands.output_paths import writable_run_folder


@cli.command("report")
@click.argument(
    "run_dir",
    type=click.Path(path_type=Path),
    callback=writable_run_folder("write the reports into the run folder"),
)
@click.option("--no-pdf", is_flag=True, help="Skip report.pdf.")
@click.option("--no-notebook", is_flag=True, help="Skip building and executing report.ipynb.")
@common_options
def report_command(run_dir: Path, no_pdf: bool, no_notebook: bool) -> None:
    """Write report.html, report.pdf and report.ipynb for the completed run in RUN_DIR.

    Reads only the run's artifacts (metrics.json, experiment_design.json,
    variants.json, safety_audit.jsonl, engagement.csv, ...) and the customer
    file named in the manifest; nothing is re-run. The notebook is executed
    offline with this Python's ipykernel. Simulated engagement is labelled
    SIMULATED DATA on every page.
    """
    from cpo.reporting.render import render_report

    result = render_report(run_dir, pdf=not no_pdf, notebook=not no_notebook)
    for name, size in result.files.items():
        click.echo(f"wrote {run_dir / name} ({size / 1024:.0f} KB)")
    if result.explain_note:
        click.echo(f"warning: explainability skipped: {result.explain_note}", err=True)
    if result.simulated:
        click.echo("note: engagement in this run is SIMULATED; the reports say so on every page")
