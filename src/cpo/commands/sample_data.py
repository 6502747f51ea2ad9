"""``cpo sample-data``: generate synthetic customers (and the sample content)."""

from __future__ import annotations

from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.sample_data.customers import write_customers


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
    required=True,
    help="Output folder; receives customers.csv (or .parquet) and content/.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
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
    out_dir.mkdir(parents=True, exist_ok=True)
    target = write_customers(count, out_dir / f"customers.{file_format}", seed=seed)
    click.echo(f"wrote {count} customers to {target}")
    if not no_content:
        from cpo.sample_data.content import write_content

        files = write_content(out_dir / "content")
        click.echo(f"wrote {len(files)} approved-content documents to {out_dir / 'content'}")
