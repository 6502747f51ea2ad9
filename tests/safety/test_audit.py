"""The hash-chained audit log: appends, verification, tamper detection, concurrency, CSV."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cpo.audit import (
    CSV_COLUMNS,
    GENESIS_HASH,
    AuditLog,
    entry_hash,
    export_csv,
    read_entries,
    verify,
)
from cpo.errors import AuditError
from cpo.models import Verdict

ENTRIES = 6


def decision(log: AuditLog, kit, variant_id: str, status: str = "pass", **severities) -> dict:
    """Append a screening decision for a test variant."""
    variant = kit.make_variant(variant_id)
    sev = {"hate": 0, "violence": 0, "self_harm": 0, "sexual": 0, **severities}
    reasons = () if status == "pass" else (f"violence severity {sev['violence']} >= x",)
    verdict = Verdict(variant_id, status, sev, reasons, "marker")  # type: ignore[arg-type]
    return log.record_decision(
        verdict, variant, run_id="run1", policy_sha256="p" * 64, content_sha256="c" * 64
    )


@pytest.fixture
def audit_file(tmp_path: Path, kit) -> Path:
    """A fresh log of six screening decisions."""
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    for index in range(ENTRIES):
        decision(log, kit, f"v{index + 1}")
    return log.path


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def rehash(line: str, **changes) -> str:
    """Edit an entry and recompute its own hash (what a careful forger would do)."""
    entry = json.loads(line)
    entry.update(changes)
    entry["hash"] = entry_hash(entry)
    return json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"


def test_fresh_log_verifies(audit_file):
    result = verify(audit_file, ENTRIES, read_entries(audit_file)[-1]["hash"])
    assert result.ok
    assert result.message() == f"{ENTRIES} entries, chain intact"


def test_entries_follow_the_documented_hash_rule(audit_file):
    entries = read_entries(audit_file)
    assert entries[0]["prev_hash"] == GENESIS_HASH == "0" * 64
    for seq, (line, entry) in enumerate(zip(lines_of(audit_file), entries, strict=True), start=1):
        without_hash = {k: v for k, v in entry.items() if k != "hash"}
        canonical = json.dumps(without_hash, sort_keys=True, separators=(",", ":"))
        assert entry["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert entry["seq"] == seq
        assert line == json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        if seq > 1:
            assert entry["prev_hash"] == entries[seq - 2]["hash"]
        assert entry["timestamp"].endswith("Z")
    first = entries[0]
    assert set(first) == {
        "kind", "seq", "timestamp", "run_id", "variant_id", "segment", "tone", "backend",
        "status", "severities", "reasons", "policy_sha256", "content_sha256", "prev_hash", "hash",
    }  # fmt: skip
    assert set(first["severities"]) == {"hate", "violence", "self_harm", "sexual"}


def test_text_is_never_written(tmp_path, kit):
    log = AuditLog(tmp_path / "a.jsonl")
    variant = kit.make_variant("v1", "A very particular sentence about lanterns.")
    verdict = Verdict("v1", "pass", {"hate": 0}, (), "marker")
    log.record_decision(verdict, variant, run_id="r", policy_sha256="p", content_sha256="c")
    assert "lanterns" not in log.path.read_text()


@pytest.mark.parametrize("line", range(1, ENTRIES + 1))
def test_edited_entry_is_named(audit_file, line):
    lines = lines_of(audit_file)
    lines[line - 1] = lines[line - 1].replace('"status":"pass"', '"status":"block"')
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, line)
    assert "hash mismatch" in result.reason


@pytest.mark.parametrize("line", range(1, ENTRIES))
def test_edited_and_rehashed_entry_breaks_the_next_link(audit_file, line):
    lines = lines_of(audit_file)
    lines[line - 1] = rehash(lines[line - 1], status="block")
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, line + 1)
    assert f"hash of line {line}" in result.reason


def test_edited_and_rehashed_last_entry_is_caught_by_the_manifest_head(audit_file):
    head = read_entries(audit_file)[-1]["hash"]
    lines = lines_of(audit_file)
    lines[-1] = rehash(lines[-1], status="block")
    write_lines(audit_file, lines)
    assert verify(audit_file).ok  # without the manifest, a re-hashed tail is undetectable
    result = verify(audit_file, ENTRIES, head)
    assert (result.ok, result.bad_line) == (False, ENTRIES)
    assert "head hash" in result.reason


@pytest.mark.parametrize("line", range(1, ENTRIES))
def test_deleted_entry_is_named(audit_file, line):
    lines = lines_of(audit_file)
    del lines[line - 1]
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, line)
    assert "deleted" in result.reason or "prev_hash" in result.reason


@pytest.mark.parametrize("line", range(1, ENTRIES))
def test_reordered_entries_are_named(audit_file, line):
    lines = lines_of(audit_file)
    lines[line - 1], lines[line] = lines[line], lines[line - 1]
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, line)
    assert "out of order" in result.reason


@pytest.mark.parametrize("line", range(1, ENTRIES + 1))
def test_inserted_copy_is_named(audit_file, line):
    lines = lines_of(audit_file)
    lines.insert(line - 1, lines[2])
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert result.ok is False
    # a copy placed just before its original makes the original the first bad line
    assert result.bad_line == (line + 1 if line == 3 else line)


def test_inserted_forged_entry_with_a_valid_link_is_caught_on_the_next_line(audit_file):
    lines = lines_of(audit_file)
    previous = json.loads(lines[2])
    forged = {**previous, "variant_id": "forged", "seq": 4, "prev_hash": previous["hash"]}
    lines.insert(3, rehash(json.dumps(forged)))
    write_lines(audit_file, lines)
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, 5)


@pytest.mark.parametrize("keep", range(0, ENTRIES))
def test_truncation_is_caught_with_the_manifest_count(audit_file, keep):
    head = read_entries(audit_file)[-1]["hash"]
    write_lines(audit_file, lines_of(audit_file)[:keep])
    result = verify(audit_file, ENTRIES, head)
    assert (result.ok, result.bad_line) == (False, keep + 1)
    assert "truncated" in result.reason


def test_truncation_mid_line_is_named(audit_file):
    raw = audit_file.read_bytes()
    audit_file.write_bytes(raw[:-40])
    result = verify(audit_file)
    assert (result.ok, result.bad_line) == (False, ENTRIES)
    assert "incomplete last line" in result.reason


def test_blank_line_and_garbage_are_named(audit_file):
    lines = lines_of(audit_file)
    write_lines(audit_file, [*lines[:2], "\n", *lines[2:]])
    assert verify(audit_file).bad_line == 3
    write_lines(audit_file, [*lines[:4], "{not json\n", *lines[4:]])
    result = verify(audit_file)
    assert (result.bad_line, "not valid JSON" in result.reason) == (5, True)


def test_appended_entries_fail_exact_verification_but_pass_prefix_check(audit_file, kit):
    head = read_entries(audit_file)[-1]["hash"]
    decision(AuditLog(audit_file), kit, "late")
    exact = verify(audit_file, ENTRIES, head)
    assert (exact.ok, exact.bad_line) == (False, ENTRIES + 1)
    assert verify(audit_file, ENTRIES, head, allow_appended=True).ok
    assert not verify(audit_file, ENTRIES, "f" * 64, allow_appended=True).ok


def test_append_refuses_to_extend_a_broken_tail(audit_file, kit):
    audit_file.write_bytes(audit_file.read_bytes()[:-5])
    with pytest.raises(AuditError, match="incomplete"):
        decision(AuditLog(audit_file), kit, "next")


def test_verify_missing_file_is_an_audit_error(tmp_path):
    with pytest.raises(AuditError, match="not found"):
        verify(tmp_path / "nope.jsonl")


def test_empty_log_verifies_with_zero_entries(tmp_path):
    path = tmp_path / "safety_audit.jsonl"
    path.write_text("")
    assert verify(path).message() == "0 entries, chain intact"
    assert not verify(path, expected_count=2).ok


def test_concurrent_threads_keep_one_chain(tmp_path, kit):
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    threads = [
        threading.Thread(target=lambda t=t: [decision(log, kit, f"t{t}-{i}") for i in range(25)])
        for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify(log.path)
    assert result.ok, result.message()
    assert result.entries == 200


WRITER = """
import sys
from cpo.models import Variant, Verdict
from cpo.audit import AuditLog
log = AuditLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    v = Variant(f"{sys.argv[2]}-{i}", "s", "friendly", "subject", "body")
    log.record_decision(Verdict(v.variant_id, "pass", {}, (), "marker"), v,
                        run_id="r", policy_sha256="p", content_sha256="c")
