"""``cpo init DIR``: write an editable copy of the default configuration."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.config import init_config


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite config files in a non-empty folder.")
@common_options
def init_command(directory: Path, force: bool) -> None:
    """Write the default config folder to DIRECTORY for editing.

    The folder holds azure_config.yaml (backends), safety_thresholds.yaml
    (screening policy), experiment_config.yaml (campaign, segmentation,
    experiment) and prompts/. Use it with `cpo run --config DIRECTORY`.
    """
    written = init_config(directory, force=force)
    click.echo(f"wrote {len(written)} files to {directory}")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
