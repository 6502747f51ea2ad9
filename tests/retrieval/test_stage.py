"""The retrieve stage inside the pipeline."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from cpo.config import Config, load_config
from cpo.errors import StageError
from cpo.pipeline import default_stages, run_pipeline
from cpo.retrieval.settings import RetrievalServiceSettings
from cpo.retrieval.stage import RetrieveStage
from cpo.run_folder import segment_snippets
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

AS_OF = date(2026, 11, 26)


def configured(
    as_of: date | None = AS_OF, retrieval: dict | None = None, method: str | None = None
) -> Config:
    """The packaged config with a fixed as-of date and optional overrides."""
    config = load_config()
    experiment = config.experiment
    campaign = experiment.campaign.model_copy(update={"as_of": as_of})
    updates: dict = {"campaign": campaign}
    if method:
        updates["segmentation"] = experiment.segmentation.model_copy(update={"method": method})
    services = config.services
    if retrieval:
        section = {**services.retrieval.model_dump(), **retrieval}
        new_retrieval = RetrievalServiceSettings.model_validate(section)
        services = services.model_copy(update={"retrieval": new_retrieval})
    return dataclasses.replace(
        config, experiment=experiment.model_copy(update=updates), services=services
    )


def run(run_dir: Path, config: Config | None = None, **options) -> dict:
    return run_pipeline(
        run_dir,
        config or configured(),
        RunOptions(**options),
        stages=[SegmentStage(), RetrieveStage()],
    )


def test_retrieve_follows_segment_in_the_default_stages():
    names = [stage.name for stage in default_stages()]
    assert names[:2] == ["segment", "retrieve"]


def test_stage_writes_retrieval_json_for_every_segment(tmp_path: Path):
    manifest = run(tmp_path / "run")
    assert manifest["status"] == "completed"
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    assert data["backend"] == "sqlite_fts"
    assert data["as_of"] == "2026-11-26"
    assert data["documents"] == 39
    assert data["excluded"] == [{"document_id": "FERN-PRM-011", "reason": "expired 2025-12-31"}]
    assert len(data["content_sha256"]) == 64
    profiles = json.loads((tmp_path / "run" / "segment_profiles.json").read_text("utf-8"))
    assert [s["segment"] for s in data["segments"]] == [p["name"] for p in profiles["segments"]]
    for entry in data["segments"]:
        assert 3 <= len(entry["results"]) <= 5
        assert not entry["fallback"] and entry["warnings"] == []
        assert entry["filters"] == {"audience": [entry["segment"], "All"]}
        for result in entry["results"]:
            assert result["paragraph_index"] >= 1
            assert result["score"] >= 2.0
            assert result["document_id"] != "FERN-PRM-011"
    assert (tmp_path / "run" / "content_index.sqlite").is_file()


def test_manifest_records_the_content_and_logs_record_every_query(tmp_path: Path):
    manifest = run(tmp_path / "run")
    content = manifest["inputs"]["content"]
    assert content["documents"] == 39 and content["excluded_expired"] == 1
    assert content["path"].endswith("content") and len(content["sha256"]) == 64
    facts = manifest["stages"]["retrieve"]["facts"]
    assert facts["backend"] == "sqlite_fts" and facts["index"] == "built"
    events = [
        json.loads(line)
        for line in (tmp_path / "run" / "logs" / "system.log").read_text("utf-8").splitlines()
    ]
    queries = [e for e in events if e["event"] == "retrieval_query"]
    assert len(queries) == 4
    assert all(q["results"] and q["query"] for q in queries)
    assert any(e["event"] == "document_excluded" for e in events)


def test_generation_can_load_snippets_from_the_run(tmp_path: Path):
    run(tmp_path / "run")
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    snippets = segment_snippets(data, "At-Risk")
    assert snippets and all(s.text and s.title for s in snippets)
    assert snippets[0].score >= snippets[-1].score


def test_same_inputs_give_identical_retrieval_json(tmp_path: Path):
    run(tmp_path / "a")
    run(tmp_path / "b")
    first = (tmp_path / "a" / "retrieval.json").read_bytes()
    assert first == (tmp_path / "b" / "retrieval.json").read_bytes()


def test_resume_skips_unchanged_and_reruns_after_a_content_change(
    tmp_path: Path, sample_content_dir: Path
):
    run_dir = tmp_path / "run"
    config = configured()
    options = RunOptions(content=sample_content_dir)
    stages = [SegmentStage(), RetrieveStage()]
    run_pipeline(run_dir, config, options, stages=stages)
    again = run_pipeline(run_dir, config, options, resume=True, stages=stages)
    assert again["stages"]["retrieve"]["facts"]["index"] == "built"  # kept from the first run
    log = (run_dir / "logs" / "system.log").read_text("utf-8")
    assert log.count('"event": "stage_skipped"') == 2
    (sample_content_dir / "FERN-PRD-012.json").unlink()
    after = run_pipeline(run_dir, config, options, resume=True, stages=stages)
    assert after["stages"]["retrieve"]["facts"]["index"] == "built"
    data = json.loads((run_dir / "retrieval.json").read_text(encoding="utf-8"))
    assert data["documents"] == 38
    ids = {r["document_id"] for s in data["segments"] for r in s["results"]}
    assert "FERN-PRD-012" not in ids


def test_shared_index_file_from_config_is_reused(tmp_path: Path):
    shared = tmp_path / "shared" / "index.sqlite"
    config = configured(retrieval={"sqlite_fts": {"db_path": str(shared)}})
    run(tmp_path / "a", config)
    second = run(tmp_path / "b", config)
    assert second["stages"]["retrieve"]["facts"]["index"] == "reused"
    assert second["stages"]["retrieve"]["facts"]["index_location"] == str(shared)
    assert not (tmp_path / "b" / "content_index.sqlite").exists()


def test_as_of_makes_an_old_run_reproducible(tmp_path: Path):
    run(tmp_path / "run", configured(as_of=date(2025, 12, 1)))
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    assert data["as_of"] == "2025-12-01"
    assert data["documents"] == 40 and data["excluded"] == []


def test_kmeans_segments_get_content_too(tmp_path: Path):
    run(tmp_path / "run", configured(method="kmeans"))
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    names = [s["segment"] for s in data["segments"]]
    assert "At-Risk" not in names
    assert all(len(s["results"]) >= 3 for s in data["segments"])


def test_invalid_content_fails_the_stage_naming_the_file(tmp_path: Path, sample_content_dir: Path):
    bad = sample_content_dir / "FERN-SUP-001.json"
    record = json.loads(bad.read_text(encoding="utf-8"))
    record["category"] = ""
    bad.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(StageError) as caught:
        run(tmp_path / "run", content=sample_content_dir)
    assert "stage 'retrieve' failed" in str(caught.value)
    assert "FERN-SUP-001.json: field 'category'" in str(caught.value)


def test_stage_with_the_azure_backend(tmp_path: Path, azure_search, monkeypatch):
    monkeypatch.setenv("CPO_TEST_SEARCH_KEY", "test-key")
    config = configured(
        retrieval={
            "backend": "azure_search",
            "azure_search": {
                "endpoint": azure_search.endpoint,
                "index_name": "cpo-stage",
                "api_key_env": "CPO_TEST_SEARCH_KEY",
            },
        }
    )
    manifest = run(tmp_path / "run", config)
    assert manifest["stages"]["retrieve"]["facts"]["backend"] == "azure_search"
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    assert data["backend"] == "azure_search"
    assert all(entry["results"] for entry in data["segments"])
    assert len(azure_search.docs["cpo-stage"]) == 117
    log = (tmp_path / "run" / "logs" / "system.log").read_text("utf-8")
    assert "test-key" not in log
    assert '"event": "api_call"' in log


def test_a_small_unrelated_content_folder_falls_back_with_warnings(
    tmp_path: Path, content_dir: Path
):
    manifest = run(tmp_path / "run", content=content_dir)
    assert manifest["status"] == "completed"
    data = json.loads((tmp_path / "run" / "retrieval.json").read_text(encoding="utf-8"))
    assert data["documents"] == 3
    for entry in data["segments"]:
        assert entry["results"], entry["segment"]
        if entry["fallback"]:
            assert entry["warnings"]
            assert {r["audience"] for r in entry["results"]} <= {"All"} | {entry["segment"]}
    assert manifest["stages"]["retrieve"]["facts"]["fallback_segments"]
    log = (tmp_path / "run" / "logs" / "system.log").read_text("utf-8")
    assert '"event": "retrieval_fallback"' in log
