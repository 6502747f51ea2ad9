"""``cpo power``: minimum detectable effect for a sample size, or sample size for an effect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cpo.cli import cli, common_options, config_option, exactly_one, not_with

_RATE = click.FloatRange(0, 1, min_open=True, max_open=True)


@cli.command("power")
@click.option("--baseline", type=_RATE, required=True, help="Control rate, e.g. 0.03.")
@click.option(
    "--n-per-arm", type=click.FloatRange(0, min_open=True), help="Units per arm: print the MDE."
)
@click.option("--effect", type=float, help="Target effect: print the units needed per arm.")
@click.option(
    "--relative", is_flag=True, help="Read --effect as relative to the baseline (0.1 = +10%)."
)
@click.option("--alpha", type=_RATE, help="Two-sided alpha. Default: analysis.alpha (0.05).")
@click.option("--power", "power_", type=_RATE, help="Target power. Default: analysis.power (0.8).")
@click.option(
    "--comparisons",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Treatment-vs-control comparisons; alpha is divided by it (Bonferroni).",
)
@click.option(
    "--variance-reduction",
    type=click.FloatRange(0, 1, max_open=True),
    help="Share of the outcome's variance that regression adjustment (CUPED) removes, "
    "e.g. 0.1; the MDE is that of n / (1 - R) units and the sample size is (1 - R) times "
    "smaller. Default 0 (no adjustment).",
)
@click.option(
    "--rho",
    type=click.FloatRange(-1, 1, min_open=True, max_open=True),
    help="Correlation between the pre-experiment covariate and the outcome; "
    "the same as --variance-reduction rho².",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
@common_options
def power_command(
    baseline: float,
    n_per_arm: float | None,
    effect: float | None,
    relative: bool,
    alpha: float | None,
    power_: float | None,
    comparisons: int,
    variance_reduction: float | None,
    rho: float | None,
    as_json: bool,
    config_dir: Path | None,
) -> None:
    """Plan an experiment on a rate (open, click or conversion rate).

    With --n-per-arm, print the minimum detectable effect (the smallest upward
    change detectable with the given power). With --effect, print the units
    needed per arm. Same formula as R's power.prop.test; alpha is two-sided and
    divided by --comparisons. Example: `cpo power --baseline 0.5 --effect 0.25
    --power 0.9` prints n = 76.7 per arm. With --variance-reduction R (or --rho,
    R = rho²) the numbers are for an analysis adjusted for pre-experiment
    covariates (CUPED), and both are printed.
    """
    from cpo.config import load_config
    from cpo.experiment.power import plan_mde, plan_sample_size

    exactly_one(("--n-per-arm (for the MDE)", n_per_arm), ("--effect (for n)", effect))
    not_with("--rho", rho, ("--variance-reduction", variance_reduction), reason="rho² is R")
    reduction = rho**2 if rho is not None else (variance_reduction or 0.0)
    analysis = load_config(config_dir).experiment.analysis
    alpha = analysis.alpha if alpha is None else alpha
    power_ = analysis.power if power_ is None else power_
    if effect is not None:
        result = plan_sample_size(
            baseline,
            effect,
            relative=relative,
            alpha=alpha,
            power=power_,
            comparisons=comparisons,
            variance_reduction=reduction,
        )
    elif n_per_arm is not None:  # exactly one of the two was given
        result = plan_mde(
            baseline,
            n_per_arm,
            alpha=alpha,
            power=power_,
            comparisons=comparisons,
            variance_reduction=reduction,
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_describe(result))
    if result["reason"] is not None:
        click.get_current_context().exit(1)


def _describe(result: dict[str, Any]) -> str:
    """The result as a few readable lines."""
    lines = [
        f"baseline rate   {result['baseline']:g}",
        f"alpha           {result['alpha']:g} two-sided"
        + (
            f" ({result['alpha_per_comparison']:.4g} per comparison, "
            f"{result['comparisons']} comparisons)"
            if result["comparisons"] > 1
            else ""
        ),
        f"power           {result['power']:g}",
    ]
    reduction = result.get("variance_reduction") or 0.0
    if reduction:
        lines.append(
            f"CUPED           variance reduction {reduction:.3g} (regression adjustment on "
            "pre-experiment covariates; about rho² of the covariate and the outcome)"
        )
    if result["calculation"] == "sample_size":
        lines.insert(
            1,
            f"target rate     {result['target_rate']:g} (effect {result['effect_absolute']:+g} "
            f"absolute, {result['effect_relative']:+.1%} relative)",
        )
        if result["reason"]:
            lines.append(f"no solution: {result['reason']}")
        else:
            lines.append(
                f"n = {result['n_per_arm']:.1f} per arm (plan for {result['n_per_arm_ceil']})"
                + (
                    f"; without adjustment {result['n_per_arm_unadjusted']:.1f}"
                    if reduction
                    else ""
                )
            )
        return "\n".join(lines)
    lines.insert(1, f"n per arm       {result['n_per_arm']:g}")
    if reduction:
        lines.append(f"effective n     {result['n_effective']:,.1f} per arm (n / (1 - R))")
    if result["reason"]:
        lines.append(f"no solution: {result['reason']}")
    else:
        lines.append(
            f"MDE = {result['mde_absolute']:+.4g} absolute ({result['mde_relative']:+.1%} "
            f"relative): a rate of {result['target_rate']:.4g} is detectable"
            + (
                f"; without adjustment {result['mde_relative_unadjusted']:+.1%} relative"
                if reduction and result.get("mde_relative_unadjusted") is not None
                else ""
            )
        )
    return "\n".join(lines)
