"""The safety commands: cpo screen, cpo audit verify|export, cpo approve."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from cpo import __version__
from cpo.cli import cli


def cpo(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def finished_run(screen_run, kit):
    """A completed screened run folder (one pass, one review, one block)."""
    screen_run.run(
        [
            kit.control_variant(),
            kit.make_variant("a", "Calm."),
            kit.make_variant("b", "[violence:5]"),
            kit.make_variant("c", "[hate:7]"),
        ]
    )
    return screen_run


@pytest.fixture
def paused_run(approval_run, kit):
    approval_run.run(
        [
            kit.control_variant(),
            kit.make_variant("a", "Calm."),
            kit.make_variant("b", "[violence:5]"),
            kit.make_variant("c", "Guaranteed!"),
        ]
    )
    return approval_run


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [("Calm words.", "pass", 0), ("[sexual:4] words", "review", 2), ("[hate:6]", "block", 3)],
)
def test_screen_text_json(config_dir, text, status, code):
    result = cpo("screen", "--text", text, "--json", "--config", config_dir)
    assert result.exit_code == code, result.output
    payload = json.loads(result.output)
    assert set(payload) == {"status", "severities", "reasons"}
    assert payload["status"] == status
    assert set(payload["severities"]) == {"hate", "violence", "self_harm", "sexual"}


def test_screen_text_does_not_demand_a_footer_but_checks_other_rules(config_dir):
    result = cpo("screen", "--text", "Email jo@x.io, risk-free!", "--json", "--config", config_dir)
    payload = json.loads(result.output)
    assert payload["status"] == "block"
    assert payload["reasons"] == ["pii: email address", "banned phrase: risk-free"]


def test_screen_text_backend_error_is_a_block(config_dir):
    result = cpo("screen", "--text", "[error]", "--json", "--config", config_dir)
    assert result.exit_code == 3
    payload = json.loads(result.output)
    assert payload["severities"] == dict.fromkeys(("hate", "violence", "self_harm", "sexual"))
    assert payload["reasons"][0].startswith("screening_error")


def test_screen_text_human_output(config_dir):
    result = cpo("screen", "--text", "[violence:6]", "--config", config_dir)
    assert "block" in result.output
    assert "violence severity 6 >= block_at 6" in result.output


def test_screen_file(tmp_path, config_dir, kit):
    path = kit.write_variants(
        tmp_path / "variants.json",
        [
            kit.make_variant("a"),
            kit.make_variant("b", "[self_harm:4]"),
            kit.make_variant("c", footer=False),
        ],
    )
    result = cpo("screen", "--file", path, "--json", "--config", config_dir)
    assert result.exit_code == 3
    payload = json.loads(result.output)["variants"]
    assert [(v["variant_id"], v["status"]) for v in payload] == [
        ("a", "pass"),
        ("b", "review"),
        ("c", "block"),
    ]
    assert payload[2]["reasons"] == ["missing footer"]
    human = cpo("screen", "--file", path, "--config", config_dir)
    assert "3 variants: 1 pass, 1 review, 1 block" in human.output


def test_screen_with_the_default_local_backend():
    # "killer deal" is a marketing idiom, not a threat.
    result = cpo("screen", "--text", "Our killer deal ends 31 December 2027.", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "pass"


def test_screen_sends_an_undated_deadline_to_review():
    # A relative-time claim with no date ("ends Sunday") cannot be checked: review.
    result = cpo("screen", "--text", "Our killer deal ends Sunday.", "--json")
    assert result.exit_code == 2, result.output
    payload = json.loads(result.output)
    assert payload["status"] == "review"
    assert any("relative time" in reason for reason in payload["reasons"])


def test_screen_needs_exactly_one_input(config_dir):
    result = cpo("screen", "--config", config_dir)
    assert result.exit_code == 2
    assert "exactly one of --text" in result.output


def test_audit_verify_ok_then_tampered(finished_run):
    run_dir = finished_run.run_dir
    ok = cpo("audit", "verify", run_dir)
    assert ok.exit_code == 0
    assert "4 entries, chain intact" in ok.output
    assert "matches the run manifest" in ok.output
    assert cpo("audit", "verify", finished_run.audit).exit_code == 0
    lines = finished_run.audit.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"status":"pass"', '"status":"review"')
    finished_run.audit.write_text("".join(lines))
    bad = cpo("audit", "verify", run_dir)
    assert bad.exit_code == 1
    assert "line 2: hash mismatch" in bad.output


def test_audit_verify_detects_truncation_only_with_the_run_dir(finished_run):
    lines = finished_run.audit.read_text().splitlines(keepends=True)
    finished_run.audit.write_text("".join(lines[:-1]))
    assert cpo("audit", "verify", finished_run.audit).exit_code == 0
    result = cpo("audit", "verify", finished_run.run_dir)
    assert result.exit_code == 1
    assert "line 4: truncated" in result.output


def test_audit_verify_missing_file(tmp_path):
    result = cpo("audit", "verify", tmp_path / "none.jsonl")
    assert result.exit_code == 1
    assert "not found" in result.output


def test_audit_export(finished_run, tmp_path):
    out = tmp_path / "export.csv"
    result = cpo("audit", "export", finished_run.run_dir, "--csv", out)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["pass", "pass", "review", "block"]
    assert rows[3]["block_reason"] == "hate severity 7 >= block_at 6"


def test_audit_export_of_a_damaged_log_warns_and_exits_1(finished_run, tmp_path):
    lines = finished_run.audit.read_text().splitlines(keepends=True)
    finished_run.audit.write_text("".join([lines[0], lines[2], lines[1], lines[3]]))
    result = cpo("audit", "export", finished_run.run_dir, "--csv", tmp_path / "x.csv")
    assert result.exit_code == 1
    assert "out of order" in result.output
    assert (tmp_path / "x.csv").exists()


def test_approve_list_then_approve_with_rejection(paused_run):
    run_dir = paused_run.run_dir
    listed = cpo("approve", run_dir, "--list")
    assert listed.exit_code == 0
    assert "b (Standard, friendly)" in listed.output
    assert "violence severity 5 >= review_at 4" in listed.output
    result = cpo("approve", run_dir, "--by", "Dana Reviewer", "--reject", "c", "--note", "checked")
    assert result.exit_code == 0, result.output
    assert "approved by Dana Reviewer: b" in result.output
    assert "rejected by Dana Reviewer: c" in result.output
    assert f"cpo run --resume {run_dir}" in result.output
    entries = paused_run.entries()
    assert [(e["kind"], e["variant_id"], e["by"], e["note"]) for e in entries[-2:]] == [
        ("rejection", "c", "Dana Reviewer", "checked"),
        ("approval", "b", "Dana Reviewer", "checked"),
    ]
    assert cpo("audit", "verify", run_dir).exit_code == 0
    assert "nothing awaits review" in cpo("approve", run_dir, "--list").output
    exported = (run_dir / "safety_audit.csv").read_text(encoding="utf-8")
    assert "approved by Dana Reviewer: checked" in exported


def test_approve_needs_by_and_a_real_variant(paused_run):
    assert cpo("approve", paused_run.run_dir).exit_code == 2
    unknown = cpo("approve", paused_run.run_dir, "--by", "Dana", "--reject", "zzz")
    assert unknown.exit_code == 1
    assert "'zzz' has no screening decision" in unknown.output


def test_approve_refuses_a_tampered_log(paused_run):
    lines = paused_run.audit.read_text().splitlines(keepends=True)
    paused_run.audit.write_text("".join(lines[:-1]))
    result = cpo("approve", paused_run.run_dir, "--by", "Dana")
    assert result.exit_code == 1
    assert "failed verification" in result.output


@pytest.mark.parametrize(
    "command", [["screen"], ["audit"], ["audit", "verify"], ["audit", "export"], ["approve"]]
)
def test_version_and_help(command):
    assert __version__ in cpo(*command, "--version").output
    help_text = cpo(*command, "--help")
    assert help_text.exit_code == 0
    assert len(help_text.output.split("\n\n")[1]) > 20  # a real description
