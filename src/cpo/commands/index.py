"""``cpo index CONTENT_DIR --db FILE``: build (or refresh) the approved-content index."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cpo.cli import cli, common_options, config_option
from cpo.commands.output_paths import output_file_path


@cli.command("index")
@click.argument("content_dir", type=click.Path(path_type=Path))
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    callback=output_file_path("index file"),
    help="Index file (sqlite_fts). Default: services.retrieval.sqlite_fts.db_path in the config.",
)
@config_option
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Judge expiry on this date (YYYY-MM-DD). Default: campaign.as_of, else today.",
)
@common_options
def index_command(
    content_dir: Path, db_path: Path | None, config_dir: Path | None, as_of: datetime | None
) -> None:
    """Validate CONTENT_DIR and index its paragraphs for retrieval.

    Uses the backend in services.retrieval (sqlite_fts by default: an FTS5 file at
    --db; azure_search: the configured Azure AI Search index). Expired documents
    are left out with a warning. Rebuilding is skipped when the content is unchanged.
    """
    from cpo.config import load_config
    from cpo.retrieval.service import prepare_index, run_as_of

    config = load_config(config_dir)
    day = as_of.date() if as_of else run_as_of(config.experiment.campaign.as_of)
    prepared = prepare_index(
        content_dir,
        config.services.retrieval,
        config.experiment.content,
        as_of=day,
        db_path=db_path,
    )
    for exclusion in prepared.content.excluded:
        click.echo(f"warning: {exclusion.document_id} left out: {exclusion.reason}", err=True)
    report = prepared.report
    what = "indexed" if report.built else "index up to date:"
    click.echo(
        f"{what} {report.documents} documents ({report.paragraphs} paragraphs) "
        f"in {report.location} [{prepared.retriever.name}, as of {day.isoformat()}, "
        f"{report.seconds:.2f}s]"
    )
