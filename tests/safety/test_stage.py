"""The screen stage on a run folder: coverage, summary, fail closed, approval flow."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from cpo.audit import verify
from cpo.decisions import may_send, sendable_variants
from cpo.errors import AuditError, RunDirError, StageError
from cpo.models import Grounding
from cpo.run_folder import read_variants
from cpo.runfiles import read_json
from cpo.safety.approval import approve_run


def mixed_variants(kit):
    """Control, a pass, a review, two blocks and a failed generation."""
    return [
        kit.control_variant(),
        kit.make_variant("seg1-friendly", "Cozy socks for cold mornings."),
        kit.make_variant("seg1-urgent", "Storm season [violence:4] is here."),
        kit.make_variant("seg2-friendly", "Really bad [hate:6] words.", segment="Other"),
        kit.make_variant("seg2-urgent", "Call 555-867-5309 now.", segment="Other", tone="urgent"),
        kit.make_variant("seg2-info", status="failed", segment="Other", tone="informational"),
    ]


def screening_entries(run):
    return [e for e in run.entries() if e["kind"] == "screening"]


def test_every_variant_has_exactly_one_screening_entry(screen_run, kit):
    variants = mixed_variants(kit)
    manifest = screen_run.run(variants)
    assert manifest["status"] == "completed"
    counts = Counter(e["variant_id"] for e in screening_entries(screen_run))
    assert counts == Counter({v.variant_id: 1 for v in variants})
    # the failed generation is recorded but never sent to the backend
    assert screen_run.analyzer.calls == len(variants) - 1
    failed = next(e for e in screen_run.entries() if e["variant_id"] == "seg2-info")
    assert failed["status"] == "block"
    assert failed["reasons"] == ["generation_failed: model returned nothing"]
    assert failed["severities"] == dict.fromkeys(("hate", "violence", "self_harm", "sexual"))


def test_manifest_safety_summary(screen_run, kit):
    manifest = screen_run.run(mixed_variants(kit))
    safety = manifest["safety"]
    assert (safety["total"], safety["passed"], safety["review"], safety["blocked"]) == (6, 2, 1, 3)
    assert safety["generation_failed"] == 1
    assert safety["coverage"] == 1.0
    assert safety["pass_rate"] == round(2 / 6, 4)
    assert safety["by_category"] == {"hate": 1, "violence": 1, "self_harm": 0, "sexual": 0}
    assert safety["by_reason"] == {"generation_failed": 1, "hate": 1, "pii": 1, "violence": 1}
    assert safety["sendable"] == ["control", "seg1-friendly"]
    assert safety["final"] == {
        "pass": 2, "approved": 0, "review-pending": 1, "rejected": 0, "block": 3,
    }  # fmt: skip
    entries = screen_run.entries()
    assert safety["audit"] == {"entries": len(entries), "head_hash": entries[-1]["hash"]}
    assert manifest["stages"]["screen"]["facts"]["coverage"] == 1.0
    assert read_json(screen_run.run_dir / "manifest.json")["safety"] == safety


def test_audit_csv_is_written(screen_run, kit):
    screen_run.run(mixed_variants(kit))
    with (screen_run.run_dir / "safety_audit.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["variant_id"] for r in rows] == [v.variant_id for v in mixed_variants(kit)]
    blocked = next(r for r in rows if r["variant_id"] == "seg2-friendly")
    assert (blocked["status"], blocked["hate"]) == ("block", "6")
    assert blocked["block_reason"] == "hate severity 6 >= block_at 6"


def test_fresh_run_audit_verifies_against_the_manifest(screen_run, kit):
    manifest = screen_run.run(mixed_variants(kit))
    recorded = manifest["safety"]["audit"]
    assert verify(screen_run.audit, recorded["entries"], recorded["head_hash"]).ok


def test_backend_that_raises_blocks_everything_and_run_goes_on(screen_run, kit):
    variants = [
        kit.control_variant(),
        kit.make_variant("a", "[error] clean text"),
        kit.make_variant("b", "nice [error]"),
    ]
    variants[0] = kit.make_variant("control", "[error]", segment="all", tone="control")
    manifest = screen_run.run(variants)
    assert manifest["status"] == "completed"
    entries = screening_entries(screen_run)
    assert {e["status"] for e in entries} == {"block"}
    assert all(e["reasons"][0].startswith("screening_error: ConnectionError") for e in entries)
    assert manifest["safety"]["sendable"] == []
    assert manifest["safety"]["by_reason"] == {"screening_error": 3}


class BrokenAnalyzer:
    """A backend bug: returns impossible or wrong-typed answers."""

    def __init__(self, answer):
        self.answer = answer

    def analyze(self, text):
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [None, {"hate": 0}, "pass"],
)
def test_malformed_backend_answers_block(tmp_path, config_dir, kit, answer):
    from cpo.config import load_config
    from cpo.pipeline import run_pipeline
    from cpo.safety.stage import ScreenStage

    stages = [kit.VariantsStage([kit.make_variant("a")]), ScreenStage(BrokenAnalyzer(answer))]
    manifest = run_pipeline(tmp_path / "run", load_config(config_dir), stages=stages)
    assert manifest["safety"]["blocked"] == 1
    assert manifest["safety"]["by_reason"] == {"screening_error": 1}


def test_out_of_range_severity_blocks(tmp_path, config_dir, kit):
    from cpo.config import load_config
    from cpo.models import CategoryScores
    from cpo.pipeline import run_pipeline
    from cpo.safety.stage import ScreenStage

    stages = [
        kit.VariantsStage([kit.make_variant("a")]),
        ScreenStage(BrokenAnalyzer(CategoryScores(violence=9))),
    ]
    manifest = run_pipeline(tmp_path / "run", load_config(config_dir), stages=stages)
    entry = json.loads((tmp_path / "run" / "safety_audit.jsonl").read_text().splitlines()[0])
    assert entry["status"] == "block"
    assert "severity 9 for violence" in entry["reasons"][0]
    assert manifest["safety"]["passed"] == 0


def test_screening_runs_concurrently_up_to_the_setting(screen_run, kit):
    kit.edit_config(
        screen_run.config_dir,
        "azure_config.yaml",
        lambda d: d["services"]["safety"].update(concurrency=3),
    )
    screen_run.analyzer = kit.MarkerAnalyzer(delay_s=0.03)
    variants = [kit.make_variant(f"v{i}") for i in range(12)]
    screen_run.run(variants)
    assert 1 < screen_run.analyzer.max_in_flight <= 3
    # decisions are still recorded in variants.json order
    assert [e["variant_id"] for e in screen_run.entries()] == [v.variant_id for v in variants]


def test_grounding_problems_block(screen_run, kit):
    bad = kit.make_variant("a", grounding=Grounding(0.5, invalid_citations=("DOC-9#1",)))
    manifest = screen_run.run([bad])
    assert manifest["safety"]["by_reason"] == {"grounding": 1}
    assert screening_entries(screen_run)[0]["reasons"] == ["invalid citations: DOC-9#1"]


def test_resume_of_a_completed_run_does_not_screen_again(screen_run, kit):
    variants = mixed_variants(kit)
    screen_run.run(variants)
    calls, entries = screen_run.analyzer.calls, len(screen_run.entries())
    screen_run.resume(variants)
    assert (screen_run.analyzer.calls, len(screen_run.entries())) == (calls, entries)


def test_changed_content_is_screened_again_once(screen_run, kit):
    screen_run.run([kit.make_variant("a", "first text")])
    screen_run.resume([kit.make_variant("a", "second text [violence:6]")])
    entries = screening_entries(screen_run)
    assert [e["status"] for e in entries] == ["pass", "block"]
    assert sendable_variants(screen_run.run_dir)["a"].status == "block"


def test_tampered_log_stops_a_resume(screen_run, kit):
    variants = mixed_variants(kit)
    screen_run.run(variants)
    text = screen_run.audit.read_text().replace('"status":"block"', '"status":"pass"', 1)
    screen_run.audit.write_text(text)
    with pytest.raises(StageError, match="failed verification"):
        screen_run.resume([*variants, kit.make_variant("new")])
    with pytest.raises(AuditError, match="failed verification"):
        sendable_variants(screen_run.run_dir)


def test_truncated_log_is_refused_by_sendable_variants(screen_run, kit):
    screen_run.run(mixed_variants(kit))
    lines = screen_run.audit.read_text().splitlines(keepends=True)
    screen_run.audit.write_text("".join(lines[:-1]))
    with pytest.raises(AuditError, match="truncated"):
        sendable_variants(screen_run.run_dir)


def test_load_variants_rejects_malformed_files(tmp_path, kit):
    path = tmp_path / "variants.json"
    path.write_text('{"nope": []}')
    with pytest.raises(Exception, match="'variants' list"):
        read_variants(path)
    kit.write_variants(path, [kit.make_variant("a"), kit.make_variant("a")])
    with pytest.raises(Exception, match="variant ids repeat: a"):
        read_variants(path)
    path.write_text('{"variants": [{"variant_id": "x"}]}')
    with pytest.raises(Exception, match=r"variants\[0\]"):
        read_variants(path)


# --- approval gate ----------------------------------------------------------------------


def review_variants(kit):
    return [
        kit.control_variant(),
        kit.make_variant("s-friendly", "Fine words."),
        kit.make_variant("s-urgent", "Act now [violence:4]."),
        kit.make_variant("s-info", "Results guaranteed.", tone="informational"),
        kit.make_variant("s-bad", "[sexual:7]", tone="urgent"),
    ]


def test_require_approval_pauses_then_approve_and_resume_complete(approval_run, kit):
    variants = review_variants(kit)
    paused = approval_run.run(variants)
    assert paused["status"] == "awaiting_approval"
    assert paused["stages"]["screen"]["status"] == "paused"
    pending = [p["variant_id"] for p in paused["safety"]["pending_review"]]
    assert pending == ["s-info", "s-urgent"]
    assert paused["safety"]["pending_review"][0]["reasons"] == ["banned phrase: guaranteed"]
    before = sendable_variants(approval_run.run_dir)
    assert {k for k, d in before.items() if d.sendable} == {"control", "s-friendly"}
    assert before["s-urgent"].status == "review-pending"

    result = approve_run(approval_run.run_dir, by="Dana Reviewer", reject=["s-info"], note="ok")
    assert (result.approved, result.rejected) == (("s-urgent",), ("s-info",))
    calls = approval_run.analyzer.calls

    finished = approval_run.resume(variants)
    assert finished["status"] == "completed"
    assert approval_run.analyzer.calls == calls  # nothing screened twice
    counts = Counter(e["variant_id"] for e in screening_entries(approval_run))
    assert set(counts.values()) == {1}
    decisions = sendable_variants(approval_run.run_dir)
    assert decisions["s-urgent"].status == "approved"
    assert decisions["s-urgent"].decided_by == "Dana Reviewer"
    assert decisions["s-info"].status == "rejected"
    assert decisions["s-bad"].status == "block"
    assert finished["safety"]["sendable"] == ["control", "s-friendly", "s-urgent"]
    assert finished["safety"]["pending_review"] == []
    recorded = finished["safety"]["audit"]
    assert verify(approval_run.audit, recorded["entries"], recorded["head_hash"]).ok
    kinds = [e["kind"] for e in approval_run.entries()[-2:]]
    assert kinds == ["rejection", "approval"]


def test_rejected_variant_is_never_sendable(approval_run, kit):
    variants = review_variants(kit)
    approval_run.run(variants)
    approve_run(approval_run.run_dir, by="Dana", reject=["s-urgent", "s-info"])
    with pytest.raises(RunDirError, match="no variant is awaiting review"):
        approve_run(approval_run.run_dir, by="Sam")
    with pytest.raises(RunDirError, match="already rejected"):
        approve_run(approval_run.run_dir, by="Sam", reject=["s-urgent"])
    decisions = sendable_variants(approval_run.run_dir)
    assert not decisions["s-urgent"].sendable
    assert not may_send(variants[2], decisions)
    assert may_send(variants[1], decisions)


def test_a_passed_variant_can_be_vetoed(approval_run, kit):
    approval_run.run(review_variants(kit))
    approve_run(approval_run.run_dir, by="Dana", reject=["s-friendly"])
    assert sendable_variants(approval_run.run_dir)["s-friendly"].status == "rejected"


def test_approve_refuses_blocked_unknown_and_anonymous(approval_run, kit):
    approval_run.run(review_variants(kit))
    with pytest.raises(RunDirError, match="already block"):
        approve_run(approval_run.run_dir, by="Dana", reject=["s-bad"])
    with pytest.raises(RunDirError, match="'nope' has no screening decision"):
        approve_run(approval_run.run_dir, by="Dana", reject=["nope"])
    with pytest.raises(RunDirError, match="needs a name"):
        approve_run(approval_run.run_dir, by="  ")


def test_resume_without_approval_pauses_again(approval_run, kit):
    variants = review_variants(kit)
    approval_run.run(variants)
    calls = approval_run.analyzer.calls
    again = approval_run.resume(variants)
    assert again["status"] == "awaiting_approval"
    assert approval_run.analyzer.calls == calls


def test_review_without_require_approval_is_left_out(screen_run, kit):
    manifest = screen_run.run(review_variants(kit))
    assert manifest["status"] == "completed"
    assert manifest["safety"]["sendable"] == ["control", "s-friendly"]
    assert [p["variant_id"] for p in manifest["safety"]["pending_review"]] == ["s-info", "s-urgent"]


def test_may_send_refuses_changed_content(screen_run, kit):
    screen_run.run([kit.make_variant("a", "original")])
    decisions = sendable_variants(screen_run.run_dir)
    assert may_send(kit.make_variant("a", "original"), decisions)
    assert not may_send(kit.make_variant("a", "edited after screening"), decisions)
    assert not may_send(kit.make_variant("unknown"), decisions)


class Interrupted(BaseException):
    """Stands in for Ctrl-C or a killed process in the middle of screening."""


class CrashingAnalyzer:
    """Scores like the marker analyzer, then dies on the call numbered ``crash_at``."""

    def __init__(self, kit, crash_at: int):
        self.inner = kit.MarkerAnalyzer()
        self.crash_at = crash_at

    def analyze(self, text):
        if self.inner.calls + 1 == self.crash_at:
            raise Interrupted()
        return self.inner.analyze(text)


def test_a_crash_mid_screening_resumes_without_screening_twice(screen_run, kit):
    kit.edit_config(  # one at a time, so the crash hits a known variant
        screen_run.config_dir,
        "azure_config.yaml",
        lambda d: d["services"]["safety"].update(concurrency=1),
    )
    variants = [kit.make_variant(f"v{i}") for i in range(6)]
    screen_run.analyzer = CrashingAnalyzer(kit, crash_at=4)
    with pytest.raises(Interrupted):
        screen_run.run(variants)
    recorded = [e["variant_id"] for e in screen_run.entries()]
    assert recorded == ["v0", "v1", "v2"]  # written in order, each before the next
    screen_run.analyzer = kit.MarkerAnalyzer()
    manifest = screen_run.resume(variants)
    assert manifest["status"] == "completed"
    assert screen_run.analyzer.calls == 3
    counts = Counter(e["variant_id"] for e in screening_entries(screen_run))
    assert counts == Counter({v.variant_id: 1 for v in variants})


def test_lexicon_dir_is_resolved_against_the_config_folder(config_dir):
    import shutil

    from cpo.safety.base import build_analyzer
    from cpo.safety.local import DEFAULT_LEXICON_DIR
    from cpo.safety.settings import SafetyServiceSettings

    shutil.copytree(DEFAULT_LEXICON_DIR, config_dir / "lexicon")
    settings = SafetyServiceSettings(backend="local", local={"lexicon_dir": "lexicon"})
    analyzer = build_analyzer(settings, base_dir=config_dir)
    assert analyzer.lexicon_dir == config_dir / "lexicon"
    assert analyzer.analyze("I will kill you").violence >= 6


def test_approve_only_named_variants_records_the_channel(approval_run, kit):
    approval_run.run(review_variants(kit))
    result = approve_run(approval_run.run_dir, by="Dana", approve=["s-urgent"], channel="web")
    assert (result.approved, result.rejected) == (("s-urgent",), ())
    decisions = sendable_variants(approval_run.run_dir)
    assert decisions["s-urgent"].status == "approved"
    assert decisions["s-info"].status == "review-pending"
    assert approval_run.entries()[-1]["channel"] == "web"
    with pytest.raises(RunDirError, match="'s-friendly' is not awaiting review"):
        approve_run(approval_run.run_dir, by="Dana", approve=["s-friendly"])
    approve_run(approval_run.run_dir, by="Dana", approve=[], reject=["s-info"])
    assert sendable_variants(approval_run.run_dir)["s-info"].status == "rejected"
    assert approval_run.entries()[-1]["channel"] == "cli"
