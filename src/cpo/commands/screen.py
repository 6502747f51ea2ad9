"""``cpo screen``: screen a text or a variants file with the configured backend and policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cpo.cli import cli, common_options, config_option, exactly_one

if TYPE_CHECKING:
    from cpo.models import Verdict

#: Exit status per worst verdict (errors exit 1 as everywhere in cpo).
EXIT_STATUS = {"pass": 0, "review": 2, "block": 3}


@cli.command("screen", short_help="Screen a text or a variants file for harm and compliance.")
@click.option("--text", help="Screen this text (a snippet: the footer rule is not applied).")
@click.option(
    "--file",
    "variants_file",
    type=click.Path(path_type=Path),
    help="Screen every variant in a variants.json (subject and body, all rules).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--backend",
    help="Override services.safety.backend (local, azure_content_safety).",
)
@config_option
@common_options
def screen_command(
    text: str | None,
    variants_file: Path | None,
    as_json: bool,
    backend: str | None,
    config_dir: Path | None,
) -> None:
    """Screen a text or the variants of a variants.json without sending anything.

    Uses the screening backend of azure_config.yaml (services.safety) and the
    policy of safety_thresholds.yaml. Nothing is written to an audit log: this is
    a preview; `cpo run` screens and records for real.

    JSON for --text: {"status", "severities": {hate, violence, self_harm, sexual},
    "reasons"}; for --file: {"variants": [same, with "variant_id"]}.

    Exit status: 0 all pass, 2 something needs review, 3 something is blocked,
    1 on an error (a usage error, such as both --text and --file, is also 2).
    """
    exactly_one(("--text TEXT", text), ("--file variants.json", variants_file))
    from cpo.config import load_config
    from cpo.models import Variant
    from cpo.run_folder import read_variants
    from cpo.safety.base import build_analyzer
    from cpo.safety.stage import screen_variants

    config = load_config(config_dir)
    settings = config.services.safety
    if backend:
        settings = settings.model_copy(update={"backend": backend})
    policy = config.safety
    if text is not None:
        # a snippet is not a whole email, so it cannot carry the unsubscribe footer
        policy = policy.model_copy(
            update={
                "compliance": policy.compliance.model_copy(update={"footer": _footer_off(policy)})
            }
        )
        variants = [Variant("text", "", "", "", text)]
    elif variants_file is not None:  # exactly one of the two was given
        variants = read_variants(variants_file)
    analyzer = build_analyzer(settings, base_dir=config.source)
    verdicts = [
        verdict
        for _, verdict, _ in screen_variants(
            variants, analyzer, policy, backend=settings.backend, concurrency=settings.concurrency
        )
    ]
    _print(verdicts, single=text is not None, as_json=as_json)
    worst = max((EXIT_STATUS[v.status] for v in verdicts), default=0)
    click.get_current_context().exit(worst)


def _footer_off(policy: Any) -> Any:
    return policy.compliance.footer.model_copy(update={"action": "off"})


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The documented JSON form of a verdict (severities are null when not screened)."""
    from cpo.models import HARM_CATEGORIES

    return {
        "status": verdict.status,
        "severities": {c: verdict.severities.get(c) for c in HARM_CATEGORIES},
        "reasons": list(verdict.reasons),
    }


def _print(verdicts: list[Verdict], *, single: bool, as_json: bool) -> None:
    from cpo.models import HARM_CATEGORIES

    if as_json:
        if single:
            payload: Any = verdict_json(verdicts[0])
        else:
            payload = {
                "variants": [{"variant_id": v.variant_id, **verdict_json(v)} for v in verdicts]
            }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for verdict in verdicts:
        label = "" if single else f"{verdict.variant_id:<28} "
        severities = "  ".join(
            f"{c} {'-' if verdict.severities.get(c) is None else verdict.severities[c]}"
            for c in HARM_CATEGORIES
        )
        click.echo(f"{label}{verdict.status:<7} {severities}")
        for reason in verdict.reasons:
            click.echo(f"    {reason}")
    if not single:
        counts = {s: sum(v.status == s for v in verdicts) for s in ("pass", "review", "block")}
        click.echo(f"{len(verdicts)} variants: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
