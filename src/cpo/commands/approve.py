"""``cpo approve RUN_DIR``: approve or reject variants awaiting review."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.outpaths import check_writable


@cli.command("approve", short_help="Approve or reject variants awaiting review.")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--by", "by", help="Who decides (recorded in the audit log). Required unless --list.")
@click.option(
    "--reject",
    "reject",
    multiple=True,
    metavar="VARIANT_ID",
    help="Reject this variant instead of approving it (repeatable). Rejection is final.",
)
@click.option("--note", default="", help="A note recorded with each decision.")
@click.option("--list", "list_only", is_flag=True, help="Only list what awaits review.")
@common_options
def approve_command(
    run_dir: Path, by: str | None, reject: tuple[str, ...], note: str, list_only: bool
) -> None:
    """Approve every variant of RUN_DIR awaiting review, except those given to --reject.

    Each approval and rejection is a hash-chained entry of safety_audit.jsonl
    naming --by. Variants that passed screening can be vetoed with --reject;
    blocked variants can never be approved. Then continue the run with
    `cpo run --resume RUN_DIR`.
    """
    from cpo.decisions import pending_review, sendable_variants
    from cpo.safety.approval import approve_run

    if list_only:
        waiting = pending_review(sendable_variants(run_dir))
        if not waiting:
            click.echo("nothing awaits review")
        for decision in waiting:
            click.echo(f"{decision.variant_id} ({decision.segment}, {decision.tone})")
            for reason in decision.reasons:
                click.echo(f"    {reason}")
        return
    if by is None or not by.strip():
        raise click.UsageError("--by NAME is required to approve or reject")
    if run_dir.is_dir():
        check_writable(run_dir, "record decisions in the run folder")
    result = approve_run(run_dir, by=by, reject=reject, note=note)
    if result.approved:
        click.echo(f"approved by {by}: {', '.join(result.approved)}")
    if result.rejected:
        click.echo(f"rejected by {by}: {', '.join(result.rejected)}")
    click.echo(f"audit log: {result.entries} entries, head {result.head_hash[:12]}")
    click.echo(f"next: cpo run --resume {run_dir}")
