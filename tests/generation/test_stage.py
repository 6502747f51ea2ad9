"""The generate stage in the pipeline, variants.json, and `cpo generate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cpo.brand import BrandSettings
from cpo.cli import cli
from cpo.config import Config, init_config, load_config
from cpo.errors import ConfigError
from cpo.generation.stage import GenerateStage
from cpo.pipeline import default_stages, run_pipeline
from cpo.retrieval.stage import RetrieveStage
from cpo.run_folder import segment_snippets
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

FIELDS = {
    "variant_id",
    "segment",
    "tone",
    "subject",
    "body",
    "citations",
    "grounding",
    "backend",
    "model",
    "prompt_sha256",
    "retrieved_document_ids",
    "tokens_prompt",
    "tokens_completion",
    "cost_usd",
    "latency_ms",
    "generated_at",
    "status",
    "error",
}


def _stages():
    return [SegmentStage(), RetrieveStage(), GenerateStage()]


def _run(out: Path, config=None, **options) -> dict:
    return run_pipeline(out, config, RunOptions(**options), stages=_stages())


def _brand_config(tmp_path: Path, site: str = "https://example.test") -> Config:
    """A config written by `cpo init --brand` for the test content's brand."""
    # sign_off "{brand}": the northwind At-Risk content sits at the 30% quoted-share limit,
    # so the default "The {brand} team" (one word longer) leaves two tones short of it.
    brand = BrandSettings(
        name="Northwind", site_url=site, unsubscribe_url=f"{site}/unsub", sign_off="{brand}"
    )
    init_config(tmp_path / "brand-config", brand=brand)
    return load_config(tmp_path / "brand-config")


def _check_run(helpers, run_dir: Path, allow_failed: bool = False) -> dict:
    """The 'What it must show' checks against the run's own retrieval.json."""
    variants = json.loads((run_dir / "variants.json").read_text())
    retrieval = json.loads((run_dir / "retrieval.json").read_text())
    profiles = json.loads((run_dir / "segment_profiles.json").read_text())["segments"]
    names = [p["name"] for p in profiles]
    records = variants["variants"]
    control = [r for r in records if r["variant_id"] == "control"]
    assert len(control) == 1 and control[0]["segment"] == "all" and control[0]["tone"] == "control"
    treatments = [r for r in records if r["variant_id"] != "control"]
    assert sorted((r["segment"], r["tone"]) for r in treatments) == sorted(
        (n, t) for n in names for t in ("urgent", "informational", "friendly")
    )
    for record in records:
        assert set(record) >= FIELDS, FIELDS - set(record)
    for record in treatments:
        if record["status"] != "generated":
            assert allow_failed and record["error"] and not record["body"]
            continue
        snippets = segment_snippets(retrieval, record["segment"])
        assert helpers.violations(record["subject"], record["body"], snippets) == [], record
        assert record["grounding"]["score"] == 1.0
        assert record["grounding"]["invalid_citations"] == []
        assert record["retrieved_document_ids"] == list(
            dict.fromkeys(s.document_id for s in snippets)
        )
        assert re.fullmatch(r"v-[0-9a-f]{12}", record["variant_id"])
    return variants


def test_run_on_bundled_data_writes_all_variants_and_the_control(helpers, tmp_path):
    manifest = _run(tmp_path / "run")
    variants = _check_run(helpers, tmp_path / "run")
    assert variants["backend"] == "grounded" and variants["counts"] == {
        "requested": 12,
        "generated": 12,
        "failed": 0,
        "control": 1,
    }
    assert variants["variants"][0]["variant_id"] == "control"
    stage = manifest["stages"]["generate"]
    assert stage["status"] == "completed" and stage["facts"]["generated"] == 12
    assert manifest["totals"]["api_calls"] == 0 and manifest["totals"]["cost_usd"] == 0
    log = (tmp_path / "run" / "logs" / "system.log").read_text()
    assert log.count('"event": "variant_generated"') == 13
    assert "Summit Ridge" not in log  # no message text in the log


def test_generate_is_in_the_default_pipeline_after_retrieve():
    names = [stage.name for stage in default_stages()]
    assert names.index("generate") == names.index("retrieve") + 1


