"""The send-list step of the ``assign`` stage: customer copies, merge screening, files.

The engine builds the send list (:meth:`cpo.compute.engine.Engine.write_send_list`):
the local engine with :func:`write_local_send_list` (see
:mod:`cpo.experiment.sends`), the Spark engine with the same per-row code on
each partition. Either way each distinct first name is screened once with the
configured safety backend and recorded in the hash-chained audit log (both
through a :class:`MergeValueScreening` the pipeline supplies, so this package
does not import the safety package) before the send list is written
(``sends.csv``, or ``sends.parquet`` for a large run, see :func:`send_list_form`;
a ``sends.parquet/`` dataset with Spark, :func:`dataset_form`). The stage
writes ``withheld.csv``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from cpo import run_folder
from cpo.audit import (
    KIND_MERGE_SCREENING,
    KIND_MERGE_WITHHELD,
)
from cpo.compute.work import SendListSummary
from cpo.customer_text import source_links
from cpo.experiment.sends import (
    CONTACT_COLUMNS,
    MessageOptions,
    build_send_list,
    write_send_list,
    write_send_list_parquet,
)
from cpo.experiment.settings import SendListSettings
from cpo.merge_values import MergeResult
from cpo.models import Variant
from cpo.run_folder import RETRIEVAL, read_retrieval
from cpo.stage_api import RunContext

if TYPE_CHECKING:
    from cpo.compute.work import SendListRequest

_MERGE_KINDS = (KIND_MERGE_SCREENING, KIND_MERGE_WITHHELD)


class MergeValueScreening(Protocol):
    """What the send list needs from the safety package, supplied by the pipeline.

    ``cpo.safety.merge.RunMergeScreening`` builds one per run; the
    experiment package depends on this contract, not on the safety package.
    """

    backend: str

    def __call__(self, values: Sequence[str]) -> list[tuple[str, ...]]:
        """Reason codes for each distinct value, in order (empty = passed)."""
        ...

    def record(self, results: Sequence[MergeResult]) -> dict[str, Any]:
        """Audit the screening; return the manifest records (the new audit head)."""
        ...


#: Builds the merge screening of a run (given to ``cpo.experiment.stages.AssignStage``).
MergeScreeningFactory = Callable[[RunContext], MergeValueScreening]


def message_options(ctx: RunContext, variants: list[Variant]) -> MessageOptions:
    """Customer-copy options from the config (citations, footer, greeting fallback)."""
    generation = getattr(ctx.config.experiment, "generation", None)
    customers = getattr(ctx.config.experiment, "customers", None)
    present = RETRIEVAL.path(ctx.run_dir).is_file()
    retrieval = read_retrieval(ctx.run_dir) if present else {}
    return MessageOptions(
        citations=getattr(generation, "citations_in_email", "none"),
        links=source_links(retrieval, variants),
        footer_pattern=ctx.config.safety.compliance.footer.pattern,
        greeting_fallback=getattr(customers, "greeting_fallback", "there"),
    )


def send_list_settings(ctx: RunContext) -> SendListSettings:
    """The run's ``experiment.send_list`` (defaults when the config has none)."""
    return getattr(ctx.config.experiment.experiment, "send_list", None) or SendListSettings()


def write_local_send_list(request: SendListRequest) -> SendListSummary:
    """The local engine's send list: build it in this process, audit, write it.

    The assignments are the request's rows (or the run's assignments), the
    contacts come from the request's customer reader. The merge screening is
    recorded in the audit log before the send list is written. The send list
    is ``sends.csv``, or ``sends.parquet`` above
    ``experiment.send_list.compact_above`` recipients (:func:`send_list_form`).

    Raises:
        ValueError: an assigned variant is not sendable, or a recipient has no
            customer record.
    """
    assignments = request.assignments
    if assignments is None:
        assignments = run_folder.read_assignments(request.run_dir)
    send_list = build_send_list(
        assignments,
        request.customers(CONTACT_COLUMNS),
        request.variants,
        screen=request.screening,
        options=request.options,
    )
    records = request.screening.record(send_list.merge_results)
    form = send_list_form(request.settings, len(send_list.frame))
    write_send_list_form(request.run_dir, send_list.frame, form)
    return SendListSummary(
        recipients=len(send_list.frame),
        form=form,
        records=records,
        withheld=send_list.withheld,
        merge_results=send_list.merge_results,
        missing_names=send_list.missing_names,
        unknown_fields=send_list.unknown_fields,
    )


def send_list_form(settings: SendListSettings, recipients: int) -> dict[str, Any]:
    """Which form the send list takes and why (the manifest's ``send_list`` record)."""
    threshold = settings.compact_above
    form = run_folder.SENDS_PARQUET if settings.compact(recipients) else run_folder.SENDS
    if threshold is None:
        reason = "experiment.send_list.compact_above is null (always CSV)"
    else:
        relation = "more than" if form == run_folder.SENDS_PARQUET else "not more than"
        reason = (
            f"{recipients:,} recipients, {relation} "
            f"experiment.send_list.compact_above ({threshold:,})"
        )
    return {
        "file": form.name,
        "format": "parquet" if form == run_folder.SENDS_PARQUET else "csv",
        "recipients": recipients,
        "compact_above": threshold,
        "reason": reason,
    }


def dataset_form(settings: SendListSettings, recipients: int) -> dict[str, Any]:
    """The manifest's ``send_list`` record of a send list Spark wrote as a Parquet dataset."""
    return {
        "file": run_folder.SENDS_PARQUET.name,
        "format": "parquet",
        "recipients": recipients,
        "compact_above": settings.compact_above,
        "reason": "compute.engine: spark writes it as a Parquet dataset (a folder of part "
        "files) at any size",
    }


def write_send_list_form(run_dir: Path, frame: pd.DataFrame, form: dict[str, Any]) -> None:
    """Write the send list in ``form``; every earlier form, stale now, is removed first.

    Removing first means a failure while writing leaves no send list (the
    stage is then failed and reruns) rather than an old one next to new
    assignments.
    """
    run_folder.remove_send_lists(run_dir)
    if form["format"] == "parquet":
        write_send_list_parquet(run_folder.SENDS_PARQUET.path(run_dir), frame)
    else:
        write_send_list(run_folder.SENDS.path(run_dir), frame)


def withheld_summary(send_list: SendListSummary) -> dict[str, Any]:
    """Manifest facts: customers withheld, by reason code, and values screened."""
    reasons = Counter(
        code for text in send_list.withheld["reason"] for code in str(text).split(";") if code
    )
    return {
        "customers": len(send_list.withheld),
        "by_reason": dict(sorted(reasons.items())),
        "values_screened": len(send_list.merge_results),
        "file": run_folder.WITHHELD.name,
    }


def decisions_fingerprint(path: Path) -> str | None:
    """sha256 of the audit entries that decide what may be sent (merge entries left out).

    The assign stage appends merge-screening entries itself, so its resume
    fingerprint must not change because of them; screening, approvals and
    rejections still change it.
    """
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for line in handle:
            try:
                kind = json.loads(line).get("kind")
            except (ValueError, AttributeError):
                kind = None
            if kind not in _MERGE_KINDS:
                digest.update(line)
    return digest.hexdigest()