"""


def test_concurrent_processes_keep_one_chain(tmp_path):
    path = tmp_path / "safety_audit.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{n}", "30"]) for n in range(4)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    result = verify(path)
    assert result.ok, result.message()
    assert result.entries == 120
    assert sorted(e["seq"] for e in read_entries(path)) == list(range(1, 121))


def test_approval_entries_are_chained(tmp_path, kit):
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    decision(log, kit, "v1", status="review", violence=4)
    entry = log.record_review(
        "approval",
        run_id="run1",
        variant_id="v1",
        by="Dana Reviewer",
        note="ok",
        content_sha256="c",
    )
    assert entry["kind"] == "approval"
    assert entry["prev_hash"] == read_entries(log.path)[0]["hash"]
    assert verify(log.path).ok
    with pytest.raises(ValueError):
        log.record_review("maybe", run_id="r", variant_id="v1", by="x", note="", content_sha256="c")


def test_export_csv(tmp_path, kit):
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    decision(log, kit, "v1")
    decision(log, kit, "v2", status="block", violence=6)
    log.record_decision(
        Verdict("v3", "block", {}, ("screening_error: down",), "marker"),
        kit.make_variant("v3"),
        run_id="run1",
        policy_sha256="p",
        content_sha256="c",
    )
    log.record_review(
        "rejection", run_id="run1", variant_id="v1", by="Dana", note="off-brand", content_sha256="c"
    )
    out = tmp_path / "export.csv"
    assert export_csv(log.path, out) == 4
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS == (
        "timestamp", "variant_id", "segment", "status", "hate", "violence", "self_harm",
        "sexual", "block_reason",
    )  # fmt: skip
    assert rows[0]["status"] == "pass" and rows[0]["block_reason"] == ""
    assert (rows[1]["violence"], rows[1]["block_reason"]) == ("6", "violence severity 6 >= x")
    assert rows[2]["violence"] == "" and rows[2]["block_reason"] == "screening_error: down"
    assert rows[3]["status"] == "rejected"
    assert rows[3]["block_reason"] == "rejected by Dana: off-brand"
    assert rows[3]["segment"] == "Standard"