def test_artifacts_are_deterministic(tmp_path):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    first = json.loads((tmp_path / "a" / "variants.json").read_text())["variants"]
    second = json.loads((tmp_path / "b" / "variants.json").read_text())["variants"]

    def strip(rs):
        return [{k: v for k, v in r.items() if k not in ("generated_at", "latency_ms")} for r in rs]

    assert strip(first) == strip(second)


@pytest.mark.parametrize("brand", ["northwind", "bakery"])
def test_run_on_another_brands_content(helpers, tmp_path, brand, northwind_content, bakery_content):
    content = northwind_content if brand == "northwind" else bakery_content
    _run(tmp_path / "run", _brand_config(tmp_path), content=content)
    variants = _check_run(helpers, tmp_path / "run")
    assert variants["counts"]["failed"] == 0
    for record in variants["variants"]:
        assert "fernleaf" not in (record["subject"] + record["body"]).lower()
        assert record["body"].endswith("Unsubscribe: https://example.test/unsub")


def _link_warnings(run: Path) -> list[dict]:
    lines = (run / "logs/system.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "prompt_links_elsewhere"]


def test_the_sample_brand_on_other_content_stops_the_run_before_any_stage(
    tmp_path, northwind_content
):
    with pytest.raises(ConfigError, match="not the bundled sample brand's") as caught:
        _run(tmp_path / "other", content=northwind_content)
    assert "experiment_config.yaml (brand.name" in caught.value.message
    assert "cpo init NEW_DIR --brand NAME" in str(caught.value)
    assert not (tmp_path / "other" / "segments.csv").exists()


def test_prompts_linking_to_a_site_the_content_is_not_from_are_flagged(tmp_path, northwind_content):
    _run(
        tmp_path / "other",
        _brand_config(tmp_path, "https://elsewhere.test"),
        content=northwind_content,
    )
    flagged = {e["prompt"] for e in _link_warnings(tmp_path / "other")}
    assert flagged == {"control_message.txt", "footer.txt"}
    _run(tmp_path / "own")
    assert _link_warnings(tmp_path / "own") == []


def test_a_segment_with_too_little_content_fails_and_the_run_goes_on(helpers, tmp_path):
    content = helpers.write_content(
        tmp_path / "thin",
        {
            "T-1": (
                "Trail Socks",
                "product",
                "All",
                ["socks", "value"],
                ["Trail socks keep feet dry on long hikes."],
            ),
            "T-2": (
                "Camp Mugs",
                "product",
                "All",
                ["mugs", "value"],
                # A relative-time deadline with no date is never quoted: one
                # quotable sentence in all, and two are needed.
                ["Camp mugs are half price this weekend only."],
            ),
        },
        with_urls=False,
    )
    manifest = _run(tmp_path / "run", _brand_config(tmp_path), content=content)
    variants = _check_run(helpers, tmp_path / "run", allow_failed=True)
    assert variants["counts"]["failed"] == 12
    assert all("too little approved content" in r["error"] for r in variants["variants"][1:])
    assert manifest["status"] == "completed"
    assert "12 failed" in manifest["stages"]["generate"]["summary"]


def test_resume_skips_an_unchanged_generate_stage(tmp_path):
    _run(tmp_path / "run")
    before = (tmp_path / "run" / "variants.json").read_bytes()
    manifest = run_pipeline(tmp_path / "run", resume=True, stages=_stages())
    assert manifest["stages"]["generate"]["status"] == "completed"
    assert (tmp_path / "run" / "variants.json").read_bytes() == before


def _openai_config(tmp_path: Path, server, **extra) -> Path:
    config_dir = tmp_path / "config"
    init_config(config_dir)
    path = config_dir / "azure_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"]["generation"]["backend"] = "openai"
    data["services"]["generation"]["openai"].update(
        base_url=f"{server.url}/v1",
        model="local-model",
        cache_dir=str(tmp_path / "cache"),
        price_per_1k_prompt=0.01,
        price_per_1k_completion=0.02,
        backoff_base_s=0.01,
        **extra,
    )
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config_dir


