"""Merge values (first names): normalized, screened once each, withheld with a reason code."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from cpo_testkit import MarkerAnalyzer

from cpo.audit import AuditLog, csv_rows, read_entries, verify
from cpo.merge_values import MergeResult, normalize_values
from cpo.safety.local import LocalSafetyAnalyzer
from cpo.safety.merge import MergeScreener, audit_merge_screening, value_sha256
from cpo.safety.settings import PiiSettings, SafetyPolicySettings


@pytest.fixture
def screener():
    return MergeScreener(LocalSafetyAnalyzer(), SafetyPolicySettings(), backend="local")


def test_normalize_values():
    raw = pd.Series(["  Ana\nBcc: x ", "Zo\u200be\u202e", None, "B" * 70, "\t\r"], dtype=object)
    assert normalize_values(raw).tolist() == ["Ana Bcc: x", "Zoe", "", "B" * 50, ""]
    assert normalize_values(raw, max_chars=None)[3] == "B" * 70


@pytest.mark.parametrize(
    "value, reasons",
    [
        ("Ana", ()),
        ("María José", ()),
        ("<script>alert(1)</script>", ()),  # escaped at insertion, not a reason to withhold
        ("I will kill you", ("violence",)),
        ("ana@example.org", ("pii_email",)),
        ("Call 415-555-0134", ("pii_phone",)),
        ("4111 1111 1111 1111", ("pii_card",)),
        ("visit phish.example", ("link",)),
        ("Ana www.win-now.co", ("link",)),
        ('=HYPERLINK("http://x","y")', ("link",)),
        (
            "I will kill you http://phish.example 4111 1111 1111 1111",
            ("violence", "pii_card", "link"),
        ),
    ],
)
def test_reasons(screener, value, reasons):
    assert screener([value]) == [reasons]


def test_review_level_severity_withholds_and_backend_errors_fail_closed():
    policy = SafetyPolicySettings()
    screen = MergeScreener(MarkerAnalyzer(), policy, concurrency=4)
    assert screen(["Ann [hate:4]", "Bo [hate:3]", "Cy [error]"]) == [
        ("hate",),
        (),
        ("screening_error",),
    ]


def test_pii_allow_list_applies():
    policy = SafetyPolicySettings.model_validate(
        {"compliance": {"pii": {"allow": ["help@shop.example"]}}}
    )
    screen = MergeScreener(LocalSafetyAnalyzer(), policy)
    assert screen(["help@shop.example"]) == [()]
    assert PiiSettings().detect == ("email", "phone", "card")


def test_audit_records_hashes_never_values(tmp_path):
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    results = [
        MergeResult("first_name", "Ana", (), 40),
        MergeResult("first_name", "I will kill you", ("violence",), 2),
    ]
    last = audit_merge_screening(
        log, results, run_id="r1", salt="r1", backend="local", policy_sha256="p" * 64
    )
    entries = read_entries(log.path)
    assert [e["kind"] for e in entries] == ["merge_withheld", "merge_screening"]
    assert entries[0]["content_sha256"] == value_sha256("I will kill you", "r1")
    assert entries[0]["reasons"] == ["violence"] and entries[0]["customers"] == 2
    assert entries[1]["values_screened"] == 2 and entries[1]["customers_withheld"] == 2
    assert last["seq"] == 2 and verify(log.path, 2, last["hash"]).ok
    text = log.path.read_text(encoding="utf-8")
    assert "kill" not in text and "Ana" not in text
    rows = csv_rows(entries)
    assert [r["status"] for r in rows] == ["withheld", "merge_screened"]
    assert "violence" in rows[0]["block_reason"] and "kill" not in json.dumps(rows)


def test_nothing_to_record(tmp_path):
    log = AuditLog(tmp_path / "safety_audit.jsonl")
    last = audit_merge_screening(log, [], run_id="r", salt="r", backend="x", policy_sha256="")
    assert last is None and not log.path.exists()
