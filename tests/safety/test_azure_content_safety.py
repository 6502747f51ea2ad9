"""The Azure AI Content Safety backend against a local server speaking the REST protocol.

Wire format from the service's REST reference (api-version 2023-10-01):
``POST {endpoint}/contentsafety/text:analyze?api-version=...`` with body
``{"text", "categories", "blocklistNames", "haltOnBlocklistHit", "outputType"}``,
key in ``Ocp-Apim-Subscription-Key``; answer ``{"blocklistsMatch": [...],
"categoriesAnalysis": [{"category", "severity"}]}``.
"""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from cpo.errors import BackendError, ConfigError
from cpo.safety.azure_content_safety import AzureContentSafetyAnalyzer, split_text
from cpo.safety.base import build_analyzer
from cpo.safety.policy import decide
from cpo.safety.settings import SafetyPolicySettings, SafetyServiceSettings
from cpo.safety.stage import analyze_safely

KEY_ENV = "CPO_TEST_CONTENT_SAFETY_KEY"


def analyzer_for(server, *, key=None, sleeps=None, **options) -> AzureContentSafetyAnalyzer:
    """An analyzer aimed at the fake server, with fast retries."""
    defaults = {"timeout_s": 2.0, "connect_timeout_s": 1.0, "max_retries": 2}
    defaults.update(options)
    return AzureContentSafetyAnalyzer(
        server.url,
        key or server.key,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **defaults,
    )


def test_eight_severity_levels_map_to_category_scores(content_safety_server):
    scores = analyzer_for(content_safety_server).analyze(
        "Storm warning [violence:5] [hate:1] [self_harm:3] [sexual:7]"
    )
    assert scores.severities() == {"hate": 1, "violence": 5, "self_harm": 3, "sexual": 7}
    request = content_safety_server.requests[0]
    assert request["path"] == "/contentsafety/text:analyze"
    assert request["query"]["api-version"] == ["2023-10-01"]
    assert request["key"] == content_safety_server.key
    assert request["body"]["outputType"] == "EightSeverityLevels"
    assert sorted(request["body"]["categories"]) == ["Hate", "SelfHarm", "Sexual", "Violence"]
    assert request["body"]["haltOnBlocklistHit"] is False
    assert "blocklistNames" not in request["body"]


def test_blocklist_hits_are_reported(content_safety_server, kit):
    content_safety_server.blocklists = {"brand-terms": ["cheapo"], "legal": ["lawsuit"]}
    analyzer = analyzer_for(content_safety_server, blocklists=("brand-terms", "legal"))
    scores = analyzer.analyze("Our CHEAPO tents are back")
    assert scores.blocklist_hits == ("brand-terms",)
    assert scores.matches == ("blocklist brand-terms: cheapo",)
    assert content_safety_server.requests[0]["body"]["blocklistNames"] == ["brand-terms", "legal"]
    verdict = decide(scores, kit.make_variant("v1", "Our CHEAPO tents"), SafetyPolicySettings())
    assert verdict.status == "block"
    assert "blocklist hit: brand-terms" in verdict.reasons


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_statuses_are_retried(content_safety_server, status):
    content_safety_server.script = [status, "ok"]
    sleeps: list[float] = []
    scores = analyzer_for(content_safety_server, sleeps=sleeps).analyze("[violence:2] hello")
    assert scores.violence == 2
    assert len(content_safety_server.requests) == 2
    assert len(sleeps) == 1


def test_retry_after_header_is_honoured(content_safety_server):
    content_safety_server.script = [429, "ok"]
    content_safety_server.retry_after = "3"
    sleeps: list[float] = []
    analyzer_for(content_safety_server, sleeps=sleeps).analyze("hello")
    assert sleeps == [3.0]


def test_retries_stop_after_max_retries(content_safety_server):
    content_safety_server.script = [500, 500, 500, 500]
    with pytest.raises(BackendError, match=r"after 3 attempt\(s\): HTTP 500"):
        analyzer_for(content_safety_server, max_retries=2).analyze("hello")
    assert len(content_safety_server.requests) == 3


@pytest.mark.parametrize("status", [400, 403])
def test_client_errors_are_not_retried(content_safety_server, status):
    content_safety_server.script = [status]
    with pytest.raises(BackendError, match=f"after 1 attempt\\(s\\): HTTP {status}"):
        analyzer_for(content_safety_server).analyze("hello")
    assert len(content_safety_server.requests) == 1


