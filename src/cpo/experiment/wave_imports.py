"""Adaptive waves sent for real: each wave's events are imported before the next is allocated.

``cpo run --waves N --await-engagement --out RUN_DIR`` assigns wave 1 with the
design's allocation (the holdout fixed over all customers, as offline), writes
its send list and pauses with status ``awaiting_engagement``. After the wave is
sent (``cpo send``) and its events exported, ``cpo run --resume RUN_DIR
--engagement FILE`` imports them with the import code of a one-wave run,
records the wave's responses in ``waves.json``, allocates the next wave by
top-two Thompson sampling on the responses of every wave imported so far
(:func:`cpo.experiment.waves.next_allocation`, the function of the offline
loop) and pauses again. The import of the last wave lets the engage, analyze
and report stages run, with the wave-stratified decision of the offline loop.

While the waves go out:

* ``assignments.csv`` holds the customers of the waves allocated so far (the
  holdout of those waves included), with their ``wave``;
* the send list holds the current wave's recipients only, so ``cpo send``
  mails that wave (its ledger keeps a customer from being mailed twice);
* ``engagement.csv`` accumulates every imported wave's recipients.

Which wave an event file belongs to is read from its recipients: it must hold
recipients of exactly one wave, the one awaiting its events, or an earlier wave
whose events it replaces (that wave's rows of ``engagement.csv`` and its
``responses``; later allocations, possibly already sent, stay as they were
dealt and record in ``observed`` what they saw). A file with customers outside
that wave is refused with their count; the same file imported again is
recognised by its SHA-256 and changes nothing. Holdout customers in a file are
excluded with a warning, as in a one-wave import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cpo import run_folder
from cpo.errors import CpoError, DataValidationError
from cpo.events.normalise import SendIndex
from cpo.experiment import catalog
from cpo.experiment.design import Design
from cpo.experiment.engagement import ENGAGEMENT_COLUMNS, is_counts_file
from cpo.experiment.settings import CONTROL_ARM, HOLDOUT_ARM, WaveSettings
from cpo.experiment.wave_stage import METHOD, log_allocation, wave_settings, waves_for
from cpo.experiment.waves import (
    METHOD_DESIGN,
    WAVE_COLUMN,
    WaveAllocation,
    assign_wave_rows,
    check_wave_count,
    count_responses,
    next_allocation,
    wave_of,
    wave_sizes,
)
from cpo.logs import utc_now
from cpo.runfiles import read_text_artifact, sha256_file
from cpo.stage_api import RunContext, RunOptions

#: ``waves.json``'s ``engagement_source`` of a run whose waves are sent for real.
SOURCE_IMPORTED = "imported"

#: Imports one event file against one wave's assignment rows, given the mailed rows of
#: every wave allocated so far: the recipients' engagement, the import report
#: (:func:`cpo.experiment.engagement.summarize`) and the input record.
Importer = Callable[
    [RunContext, pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]
]


@dataclass(frozen=True)
class WaveStep:
    """What one run of the assign stage did to a run of waves sent for real.

    Attributes:
        assignments: The customers of every wave allocated so far, with ``wave``.
        current: The wave whose recipients the send list holds (the last allocated).
        imported: The wave whose events were imported now (None: nothing new).
        document: ``waves.json`` as written.
    """

    assignments: pd.DataFrame
    current: int
    imported: int | None
    document: dict[str, Any]


def sends_for_real(options: RunOptions, count: int) -> bool:
    """Whether a run's adaptive waves are sent for real (``--await-engagement``)."""
    return options.await_engagement and count > 1


def is_real_send(ctx: RunContext) -> bool:
    """Whether the run in ``ctx`` sends its adaptive waves for real."""
    return sends_for_real(ctx.options, wave_settings(ctx).count)


def imported_document(run_dir: Path) -> dict[str, Any] | None:
    """``waves.json`` of a run whose waves are sent for real, else None."""
    document = run_folder.read_waves(run_dir)
    if document is None or document.get("engagement_source") != SOURCE_IMPORTED:
        return None
    return document


def waiting_for(document: dict[str, Any]) -> int | None:
    """The wave whose events are awaited (the last allocated, not yet imported), or None."""
    last = document["allocations"][-1]
    return int(last["wave"]) if last.get("responses") is None else None


