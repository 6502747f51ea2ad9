"""``cpo approve``: record human approvals and rejections in the audit log.

What the log's entries decide (the final status of each variant) is
:mod:`cpo.decisions`; this module appends the reviewer's decisions, under the
run-folder lock, and updates the manifest's final counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.audit import KIND_APPROVAL, KIND_REJECTION, AuditLog, export_csv, read_entries
from cpo.decisions import (
    FinalDecision,
    final_decisions,
    final_summary,
    load_verified,
    pending_review,
)
from cpo.errors import RunDirError
from cpo.run_folder import (
    MANIFEST,
    SAFETY_AUDIT_CSV,
    AuditHead,
    write_manifest,
)
from cpo.runlock import run_dir_lock


@dataclass(frozen=True)
class ApprovalResult:
    """What ``approve_run`` recorded."""

    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    entries: int
    head_hash: str


def approve_run(
    run_dir: Path | str,
    *,
    by: str,
    reject: Sequence[str] = (),
    note: str = "",
    approve: Sequence[str] | None = None,
    channel: str = "cli",
) -> ApprovalResult:
    """Approve every variant awaiting review except those in ``reject`` (rejected).

    Each decision is a hash-chained audit entry naming ``by`` and the
    ``channel`` it was made in; the manifest's audit head and send list, and
    ``safety_audit.csv``, are updated so ``cpo run --resume`` can continue.

    Args:
        run_dir: The run folder.
        by: Who decides.
        reject: Variants to reject.
        note: The note recorded with each decision.
        approve: Approve only these variants (each must await review);
            ``None`` approves every variant awaiting review that is not rejected.
        channel: Where the decision was made: ``cli`` (``cpo approve``) or ``web``.

    Raises:
        RunDirError: not a run folder, the run is busy, nothing to decide, or a
            variant id is unknown, blocked or not awaiting review.
        AuditError: the audit log fails verification.
    """
    run_dir = Path(run_dir)
    if not by.strip():
        raise RunDirError("an approval needs a name", hint="pass --by 'Full Name'")
    if not MANIFEST.path(run_dir).is_file():
        raise RunDirError(
            f"{run_dir}: no {MANIFEST.name} here", hint="pass the folder of a `cpo run`"
        )
    # The pipeline's lock: a running `cpo run` (or another approval) is named by its pid.
    with run_dir_lock(run_dir, busy_hint="wait until `cpo run` has stopped, then approve"):
        chosen = None if approve is None else list(dict.fromkeys(approve))
        rejected = list(dict.fromkeys(reject))
        return _approve_locked(run_dir, by.strip(), rejected, note, chosen, channel)


def _approve_locked(
    run_dir: Path,
    by: str,
    reject: list[str],
    note: str,
    approve: list[str] | None,
    channel: str,
) -> ApprovalResult:
    path, entries, manifest = load_verified(run_dir)
    assert manifest is not None
    run_id = manifest["run_id"]
    decisions = final_decisions(entries, run_id)
    _check_rejections(run_dir, decisions, reject)
    waiting = [d.variant_id for d in pending_review(decisions) if d.variant_id not in reject]
    _check_approvals(run_dir, waiting, approve)
    to_approve = waiting if approve is None else approve
    if not to_approve and not reject:
        raise RunDirError(
            f"{run_dir}: no variant is awaiting review",
            hint="use --reject VARIANT_ID to veto a variant that passed screening",
        )
    log = AuditLog(path)
    last: dict[str, Any] = {}
    for kind, ids in ((KIND_REJECTION, reject), (KIND_APPROVAL, to_approve)):
        for variant_id in ids:
            last = log.record_review(
                kind,
                run_id=run_id,
                variant_id=variant_id,
                by=by,
                note=note,
                content_sha256=decisions[variant_id].content_sha256,
                channel=channel,
            )
    _update_manifest(run_dir, manifest, final_decisions(read_entries(path), run_id), last)
    # keep the compliance export in step with the log
    export_csv(path, SAFETY_AUDIT_CSV.path(run_dir))
    return ApprovalResult(tuple(to_approve), tuple(reject), last["seq"], last["hash"])


def _check_approvals(run_dir: Path, waiting: list[str], approve: list[str] | None) -> None:
    for variant_id in approve or ():
        if variant_id not in waiting:
            raise RunDirError(
                f"{run_dir}: variant '{variant_id}' is not awaiting review",
                hint=f"variants awaiting review: {', '.join(waiting) or '(none)'}",
            )


def _check_rejections(
    run_dir: Path, decisions: dict[str, FinalDecision], reject: list[str]
) -> None:
    for variant_id in reject:
        decision = decisions.get(variant_id)
        if decision is None:
            known = ", ".join(sorted(decisions)) or "(none)"
            raise RunDirError(
                f"{run_dir}: variant '{variant_id}' has no screening decision in this run",
                hint=f"screened variants: {known}",
            )
        if decision.status in ("block", "rejected"):
            raise RunDirError(
                f"{run_dir}: variant '{variant_id}' is already {decision.status}; "
                "it can never be sent",
                hint="leave it out of --reject",
            )


def _update_manifest(
    run_dir: Path,
    manifest: dict[str, Any],
    decisions: dict[str, FinalDecision],
    last: dict[str, Any],
) -> None:
    """Record the new audit head and final decisions in the manifest."""
    safety = manifest.setdefault("safety", {})
    variant_ids = safety.get("variant_ids") or sorted(decisions)
    safety.update(final_summary(decisions, variant_ids))
    safety["audit"] = AuditHead(last["seq"], last["hash"]).as_record()
    write_manifest(run_dir, manifest)
