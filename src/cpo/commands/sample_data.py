"""``cpo sample-data``: generate synthetic customers (and the sample content)."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import SEED, cli, common_options
from cpo.commands.output_paths import output_folder
from cpo.outpaths import os_error, output_dir, output_file


@cli.command("sample-data")
@click.option(
    "--customers",
    "count",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Number of customers to generate (10 million works; written in 1M-row chunks).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    callback=output_folder("output folder"),
    required=True,
    help="Output folder; receives customers.csv (or .parquet) and content/.",
)
@click.option(
    "--seed", type=SEED, default=42, show_default=True, help="Random seed (0 to 2**32-1)."
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="File format of the customer file.",
)
@click.option("--no-content", is_flag=True, help="Skip writing the approved-content folder.")
@common_options
def sample_data_command(
    count: int, out_dir: Path, seed: int, file_format: str, no_content: bool
) -> None:
    """Generate deterministic synthetic sample data.

    Customers have synthetic names and reserved example.com/.org/.net emails,
    with correlated behaviour (Gold buys more and more often, recent customers
    engage more). The same --customers and --seed always give the same file.
    """
    customers = output_file(out_dir / f"customers.{file_format}", "customer file")
    content = None if no_content else output_dir(out_dir / "content", "content folder")
    from cpo.sample_data.customers import write_customers

    try:
        target = write_customers(count, customers, seed=seed)
        click.echo(f"wrote {count} customers to {target}")
        if content is not None:
            from cpo.sample_data import copy_bundled_content

            files = copy_bundled_content(content)
            click.echo(f"wrote {len(files)} approved-content documents to {content}")
    except OSError as exc:
        raise os_error(out_dir, exc, "write the sample data to") from None