def check_resume_waves(run_dir: Path, settings: WaveSettings, options: RunOptions) -> None:
    """Refuse a resume whose wave count differs, or a new event file after the last wave.

    Raises:
        CpoError: ``--waves`` (or ``experiment.waves.count``) differs from
            ``waves.json``, or every wave is imported and the event file is new.
    """
    document = imported_document(run_dir)
    if document is None:
        return
    count = waves_for(settings, options.waves).count
    if count != int(document["count"]):
        raise CpoError(
            f"{run_dir}: the run is sending {document['count']} waves "
            f"({run_folder.WAVES.name}), not {count}; the number of waves cannot change "
            "once wave 1 is allocated",
            hint=f"resume without --waves (or with --waves {document['count']}), or start "
            "a new run",
        )
    _check_not_complete(run_dir, document, options)


def _check_not_complete(run_dir: Path, document: dict[str, Any], options: RunOptions) -> None:
    """Refuse a new event file once every wave's events are imported."""
    if options.engagement is None or waiting_for(document) is not None:
        return
    if len(document["allocations"]) < int(document["count"]):
        return
    path = Path(options.engagement)
    digest = sha256_file(path) if path.is_file() else None
    if any((e.get("import") or {}).get("sha256") == digest for e in document["allocations"]):
        return
    raise CpoError(
        f"{path}: all {document['count']} waves of {run_dir} have been imported and "
        "analysed; there is no wave left to import this file into",
        hint="a wave's events can be replaced while the waves are being sent; for a "
        "complete run, start a new run to send another campaign",
    )


def advance_waves(
    ctx: RunContext, segments: pd.DataFrame, design: Design, importer: Importer
) -> WaveStep:
    """Start the waves, or import the given event file and allocate the next wave.

    Args:
        ctx: The run (its ``--engagement`` file, when given, is one wave's events).
        segments: ``customer_id`` and ``segment`` of every customer.
        design: The experiment design (wave 1's allocation and the holdout).
        importer: Imports an event file against assignment rows.

    Raises:
        ConfigError: more waves than the customers allow.
        CpoError: the design changed after wave 1 was allocated.
        DataValidationError: the event file does not belong to one wave.
    """
    settings = wave_settings(ctx)
    control_share = settings.control_share or float(design.expected_shares().get(CONTROL_ARM, 0.0))
    check_wave_count(design, settings, control_share)
    base = _base(segments, design, settings)
    document = imported_document(ctx.run_dir)
    if document is None:
        document = _new_document(base, settings, design, control_share)
        assignments = _deal(base, design, 1, {a.name: a.weight for a in design.arms})
        first = WaveAllocation(1, METHOD_DESIGN, _wave_one(design))
        document["allocations"].append(_entry(first, assignments))
        log_allocation(ctx, first, observed=first.observed)
    else:
        _check_same_plan(ctx, document, design, base)
        assignments = run_folder.read_assignments(ctx.run_dir)
    imported = None
    if ctx.options.engagement is not None:
        imported = _import(ctx, document, assignments, importer)
    waiting = waiting_for(document)
    allocated = len(document["allocations"])
    if imported is not None and waiting is None and allocated < settings.count:
        allocation = _next(document, allocated + 1, control_share, settings, ctx.seed)
        dealt = _deal(base, design, allocation.wave, allocation.shares)
        assignments = pd.concat([assignments, dealt], ignore_index=True)
        document["allocations"].append(_entry(allocation, dealt))
        log_allocation(ctx, allocation, observed=allocation.observed)
    document["control_share"] = document["allocations"][-1]["shares"].get(CONTROL_ARM)
    run_folder.write_assignments(ctx.run_dir, assignments)
    run_folder.write_waves(ctx.run_dir, document)
    return WaveStep(assignments, len(document["allocations"]), imported, document)


def current_rows(step: WaveStep) -> pd.DataFrame:
    """The assignment rows of the current wave (its send list's customers)."""
    frame = step.assignments
    return frame.loc[frame[WAVE_COLUMN].astype(str) == str(step.current)]


def _base(segments: pd.DataFrame, design: Design, settings: WaveSettings) -> pd.DataFrame:
    """Every customer's design assignment (the holdout's place) and wave."""
    from cpo.experiment.assignment import assign

    base = assign(segments[["customer_id", "segment"]], design, assigned_at="")
    sizes = wave_sizes(len(base), settings.shares, settings.count)
    base[WAVE_COLUMN] = wave_of(base["customer_id"], design.salt, sizes)
    return base


def _wave_one(design: Design) -> dict[str, float]:
    """Wave 1's shares: the design's, over the arms that have recipients."""
    counts, shares = design.expected_counts(), design.expected_shares()
    return {a.name: float(shares.get(a.name, 0.0)) for a in design.arms if counts[a.name] > 0}


