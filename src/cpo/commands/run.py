"""``cpo run``: the whole campaign pipeline into a run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cpo.cli import SEED, cli, common_options, config_option, exactly_one
from cpo.commands.customer_options import customer_file_options
from cpo.run_folder import ARTIFACTS

if TYPE_CHECKING:
    from cpo.stage_api import RunOptions


def _run_help() -> str:
    """The command's help: what it does, then every file of the run folder."""
    width = max(len(a.name) for a in ARTIFACTS)
    rows = "\n".join(f"  {a.name:<{width}}  {a.description}" for a in ARTIFACTS)
    return (
        "Run the campaign pipeline and write a run folder.\n\n"
        "Stages: segment, retrieve, generate, screen, assign, engage, analyze, report. "
        "Offline by default.\n\n"
        "The run folder holds (files of a stage that did not run are absent):\n\n"
        f"\b\n{rows}"
    )


@cli.command("run", help=_run_help())
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Run folder to create (empty or new)."
)
@config_option
@click.option(
    "--customers",
    type=click.Path(path_type=Path),
    help="Customer file (CSV or Parquet). Default: the bundled 500 sample customers.",
)
@click.option(
    "--content",
    type=click.Path(path_type=Path),
    help="Approved-content folder (JSON documents). Default: the bundled sample content.",
)
@click.option(
    "--engagement",
    type=click.Path(path_type=Path),
    help="Engagement file from a real send; without it engagement is simulated.",
)
@click.option(
    "--orders",
    type=click.Path(path_type=Path),
    help="Orders file (customer_id or email, timestamp[, order_id]): the conversions, "
    "with an email service event file as --engagement.",
)
@click.option(
    "--suppressions",
    type=click.Path(path_type=Path),
    help="Suppression list for the unsubscribes and bounces of an event file: a folder "
    "holding suppressions.sqlite, or the file. Default: the run folder's parent folder.",
)
@click.option(
    "--seed", type=SEED, help="Random seed (0 to 2**32-1). Default: campaign.seed in the config."
)
@click.option(
    "--on-invalid",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="Fail on invalid customer rows, or set them aside in rejected.csv.",
)
@click.option(
    "--waves",
    type=click.IntRange(min=1),
    help="Send in N adaptive waves: wave 1 with the design's allocation, later waves by "
    "top-two Thompson sampling on the primary metric; the holdout is never mailed. "
    "Default: experiment.waves.count.",
)
@click.option(
    "--await-engagement",
    is_flag=True,
    help="Send the adaptive waves for real: the run writes wave 1's send list and pauses "
    "(status awaiting_engagement); after `cpo send`, `cpo run --resume DIR --engagement FILE` "
    "imports the wave's events and allocates the next. Without it waves are simulated.",
)
@customer_file_options
@click.option("--force", is_flag=True, help="Overwrite an earlier run in a non-empty --out folder.")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    help="Continue the failed or paused run in this folder, skipping unchanged stages.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings, errors and the result.")
@common_options
def run_command(
    out_dir: Path | None,
    config_dir: Path | None,
    customers: Path | None,
    content: Path | None,
    engagement: Path | None,
    orders: Path | None,
    suppressions: Path | None,
    seed: int | None,
    on_invalid: str,
    waves: int | None,
    await_engagement: bool,
    column_map: dict[str, str],
    encoding: str | None,
    delimiter: str | None,
    force: bool,
    resume_dir: Path | None,
    quiet: bool,
) -> None:
    """Run the campaign pipeline and write a run folder (help: :func:`_run_help`)."""
    exactly_one(("--out DIR (new run)", out_dir), ("--resume DIR", resume_dir))
    from cpo.reporting.worker import early_report_worker  # imports nothing heavy

    # Started first, the report's worker warms up (WeasyPrint, the templates, the
    # notebook kernel) while this process imports the rest, loads the configuration
    # and runs the stages.
    with early_report_worker(out_dir or resume_dir, pauses=await_engagement) as worker:
        from cpo.config import load_config
        from cpo.console import TerminalReporter
        from cpo.experiment.wave_imports import next_wave_lines
        from cpo.pipeline import run_pipeline
        from cpo.reporting.simulated import terminal_lines as simulated_run_lines

        reporter = TerminalReporter(quiet=quiet)
        if resume_dir is not None:
            if await_engagement:
                raise click.UsageError(
                    "--await-engagement starts a new run; a resumed run keeps how it was started"
                )
            config = load_config(config_dir) if config_dir else None
            options = _resume_options(
                resume_dir, customers, content, engagement, seed, on_invalid, orders, suppressions
            )
            if waves is not None:
                options = replace(_stored_options(resume_dir, options), waves=waves)
            options = _with_reading(resume_dir, options, column_map, encoding, delimiter)
            manifest = run_pipeline(
                resume_dir, config, options, resume=True, reporter=reporter, report_worker=worker
            )
            run_dir = resume_dir
        else:
            config = load_config(config_dir)
            options = _options(
                customers, content, engagement, seed, on_invalid, orders, suppressions
            )
            options = replace(
                options,
                column_map=tuple(column_map.items()),
                encoding=encoding,
                delimiter=delimiter,
                waves=waves,
                await_engagement=await_engagement,
            )
            assert out_dir is not None  # exactly_one: --out is given when --resume is not
            manifest = run_pipeline(
                out_dir, config, options, force=force, reporter=reporter, report_worker=worker
            )
            run_dir = out_dir
        click.echo(f"run {manifest['run_id'][:12]} {manifest['status']}: {run_dir}")
        for line in next_wave_lines(run_dir):
            click.echo(line)
        for line in simulated_run_lines(run_dir):
            click.echo(line)


