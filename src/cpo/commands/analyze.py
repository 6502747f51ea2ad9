"""``cpo analyze FILE``: analyse engagement and print the metrics (JSON or tables)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cpo import run_folder
from cpo.cli import cli, common_options, config_option
from cpo.commands.output_paths import output_file_path

DASH = "-"


@cli.command("analyze")
@click.argument("engagement_file", type=click.Path(path_type=Path))
@click.option(
    "--assignments",
    type=click.Path(path_type=Path),
    help="assignments.csv to join to: needed for per-recipient files without experiment_arm "
    "and for event files (customer_id, event, timestamp); checks a counts file's arms, "
    "segments and sizes against the run.",
)
@click.option(
    "--design",
    type=click.Path(path_type=Path),
    help=f"{run_folder.EXPERIMENT_DESIGN.name} for expected arm shares, tones and the planned "
    f"power. Default: {run_folder.EXPERIMENT_DESIGN.name} beside FILE, if there is one.",
)
@click.option(
    "--customers",
    type=click.Path(path_type=Path),
    help="Customer file (CSV or Parquet) whose pre-experiment columns (analysis.covariates) "
    "adjust the lifts (CUPED). Default: the run's customer copy beside FILE, if there is one.",
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics.json document.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    callback=output_file_path("metrics file"),
    help="Also write the JSON to this file.",
)
@common_options
def analyze_command(
    engagement_file: Path,
    assignments: Path | None,
    design: Path | None,
    customers: Path | None,
    config_dir: Path | None,
    as_json: bool,
    out_file: Path | None,
) -> None:
    """Analyse ENGAGEMENT_FILE (CSV or Parquet) and print the results.

    ENGAGEMENT_FILE holds per-recipient records (a run's engagement.csv, or
    any file with experiment_arm, opened, clicked, converted and optionally
    segment, customer_id); counts per arm (experiment_arm[, segment], sent,
    opened, clicked, converted, e.g. published results); or, with
    --assignments, a per-recipient export or an event log joined to the
    assignments (counts are then checked against the run's arms, segments and
    sizes). Prints rates with Wilson intervals, lifts
    with Newcombe intervals and multiplicity-adjusted p-values, the
    sample-ratio check, power and warnings; beside each lift, the lift adjusted
    for pre-experiment covariates (CUPED) when customer data is available;
    --json prints the full document.
    """
    from cpo.config import load_config
    from cpo.experiment.metrics import analyze_file
    from cpo.runfiles import write_json

    if design is None and (engagement_file.parent / run_folder.EXPERIMENT_DESIGN.name).is_file():
        design = engagement_file.parent / run_folder.EXPERIMENT_DESIGN.name
    config = load_config(config_dir)
    metrics = analyze_file(
        engagement_file,
        assignments=assignments,
        design=design,
        config=config,
        customers=customers,
    )
    if config.experiment.analysis.sequential:
        from cpo.experiment.results import MetricsDocument
        from cpo.experiment.sequential import monitor_metrics

        tau = config.experiment.analysis.sequential_tau
        document = MetricsDocument.from_dict(metrics)
        metrics = monitor_metrics(document, tau=tau, run_dir=engagement_file.parent).to_dict()
    if out_file is not None:
        write_json(out_file, metrics)
    if as_json:
        click.echo(json.dumps(metrics, indent=2, ensure_ascii=False, allow_nan=False))
        return
    if design is not None:
        click.echo(f"design: {design}", err=True)
    sections = build_sections(metrics)
    if sys.stdout.isatty():
        _print_rich(metrics, sections)
    else:
        click.echo(render_plain(metrics, sections))


# --------------------------------------------------------------------------
# Tables (plain data, rendered with rich on a terminal or as text otherwise)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A titled table: header cells and rows of text cells."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def percent(value: float | None, digits: int = 2) -> str:
    """A rate as a percentage, or a dash when undefined."""
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def bounds(interval: dict[str, Any], scale: float = 100.0, unit: str = "%") -> str:
    """``[lower, upper]`` with undefined bounds shown as ``?`` and an open upper as ``inf``."""
    if interval["lower"] is None and interval["upper"] is None:
        return "[n/a]"
    lower = DASH if interval["lower"] is None else f"{scale * interval['lower']:.2f}"
    if interval["upper"] is None:
        upper = "inf" if (interval.get("reason") or "").startswith("unbounded") else "?"
    else:
        upper = f"{scale * interval['upper']:.2f}"
    return f"[{lower}, {upper}]{unit}"


def p_text(value: float | None) -> str:
    """A p-value with sensible precision."""
    if value is None:
        return "n/a"
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def build_sections(metrics: dict[str, Any]) -> list[Section]:
    """The tables of the human-readable output."""
    sections = [_arms_section(metrics), _lifts_section(metrics)]
    adjustment = metrics.get("regression_adjustment")
    if adjustment and adjustment["comparisons"]:
        sections.append(_adjusted_section(adjustment))
    if metrics.get("sequential"):
        sections.append(_sequential_section(metrics["sequential"]))
    return [*sections, _segments_section(metrics)]


def _sequential_section(sequential: dict[str, Any]) -> Section:
    """The current look's always-valid p-values and confidence sequences."""
    current = sequential["looks"][-1] if sequential["looks"] else {"comparisons": []}
    rows = []
    for record in current["comparisons"]:
        estimate = record["estimate"]
        interval = {"lower": record["cs_lower"], "upper": record["cs_upper"]}
        rows.append((
            record["treatment_arm"],
            record["metric"] + ("" if record["exploratory"] else " *"),
            (DASH if estimate is None else f"{100 * estimate:+.2f} ")
            + bounds(interval, unit=" pp"),
            f"{record['cs_level']:.1%}",
            f"{p_text(record['p_value'])} / {p_text(record['p_value_adjusted'])} "
            f"({_short(record['adjustment'])})",
            {True: "yes", False: "no", None: "n/a"}[record["significant"]],
        ))  # fmt: skip
    headers = ("arm", "metric", "difference [confidence sequence]", "level",
               "always-valid p / adj. p", "sig.")  # fmt: skip
    title = f"Always-valid (mSPRT, tau {sequential['tau']:g}), look {sequential['look']}"
    return Section(title, headers, tuple(rows))


