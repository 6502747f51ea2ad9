"""``cpo segment FILE``: segment a customer file and print the profiles."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import SEED, cli, common_options, config_option
from cpo.commands.customer_options import customer_file_options
from cpo.commands.output_paths import output_file_path


@cli.command("segment")
@click.argument("customers_file", type=click.Path(path_type=Path))
@config_option
@click.option(
    "--method",
    type=click.Choice(["rules", "kmeans"]),
    help="Override segmentation.method from the config.",
)
@click.option(
    "--seed", type=SEED, help="Random seed (k-means; 0 to 2**32-1). Default: campaign.seed."
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    callback=output_file_path("segments CSV"),
    help="Write segments to this CSV.",
)
@click.option(
    "--on-invalid",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="Fail on invalid rows, or skip them.",
)
@customer_file_options
@common_options
def segment_command(
    customers_file: Path,
    config_dir: Path | None,
    method: str | None,
    seed: int | None,
    out_file: Path | None,
    on_invalid: str,
    column_map: dict[str, str],
    encoding: str | None,
    delimiter: str | None,
) -> None:
    """Segment CUSTOMERS_FILE (CSV or Parquet) and print a profile per segment.

    Uses the `segmentation` section of experiment_config.yaml: ordered rules
    (first match wins) by default, or k-means with --method kmeans. The file
    is read as `customers:` in the config says, with --map, --encoding and
    --delimiter laid over it.
    """
    from cpo.config import load_config
    from cpo.customers import load_customers, merged_settings
    from cpo.runfiles import write_csv
    from cpo.segmentation import segment

    config = load_config(config_dir)
    settings = config.experiment.segmentation
    if method:
        settings = settings.model_copy(update={"method": method})
    reading = merged_settings(config.experiment.customers, column_map, encoding, delimiter)
    loaded = load_customers(customers_file, on_invalid=on_invalid, settings=reading)
    result = segment(loaded.frame, settings, seed=seed or config.experiment.campaign.seed)
    if out_file:
        write_csv(out_file, result.assignments)
    click.echo(
        f"{len(result.assignments)} customers, {len(result.profiles)} segments ({result.method})"
    )
    if len(loaded.rejected):
        click.echo(f"{len(loaded.rejected)} invalid rows skipped")
    for profile in result.profiles:
        click.echo(
            f"  {profile.segment_id}  {profile.name:<24} {profile.size:>9}  {profile.share:6.1%}"
        )
        click.echo(f"      {profile.definition}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if out_file:
        click.echo(f"wrote {out_file}")
