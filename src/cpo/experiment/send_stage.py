"""The send-list step of the ``assign`` stage: customer copies, merge screening, files.

:func:`write_sends` builds the send list from the assignments (see
:mod:`cpo.experiment.sends`), screens each distinct first name once with the
configured safety backend, records the merge screening in the hash-chained
audit log (keeping ``safety_audit.csv`` in step and returning the new audit head
for the manifest),
and writes ``sends.csv`` and ``withheld.csv``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cpo import run_folder
from cpo.audit import (
    KIND_MERGE_SCREENING,
    KIND_MERGE_WITHHELD,
    AuditLog,
    export_csv,
)
from cpo.customer_text import source_links
from cpo.experiment.sends import MessageOptions, SendList, build_send_list, write_send_list
from cpo.models import Variant
from cpo.run_folder import RETRIEVAL, SAFETY_AUDIT, SAFETY_AUDIT_CSV, read_retrieval
from cpo.runfiles import write_csv
from cpo.safety.base import build_analyzer
from cpo.safety.merge import MergeScreener, audit_merge_screening
from cpo.safety.policy import policy_sha256
from cpo.stage_api import RunContext

_MERGE_KINDS = (KIND_MERGE_SCREENING, KIND_MERGE_WITHHELD)


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


def merge_screener(ctx: RunContext) -> MergeScreener:
    """The configured safety backend, wrapped to screen merge values."""
    settings = ctx.config.services.safety
    analyzer = build_analyzer(settings, log=ctx.log, base_dir=ctx.config.source)
    return MergeScreener(
        analyzer,
        ctx.config.safety,
        backend=settings.backend,
        concurrency=settings.concurrency,
    )


def write_sends(
    ctx: RunContext,
    assignments: pd.DataFrame,
    customers: pd.DataFrame,
    variants: Mapping[str, Variant],
) -> tuple[SendList, dict[str, Any]]:
    """Build the send list, audit the merge screening, write sends.csv and withheld.csv.

    Returns:
        The send list and the manifest records of the merge screening (the
        audit head after its entries; empty when nothing was screened).
    """
    screener = merge_screener(ctx)
    options = message_options(ctx, list(variants.values()))
    send_list = build_send_list(assignments, customers, variants, screen=screener, options=options)
    records = record_merge_audit(ctx, send_list, screener.backend)
    write_send_list(ctx.path(run_folder.SENDS.name), send_list.frame)
    write_csv(ctx.path(run_folder.WITHHELD.name), send_list.withheld)
    return send_list, records


def record_merge_audit(ctx: RunContext, send_list: SendList, backend: str) -> dict[str, Any]:
    """Append the merge screening to the audit log and keep the CSV in step.

    Returns:
        ``{"safety": {"audit": head}}`` for the manifest (the pipeline records
        it), or ``{}`` when no merge value was screened.
    """
    path = SAFETY_AUDIT.path(ctx.run_dir)
    last = audit_merge_screening(
        AuditLog(path),
        send_list.merge_results,
        run_id=ctx.run_id,
        salt=ctx.run_id,
        backend=backend,
        policy_sha256=policy_sha256(ctx.config.safety),
    )
    if last is None:
        return {}
    export_csv(path, SAFETY_AUDIT_CSV.path(ctx.run_dir))
    return {"safety": {"audit": {"entries": last["seq"], "head_hash": last["hash"]}}}


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