def test_openai_backend_in_the_pipeline_records_usage_and_reuses_the_cache(
    helpers, tmp_path, chat_server
):
    config = load_config(_openai_config(tmp_path, chat_server))
    chat_server.state.script = [{"status": 500}]
    manifest = _run(tmp_path / "run", config)
    variants = _check_run(helpers, tmp_path / "run")
    assert variants["backend"] == "openai" and variants["model"] == "local-model"
    assert len(chat_server.state.requests) == 13  # 12 + one retry
    totals = manifest["totals"]
    assert totals["api_calls"] == 13
    treatments = variants["variants"][1:]
    assert totals["tokens_prompt"] == sum(r["tokens_prompt"] for r in treatments) > 0
    assert totals["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in treatments), abs=1e-6)
    assert variants["usage"]["cost_usd"] > 0

    rerun = run_pipeline(tmp_path / "run", config, RunOptions(), force=True, stages=_stages())
    assert len(chat_server.state.requests) == 13  # every reply came from the cache
    cached = json.loads((tmp_path / "run" / "variants.json").read_text())
    assert all(r["cached"] and r["cost_usd"] == 0 for r in cached["variants"][1:])
    assert rerun["totals"]["api_calls"] == 0 and rerun["totals"]["cost_usd"] == 0
    assert [r["body"] for r in cached["variants"]] == [r["body"] for r in variants["variants"]]


def test_api_failures_become_failed_variants_and_the_run_goes_on(helpers, tmp_path, chat_server):
    config = load_config(_openai_config(tmp_path, chat_server, concurrency=1))
    chat_server.state.script = [{"status": 400}]
    manifest = _run(tmp_path / "run", config)
    variants = _check_run(helpers, tmp_path / "run", allow_failed=True)
    assert variants["counts"]["failed"] == 1 and variants["counts"]["generated"] == 11
    [failed] = [r for r in variants["variants"] if r["status"] == "failed"]
    assert "HTTP 400" in failed["error"]
    assert manifest["status"] == "completed"


# ----------------------------------------------------------------------------- CLI


def test_cli_generate_prints_one_variant():
    result = CliRunner().invoke(cli, ["generate", "--segment", "At-Risk", "--tone", "urgent"])
    assert result.exit_code == 0, result.output
    assert "At-Risk / urgent" in result.output and "Subject: " in result.output
    assert "[Source: " in result.output and "grounding 1.00" in result.output


def test_cli_generate_json_on_other_content(helpers, northwind_content):
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--segment",
            "new customer",
            "--tone",
            "friendly",
            "--content",
            str(northwind_content),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    variant = payload["variant"]
    assert variant["segment"] == "New Customer" and variant["status"] == "generated"
    assert variant["citations"] and all(
        c["document_id"].startswith("NW-") for c in variant["citations"]
    )
    assert payload["query"]


def test_cli_generate_from_a_run_folder(tmp_path):
    _run(tmp_path / "run")
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--segment",
            "Standard",
            "--tone",
            "informational",
            "--run",
            str(tmp_path / "run"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    variant = json.loads(result.output)["variant"]
    stored = json.loads((tmp_path / "run" / "variants.json").read_text())["variants"]
    [same] = [r for r in stored if (r["segment"], r["tone"]) == ("Standard", "informational")]
    assert variant["body"] == same["body"] and variant["variant_id"] == same["variant_id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "Nobody", "--tone", "urgent"], "no segment named 'Nobody'"),
        (["--segment", "At-Risk", "--tone", "shouty"], "unknown tone 'shouty'"),
    ],
)
def test_cli_generate_errors(args, message):
    result = CliRunner().invoke(cli, ["generate", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_cli_generate_exits_1_for_a_failed_variant(helpers, tmp_path):
    content = helpers.write_content(
        tmp_path / "thin",
        {"T-1": ("Trail Socks", "product", "All", ["socks"], ["Trail socks keep feet dry."])},
        with_urls=False,
    )
    result = CliRunner().invoke(
        cli, ["generate", "--segment", "Standard", "--tone", "urgent", "--content", str(content)]
    )
    assert result.exit_code == 1
    assert "too little approved content" in result.output
