"""Adaptive waves inside ``cpo run`` (the assign and engage stages call these).

With ``cpo run --waves N`` (or ``experiment.waves.count``) above 1 and no
engagement file, the whole loop runs offline in the assign stage: wave 1 is
assigned with the design's allocation, its engagement is simulated, the
posterior of the primary metric allocates wave 2, and so on
(:func:`cpo.experiment.waves.assign_waves`). ``assignments.csv`` then has a
``wave`` column and ``waves.json`` records the plan and every wave's allocation.
The engage stage simulates each wave with the same per-wave seed, so
``engagement.csv`` holds exactly the responses the allocations saw, and it
simulates the holdout's conversions without an email (their counts per wave go
to ``engagement_report.json``). With one wave nothing here changes a file.

Waves sent for real (``--await-engagement``: send wave 1, import its events,
send wave 2, ...) are :mod:`cpo.experiment.wave_imports`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cpo import run_folder
from cpo.compute import engine_for
from cpo.compute.work import AssignedCustomers, arm_counts
from cpo.errors import CpoError
from cpo.experiment import catalog
from cpo.experiment.design import Design
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM, SimulationSettings, WaveSettings
from cpo.experiment.simulate import (
    SIMULATION_COLUMNS,
    SimulatedEngagement,
    model_description,
    response_probabilities,
    simulate_engagement,
    simulation_warnings,
    true_effects,
)
from cpo.experiment.waves import WAVE_COLUMN, WaveAllocation, WaveRun, assign_waves
from cpo.logs import utc_now
from cpo.stage_api import RunContext, RunOptions

if TYPE_CHECKING:
    from cpo.config import Config

METHOD = (
    "wave 1: the design's allocation; later waves: control's fixed share, the rest by "
    "top-two Thompson sampling (Russo 2020) on Beta posteriors of the primary metric, "
    "with a minimum share per treatment arm; the holdout is fixed across waves and never mailed"
)


def wave_settings(ctx: RunContext) -> WaveSettings:
    """The run's ``experiment.waves`` with ``--waves N`` laid over (:func:`waves_for`)."""
    return waves_for(ctx.config.experiment.experiment.waves, ctx.options.waves)


def waves_for(settings: WaveSettings, count: int | None) -> WaveSettings:
    """``settings`` with the count given on the command line (``None``: as configured).

    Raises:
        CpoError: ``--waves`` is below 1, or the configured wave shares do not
            match the count given on the command line.
    """
    if count is None or count == settings.count:
        return settings
    if count < 1:
        raise CpoError(f"--waves {count}: the number of waves must be 1 or more")
    if settings.shares is not None:
        raise CpoError(
            f"--waves {count}: experiment.waves.shares gives {len(settings.shares)} wave sizes",
            hint="set experiment.waves.count and shares together in the config, "
            "or remove experiment.waves.shares to use equal waves",
        )
    return settings.model_copy(update={"count": count})


def check_wave_options(config: Config, options: RunOptions) -> None:
    """Before any stage runs: the wave count is usable and the engagement mode is clear.

    Raises:
        CpoError: see :func:`waves_for`; adaptive waves the engine cannot run
            (:meth:`cpo.compute.engine.Engine.check_waves`); ``--await-engagement``
            with one wave; or adaptive waves with an engagement file in a run not
            sent for real.
    """
    settings = waves_for(config.experiment.experiment.waves, options.waves)
    engine_for(config.experiment.compute).check_waves(settings.count)
    if options.await_engagement and settings.count == 1:
        raise CpoError(
            "--await-engagement: the run has one wave, so there is no later wave to wait for",
            hint="give --waves 2 or more for adaptive waves sent for real; for one wave, "
            "run, send, then `cpo run --resume RUN_DIR --engagement FILE`",
        )
    if settings.count > 1 and options.engagement is not None and not options.await_engagement:
        raise CpoError(
            f"adaptive waves ({settings.count}) with an engagement file: this run does not "
            "send its waves for real (it was not started with --await-engagement), so no "
            "wave's events can be imported into it",
            hint="start a new run with `cpo run --waves N --await-engagement --out RUN_DIR`, "
            "send each wave, and import its events with "
            "`cpo run --resume RUN_DIR --engagement FILE`",
        )


def assign_run(
    ctx: RunContext, segments: pd.DataFrame, design: Design, customers: pd.DataFrame
) -> AssignedCustomers:
    """Assign the run, write the assignments; their counts (and the rows if held here).

    One wave as always (the engine assigns and writes them), or the offline loop
    of adaptive waves (in this process: the rows are returned for the send list).
    """
    settings = wave_settings(ctx)
    if settings.count == 1:
        run_folder.WAVES.path(ctx.run_dir).unlink(missing_ok=True)  # a stale one from --force
        engine = engine_for(ctx.config.experiment.compute)
        return engine.assign_segments(ctx.run_dir, design, assigned_at=utc_now())
    primary = catalog.metric(ctx.config.experiment.analysis.primary_metric)
    simulation = ctx.config.experiment.simulation
    history = customers[["customer_id", *SIMULATION_COLUMNS]]
    arm_tones = {arm.name: arm.tone for arm in design.arms}

    def respond(wave: int, rows: pd.DataFrame) -> pd.DataFrame:
        return simulate_engagement(
            history, rows, arm_tones, simulation, wave_seed(ctx.seed, wave)
        ).frame

    run = assign_waves(
        segments[["customer_id", "segment"]],
        design,
        settings,
        respond,
        (primary.outcome, primary.among),
        ctx.seed,
        assigned_at=utc_now(),
    )
    run_folder.write_waves(ctx.run_dir, waves_document(run, settings, design, primary.name))
    for allocation in run.allocations:
        log_allocation(ctx, allocation, responses=run.observed[allocation.wave])
    run_folder.write_assignments(ctx.run_dir, run.assignments)
    return AssignedCustomers(arm_counts(run.assignments), rows=run.assignments)