def test_wrong_key_is_401_and_not_retried(content_safety_server):
    with pytest.raises(BackendError, match="HTTP 401") as raised:
        analyzer_for(content_safety_server, key="wrong").analyze("hello")
    assert len(content_safety_server.requests) == 1
    assert "wrong" not in str(raised.value)
    assert "API key" in str(raised.value)


def test_hang_times_out_then_retries_then_fails(content_safety_server):
    content_safety_server.script = ["hang", "hang"]
    analyzer = analyzer_for(content_safety_server, timeout_s=0.3, max_retries=1)
    began = time.perf_counter()
    with pytest.raises(BackendError, match="after 2 attempt"):
        analyzer.analyze("hello")
    assert time.perf_counter() - began < 2.5
    assert len(content_safety_server.requests) == 2


def test_hang_becomes_block_with_screening_error(content_safety_server, kit):
    content_safety_server.script = ["hang"]
    analyzer = analyzer_for(content_safety_server, timeout_s=0.3, max_retries=0)
    screened = analyze_safely(analyzer, "hello")
    verdict = decide(
        screened.scores, kit.make_variant("v1"), SafetyPolicySettings(), error=screened.error
    )
    assert verdict.status == "block"
    assert verdict.reasons[0].startswith("screening_error: BackendError: ")
    assert "timeout" in verdict.reasons[0]


def test_unreachable_endpoint_is_a_retried_connection_error():
    analyzer = AzureContentSafetyAnalyzer(
        "http://127.0.0.1:9", "k", max_retries=1, connect_timeout_s=0.5, sleep=lambda s: None
    )
    with pytest.raises(BackendError, match="after 2 attempt"):
        analyzer.analyze("hello")


def test_long_text_is_split_and_the_highest_severity_wins(content_safety_server):
    text = ("calm words " * 700) + "[violence:6] " + ("more calm words " * 600) + "[hate:3]"
    assert len(text) > 10_000
    scores = analyzer_for(content_safety_server).analyze(text)
    assert (scores.violence, scores.hate) == (6, 3)
    sent = [r["body"]["text"] for r in content_safety_server.requests]
    assert len(sent) >= 2
    assert all(len(piece) <= 10_000 for piece in sent)


def test_split_text_overlaps_so_a_cut_phrase_is_seen_whole():
    text = "a " * 40 + "I will hurt you" + " b" * 40
    pieces = split_text(text, limit=60, overlap=20)
    assert all(len(p) <= 60 for p in pieces)
    assert any("I will hurt you" in p for p in pieces)
    assert split_text("   \n ") == []


def test_incomplete_response_fails_closed(content_safety_server, monkeypatch):
    original = content_safety_server.analyze

    def without_sexual(body):
        status, payload = original(body)
        payload["categoriesAnalysis"] = [
            c for c in payload["categoriesAnalysis"] if c["category"] != "Sexual"
        ]
        return status, payload

    monkeypatch.setattr(content_safety_server, "analyze", without_sexual)
    with pytest.raises(BackendError, match="no severity for sexual"):
        analyzer_for(content_safety_server).analyze("hello")


def test_factory_builds_from_settings_with_key_from_environment(content_safety_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, content_safety_server.key)
    settings = SafetyServiceSettings(
        backend="azure_content_safety",
        azure_content_safety={"endpoint": content_safety_server.url, "api_key_env": KEY_ENV},
    )
    analyzer = build_analyzer(settings)
    assert isinstance(analyzer, AzureContentSafetyAnalyzer)
    assert analyzer.analyze("[sexual:4]").sexual == 4


def test_factory_names_the_missing_key_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    settings = SafetyServiceSettings(
        backend="azure_content_safety",
        azure_content_safety={"endpoint": "https://x.example", "api_key_env": KEY_ENV},
    )
    with pytest.raises(ConfigError, match=KEY_ENV):
        build_analyzer(settings)


def test_factory_requires_an_endpoint(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    settings = SafetyServiceSettings(
        backend="azure_content_safety", azure_content_safety={"api_key_env": KEY_ENV}
    )
    with pytest.raises(ConfigError, match=r"services\.safety\.azure_content_safety\.endpoint"):
        build_analyzer(settings)


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(
        ValidationError, match="unknown safety backend; choose one of: azure_content_safety, local"
    ):
        SafetyServiceSettings(backend="nope")
    # an override that skips validation (cpo screen --backend) is refused when built
    settings = SafetyServiceSettings().model_copy(update={"backend": "nope"})
    with pytest.raises(ConfigError, match="azure_content_safety"):
        build_analyzer(settings)
