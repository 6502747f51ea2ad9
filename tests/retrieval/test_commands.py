"""``cpo index`` and ``cpo retrieve``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cpo.cli import cli
from cpo.pipeline import run_pipeline
from cpo.retrieval.stage import RetrieveStage
from cpo.sample_data import bundled_content
from cpo.segmentation.stage import SegmentStage


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_index_builds_then_reports_up_to_date(tmp_path: Path):
    db = tmp_path / "index.sqlite"
    first = invoke("index", str(bundled_content()), "--db", str(db), "--as-of", "2026-11-26")
    assert first.exit_code == 0, first.output
    assert "indexed 39 documents (117 paragraphs)" in first.output
    assert "FERN-PRM-011 left out: expired 2025-12-31" in first.output
    second = invoke("index", str(bundled_content()), "--db", str(db), "--as-of", "2026-11-26")
    assert "index up to date: 39 documents" in second.output
    older = invoke("index", str(bundled_content()), "--db", str(db), "--as-of", "2025-12-01")
    assert "indexed 40 documents" in older.output


def test_index_errors_are_one_clean_message(tmp_path: Path):
    missing = invoke("index", str(tmp_path / "nowhere"), "--db", str(tmp_path / "i.sqlite"))
    assert missing.exit_code == 1
    assert "content folder not found" in missing.output
    no_db = invoke("index", str(bundled_content()))
    assert no_db.exit_code == 1
    assert "pass --db FILE" in no_db.output


def test_retrieve_segment_prints_query_sources_and_results():
    result = invoke("retrieve", "--segment", "At-Risk", "--as-of", "2026-11-26")
    assert result.exit_code == 0, result.output
    assert "segment: At-Risk (id 1)" in result.output
    assert "traits:     win-back, re-engagement, lapsed" in result.output
    assert " 1. " in result.output and "FERN-PRM-003" in result.output
    assert " 5. " not in result.output  # content.top_k = 4


def test_retrieve_segment_json_with_top_k():
    result = invoke("retrieve", "--segment", "new customer", "--top-k", "5", "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)
    assert entry["segment"] == "New Customer"
    assert len(entry["results"]) == 5
    assert entry["term_sources"]["traits"] == ["welcome", "onboarding", "first purchase"]


def test_retrieve_free_query_with_filters_and_weird_text():
    result = invoke(
        "retrieve", "--query", 'gold "early access" AND NOT (', "--category", "promotion", "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["filters"] == {"category": ["promotion"]}
    assert payload["results"][0]["document_id"] == "FERN-PRM-002"
    assert {r["category"] for r in payload["results"]} == {"promotion"}


def test_retrieve_from_a_run_folder(tmp_path: Path):
    # Only the stages retrieve needs, so this test does not depend on later stages.
    run_pipeline(tmp_path / "run", stages=[SegmentStage(), RetrieveStage()])
    result = invoke(
        "retrieve",
        "--run",
        str(tmp_path / "run"),
        "--segment",
        "Standard",
        "--db",
        str(tmp_path / "i.sqlite"),
    )
    assert result.exit_code == 0, result.output
    assert "segment: Standard" in result.output
    assert (tmp_path / "i.sqlite").is_file()


def test_retrieve_argument_errors():
    neither = invoke("retrieve")
    assert neither.exit_code == 2 and "exactly one of --segment" in neither.output
    unknown = invoke("retrieve", "--segment", "Nobody")
    assert unknown.exit_code == 1
    assert "no segment named 'Nobody'" in unknown.output


def test_retrieve_any_content_folder(content_dir: Path):
    result = invoke("retrieve", "--query", "express shipping", "--content", str(content_dir))
    assert result.exit_code == 0, result.output
    assert "GEN-1 ¶2  Shipping" in result.output
