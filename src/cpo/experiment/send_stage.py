"""The send-list step of the ``assign`` stage: customer copies, merge screening, files.

:func:`write_sends` builds the send list from the assignments (see
:mod:`cpo.experiment.sends`), screens each distinct first name once with the
configured safety backend and records it in the hash-chained audit log (both
through a :class:`MergeValueScreening` the pipeline supplies, so this package
does not import the safety package), and writes the send list (``sends.csv``, or
``sends.parquet`` for a large run, see :func:`send_list_form`) and ``withheld.csv``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from cpo import run_folder
from cpo.audit import (
    KIND_MERGE_SCREENING,
    KIND_MERGE_WITHHELD,
)
from cpo.customer_text import source_links
from cpo.experiment.sends import (
    MessageOptions,
    SendList,
    build_send_list,
    write_send_list,
    write_send_list_parquet,
)
from cpo.experiment.settings import SendListSettings
from cpo.merge_values import MergeResult
from cpo.models import Variant
from cpo.run_folder import RETRIEVAL, read_retrieval
from cpo.runfiles import write_csv
from cpo.stage_api import RunContext

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


def write_sends(
    ctx: RunContext,
    assignments: pd.DataFrame,
    customers: pd.DataFrame,
    variants: Mapping[str, Variant],
    screening: MergeValueScreening,
) -> tuple[SendList, dict[str, Any], dict[str, Any]]:
    """Build the send list, audit the merge screening, write the send list and withheld.csv.

    The send list is ``sends.csv``, or ``sends.parquet`` above
    ``experiment.send_list.compact_above`` recipients (:func:`send_list_form`).

    Returns:
        The send list, the manifest records of the merge screening (the
        audit head after its entries; empty when nothing was screened) and
        the form written (:func:`send_list_form`).
    """
    options = message_options(ctx, list(variants.values()))
    send_list = build_send_list(assignments, customers, variants, screen=screening, options=options)
    records = screening.record(send_list.merge_results)
    form = send_list_form(ctx, len(send_list.frame))
    write_send_list_form(ctx.run_dir, send_list.frame, form)
    write_csv(ctx.path(run_folder.WITHHELD.name), send_list.withheld)
    return send_list, records, form


def send_list_form(ctx: RunContext, recipients: int) -> dict[str, Any]:
    """Which form the send list takes and why (the manifest's ``send_list`` record)."""
    settings = getattr(ctx.config.experiment.experiment, "send_list", None) or SendListSettings()
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


def write_send_list_form(run_dir: Path, frame: pd.DataFrame, form: dict[str, Any]) -> None:
    """Write the send list in ``form``; the other form, stale now, is removed first.

    Removing first means a failure while writing leaves no send list (the
    stage is then failed and reruns) rather than an old one next to new
    assignments.
    """
    for other in run_folder.SEND_LIST_FORMS:
        if other.name != form["file"]:
            other.path(run_dir).unlink(missing_ok=True)
    if form["format"] == "parquet":
        write_send_list_parquet(run_folder.SENDS_PARQUET.path(run_dir), frame)
    else:
        write_send_list(run_folder.SENDS.path(run_dir), frame)


def withheld_summary(send_list: SendList) -> dict[str, Any]:
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