def _options(
    customers: Path | None,
    content: Path | None,
    engagement: Path | None,
    seed: int | None,
    on_invalid: str,
    orders: Path | None = None,
    suppressions: Path | None = None,
) -> RunOptions:
    from cpo.stage_api import RunOptions

    return RunOptions(
        customers=customers,
        content=content,
        engagement=engagement,
        orders=orders,
        suppressions=suppressions,
        seed=seed,
        on_invalid=on_invalid,
    )


def _resume_options(
    run_dir: Path,
    customers: Path | None,
    content: Path | None,
    engagement: Path | None,
    seed: int | None,
    on_invalid: str,
    orders: Path | None = None,
    suppressions: Path | None = None,
) -> RunOptions | None:
    """The run's stored options, with only the flags given now replaced.

    ``None`` (no flag given) lets the pipeline reuse the stored options as they are.
    """
    from cpo.run_folder import MANIFEST, read_manifest
    from cpo.stage_api import RunOptions

    given: dict[str, Any] = {
        "customers": customers,
        "content": content,
        "engagement": engagement,
        "orders": orders,
        "suppressions": suppressions,
        "seed": seed,
    }
    given = {key: value for key, value in given.items() if value is not None}
    if engagement is not None and orders is None:
        given["orders"] = None  # a new engagement file does not inherit the last one's orders
    if on_invalid != "error":
        given["on_invalid"] = on_invalid
    if not given or not MANIFEST.path(run_dir).is_file():
        return None
    stored = RunOptions.from_dict(read_manifest(run_dir).get("options", {}))
    return replace(stored, **given)


def _stored_options(run_dir: Path, options: RunOptions | None) -> RunOptions:
    """``options``, or the run's stored options when no other flag was given."""
    from cpo.run_folder import MANIFEST, read_manifest
    from cpo.stage_api import RunOptions

    if options is not None:
        return options
    present = MANIFEST.path(run_dir).is_file()
    return RunOptions.from_dict(read_manifest(run_dir).get("options", {}) if present else {})


def _with_reading(
    run_dir: Path,
    options: RunOptions | None,
    column_map: dict[str, str],
    encoding: str | None,
    delimiter: str | None,
) -> RunOptions | None:
    """Lay ``--map``/``--encoding``/``--delimiter`` given on resume over the stored options.

    ``--map`` on resume adds to the run's stored mapping; without any of the
    three flags the options are returned as they are.
    """
    if not column_map and encoding is None and delimiter is None:
        return options
    from cpo.run_folder import MANIFEST, read_manifest
    from cpo.stage_api import RunOptions

    if options is None:
        present = MANIFEST.path(run_dir).is_file()
        stored = read_manifest(run_dir).get("options", {}) if present else {}
        options = RunOptions.from_dict(stored)
    return replace(
        options,
        column_map=tuple({**dict(options.column_map), **column_map}.items()),
        encoding=encoding or options.encoding,
        delimiter=delimiter or options.delimiter,
    )
