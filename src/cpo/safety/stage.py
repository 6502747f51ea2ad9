"""The ``screen`` stage of ``cpo run``: screen every variant, record every decision.

Reads ``variants.json`` (``{"variants": [Variant, ...]}``, the control included),
screens subject and body of every sendable variant exactly once per run
(concurrently, up to ``services.safety.concurrency``), decides with the policy,
and appends each decision to ``safety_audit.jsonl`` (fsynced) before anything can
use it. Variants whose generation failed are not screened as content: they are
recorded as ``block`` with reason ``generation_failed`` so the log accounts for
every variant. Then it writes ``safety_audit.csv`` and ``manifest["safety"]``.

Blocked variants are excluded from the experiment (and not regenerated); the
run goes on. With ``experiment.require_approval: true`` and any variant in
review, the stage pauses the run (status ``awaiting_approval``). When it runs
again (``cpo run --resume``) it finds this run's decisions in the audit log and
does not screen them again; it applies the recorded approvals and completes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.audit import AuditLog, export_csv, read_entries, verify
from cpo.decisions import (
    FinalDecision,
    content_sha256,
    final_decisions,
    final_summary,
    pending_review,
    screening_text,
)
from cpo.errors import StageError
from cpo.models import HARM_CATEGORIES, CategoryScores, Variant, Verdict
from cpo.run_folder import (
    RETRIEVAL,
    SAFETY_AUDIT,
    SAFETY_AUDIT_CSV,
    VARIANTS,
    AuditHead,
    read_retrieval,
    read_variants,
    recorded_audit_head,
)
from cpo.safety.base import SafetyAnalyzer, build_analyzer
from cpo.safety.policy import (
    MentionCheck,
    decide,
    mention_checks,
    one_line,
    policy_sha256,
    reason_code,
)
from cpo.safety.settings import SafetyPolicySettings
from cpo.stage_api import RunContext, StageBase, StageOutcome

MAX_SEVERITY = 7


def is_sendable_content(variant: Variant) -> bool:
    """A variant is screened as content unless its generation failed."""
    return variant.status != "failed"


@dataclass(frozen=True)
class _Screened:
    """The backend's answer for one text: scores, or why there are none."""

    scores: CategoryScores | None
    error: str | None