def _adjusted_section(adjustment: dict[str, Any]) -> Section:
    """Unadjusted and CUPED-adjusted difference per arm and metric, with the variance reduction."""
    rows = []
    for record in adjustment["comparisons"]:
        adjusted, unadjusted = record["adjusted"], record["unadjusted"]
        reduction = record["variance_reduction"]
        rows.append((
            record["treatment_arm"],
            record["metric"],
            _difference_text(unadjusted),
            _difference_text(adjusted),
            DASH if record["relative_lift"] is None else f"{100 * record['relative_lift']:+.1f}% "
            + bounds({"lower": record["relative_lower"], "upper": record["relative_upper"]}),
            f"{p_text(adjusted['p_value'])} / {p_text(record['p_value_adjusted'])}",
            DASH if reduction is None else f"{reduction:+.1%}",
            ", ".join(record["covariates"]),
        ))  # fmt: skip
    headers = ("arm", "metric", "unadjusted [CI]", "CUPED [CI]", "CUPED lift % [CI]",
               "p / adj. p", "var. reduction", "covariates")  # fmt: skip
    return Section("Regression adjustment (CUPED, HC2 errors)", headers, tuple(rows))


def _difference_text(estimate: dict[str, Any]) -> str:
    """``+1.20 [-0.40, 2.80] pp``, or the reason when undefined."""
    if estimate["difference"] is None:
        return f"n/a ({estimate['reason']})"
    return f"{100 * estimate['difference']:+.2f} " + bounds(estimate, unit=" pp")


def _arms_section(metrics: dict[str, Any]) -> Section:
    arms = list(metrics["arms"].values())
    # The metrics the analysis wrote (every catalog metric at the time of the run).
    names = tuple(arms[0]["metrics"]) if arms else ()
    rows = []
    for arm in arms:
        cells = [arm["arm_name"], arm["tone"] or DASH, str(arm["sample_size"])]
        for name in names:
            value = arm["metrics"][name]
            cells.append(f"{percent(value)} {bounds(arm['intervals'][name], unit='')}")
        rows.append(tuple(cells))
    level = f"{metrics['confidence_level']:.0%}"
    headers = ("arm", "tone", "sent", *(f"{n} [{level} Wilson]" for n in names))
    return Section("Arms", headers, tuple(rows))


def _lifts_section(metrics: dict[str, Any]) -> Section:
    rows = []
    for record in metrics["lift_analysis"]:
        significance = record["statistical_significance"]
        lift_percent = record["lift_percent"]
        adjusted = significance["p_value_adjusted"]
        lift_absolute = record["lift_absolute"]
        rows.append((
            record["treatment_arm"],
            record["metric"] + ("" if record["exploratory"] else " *"),
            percent(record["control_value"]),
            percent(record["treatment_value"]),
            (DASH if lift_absolute is None else f"{100 * lift_absolute:+.2f} ")
            + bounds(significance["confidence_interval"], unit=" pp"),
            (DASH if lift_percent is None else f"{lift_percent:+.1f}% ")
            + bounds(significance["relative_confidence_interval"], scale=1.0),
            significance["test"] or DASH,
            f"{p_text(significance['p_value'])} / {p_text(adjusted)} "
            f"({_short(significance['adjustment'])})",
            {True: "yes", False: "no", None: "n/a"}[significance["significant"]],
            percent(record["bayesian"]["prob_beat_control"], 1),
        ))  # fmt: skip
    headers = ("arm", "metric", "control", "treatment", "lift [CI]", "lift % [CI]", "test",
               "p / adj. p", "sig.", "P(beat)")  # fmt: skip
    return Section("Lift against control (* = primary metric)", headers, tuple(rows))