def log_allocation(ctx: RunContext, allocation: WaveAllocation, **fields: Any) -> None:
    """Log one wave's allocation to the experiment log (shares, P(best); no customer data).

    Args:
        ctx: The run.
        allocation: The wave's allocation.
        fields: What the allocation was computed from (e.g. ``responses`` per arm).
    """
    ctx.log.info(
        "assign",
        "wave_allocated",
        channel="experiment",
        wave=allocation.wave,
        method=allocation.method,
        shares={arm: round(share, 6) for arm, share in allocation.shares.items()},
        leader_probability=allocation.leader_probability,
        **fields,
    )


def wave_seed(seed: int, wave: int) -> int:
    """The simulation seed of one wave, derived from the run seed and the wave."""
    return int(np.random.SeedSequence([seed, wave]).generate_state(1, dtype=np.uint32)[0])


def waves_document(
    run: WaveRun, settings: WaveSettings, design: Design, primary_metric: str
) -> dict[str, Any]:
    """The JSON form of ``waves.json``."""
    frame = run.assignments
    allocations = []
    for allocation in run.allocations:
        rows = frame.loc[frame[WAVE_COLUMN] == allocation.wave, "experiment_arm"]
        counts = rows.value_counts()
        allocations.append(
            {
                **allocation.to_dict(),
                "customers": len(rows),
                "holdout": int(counts.get(HOLDOUT_ARM, 0)),
                "recipients": {arm: int(counts.get(arm, 0)) for arm in allocation.shares},
                "responses": run.observed[allocation.wave],
            }
        )
    return {
        "count": settings.count,
        "primary_metric": primary_metric,
        "method": METHOD,
        "engagement_source": "simulated",
        "sizes": run.sizes,
        "shares": settings.shares,
        "control_share": allocations[-1]["shares"].get(CONTROL_ARM),
        "min_share": settings.min_share,
        "top_two_beta": settings.top_two_beta,
        "posterior_draws": settings.posterior_draws,
        "holdout_share": design.holdout_share,
        "allocations": allocations,
    }


def simulate_waves(
    customers: pd.DataFrame,
    assignments: pd.DataFrame,
    arm_tones: Mapping[str, str],
    settings: SimulationSettings,
    seed: int,
) -> tuple[SimulatedEngagement, dict[str, Any]]:
    """Simulate every wave as the assign stage's loop did, and the holdout's conversions.

    Returns:
        The recipients' engagement (wave after wave) and the holdout record of
        ``engagement_report.json``: per wave, customers and simulated conversions.
    """
    waves = assignments[WAVE_COLUMN].astype(int).to_numpy()
    frames, holdout = [], {}
    for wave in sorted(set(waves.tolist())):
        rows = assignments.loc[waves == wave]
        seed_k = wave_seed(seed, wave)
        frames.append(simulate_engagement(customers, rows, arm_tones, settings, seed_k).frame)
        holdout[str(wave)] = _holdout_conversions(customers, rows, arm_tones, settings, seed_k)
    recipients = assignments.loc[assignments["experiment_arm"] != HOLDOUT_ARM]
    model = model_description(customers, settings, arm_tones, seed)
    model["waves"] = "each wave is simulated with its own seed, derived from (seed, wave)"
    model["true_effects"] = true_effects(
        response_probabilities(customers, recipients, arm_tones, settings)
    )
    engagement = SimulatedEngagement(
        pd.concat(frames, ignore_index=True),
        model,
        simulation_warnings(assignments, arm_tones, settings),
    )
    record = {
        "metric": "conversion_rate",
        "engagement_source": "simulated",
        "organic_conversion_share": settings.organic_conversion_share,
        "by_wave": holdout,
    }
    return engagement, record


def _holdout_conversions(
    customers: pd.DataFrame,
    rows: pd.DataFrame,
    arm_tones: Mapping[str, str],
    settings: SimulationSettings,
    seed: int,
) -> dict[str, int]:
    """Customers and simulated conversions of one wave's holdout (no email sent)."""
    held = rows.loc[rows["experiment_arm"] == HOLDOUT_ARM]
    if held.empty:
        return {"customers": 0, "converted": 0}
    as_control = held.assign(experiment_arm=CONTROL_ARM)
    probs = response_probabilities(customers, as_control, arm_tones, settings)
    p = probs["p_convert"].to_numpy() * settings.organic_conversion_share
    rng = np.random.default_rng([seed, 1])
    return {"customers": len(held), "converted": int((rng.random(len(p)) < p).sum())}
