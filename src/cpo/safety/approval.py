"""Final decisions from the audit log: screening plus human approval.

The audit log is the single source of truth for what may be sent. A variant's
final status folds its latest screening decision with the approvals and
rejections recorded after it (for the same screened content):

==================  =========================================================
final status        when
==================  =========================================================
``pass``            screened ``pass`` and not rejected
``approved``        screened ``review`` and approved by a named person
``review-pending``  screened ``review``, no approval yet (not sendable)
``rejected``        rejected by a named person (sticky; never sendable)
``block``           screened ``block`` (harm, compliance, screening error or
                    generation failure); cannot be approved
==================  =========================================================

Only ``pass`` and ``approved`` are sendable. :func:`sendable_variants` verifies
the hash chain (against the manifest's count and head hash for a run folder)
before it answers, so a tampered log never produces a send list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.errors import AuditError, RunDirError
from cpo.run_folder import (
    MANIFEST,
    SAFETY_AUDIT,
    SAFETY_AUDIT_CSV,
    AuditHead,
    read_manifest,
    recorded_audit_head,
    write_manifest,
)
from cpo.runlock import run_dir_lock
from cpo.safety.audit import (
    KIND_APPROVAL,
    KIND_REJECTION,
    KIND_SCREENING,
    AuditLog,
    VerifyResult,
    export_csv,
    read_entries,
    verify,
)
from cpo.safety.policy import content_sha256

SENDABLE_STATUSES = frozenset({"pass", "approved"})
FINAL_STATUSES = ("pass", "approved", "review-pending", "rejected", "block")


@dataclass(frozen=True)
class FinalDecision:
    """What may happen to one variant, after screening and human review.

    Attributes:
        variant_id: The variant.
        segment: Its segment ("all" for the control).
        tone: Its tone ("control" for the control).
        status: ``pass``, ``approved``, ``review-pending``, ``rejected`` or ``block``.
        screening_status: The screening verdict (pass/review/block).
        reasons: The screening reasons.
        content_sha256: sha256 of the screened text; send only this exact content.
        decided_by: Who approved or rejected it (``None`` if nobody did).
        note: Their note.
    """

    variant_id: str
    segment: str
    tone: str
    status: str
    screening_status: str
    reasons: tuple[str, ...]
    content_sha256: str
    decided_by: str | None = None
    note: str = ""

    @property
    def sendable(self) -> bool:
        """True only for ``pass`` and ``approved``."""
        return self.status in SENDABLE_STATUSES


def final_decisions(
    entries: Iterable[dict[str, Any]], run_id: str | None = None
) -> dict[str, FinalDecision]:
    """Fold audit entries (in log order) into each variant's final decision.

    Args:
        entries: Parsed audit entries.
        run_id: Only use entries of this run (``None``: all entries).
    """
    decisions: dict[str, FinalDecision] = {}
    for entry in entries:
        if run_id is not None and entry.get("run_id") != run_id:
            continue
        kind, variant_id = entry.get("kind"), str(entry.get("variant_id"))
        if kind == KIND_SCREENING:
            decisions[variant_id] = _from_screening(entry)
            continue
        current = decisions.get(variant_id)
        if current is None or entry.get("content_sha256") != current.content_sha256:
            continue  # a review of content that is no longer the screened content
        if kind == KIND_REJECTION and current.status != "block":
            decisions[variant_id] = _reviewed(current, "rejected", entry)
        elif kind == KIND_APPROVAL and current.status == "review-pending":
            decisions[variant_id] = _reviewed(current, "approved", entry)
    return decisions


def _from_screening(entry: dict[str, Any]) -> FinalDecision:
    status = {"pass": "pass", "review": "review-pending"}.get(str(entry.get("status")), "block")
    return FinalDecision(
        variant_id=entry["variant_id"],
        segment=entry.get("segment", ""),
        tone=entry.get("tone", ""),
        status=status,
        screening_status=entry.get("status", "block"),
        reasons=tuple(entry.get("reasons", ())),
        content_sha256=entry.get("content_sha256", ""),
    )


def _reviewed(current: FinalDecision, status: str, entry: dict[str, Any]) -> FinalDecision:
    return FinalDecision(
        variant_id=current.variant_id,
        segment=current.segment,
        tone=current.tone,
        status=status,
        screening_status=current.screening_status,
        reasons=current.reasons,
        content_sha256=current.content_sha256,
        decided_by=entry.get("by"),
        note=entry.get("note", ""),
    )


def verify_target(target: Path | str) -> tuple[Path, VerifyResult, dict[str, Any] | None]:
    """Verify the audit log of a run folder (or a bare .jsonl file).

    For a run folder, the entry count and head hash recorded in its manifest must
    match too, which detects truncation and a replaced last entry.

    Returns:
        The audit path, the verification result and the manifest (``None`` for a file).

    Raises:
        AuditError: the audit log does not exist.
    """
    target = Path(target)
    manifest = None
    if target.is_dir():
        path = SAFETY_AUDIT.path(target)
        manifest = read_manifest(target) if MANIFEST.path(target).is_file() else None
    else:
        path = target
    recorded = recorded_audit_head(manifest or {})
    return path, verify(path, recorded.entries, recorded.head_hash), manifest


def load_verified(target: Path | str) -> tuple[Path, list[dict[str, Any]], dict[str, Any] | None]:
    """Verify and read the audit log of a run folder (or a .jsonl file).

    Returns:
        The audit path, its entries and the run's manifest (``None`` for a bare file).

    Raises:
        AuditError: the log is missing, tampered with or does not match the manifest.
    """
    path, result, manifest = verify_target(target)
    if not result.ok:
        raise AuditError(
            f"{path}: the audit log failed verification: {result.message()}",
            hint="nothing from this run may be sent; investigate with `cpo audit verify`",
        )
    return path, read_entries(path), manifest


def sendable_variants(run_dir_or_audit_path: Path | str) -> dict[str, FinalDecision]:
    """Every screened variant's final decision, after verifying the audit chain.

    The result holds all variants, sendable or not: send only those whose
    ``decision.sendable`` is true, and only the content whose sha256 equals
    ``decision.content_sha256`` (see :func:`may_send`).

    Raises:
        AuditError: the audit log is missing, broken or does not match the manifest.
    """
    _, entries, manifest = load_verified(run_dir_or_audit_path)
    run_id = manifest.get("run_id") if manifest else None
    return final_decisions(entries, run_id)


def may_send(variant: Any, decisions: Mapping[str, FinalDecision]) -> bool:
    """True when this exact variant (same screened text) is sendable."""
    decision = decisions.get(variant.variant_id)
    return bool(
        decision and decision.sendable and decision.content_sha256 == content_sha256(variant)
    )


def pending_review(decisions: dict[str, FinalDecision]) -> list[FinalDecision]:
    """Variants waiting for a human decision, in variant-id order."""
    return [d for _, d in sorted(decisions.items()) if d.status == "review-pending"]


def final_summary(
    decisions: dict[str, FinalDecision], variant_ids: Sequence[str]
) -> dict[str, Any]:
    """Manifest fields that change with approvals: final counts, send list, pending list."""
    current = {vid: decisions[vid] for vid in variant_ids if vid in decisions}
    counts = {status: 0 for status in FINAL_STATUSES}
    for decision in current.values():
        counts[decision.status] += 1
    return {
        "final": counts,
        "sendable": [vid for vid in variant_ids if vid in current and current[vid].sendable],
        "pending_review": [
            {
                "variant_id": d.variant_id,
                "segment": d.segment,
                "tone": d.tone,
                "reasons": list(d.reasons),
            }
            for d in pending_review(current)
        ],
    }


@dataclass(frozen=True)
class ApprovalResult:
    """What ``approve_run`` recorded."""

    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    entries: int
    head_hash: str


def approve_run(
    run_dir: Path | str, *, by: str, reject: Sequence[str] = (), note: str = ""
) -> ApprovalResult:
    """Approve every variant awaiting review except those in ``reject`` (rejected).

    Each decision is a hash-chained audit entry naming ``by``; the manifest's
    audit head and send list, and ``safety_audit.csv``, are updated so
    ``cpo run --resume`` can continue.

    Raises:
        RunDirError: not a run folder, the run is busy, nothing to decide, or a
            variant id is unknown or blocked.
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
        return _approve_locked(run_dir, by.strip(), list(dict.fromkeys(reject)), note)


def _approve_locked(run_dir: Path, by: str, reject: list[str], note: str) -> ApprovalResult:
    path, entries, manifest = load_verified(run_dir)
    assert manifest is not None
    run_id = manifest["run_id"]
    decisions = final_decisions(entries, run_id)
    _check_rejections(run_dir, decisions, reject)
    to_approve = [d.variant_id for d in pending_review(decisions) if d.variant_id not in reject]
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
            )
    _update_manifest(run_dir, manifest, final_decisions(read_entries(path), run_id), last)
    # keep the compliance export in step with the log
    export_csv(path, SAFETY_AUDIT_CSV.path(run_dir))
    return ApprovalResult(tuple(to_approve), tuple(reject), last["seq"], last["hash"])


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