def _deal(base: pd.DataFrame, design: Design, wave: int, shares: dict[str, float]) -> pd.DataFrame:
    """The rows of one wave, its mailed customers dealt into arms by ``shares``, as text."""
    rows = base[WAVE_COLUMN].to_numpy() == wave
    frame = base.copy()
    assign_wave_rows(frame, rows, design, wave, shares, utc_now())
    dealt = frame.loc[rows].reset_index(drop=True)
    dealt["assigned_at"] = utc_now()
    return dealt.astype(object).where(dealt.notna(), "").astype(str)


def _entry(allocation: WaveAllocation, rows: pd.DataFrame) -> dict[str, Any]:
    """One wave's entry of ``waves.json``; ``responses`` stays None until its events come."""
    counts = rows["experiment_arm"].value_counts()
    return {
        **allocation.to_dict(),
        "customers": len(rows),
        "holdout": int(counts.get(HOLDOUT_ARM, 0)),
        "recipients": {arm: int(counts.get(arm, 0)) for arm in allocation.shares},
        "responses": None,
        "import": None,
    }


def _new_document(
    base: pd.DataFrame, settings: WaveSettings, design: Design, control_share: float
) -> dict[str, Any]:
    """``waves.json`` before wave 1 is sent."""
    sizes = np.bincount(base[WAVE_COLUMN].to_numpy(), minlength=settings.count + 1)[1:]
    return {
        "count": settings.count,
        "primary_metric": design.power["primary_metric"],
        "method": METHOD,
        "engagement_source": SOURCE_IMPORTED,
        "sizes": [int(n) for n in sizes],
        "shares": settings.shares,
        "control_share": control_share,
        "min_share": settings.min_share,
        "top_two_beta": settings.top_two_beta,
        "posterior_draws": settings.posterior_draws,
        "holdout_share": design.holdout_share,
        "salt_sha256": design.salt_sha256,
        "allocations": [],
    }


def _check_same_plan(
    ctx: RunContext, document: dict[str, Any], design: Design, base: pd.DataFrame
) -> None:
    """Refuse to continue waves whose design or customers changed since wave 1."""
    sizes = np.bincount(base[WAVE_COLUMN].to_numpy(), minlength=int(document["count"]) + 1)[1:]
    if document.get("salt_sha256") == design.salt_sha256 and list(sizes) == document["sizes"]:
        return
    raise CpoError(
        f"{ctx.run_dir}: the experiment's salt, customers or wave sizes changed after wave 1 "
        f"was allocated ({run_folder.WAVES.name}); the waves already sent no longer match",
        hint="resume with the customers, seed and config the run started with, or start a new run",
    )


def _next(
    document: dict[str, Any], wave: int, control_share: float, settings: WaveSettings, seed: int
) -> WaveAllocation:
    """Wave ``wave``'s allocation from the imported responses of every earlier wave."""
    arms = list(document["allocations"][0]["shares"])
    totals = {arm: [0, 0] for arm in arms}
    for entry in document["allocations"]:
        for arm, (events, denominator) in (entry["responses"] or {}).items():
            totals[arm][0] += int(events)
            totals[arm][1] += int(denominator)
    observed = {arm: (totals[arm][0], totals[arm][1]) for arm in arms}
    return next_allocation(wave, observed, control_share, settings, seed)


def _import(
    ctx: RunContext, document: dict[str, Any], assignments: pd.DataFrame, importer: Importer
) -> int | None:
    """Import the event file into the wave it belongs to; None when it was imported before."""
    path = Path(ctx.options.engagement or "")
    digest = sha256_file(path)
    for entry in document["allocations"]:
        if (entry.get("import") or {}).get("sha256") == digest:
            return None
    if is_counts_file(path):
        raise DataValidationError(
            f"{path}: counts per arm cannot be imported into adaptive waves",
            hint="export one row per recipient or per event of the wave's send, so its "
            "recipients show which wave it is",
        )
    waiting = waiting_for(document)
    earlier = [int(e["wave"]) for e in reversed(document["allocations"]) if e["responses"]]
    candidates = ([waiting] if waiting is not None else []) + earlier
    mailed = assignments.loc[assignments["experiment_arm"] != HOLDOUT_ARM]
    outside: dict[int, int | None] = {}
    refused: list[DataValidationError] = []
    for wave in candidates:
        rows = assignments.loc[assignments[WAVE_COLUMN].astype(str) == str(wave)]
        try:
            frame, report, record = importer(ctx, rows, mailed)
        except DataValidationError as exc:  # e.g. no row of the file is in this wave
            refused.append(exc)
            outside[wave] = None
            continue
        outside[wave] = int(report["counts"].get("unknown_customers", 0))
        if outside[wave] == 0:
            entry = {**record["engagement"], "sha256": digest}
            _record(ctx, document, rows, frame, report, entry)
            return wave
    if len(refused) == len(candidates):  # the file itself is at fault, whatever the wave
        raise refused[0]
    raise _foreign_recipients(path, document, waiting, outside)


