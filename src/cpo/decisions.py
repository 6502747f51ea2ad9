"""Final decisions from the audit log: screening plus human approval.

Shared by everything that must know what may be sent (the assign and send
stages, ``cpo approve``, ``cpo audit``, the report); the audit log itself is
:mod:`cpo.audit`.

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

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.audit import (
    KIND_APPROVAL,
    KIND_REJECTION,
    KIND_SCREENING,
    VerifyResult,
    read_entries,
    verify,
)
from cpo.errors import AuditError
from cpo.models import Variant
from cpo.run_folder import (
    MANIFEST,
    SAFETY_AUDIT,
    read_manifest,
    recorded_audit_head,
)


def screening_text(variant: Variant) -> str:
    """The text screened for a variant: subject and body together."""
    return f"{variant.subject}\n\n{variant.body}"


def content_sha256(variant: Variant) -> str:
    """sha256 of the screened text (recorded in the audit log instead of the text)."""
    return hashlib.sha256(screening_text(variant).encode("utf-8")).hexdigest()


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
