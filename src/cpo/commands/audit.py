"""``cpo audit verify|export``: check and export a run's safety audit log."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.commands.output_paths import output_file_path

TARGET = click.argument("target", metavar="FILE_OR_RUN_DIR", type=click.Path(path_type=Path))


@cli.group("audit")
@common_options
def audit_group() -> None:
    """Verify and export safety audit logs (safety_audit.jsonl).

    Every screening decision, approval and rejection is one hash-chained line;
    give a run folder to also check the entry count and head hash recorded in
    its manifest (this catches entries deleted from the end).
    """


@audit_group.command("verify")
@TARGET
@common_options
def verify_command(target: Path) -> None:
    """Check the hash chain; exit 0 if intact, 1 naming the first bad line and why.

    Detects edited, deleted, reordered, inserted and (with a run folder)
    truncated entries.
    """
    from cpo.decisions import verify_target

    path, result, manifest = verify_target(target)
    if result.ok:
        against = " (matches the run manifest)" if manifest else ""
        click.echo(f"{path}: {result.message()}{against}")
        click.echo(f"head hash: {result.head_hash}")
        return
    click.echo(f"{path}: TAMPERED or damaged: {result.message()}", err=True)
    click.get_current_context().exit(1)


@audit_group.command("export")
@TARGET
@click.option(
    "--csv",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    callback=output_file_path("CSV export"),
    help="CSV file to write (timestamp, variant_id, segment, status, severities, block_reason).",
)
@common_options
def export_command(target: Path, out: Path) -> None:
    """Export the audit log as CSV for a compliance review.

    The chain is verified first; a damaged log is still exported (it is
    evidence) but the command then exits 1 with the verification failure.
    """
    from cpo.audit import export_csv
    from cpo.decisions import verify_target

    path, result, _ = verify_target(target)
    rows = export_csv(path, out)
    click.echo(f"wrote {rows} rows to {out}")
    if not result.ok:
        click.echo(f"warning: {path} failed verification: {result.message()}", err=True)
        click.get_current_context().exit(1)
