"""``cpo retrieve``: show what a segment (or a free query) retrieves, for tuning."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cpo.cli import cli, common_options, config_option, exactly_one, not_with
from cpo.commands.output_paths import output_file_path

if TYPE_CHECKING:
    from cpo.config import Config
    from cpo.models import SegmentProfile
    from cpo.retrieval.query import SegmentQuery
    from cpo.retrieval.service import PreparedIndex, SegmentRetrieval

SNIPPET_CHARS = 160


@cli.command("retrieve")
@click.option("--segment", "segment_name", help="Segment name: show its query and results.")
@click.option("--query", "query_text", help='Free text query (words and "quoted phrases").')
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Take segment profiles (and the content folder) from this run folder.",
)
@click.option(
    "--customers",
    type=click.Path(path_type=Path),
    help="Segment this customer file (without --run). Default: the bundled sample.",
)
@click.option(
    "--content",
    "content_dir",
    type=click.Path(path_type=Path),
    help="Approved-content folder. Default: the run's, else the bundled sample.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    callback=output_file_path("index file", writable=False),
    help="Index file to build or reuse (sqlite_fts). Default: a temporary one.",
)
@config_option
@click.option(
    "--top-k", type=click.IntRange(1, 50), help="Results to show. Default: content.top_k."
)
@click.option("--category", multiple=True, help="Only this category (repeatable).")
@click.option("--audience", multiple=True, help="Only this audience (repeatable).")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Judge expiry on this date. Default: campaign.as_of, else today.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@common_options
def retrieve_command(**options: Any) -> None:
    """Print the approved paragraphs a segment's query (or a free query) retrieves.

    With --segment, the query is built exactly as `cpo run` builds it (segment name,
    traits, behaviour words, expansions), and the relevance threshold and fallback
    apply. With --query, the raw ranked results are shown; results under
    content.min_score are marked. Example:

      cpo retrieve --segment At-Risk --top-k 5
    """
    exactly_one(
        ("--segment NAME", options["segment_name"]), ("--query TEXT", options["query_text"])
    )
    not_with(
        "--run",
        options["run_dir"],
        ("--customers", options["customers"]),
        reason="the segments come from the run folder",
    )
    from cpo.config import load_config

    config = load_config(options["config_dir"])
    with tempfile.TemporaryDirectory(prefix="cpo-retrieve-") as scratch:
        prepared = _prepare(config, options, Path(scratch) / "index.sqlite")
        if options["segment_name"] is not None:
            _show_segment(config, prepared, options)
        else:
            _show_query(config, prepared, options)
        prepared.retriever.close()


def _prepare(config: Config, options: dict[str, Any], scratch_db: Path) -> PreparedIndex:
    """Load and index the content folder chosen by the options.

    The index file is ``--db``, else the configured one, else ``scratch_db``.
    """
    from cpo.retrieval.service import prepare_index, run_as_of

    as_of = options["as_of"]
    day = as_of.date() if as_of else run_as_of(config.experiment.campaign.as_of)
    return prepare_index(
        _content_dir(options),
        config.services.retrieval,
        config.experiment.content,
        as_of=day,
        db_path=options["db_path"],
        default_db_path=scratch_db,
    )


def _content_dir(options: dict[str, Any]) -> Path:
    """--content, else the run's content option, else the bundled sample."""
    from cpo.run_folder import MANIFEST, read_manifest
    from cpo.sample_data import bundled_content

    if options["content_dir"] is not None:
        return options["content_dir"]
    run_dir = options["run_dir"]
    if run_dir is not None and MANIFEST.path(run_dir).is_file():
        stored = read_manifest(run_dir).get("options", {}).get("content")
        if stored:
            return Path(stored)
    return bundled_content()


def _profiles(config: Config, options: dict[str, Any]) -> list[SegmentProfile]:
    """Profiles from --run, else from segmenting --customers (or the bundled sample)."""
    from cpo.preview import segment_profiles
    from cpo.run_folder import read_profiles

    if options["run_dir"] is not None:
        return read_profiles(options["run_dir"])
    return segment_profiles(config, options["customers"])


def _show_segment(config: Config, prepared: PreparedIndex, options: dict[str, Any]) -> None:
    """Build the segment's query, retrieve as the stage does, print."""
    from cpo.retrieval.query import build_segment_query, population_means
    from cpo.retrieval.service import find_profile, retrieve_segment, segment_entry

    profiles = _profiles(config, options)
    profile = find_profile(profiles, options["segment_name"])
    settings = config.experiment.content
    query = build_segment_query(profile, population_means(profiles), settings)
    if options["category"] or options["audience"]:
        query = _with_filters(query, options)
    retrieval = retrieve_segment(
        prepared.retriever, query, settings, prepared.content.documents, top_k=options["top_k"]
    )
    if options["as_json"]:
        entry = segment_entry(retrieval)
        entry["term_sources"] = query.sources
        click.echo(json.dumps(entry, indent=2, ensure_ascii=False))
        return
    _print_segment(retrieval, settings.min_score)


def _with_filters(query: SegmentQuery, options: dict[str, Any]) -> SegmentQuery:
    """The query with --category / --audience filters added."""
    filters = dict(query.filters)
    if options["category"]:
        filters["category"] = list(options["category"])
    if options["audience"]:
        filters["audience"] = list(options["audience"])
    return replace(query, filters=filters)


def _print_segment(retrieval: SegmentRetrieval, min_score: float) -> None:
    """The segment's query, where its terms came from, and its results."""
    from cpo.run_folder import snippet_to_result

    query = retrieval.query
    click.echo(f"segment: {query.segment} (id {query.segment_id})")
    click.echo(f"query:   {query.text or '(empty)'}")
    for source, terms in query.sources.items():
        if terms:
            click.echo(f"  {source + ':':<12}{', '.join(terms)}")
    click.echo(f"filters: {json.dumps(query.filters, ensure_ascii=False)}")
    _print_results([snippet_to_result(s) for s in retrieval.results], min_score)
    for warning in retrieval.warnings:
        click.echo(f"warning: {warning}", err=True)


def _show_query(config: Config, prepared: PreparedIndex, options: dict[str, Any]) -> None:
    """Run a free query without threshold or fallback and print the ranked results."""
    from cpo.run_folder import snippet_to_result

    settings = config.experiment.content
    filters: dict[str, Any] = {}
    if options["category"]:
        filters["category"] = list(options["category"])
    if options["audience"]:
        filters["audience"] = list(options["audience"])
    top_k = options["top_k"] or settings.top_k
    snippets = prepared.retriever.search(options["query_text"], top_k, filters or None)
    results = [snippet_to_result(s) for s in snippets]
    if options["as_json"]:
        payload = {"query": options["query_text"], "filters": filters, "results": results}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    click.echo(f"query:   {options['query_text']}")
    _print_results(results, settings.min_score)


def _print_results(results: list[dict[str, Any]], min_score: float) -> None:
    """A numbered list: score, document, paragraph, title, then the start of the text."""
    if not results:
        click.echo("no results")
        return
    for number, result in enumerate(results, start=1):
        below = "  (below min_score)" if result["score"] < min_score else ""
        click.echo(
            f"{number:>2}. {result['score']:8.3f}  {result['document_id']} "
            f"¶{result['paragraph_index']}  {result['title']}  "
            f"[{result['category']}, {result['audience']}]{below}"
        )
        text = result["snippet"]
        short = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
        click.echo(f"      {short}")
