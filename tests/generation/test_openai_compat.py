"""The openai and azure_openai backends against a local Chat Completions server.

The server (fake_chat_server.py) speaks the real wire format on 127.0.0.1 and
injects latency, 429, 500, 400 and hangs; nothing here touches the internet.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from cpo import registry
from cpo.errors import ConfigError
from cpo.generation.base import generate_many
from cpo.generation.openai_compat import (
    AzureOpenAIGenerator,
    AzureOpenAISettings,
    OpenAIGenerator,
    OpenAISettings,
    ReplyFormatError,
    build_messages,
    parse_reply,
)
from cpo.generation.settings import GenerationServiceSettings
from cpo.logs import RunLog
from cpo.models import GenerationRequest

FAST = {"backoff_base_s": 0.05, "timeout_s": 5}


@pytest.fixture
def request_one(helpers, sample_profiles, bundled_folder) -> GenerationRequest:
    profile = sample_profiles[1]
    return GenerationRequest(profile, helpers.snippets_for(profile, bundled_folder), "urgent")


def _openai(helpers, prompts, server, tmp_path, log=None, **service) -> OpenAIGenerator:
    settings = OpenAISettings(
        base_url=f"{server.url}/v1", **{**FAST, "model": "test-model", **service}
    )
    setup = helpers.make_setup(prompts, cache_dir=tmp_path / "cache", log=log)
    return OpenAIGenerator.from_settings(settings, setup)


def test_registry_resolves_both_backends():
    assert registry.get("generation", "openai") is OpenAIGenerator
    assert registry.get("generation", "azure_openai") is AzureOpenAIGenerator
    assert {"grounded", "openai", "azure_openai"} <= set(registry.available("generation"))


def test_a_valid_reply_becomes_a_grounded_variant(
    helpers, prompts, chat_server, tmp_path, request_one
):
    generator = _openai(
        helpers,
        prompts,
        chat_server,
        tmp_path,
        price_per_1k_prompt=0.5,
        price_per_1k_completion=2.0,
    )
    variant = generator.generate(request_one)
    assert variant.status == "generated", variant.error
    assert helpers.violations(variant.subject, variant.body, request_one.snippets) == []
    assert variant.grounding.score == 1.0 and not variant.grounding.invalid_citations
    assert variant.backend == "openai" and variant.model == "test-model"
    assert variant.body.rstrip().endswith(prompts.footer())
    [recorded] = chat_server.state.requests
    assert recorded.path == "/v1/chat/completions"
    assert recorded.body["model"] == "test-model"
    assert recorded.headers["authorization"].startswith("Bearer ")
    messages = recorded.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert (
        "[Source: " in messages[1]["content"] and request_one.segment.name in messages[1]["content"]
    )
    # Token accounting from the server's usage block, and cost from the configured prices.
    prompt_tokens = len("\n".join(m["content"] for m in messages).split())
    assert variant.tokens_prompt == prompt_tokens
    assert variant.tokens_completion > 0
    expected = prompt_tokens / 1000 * 0.5 + variant.tokens_completion / 1000 * 2.0
    assert variant.cost_usd == pytest.approx(expected, rel=1e-6)
    assert generator.usage.api_calls == 1
    assert generator.usage.tokens_prompt == variant.tokens_prompt
    assert generator.usage.cost_usd == pytest.approx(expected, rel=1e-6)


def test_prompt_carries_the_tone_the_constraints_and_the_sources(
    helpers, prompts, request_one, tmp_path
):
    setup = helpers.make_setup(prompts, cache_dir=tmp_path)
    system, user = build_messages(request_one, setup, prompts.footer())
    assert "never invent prices" in system["content"]
    text = user["content"]
    assert prompts.tone("urgent").llm_guidance.split(".")[0] in text
    assert "at most 60 characters" in text
    assert "between 2 and 3 different source paragraphs" in text
    for snippet in request_one.snippets:
        assert f"[Source: {snippet.title}, ¶{snippet.paragraph_index}]" in text
    assert "$" not in text.replace("$", "") or "${" not in text  # every placeholder filled


def test_prompt_names_the_tiers_to_avoid_only_when_there_are_some(
    helpers, prompts, request_one, tmp_path
):
    setup = helpers.make_setup(prompts, cache_dir=tmp_path)
    _, plain = build_messages(request_one, setup, prompts.footer())
    assert "Do not name these tiers" not in plain["content"]
    assert "$audience_rule" not in plain["content"]
    guarded = dataclasses.replace(request_one, avoid_mentions=("Gold", "Platinum"))
    _, user = build_messages(guarded, setup, prompts.footer())
    assert (
        "which not every recipient has, anywhere (subject included): Gold, Platinum."
        in (user["content"])
    )


def test_retries_429_and_500_with_exponential_backoff(
    helpers, prompts, chat_server, tmp_path, request_one
):
    chat_server.state.script = [{"status": 429}, {"status": 500}]
    log = RunLog(None)
    generator = _openai(helpers, prompts, chat_server, tmp_path, log=log, backoff_base_s=0.2)
    variant = generator.generate(request_one)
    assert variant.status == "generated", variant.error
    times = [r.arrived for r in chat_server.state.requests]
    assert len(times) == 3
    # Waits are base * 2**attempt times jitter in [0.5, 1]: >= 0.1 s, then >= 0.2 s.
    assert times[1] - times[0] >= 0.1
    assert times[2] - times[1] >= 0.2
    failures = [e for e in log.events if e["event"] == "api_call_failed"]
    assert [e["status"] for e in failures] == [429, 500]
    assert generator.usage.api_calls == 3


def test_retry_after_from_a_429_is_honoured(helpers, prompts, chat_server, tmp_path, request_one):
    chat_server.state.script = [{"status": 429, "retry_after": "0.6"}]
    generator = _openai(helpers, prompts, chat_server, tmp_path, backoff_base_s=0.0)
    assert generator.generate(request_one).status == "generated"
    first, second = (r.arrived for r in chat_server.state.requests)
    assert second - first >= 0.55


@pytest.mark.parametrize("status", [400, 401, 403])
def test_client_errors_are_not_retried(
    helpers, prompts, chat_server, tmp_path, request_one, status
):
    chat_server.state.script = [{"status": status}]
    generator = _openai(helpers, prompts, chat_server, tmp_path)
    variant = generator.generate(request_one)
    assert variant.status == "failed"
    assert f"HTTP {status}" in variant.error and "after 1 attempt" in variant.error
    assert len(chat_server.state.requests) == 1


def test_gives_up_after_three_attempts(helpers, prompts, chat_server, tmp_path, request_one):
    chat_server.state.script = [{"status": 500}] * 5
    generator = _openai(helpers, prompts, chat_server, tmp_path, max_retries=2)
    variant = generator.generate(request_one)
    assert variant.status == "failed" and "after 3 attempt(s): HTTP 500" in variant.error
    assert len(chat_server.state.requests) == 3


def test_a_hanging_server_times_out_and_is_retried(
    helpers, prompts, chat_server, tmp_path, request_one
):
    chat_server.state.script = [{"hang": 3.0}, {"hang": 3.0}]
    generator = _openai(helpers, prompts, chat_server, tmp_path, timeout_s=0.3, max_retries=1)
    started = time.perf_counter()
    variant = generator.generate(request_one)
    elapsed = time.perf_counter() - started
    assert variant.status == "failed" and "timed out" in variant.error
    assert len(chat_server.state.requests) == 2
    assert elapsed < 2.0  # two 0.3 s timeouts and a short backoff, not the 3 s hangs


def test_a_timeout_then_success_recovers(helpers, prompts, chat_server, tmp_path, request_one):
    chat_server.state.script = [{"hang": 3.0}]
    generator = _openai(helpers, prompts, chat_server, tmp_path, timeout_s=0.3)
    assert generator.generate(request_one).status == "generated"
    assert len(chat_server.state.requests) == 2


def test_concurrency_is_limited(
    helpers, prompts, chat_server, tmp_path, sample_profiles, bundled_folder
):
    chat_server.state.latency_s = 0.25
    requests = helpers.requests_for(sample_profiles, bundled_folder)
    generator = _openai(helpers, prompts, chat_server, tmp_path, concurrency=3)
    started = time.perf_counter()
    variants = generate_many(generator, requests)
    elapsed = time.perf_counter() - started
    assert [v.status for v in variants] == ["generated"] * 12
    assert [(v.segment, v.tone) for v in variants] == [(r.segment.name, r.tone) for r in requests]
    assert chat_server.state.max_in_flight == 3
    assert elapsed >= 4 * 0.25 * 0.95  # 12 requests, 3 at a time


def test_concurrent_requests_overlap(
    helpers, prompts, chat_server, tmp_path, sample_profiles, bundled_folder
):
    chat_server.state.latency_s = 0.4
    requests = helpers.requests_for(sample_profiles, bundled_folder)
    generator = _openai(helpers, prompts, chat_server, tmp_path, concurrency=12)
    started = time.perf_counter()
    generate_many(generator, requests)
    assert time.perf_counter() - started < 12 * 0.4 / 3
    assert chat_server.state.max_in_flight > 3


def test_cache_hits_cost_nothing_and_send_no_request(
    helpers, prompts, chat_server, tmp_path, sample_profiles, bundled_folder
):
    requests = helpers.requests_for(sample_profiles[:2], bundled_folder)
    first = generate_many(
        _openai(helpers, prompts, chat_server, tmp_path, price_per_1k_prompt=1.0), requests
    )
    assert len(chat_server.state.requests) == 6
    assert all(v.cost_usd > 0 and not v.cached for v in first)
    again = _openai(helpers, prompts, chat_server, tmp_path, price_per_1k_prompt=1.0)
    second = generate_many(again, requests)
    assert len(chat_server.state.requests) == 6  # zero new requests
    assert again.usage.api_calls == 0 and again.usage.cache_hits == 6
    for before, after in zip(first, second, strict=True):
        assert (after.subject, after.body, after.variant_id) == (
            before.subject,
            before.body,
            before.variant_id,
        )
        assert after.cached and after.cost_usd == 0 and after.tokens_prompt == 0


def test_cache_key_includes_the_model(helpers, prompts, chat_server, tmp_path, request_one):
    _openai(helpers, prompts, chat_server, tmp_path).generate(request_one)
    _openai(helpers, prompts, chat_server, tmp_path, model="other-model").generate(request_one)
    assert len(chat_server.state.requests) == 2


def test_a_broken_reply_gets_one_repair_attempt(
    helpers, prompts, chat_server, tmp_path, request_one
):
    long_subject = "Subject: " + "An extremely long subject line that goes on " * 3
    chat_server.state.script = [{"content": long_subject + "\nBody:\nHi {first_name}, short."}]
    generator = _openai(helpers, prompts, chat_server, tmp_path)
    variant = generator.generate(request_one)
    assert variant.status == "generated", variant.error
    first, repair = chat_server.state.requests
    messages = repair.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    problems = messages[-1]["content"]
    length = len(long_subject.removeprefix("Subject: ").strip())
    assert f"the subject has {length} characters; the limit is 60" in problems
    assert "it must have 50-200 (aim for 100-200)" in problems
    assert "no call to action" in problems
    # Usage covers both calls.
    assert variant.tokens_prompt == sum(
        len("\n".join(m["content"] for m in r.body["messages"]).split()) for r in (first, repair)
    )


def test_still_broken_after_the_repair_is_recorded_as_failed(
    helpers, prompts, chat_server, tmp_path, request_one
):
    bad = {"content": "Subject: " + "x" * 80 + "\nBody:\nHi {first_name}, too short."}
    chat_server.state.script = [bad, bad]
    variant = _openai(helpers, prompts, chat_server, tmp_path).generate(request_one)
    assert variant.status == "failed"
    assert variant.error.startswith("still invalid after one repair attempt")
    assert "80 characters" in variant.error
    assert len(chat_server.state.requests) == 2


def test_unsupported_claims_are_recorded_after_the_repair(
    helpers, prompts, chat_server, tmp_path, request_one
):
    from cpo_tests_fake_chat_server import valid_email  # loaded by conftest

    def with_claim(action_prompt: str) -> str:
        return valid_email(action_prompt).replace(
            "Here is a quick update",
            "Save 45% with code MEGA45 until June 9, 2031. Here is a quick update",
        )

    # Both replies invent an offer: one repair, then the variant is kept with its grounding.
    chat_server.state.script = []
    generator = _openai(helpers, prompts, chat_server, tmp_path)
    messages = build_messages(request_one, generator.setup, prompts.footer())
    content = with_claim(messages[1]["content"])
    chat_server.state.script = [{"content": content}, {"content": content}]
    variant = generator.generate(request_one)
    assert len(chat_server.state.requests) == 2
    assert variant.status == "generated"
    assert variant.grounding.score < 1.0
    [claim] = variant.grounding.unsupported_claims
    assert "MEGA45" in claim
    repair_prompt = chat_server.state.requests[1].body["messages"][-1]["content"]
    assert "unsupported claim" in repair_prompt and "45%" in repair_prompt


def test_unparseable_reply_is_repaired(helpers, prompts, chat_server, tmp_path, request_one):
    chat_server.state.script = [{"content": "Sure! Here is an email about tents."}]
    variant = _openai(helpers, prompts, chat_server, tmp_path).generate(request_one)
    assert variant.status == "generated", variant.error
    repair_prompt = chat_server.state.requests[1].body["messages"][-1]["content"]
    assert "no 'Subject:' line" in repair_prompt


def test_azure_url_shape_and_key_header(
    helpers, prompts, chat_server, tmp_path, request_one, monkeypatch
):
    monkeypatch.setenv("TEST_AZURE_OPENAI_KEY", "secret-test-key")
    settings = AzureOpenAISettings(
        azure_endpoint=chat_server.url,
        deployment="gpt4o-campaigns",
        api_version="2024-10-21",
        api_key_env="TEST_AZURE_OPENAI_KEY",
        **FAST,
    )
    setup = helpers.make_setup(prompts, cache_dir=tmp_path / "cache")
    chat_server.state.script = [{"status": 503}]
    variant = AzureOpenAIGenerator.from_settings(settings, setup).generate(request_one)
    assert variant.status == "generated", variant.error
    assert variant.backend == "azure_openai" and variant.model == "gpt4o-campaigns"
    for recorded in chat_server.state.requests:
        assert recorded.path == "/openai/deployments/gpt4o-campaigns/chat/completions"
        assert recorded.query["api-version"] == ["2024-10-21"]
        assert recorded.headers["api-key"] == "secret-test-key"
    assert len(chat_server.state.requests) == 2


def test_missing_key_for_the_official_endpoint_is_a_config_error(
    helpers, prompts, tmp_path, monkeypatch
):
    monkeypatch.delenv("NO_SUCH_KEY_FOR_TESTS", raising=False)
    settings = OpenAISettings(api_key_env="NO_SUCH_KEY_FOR_TESTS")
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_FOR_TESTS"):
        OpenAIGenerator.from_settings(settings, helpers.make_setup(prompts, cache_dir=tmp_path))


def test_azure_settings_need_endpoint_and_deployment(helpers, prompts):
    from cpo.generation.settings import GenerationServiceSettings

    with pytest.raises(ValueError, match="azure_openai.azure_endpoint"):
        GenerationServiceSettings(backend="azure_openai")
    with pytest.raises(ValueError, match="azure_openai.deployment") as caught:
        GenerationServiceSettings(
            backend="azure_openai", azure_openai={"azure_endpoint": "https://x.example"}
        )
    assert "azure_endpoint" not in str(caught.value)
    assert GenerationServiceSettings(backend="grounded").backend == "grounded"  # unselected: fine
    with pytest.raises(ConfigError, match="services.generation.azure_openai.deployment"):
        AzureOpenAIGenerator.from_settings(
            AzureOpenAISettings(azure_endpoint="https://x.example"), helpers.make_setup(prompts)
        )


@pytest.mark.parametrize(
    ("reply", "subject", "body_start"),
    [
        ("Subject: Hello\nBody:\nHi {first_name},\nText.", "Hello", "Hi {first_name},"),
        ('**Subject:** "Hello"\n\n**Body:**\nHi there.', "Hello", "Hi there."),
        ("```\nSubject: Hello\nBody: Hi there.\nMore.\n```", "Hello", "Hi there.\nMore."),
        ("subject: Hello\nHi there.\nUnsubscribe here: x", "Hello", "Hi there."),
    ],
)
def test_parse_reply_tolerates_common_formats(reply, subject, body_start):
    parsed_subject, body = parse_reply(reply)
    assert parsed_subject == subject
    assert body.startswith(body_start)
    assert "Unsubscribe" not in body


@pytest.mark.parametrize("reply", ["Just an email.", "Subject: Hi\nBody:\n   "])
def test_parse_reply_rejects_replies_without_subject_or_body(reply):
    with pytest.raises(ReplyFormatError):
        parse_reply(reply)


def test_missing_openai_package_is_a_clean_backend_unavailable(monkeypatch, helpers, prompts):
    import sys

    from cpo.errors import BackendUnavailable

    monkeypatch.setitem(sys.modules, "openai", None)
    monkeypatch.delitem(sys.modules, "cpo.generation.openai_compat")
    monkeypatch.setitem(
        registry._REGISTRY,
        ("generation", "openai"),
        registry.Registration(
            "generation", "openai", "cpo.generation.openai_compat:OpenAIGenerator", "openai"
        ),
    )
    # The module (and its settings) load without the SDK, so the config validates...
    service = GenerationServiceSettings(backend="openai")
    assert service.selected.model == "gpt-4o-mini"
    # ...and building the backend names the package and the extra from the registration.
    with pytest.raises(BackendUnavailable) as caught:
        registry.build("generation", "openai", service.selected, helpers.make_setup(prompts))
    assert "needs the package 'openai'" in str(caught.value)
    assert "pip install 'cpo[openai]'" in caught.value.hint
