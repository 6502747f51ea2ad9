"""``cpo generate --segment NAME --tone TONE``: write and print one variant, for tuning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cpo.cli import cli, common_options, config_option, not_with

if TYPE_CHECKING:
    from cpo.preview import Preview


@cli.command("generate")
@click.option("--segment", "segment_name", required=True, help="Segment name (quote spaces).")
@click.option("--tone", required=True, help="Tone, e.g. urgent, informational, friendly.")
@click.option(
    "--content",
    "content_dir",
    type=click.Path(path_type=Path),
    help="Approved-content folder. Default: the bundled sample.",
)
@click.option(
    "--customers",
    type=click.Path(path_type=Path),
    help="Customer file to segment. Default: the bundled sample.",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Use this run folder's segment profiles and retrieval.json instead.",
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the variant as JSON.")
@common_options
def generate_command(
    segment_name: str,
    tone: str,
    content_dir: Path | None,
    customers: Path | None,
    run_dir: Path | None,
    config_dir: Path | None,
    as_json: bool,
) -> None:
    """Write one variant for a segment in a tone and print it with its sources.

    Retrieves for the segment exactly as `cpo run` does, then calls the
    configured generation backend (services.generation in azure_config.yaml;
    `grounded` by default). Edit prompts/tones/<tone>.yaml in a config folder
    from `cpo init` and rerun to see the effect. Exits 1 when the variant fails.

      cpo generate --segment At-Risk --tone urgent
    """
    not_with(
        "--run",
        run_dir,
        ("--customers", customers),
        ("--content", content_dir),
        reason="the segments and their content come from the run folder",
    )
    from cpo.config import load_config
    from cpo.generation.service import variant_record
    from cpo.preview import preview_variant

    config = load_config(config_dir)
    preview = preview_variant(
        config, segment_name, tone, customers=customers, content=content_dir, run_dir=run_dir
    )
    if as_json:
        payload = {"query": preview.query, "variant": variant_record(preview.variant)}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        _print(preview)
    if preview.variant.status != "generated":
        click.get_current_context().exit(1)


def _print(preview: Preview) -> None:
    """Header, subject, body, citations, grounding and size checks."""
    from cpo.citations import strip_citations
    from cpo.text import count_words

    variant = preview.variant
    click.echo(
        f"{variant.variant_id}  {variant.segment} / {variant.tone}  "
        f"[{variant.backend} {variant.model}]  {variant.status}"
    )
    if variant.status != "generated" and not variant.body:
        click.echo(f"error: {variant.error}", err=True)
        _print_sources(preview)
        return
    click.echo(f"\nSubject: {variant.subject}\n")
    click.echo(variant.body)
    click.echo("\n" + "-" * 60)
    words = count_words(strip_citations(variant.body))
    click.echo(f"subject {len(variant.subject)} chars, body {words} words (markers excluded)")
    for citation in variant.citations:
        click.echo(f"  cites {citation.document_id} ¶{citation.paragraph_index}  {citation.title}")
    grounding = variant.grounding
    click.echo(
        f"grounding {grounding.score:.2f}: {len(grounding.unsupported_claims)} unsupported "
        f"claim(s), {len(grounding.invalid_citations)} invalid citation(s)"
    )
    for claim in grounding.unsupported_claims:
        click.echo(f"  unsupported: {claim}")
    for marker in grounding.invalid_citations:
        click.echo(f"  invalid citation: {marker}")
    if variant.tokens_prompt or variant.cached:
        click.echo(
            f"tokens {variant.tokens_prompt} + {variant.tokens_completion}, "
            f"${variant.cost_usd:.6f}{' (cached)' if variant.cached else ''}"
        )
    if variant.status != "generated":
        click.echo(f"error: {variant.error}", err=True)


def _print_sources(preview: Preview) -> None:
    """What retrieval returned (to see why a variant could not be written)."""
    click.echo(f"query: {preview.query or '(none)'}")
    for snippet in preview.snippets:
        click.echo(f"  {snippet.document_id} ¶{snippet.paragraph_index}  {snippet.title}")
