"""Screening of the values merged into a customer's message (the first name).

Variants are screened before anything is sent, but a merge value such as a
customer's ``first_name`` is inserted afterwards, into text that already
passed. So every merge value is normalized and screened on its own before it
reaches the send list:

1. :func:`~cpo.merge_values.normalize_values` removes control and invisible formatting characters
   (newlines, tabs, zero-width and bidirectional marks), collapses whitespace
   and cuts the inserted value to :data:`MAX_MERGE_CHARS` characters (the whole
   value is screened, so nothing past the cut escapes screening).
2. :class:`MergeScreener` screens each *distinct* value once (cost grows with
   distinct names, never with customers) with the configured safety backend
   (the same analyzer API the screen stage uses) and the personal-data rules
   of :mod:`cpo.safety.policy` (email addresses, phone numbers, card numbers),
   plus links.

A value fails with one or more reason codes: a harm category (``hate``,
``violence``, ``self_harm``, ``sexual``) at or above its *review* threshold
(a name has no human approval step, so review means withhold),
``blocklist``, ``pii_email``, ``pii_phone``, ``pii_card``, ``link``, or
``screening_error`` when the backend could not answer (fail closed). The PII
kinds are always checked for merge values, whatever ``compliance.pii.action``
says for variants; ``compliance.pii.allow`` still applies.

:func:`audit_merge_screening` records the outcome in the hash-chained audit
log: one ``merge_withheld`` entry per failing value and one
``merge_screening`` summary per field. Entries carry a salted sha256 of the
value (:func:`value_sha256`), never the value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cpo.audit import KIND_MERGE_SCREENING, KIND_MERGE_WITHHELD, AuditLog, export_csv
from cpo.merge_values import MergeResult
from cpo.models import CategoryScores
from cpo.run_folder import SAFETY_AUDIT, SAFETY_AUDIT_CSV
from cpo.safety.base import SafetyAnalyzer, build_analyzer
from cpo.safety.policy import EMAIL, find_pii, policy_sha256
from cpo.safety.settings import PiiSettings, SafetyPolicySettings
from cpo.stage_api import RunContext

#: A link: a scheme, ``www.``, or a host name with a common top-level domain.
LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.\-]*://|\bwww\.|\bmailto:|"
    r"\b[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:com|net|org|info|biz|io|co|me|ly|gl|app|dev|xyz|top"
    r"|link|click|site|online|shop|ru|cn|tk|ml|ga|cf|gq|example)\b)"
)
PII_REASONS = {"email": "pii_email", "phone": "pii_phone", "card": "pii_card"}


def value_sha256(value: str, salt: str) -> str:
    """Salted sha256 of a merge value (a bare hash of a name could be looked up)."""
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()


class MergeScreener:
    """Screens distinct merge values with a safety backend and the PII rules.

    Args:
        analyzer: The configured safety backend.
        policy: safety_thresholds.yaml (category thresholds, PII allow list).
        backend: Backend name recorded in the audit.
        concurrency: Values screened at the same time (network backends).
    """

    def __init__(
        self,
        analyzer: SafetyAnalyzer,
        policy: SafetyPolicySettings,
        *,
        backend: str = "",
        concurrency: int = 1,
    ) -> None:
        self.analyzer = analyzer
        self.policy = policy
        self.backend = backend
        self.concurrency = concurrency
        self._pii = PiiSettings(allow=policy.compliance.pii.allow)

    def __call__(self, values: Sequence[str]) -> list[tuple[str, ...]]:
        """Reason codes for each value, in order (empty = passed)."""
        from cpo.safety.stage import analyze_safely  # the stage module is heavy

        if not values:
            return []
        workers = max(1, min(self.concurrency, len(values)))
        if workers == 1:  # the local backend: threads would only add overhead
            screened = [analyze_safely(self.analyzer, value) for value in values]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                screened = list(pool.map(lambda v: analyze_safely(self.analyzer, v), values))
        return [
            self.reasons(value, result.scores, result.error)
            for value, result in zip(values, screened, strict=True)
        ]

    def reasons(
        self, value: str, scores: CategoryScores | None, error: str | None = None
    ) -> tuple[str, ...]:
        """Reason codes for one value given the backend's scores (or its error)."""
        found: list[str] = []
        if error is not None or scores is None:
            found.append("screening_error")
        else:
            for category, severity in scores.severities().items():
                if severity >= self.policy.categories[category].review_at:
                    found.append(category)
            if scores.blocklist_hits:
                found.append("blocklist")
        found.extend(PII_REASONS[kind] for kind in find_pii(value, self._pii))
        if LINK.search(EMAIL.sub(" ", value)):  # an email address is pii_email, not a link
            found.append("link")
        return tuple(found)