def _foreign_recipients(
    path: Path, document: dict[str, Any], waiting: int | None, outside: dict[int, int | None]
) -> DataValidationError:
    """The error for an event file whose customers are not one wave's recipients."""
    count = int(document["count"])
    if waiting is None:  # every wave imported (the resume check refuses a new file before)
        return DataValidationError(
            f"{path}: all {count} waves have been imported; the customers of this file are "
            "not the recipients of any one wave, so there is no wave to import it into",
            hint="to replace a wave's events give a file of that wave's recipients only",
        )
    unknown = outside.get(waiting)
    who = "none of the customers" if unknown is None else f"{unknown} customer(s)"
    return DataValidationError(
        f"{path}: {who} in the file are not recipients of wave {waiting} of {count}, the "
        "wave awaiting its events (they belong to another wave or to no recipient of this "
        "run); nothing was imported",
        hint=f"give the events of wave {waiting}'s send only (the send list of "
        f"`cpo run` for wave {waiting}), one file per wave",
    )


def _record(
    ctx: RunContext,
    document: dict[str, Any],
    rows: pd.DataFrame,
    frame: pd.DataFrame,
    report: dict[str, Any],
    record: dict[str, Any],
) -> None:
    """Store one wave's imported responses in ``waves.json`` and ``engagement.csv``.

    The wave's earlier rows of ``engagement.csv`` (a re-import) are replaced.
    """
    wave = int(rows[WAVE_COLUMN].iloc[0])
    entry = document["allocations"][wave - 1]
    primary = catalog.metric(document["primary_metric"])
    entry["responses"] = count_responses(
        frame, list(entry["shares"]), (primary.outcome, primary.among)
    )
    entry["import"] = {
        **record,
        "imported_at": utc_now(),
        "counts": report["counts"],
        "warnings": report["warnings"],
    }
    path = run_folder.ENGAGEMENT.path(ctx.run_dir)
    if path.is_file():
        earlier = read_text_artifact(path)
        kept = earlier.loc[~earlier["customer_id"].isin(rows["customer_id"])]
        frame = pd.concat([kept, frame.astype(str)], ignore_index=True)
    run_folder.write_engagement(ctx.run_dir, frame[list(ENGAGEMENT_COLUMNS)])
    ctx.log.info(
        "assign", "wave_imported", channel="experiment", wave=wave, responses=entry["responses"]
    )
    for warning in report["warnings"]:
        ctx.log.warning(
            "assign", warning["code"], channel="experiment", wave=wave, message=warning["message"]
        )


def next_wave_lines(run_dir: Path) -> list[str]:
    """What to do next with a run awaiting a wave's events (nothing for any other run)."""
    document = imported_document(run_dir)
    waiting = None if document is None else waiting_for(document)
    if document is None or waiting is None:
        return []
    send_list = run_folder.find_send_list(run_dir)
    name = send_list.path.name if send_list is not None else run_folder.SENDS.name
    return [
        f"wave {waiting} of {document['count']} is in the send list ({name}); next:",
        f"  1. cpo send {run_dir} --smtp-host HOST ...   (mails wave {waiting} only)",
        f"  2. export wave {waiting}'s events from your email service as FILE",
        f"  3. cpo run --resume {run_dir} --engagement FILE",
    ]


def recipients_index(run_id: str, mailed: pd.DataFrame, customers: pd.DataFrame) -> SendIndex:
    """Whom the waves sent so far mailed: the email service events' customers and addresses.

    The send list holds the current wave only, so an email service's events are
    matched against every allocated wave's recipients (their addresses from the
    customer file, as the send lists had them); a wave's import then counts
    another wave's recipients as not its own.
    """
    ids = set(mailed["customer_id"].astype(str))
    by_email: dict[str, str] = {}
    if "email" in customers:
        known = customers.loc[customers["customer_id"].astype(str).isin(ids)]
        by_email = {
            str(email).strip().lower(): str(cid)
            for cid, email in zip(known["customer_id"], known["email"], strict=True)
            if isinstance(email, str) and email.strip()
        }
    return SendIndex(run_id, by_email, frozenset(ids))
