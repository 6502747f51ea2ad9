"""The real pipeline on the bundled data: the screen stage and the approval gate.

The stages after ``screen`` (experiment, report) are left out where they would only
make the test slower: :func:`through_screen` is ``default_stages()`` cut after screen.
"""

from __future__ import annotations

import json
from collections import Counter

from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import init_config, load_config
from cpo.decisions import sendable_variants
from cpo.pipeline import default_stages, run_pipeline
from cpo.runfiles import read_json


def cpo(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def through_screen():
    """The default stages up to and including ``screen``."""
    stages = default_stages()
    names = [stage.name for stage in stages]
    return stages[: names.index("screen") + 1]


def screening_counts(run_dir):
    lines = (run_dir / "safety_audit.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    return Counter(e["variant_id"] for e in entries if e["kind"] == "screening"), entries


def test_cpo_run_screens_every_variant_exactly_once(tmp_path):
    run_dir = tmp_path / "run"
    run_pipeline(run_dir, load_config(), stages=through_screen())
    variants = read_json(run_dir / "variants.json")["variants"]
    counts, _ = screening_counts(run_dir)
    assert counts == Counter({v["variant_id"]: 1 for v in variants})
    assert "control" in counts
    manifest = read_json(run_dir / "manifest.json")
    safety = manifest["safety"]
    assert safety["total"] == len(variants)
    assert safety["passed"] + safety["review"] + safety["blocked"] == len(variants)
    assert safety["coverage"] == 1.0
    assert set(safety["by_category"]) == {"hate", "violence", "self_harm", "sexual"}
    assert (run_dir / "safety_audit.csv").is_file()
    verified = cpo("audit", "verify", run_dir)
    assert verified.exit_code == 0
    assert f"{len(variants)} entries, chain intact" in verified.output


def test_approval_gate_pause_approve_resume(tmp_path):
    config = tmp_path / "config"
    init_config(config)
    experiment = config / "experiment_config.yaml"
    experiment.write_text(
        experiment.read_text().replace("require_approval: false", "require_approval: true")
    )
    thresholds = config / "safety_thresholds.yaml"
    # every message names the brand, so this puts every variant in review
    thresholds.write_text(
        thresholds.read_text().replace(
            "      - guaranteed\n", "      - guaranteed\n      - fernleaf\n"
        )
    )
    run_dir = tmp_path / "run"
    paused = cpo("run", "--out", run_dir, "--config", config)  # pauses before the experiment
    assert paused.exit_code == 0, paused.output
    assert "awaiting_approval" in paused.output
    assert "needs review: banned phrase: fernleaf" in paused.output
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["status"] == "awaiting_approval"
    pending = [p["variant_id"] for p in manifest["safety"]["pending_review"]]
    assert "control" in pending
    assert not any(d.sendable for d in sendable_variants(run_dir).values())
    counts_before, _ = screening_counts(run_dir)

    rejected = sorted(pending)[1]
    approved = cpo("approve", run_dir, "--by", "Dana Reviewer", "--reject", rejected)
    assert approved.exit_code == 0, approved.output

    manifest = run_pipeline(run_dir, resume=True, stages=through_screen())
    assert manifest["status"] == "completed"
    assert manifest["stages"]["generate"]["status"] == "completed"  # skipped, not redone
    counts_after, entries = screening_counts(run_dir)
    assert counts_after == counts_before  # nothing screened twice
    assert set(counts_after.values()) == {1}
    decisions = sendable_variants(run_dir)
    assert decisions[rejected].status == "rejected"
    assert {d.status for k, d in decisions.items() if k != rejected} == {"approved"}
    assert rejected not in manifest["safety"]["sendable"]
    assert [e["kind"] for e in entries].count("approval") == len(pending) - 1
    assert cpo("audit", "verify", run_dir).exit_code == 0