class ScreenStage(StageBase):
    """Screen every variant and the control; record each decision in the audit log.

    Args:
        analyzer: Use this backend instead of building ``services.safety.backend``
            (tests and benchmarks).
        backend_name: Name recorded for an injected analyzer.
    """

    name = "screen"
    description = "Screening variants"
    outputs = (SAFETY_AUDIT.name, SAFETY_AUDIT_CSV.name)

    def __init__(
        self, analyzer: SafetyAnalyzer | None = None, backend_name: str | None = None
    ) -> None:
        self._analyzer = analyzer
        self._backend_name = backend_name

    def input_files(self, ctx: RunContext) -> list[Path]:
        """variants.json (the policy is part of the config fingerprint)."""
        return [VARIANTS.path(ctx.run_dir)]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Screen what this run has not screened yet, then summarize and gate."""
        variants = read_variants(ctx.run_dir)
        log = AuditLog(SAFETY_AUDIT.path(ctx.run_dir))
        run_id = ctx.run_id
        recorded = self._recorded_decisions(ctx, run_id)
        todo = [v for v in variants if recorded.get(v.variant_id) != content_sha256(v)]
        if len(todo) < len(variants):
            ctx.log.info(self.name, "decisions_reused", count=len(variants) - len(todo))
        self._screen_all(ctx, log, todo, run_id)
        entries = read_entries(log.path)
        decisions = final_decisions(entries, run_id)
        export_csv(log.path, SAFETY_AUDIT_CSV.path(ctx.run_dir))
        summary = self._summary(ctx, variants, decisions, entries, run_id)
        outcome = self._outcome(ctx, summary, decisions)
        outcome.records["safety"] = summary
        return outcome

    def _recorded_decisions(self, ctx: RunContext, run_id: str) -> dict[str, str]:
        """This run's screened content hashes per variant, after verifying the chain."""
        path = SAFETY_AUDIT.path(ctx.run_dir)
        if not path.exists():
            return {}
        recorded = recorded_audit_head(ctx.manifest)
        result = verify(path, recorded.entries, recorded.head_hash, allow_appended=True)
        if not result.ok:
            raise StageError(
                self.name,
                f"{path}: the audit log failed verification: {result.message()}",
                hint="the log is evidence: keep it, and start a new run with `cpo run --out NEW`",
            )
        return {
            entry["variant_id"]: entry["content_sha256"]
            for entry in read_entries(path)
            if entry.get("kind") == "screening" and entry.get("run_id") == run_id
        }

    def _screen_all(self, ctx: RunContext, log: AuditLog, todo: list[Variant], run_id: str) -> None:
        """Screen and record each variant in list order (analysis runs concurrently)."""
        if not todo:
            return
        policy = ctx.config.safety
        policy_hash = policy_sha256(policy)
        analyzer, backend = self._backend(ctx, todo)
        concurrency = ctx.config.services.safety.concurrency
        mentions = _mention_checks(ctx, todo)
        screened = screen_variants(
            todo, analyzer, policy, backend=backend, concurrency=concurrency, mentions=mentions
        )
        for done, (variant, verdict, error) in enumerate(screened, start=1):
            log.record_decision(
                verdict,
                variant,
                run_id=run_id,
                policy_sha256=policy_hash,
                content_sha256=content_sha256(variant),
            )
            if error:
                ctx.log.error(
                    self.name, "screening_error", variant_id=variant.variant_id, error=error
                )
            ctx.progress(done, len(todo))

    def _backend(self, ctx: RunContext, todo: list[Variant]) -> tuple[SafetyAnalyzer | None, str]:
        """The analyzer (built only when some variant needs screening) and its name."""
        settings = ctx.config.services.safety
        if self._analyzer is not None:
            name = self._backend_name or str(
                getattr(self._analyzer, "name", type(self._analyzer).__name__)
            )
            return self._analyzer, name
        if not any(is_sendable_content(v) for v in todo):
            return None, settings.backend
        return build_analyzer(settings, log=ctx.log, base_dir=ctx.config.source), settings.backend

    def _summary(
        self,
        ctx: RunContext,
        variants: list[Variant],
        decisions: dict[str, FinalDecision],
        entries: list[dict[str, Any]],
        run_id: str,
    ) -> dict[str, Any]:
        """The manifest's ``safety`` section."""
        ids = [v.variant_id for v in variants]
        latest = _latest_screenings(entries, run_id)
        sendable_ids = [v.variant_id for v in variants if is_sendable_content(v)]
        screened = sum(1 for vid in sendable_ids if vid in latest)
        coverage = screened / len(sendable_ids) if sendable_ids else 1.0
        if coverage < 1.0 or any(vid not in latest for vid in ids):
            missing = [vid for vid in ids if vid not in latest]
            raise StageError(self.name, f"variants without a screening decision: {missing}")
        current = [latest[vid] for vid in ids]
        statuses = Counter(e["status"] for e in current)
        return {
            "backend": current[0]["backend"] if current else "",
            "policy_sha256": policy_sha256(ctx.config.safety),
            "total": len(ids),
            "passed": statuses.get("pass", 0),
            "review": statuses.get("review", 0),
            "blocked": statuses.get("block", 0),
            "generation_failed": len(ids) - len(sendable_ids),
            "by_category": _by_category(current, ctx.config.safety),
            "by_reason": dict(
                sorted(Counter(reason_code(r) for e in current for r in e["reasons"]).items())
            ),
            "pass_rate": round(statuses.get("pass", 0) / len(ids), 4) if ids else 0.0,
            "coverage": coverage,
            "require_approval": ctx.config.experiment.experiment.require_approval,
            "variant_ids": ids,
            **final_summary(decisions, ids),
            "audit": AuditHead(len(entries), entries[-1]["hash"] if entries else None).as_record(),
        }

    def _outcome(
        self, ctx: RunContext, summary: dict[str, Any], decisions: dict[str, FinalDecision]
    ) -> StageOutcome:
        """Log the result; pause when approval is required and something awaits review."""
        current = {vid: decisions[vid] for vid in summary["variant_ids"]}
        waiting = pending_review(current)
        text = (
            f"{summary['total']} screened: {summary['passed']} pass, {summary['review']} review, "
            f"{summary['blocked']} block; {len(summary['sendable'])} sendable"
        )
        ctx.log.info(
            self.name,
            "screened",
            **{k: summary[k] for k in ("total", "passed", "review", "blocked")},
        )
        for decision in (d for d in current.values() if d.status == "block"):
            ctx.log.warning(
                self.name,
                "variant_blocked",
                variant_id=decision.variant_id,
                message=f"{decision.variant_id} blocked: {'; '.join(decision.reasons)}",
            )
        paused = bool(waiting) and summary["require_approval"]
        for decision in waiting:
            ctx.log.warning(
                self.name,
                "awaiting_review",
                variant_id=decision.variant_id,
                message=f"{decision.variant_id} ({decision.segment}, {decision.tone}) "
                f"needs review: {'; '.join(decision.reasons)}",
            )
        if paused:
            text += (
                f"; awaiting approval of {len(waiting)}: "
                f"`cpo approve {ctx.run_dir} --by NAME`, then `cpo run --resume {ctx.run_dir}`"
            )
        elif waiting:
            text += f"; {len(waiting)} in review left out (require_approval is off)"
        facts = {k: summary[k] for k in ("total", "passed", "review", "blocked", "coverage")}
        return StageOutcome(summary=text, paused=paused, facts=facts)