def audit_merge_screening(
    audit: AuditLog,
    results: Sequence[MergeResult],
    *,
    run_id: str,
    salt: str,
    backend: str,
    policy_sha256: str,
) -> dict[str, object] | None:
    """Append the merge screening of one run to the audit log; return the last entry.

    One ``merge_withheld`` entry per failing value (its salted hash, reasons and
    how many recipients hold it) and one ``merge_screening`` summary per field
    (values screened and withheld, and a digest of every screened value's hash,
    so a reviewer can prove which values were screened). Returns ``None`` when
    there was nothing to record.
    """
    last = None
    for field in sorted({r.field for r in results}):
        mine = [r for r in results if r.field == field]
        hashes = sorted(value_sha256(r.value, salt) for r in mine)
        common = {"run_id": run_id, "variant_id": "", "field": field, "backend": backend}
        for result in (r for r in mine if not r.passed):
            last = audit.append(
                {
                    "kind": KIND_MERGE_WITHHELD,
                    **common,
                    "status": "withheld",
                    "reasons": list(result.reasons),
                    "customers": result.customers,
                    "policy_sha256": policy_sha256,
                    "content_sha256": value_sha256(result.value, salt),
                }
            )
        last = audit.append(
            {
                "kind": KIND_MERGE_SCREENING,
                **common,
                "values_screened": len(mine),
                "values_withheld": sum(1 for r in mine if not r.passed),
                "customers_withheld": sum(r.customers for r in mine if not r.passed),
                "policy_sha256": policy_sha256,
                "values_sha256": hashlib.sha256("\n".join(hashes).encode()).hexdigest(),
            }
        )
    return last


class RunMergeScreening(MergeScreener):
    """Merge screening for one run: the configured backend, audited in the run's log.

    The assign stage receives this class from the pipeline as its factory (it does not
    import the safety package): it screens the distinct values with
    ``__call__`` and records them with :meth:`record`.
    """

    def __init__(self, ctx: RunContext) -> None:
        settings = ctx.config.services.safety
        analyzer = build_analyzer(settings, log=ctx.log, base_dir=ctx.config.source)
        super().__init__(
            analyzer, ctx.config.safety, backend=settings.backend, concurrency=settings.concurrency
        )
        self.ctx = ctx

    def record(self, results: Sequence[MergeResult]) -> dict[str, Any]:
        """Append the merge screening to the audit log and keep the CSV in step.

        Returns:
            ``{"safety": {"audit": head}}`` for the manifest (the pipeline records
            it), or ``{}`` when no merge value was screened.
        """
        ctx = self.ctx
        path = SAFETY_AUDIT.path(ctx.run_dir)
        last = audit_merge_screening(
            AuditLog(path),
            results,
            run_id=ctx.run_id,
            salt=ctx.run_id,
            backend=self.backend,
            policy_sha256=policy_sha256(ctx.config.safety),
        )
        if last is None:
            return {}
        export_csv(path, SAFETY_AUDIT_CSV.path(ctx.run_dir))
        return {"safety": {"audit": {"entries": last["seq"], "head_hash": last["hash"]}}}