def _short(adjustment: str | None) -> str:
    return {"holm": "Holm", "benjamini-hochberg": "BH"}.get(adjustment or "", DASH)


def _segments_section(metrics: dict[str, Any]) -> Section:
    primary = metrics["primary_metric"]
    rows = []
    for entry in metrics["segment_breakdown"]:
        srm = metrics["srm"]["by_segment"].get(entry["segment"], {})
        lift = entry["lift_percent"]
        rows.append((
            entry["segment"],
            str(entry["sample_size"]),
            entry["best_performing_arm"] or DASH,
            DASH if lift is None else f"{lift:+.1f}%",
            {True: "MISMATCH", False: "ok", None: "skipped"}[srm.get("mismatch")],
        ))  # fmt: skip
    headers = ("segment", "recipients", f"best arm ({primary})", "lift %", "SRM")
    return Section("Segments (exploratory, BH-adjusted)", headers, tuple(rows))


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """Header, SRM, stratified and power lines, then the warnings."""
    source = metrics["engagement_source"]
    shown = "SIMULATED (not measured)" if source == "simulated" else source
    primary = metrics["primary_metric"]
    lines = [
        f"experiment {metrics['experiment_name']} ({metrics['experiment_id']}); "
        f"{metrics['total_customers']} recipients; engagement: {shown}; "
        f"primary metric: {primary}; alpha {metrics['alpha']:g}",
    ]
    srm = metrics["srm"]
    verdict = {True: "MISMATCH", False: "no mismatch", None: "not checked"}[srm["mismatch"]]
    lines.append(
        f"sample ratio ({srm['method']}, expected from {srm['expected_from']}): "
        f"p = {p_text(srm['p_value'])}, {verdict}"
        + (f" ({srm['reason']})" if srm["reason"] else "")
    )
    for arm, record in metrics["stratified"].get(primary, {}).items():
        significance = record
        difference = record["risk_difference"]
        lines.append(
            f"stratified by segment, {arm}: MH difference "
            f"{DASH if difference is None else f'{100 * difference:+.2f} pp'} "
            f"{bounds(significance['confidence_interval'], unit=' pp')}, "
            f"CMH p = {p_text(significance['p_value'])} "
            f"(adj. {p_text(significance['p_value_adjusted'])})"
        )
    power = metrics["power"]["metrics"].get(primary, {})
    if power.get("mde_relative") is not None:
        lines.append(
            f"power ({primary}): minimum detectable lift {power['mde_relative']:.1%} relative; "
            f"power for a {metrics['power']['expected_relative_lift']:.0%} lift "
            f"{percent(power['achieved_power'], 0)}"
        )
    adjustment = metrics.get("regression_adjustment")
    if adjustment:
        why = adjustment["reason"]
        reason = f" ({why})" if why and why not in adjustment["decision"] else ""
        lines.append(f"regression adjustment: {adjustment['decision']}{reason}")
        lines += [f"regression adjustment: {note}" for note in adjustment["notes"]]
    lines += [f"warning [{w['code']}]: {w['message']}" for w in metrics["warnings"]]
    return lines


def render_plain(metrics: dict[str, Any], sections: Sequence[Section]) -> str:
    """Plain-text rendering (pipes, files, CI logs)."""
    summary = summary_lines(metrics)
    lines = [summary[0], ""]
    for section in sections:
        lines += [section.title, *_columns(section.headers, section.rows), ""]
    return "\n".join(lines + summary[1:])


def _columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces."""
    if not rows:
        return ["  (none)"]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  "
        + "  ".join(
            str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in (headers, *rows)
    ]


def _print_rich(metrics: dict[str, Any], sections: Sequence[Section]) -> None:
    """Rich tables on a terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    lines = summary_lines(metrics)
    console.print(f"[bold]{lines[0]}[/bold]")
    for section in sections:
        table = Table(title=section.title, title_justify="left", show_lines=False)
        for header in section.headers:
            # Wrap long cells rather than cut them: every digit matters here.
            table.add_column(header, overflow="fold")
        for row in section.rows:
            table.add_row(*row)
        console.print(table)
    for line in lines[1:]:
        style = "yellow" if line.startswith("warning") else None
        console.print(line, style=style, markup=False)