def screen_variants(
    variants: list[Variant],
    analyzer: SafetyAnalyzer | None,
    policy: SafetyPolicySettings,
    *,
    backend: str,
    concurrency: int = 1,
    mentions: dict[str, MentionCheck] | None = None,
) -> Iterator[tuple[Variant, Verdict, str | None]]:
    """Screen variants and decide each one; yields (variant, verdict, error) in input order.

    Texts are analyzed concurrently (up to ``concurrency``); failed generations
    are not analyzed (their verdict is ``block`` / ``generation_failed``); any
    backend failure becomes a ``block`` with ``screening_error`` (fail closed).
    ``mentions`` holds, per variant id, the audience values it must not name.
    Nothing is recorded here: the caller writes each verdict where it must.
    """
    workers = max(1, min(concurrency, len(variants)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(analyze_safely, analyzer, screening_text(v))
            if analyzer is not None and is_sendable_content(v)
            else None
            for v in variants
        ]
        for variant, future in zip(variants, futures, strict=True):
            screened = future.result() if future else _Screened(None, None)
            if future is None and is_sendable_content(variant):
                screened = _Screened(None, "no screening backend was available")
            verdict = decide(
                screened.scores,
                variant,
                policy,
                backend=backend,
                error=screened.error,
                mentions=(mentions or {}).get(variant.variant_id),
            )
            yield variant, verdict, screened.error


def _mention_checks(ctx: RunContext, variants: list[Variant]) -> dict[str, MentionCheck]:
    """The audience values each variant must not name, from the run's retrieval.json."""
    if not RETRIEVAL.path(ctx.run_dir).is_file():
        return {}
    return mention_checks(read_retrieval(ctx.run_dir), variants)


def analyze_safely(analyzer: SafetyAnalyzer, text: str) -> _Screened:
    """Call the backend; any exception or invalid answer becomes an error (fail closed)."""
    try:
        scores = analyzer.analyze(text)
    except Exception as exc:  # fail closed: every failure is recorded as a block
        return _Screened(None, one_line(f"{type(exc).__name__}: {exc}"))
    problem = invalid_scores(scores)
    return _Screened(None, problem) if problem else _Screened(scores, None)


def invalid_scores(scores: Any) -> str | None:
    """Why a backend's answer cannot be trusted, or ``None`` when it is well-formed."""
    if not isinstance(scores, CategoryScores):
        return f"backend returned {type(scores).__name__}, not CategoryScores"
    for category in HARM_CATEGORIES:
        value = getattr(scores, category)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEVERITY:
            return f"backend returned severity {value!r} for {category} (expected 0-7)"
    return None


def _latest_screenings(entries: list[dict[str, Any]], run_id: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("kind") == "screening" and entry.get("run_id") == run_id:
            latest[entry["variant_id"]] = entry
    return latest


def _by_category(entries: list[dict[str, Any]], policy: SafetyPolicySettings) -> dict[str, int]:
    """Per harm category, how many variants scored at or above its review threshold."""
    counts = dict.fromkeys(HARM_CATEGORIES, 0)
    for entry in entries:
        for category, severity in (entry.get("severities") or {}).items():
            if severity is not None and severity >= policy.categories[category].review_at:
                counts[category] += 1
    return counts
