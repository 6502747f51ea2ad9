"""The Azure AI Search backend against a local server speaking the REST protocol.

azure-core sends an ``AzureKeyCredential`` (header ``api-key``) over plain http: only
bearer-token authentication insists on https. So the fake service is plain http on
127.0.0.1 and no TLS certificate is needed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cpo.errors import BackendError, ConfigError
from cpo.logs import RunLog
from cpo.retrieval.azure_search import (
    AzureSearchRetriever,
    AzureSearchSettings,
    odata_string,
    unit_key,
)
from cpo.retrieval.base import IndexUnit
from cpo.retrieval.content import load_content
from cpo.retrieval.settings import ContentSettings

AS_OF = date(2026, 11, 26)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CPO_TEST_SEARCH_KEY", "test-key")
    return "test-key"


def make_retriever(fake, log: RunLog | None = None, **overrides) -> AzureSearchRetriever:
    settings = {
        "endpoint": fake.endpoint,
        "index_name": "cpo-test",
        "api_key_env": "CPO_TEST_SEARCH_KEY",
        "timeout_s": 2.0,
        "connect_timeout_s": 2.0,
        "max_retries": 2,
        **overrides,
    }
    sleeps: list[float] = []
    retriever = AzureSearchRetriever(
        AzureSearchSettings(**settings), ContentSettings(), log, sleep=sleeps.append
    )
    retriever.sleeps = sleeps  # type: ignore[attr-defined]
    return retriever


def many_docs(folder: Path, count: int, make_doc, write_doc) -> Path:
    for number in range(count):
        write_doc(
            folder,
            make_doc(
                f"D-{number:04d}",
                title=f"Trail guide {number}",
                content=f"Paragraph one of guide {number}.\n\nParagraph two of guide {number}.",
            ),
        )
    return folder


def test_index_creates_the_schema_with_semantic_configuration_and_weights(
    azure_search, api_key, content_dir: Path
):
    retriever = make_retriever(azure_search)
    report = retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert report.built and report.paragraphs == 5
    put = azure_search.calls("index")[0]
    assert put["method"] == "PUT" and put["index"] == "cpo-test"
    assert put["api_key"] == "test-key"
    assert "api-version=" in put["path"]
    schema = put["body"]
    fields = {f["name"]: f for f in schema["fields"]}
    for name in (
        "id",
        "document_id",
        "title",
        "paragraph_index",
        "content",
        "category",
        "audience",
        "keywords",
    ):
        assert name in fields
    assert fields["id"]["key"] is True
    assert fields["paragraph_index"]["type"] == "Edm.Int32"
    assert fields["keywords"]["type"] == "Collection(Edm.String)"
    assert fields["content"]["searchable"] is True
    semantic = schema["semantic"]["configurations"][0]
    assert semantic["name"] == "cpo-semantic"
    assert semantic["prioritizedFields"]["titleField"]["fieldName"] == "title"
    weights = schema["scoringProfiles"][0]["text"]["weights"]
    assert weights == {"title": 3.0, "keywords": 4.0, "content": 1.0}
    assert schema["defaultScoringProfile"] == schema["scoringProfiles"][0]["name"]


def test_upload_goes_in_batches_of_100(azure_search, api_key, tmp_path: Path, make_doc, write_doc):
    folder = many_docs(tmp_path / "c", 125, make_doc, write_doc)  # 250 paragraphs
    retriever = make_retriever(azure_search)
    report = retriever.index(load_content(folder, as_of=AS_OF).documents)
    sizes = [len(call["body"]["value"]) for call in azure_search.calls("docs")]
    assert sizes == [100, 100, 50]
    assert report.paragraphs == 250
    assert len(azure_search.docs["cpo-test"]) == 250
    actions = {a["@search.action"] for c in azure_search.calls("docs") for a in c["body"]["value"]}
    assert actions == {"mergeOrUpload"}


def test_reindexing_unchanged_content_uploads_nothing(azure_search, api_key, content_dir: Path):
    documents = load_content(content_dir, as_of=AS_OF).documents
    make_retriever(azure_search).index(documents)
    uploads = len(azure_search.calls("docs"))
    again = make_retriever(azure_search).index(documents)
    assert not again.built
    assert len(azure_search.calls("docs")) == uploads


def test_changed_content_replaces_stale_paragraphs(
    azure_search, api_key, content_dir: Path, make_doc, write_doc
):
    make_retriever(azure_search).index(load_content(content_dir, as_of=AS_OF).documents)
    (content_dir / "FAN-1.json").unlink()
    write_doc(content_dir, make_doc("NEW-1", title="Kayaks", content="Sit-on-top kayaks."))
    retriever = make_retriever(azure_search)
    report = retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert report.built
    stored = {d["document_id"] for d in azure_search.docs["cpo-test"].values()}
    assert stored == {"GEN-1", "GEN-2", "NEW-1"}
    assert retriever.search("loyalty points", 5) == []
    assert [s.document_id for s in retriever.search("kayaks", 5)] == ["NEW-1"]


def test_semantic_query_with_filters_gives_snippets_with_boosted_scores(
    azure_search, api_key, content_dir: Path
):
    retriever = make_retriever(azure_search)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    results = retriever.search(
        'loyalty "points" win-back', 4, {"category": ["Promotion"], "boost_audience": "Loyal Fans"}
    )
    body = azure_search.calls("search")[-1]["body"]
    assert body["queryType"] == "semantic"
    assert body["semanticConfiguration"] == "cpo-semantic"
    assert body["search"] == '"loyalty" "points" "win-back"'
    assert "(category_key eq 'promotion')" in body["filter"]
    assert body["filter"].startswith("content_version eq '")
    assert [(s.document_id, s.paragraph_index) for s in results] == [("FAN-1", 1), ("FAN-1", 2)]
    first = results[0]
    assert first.title == "Loyalty points"
    assert first.text == "Earn double loyalty points this week."
    assert first.category == "promotion" and first.audience == "Loyal Fans"
    assert first.source_url == "https://example.com/fan-1"
    unboosted = retriever.search('loyalty "points" win-back', 4, {"category": "promotion"})
    assert first.score == pytest.approx(1.5 * unboosted[0].score)


def test_simple_query_type_sends_no_semantic_options(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search, query_type="simple")
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert retriever.search("shipping", 3)[0].document_id == "GEN-1"
    body = azure_search.calls("search")[-1]["body"]
    assert "queryType" not in body and "semanticConfiguration" not in body


def test_quotes_in_filter_values_are_escaped(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert retriever.search("shipping", 3, {"audience": "O'Brien's fans"}) == []
    assert (
        "audience_key eq 'o''brien''s fans'" in azure_search.calls("search")[-1]["body"]["filter"]
    )
    assert odata_string("it's") == "'it''s'"


def test_keys_are_safe_for_any_document_id():
    unit = IndexUnit("Promo/2026 #1 ü", "t", 3, "x", "c", "All", (), "")
    key = unit_key(unit)
    assert all(ch.isalnum() or ch in "-_=" for ch in key)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_statuses_are_retried(azure_search, api_key, content_dir: Path, status: int):
    log = RunLog()
    retriever = make_retriever(azure_search, log)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    before = len(azure_search.calls("search"))
    azure_search.fail("search", status, status)
    results = retriever.search("shipping", 3)
    assert results[0].document_id == "GEN-1"
    assert len(azure_search.calls("search")) - before == 3
    assert len(retriever.sleeps) == 2
    failed = [e for e in log.events if e["event"] == "api_call_failed"]
    assert [e["status"] for e in failed] == [status, status]
    assert "test-key" not in str(log.events)


def test_retry_after_header_is_honoured(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    azure_search.retry_after = "3"
    azure_search.fail("search", 429)
    retriever.search("shipping", 3)
    assert retriever.sleeps == [3.0]


def test_400_is_not_retried(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    before = len(azure_search.calls("search"))
    azure_search.fail("search", 400)
    with pytest.raises(BackendError, match="HTTP 400") as caught:
        retriever.search("shipping", 3)
    assert "rejected as invalid" in str(caught.value)
    assert len(azure_search.calls("search")) - before == 1
    assert retriever.sleeps == []


def test_persistent_5xx_gives_up_after_max_retries(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search)
    azure_search.fail("index", 503, 503, 503)
    with pytest.raises(BackendError, match=r"after 3 attempt\(s\): HTTP 503"):
        retriever.index(load_content(content_dir, as_of=AS_OF).documents)


def test_wrong_key_is_a_403_without_retries(azure_search, monkeypatch, content_dir: Path):
    monkeypatch.setenv("CPO_TEST_SEARCH_KEY", "wrong-key")
    retriever = make_retriever(azure_search)
    with pytest.raises(BackendError, match="HTTP 403") as caught:
        retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert "API key environment variable" in str(caught.value)
    assert len(azure_search.requests) == 1


def test_partial_upload_failure_retries_the_batch(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search)
    azure_search.partial = [503]
    report = retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    assert report.built
    assert len(azure_search.calls("docs")) == 2
    assert len(azure_search.docs["cpo-test"]) == 5


def test_a_hanging_service_times_out_and_is_retried(azure_search, api_key, content_dir: Path):
    retriever = make_retriever(azure_search, timeout_s=0.3, max_retries=1)
    retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    azure_search.hang_s = 1.0
    azure_search.fail("search", "hang")
    assert retriever.search("shipping", 3)[0].document_id == "GEN-1"
    azure_search.fail("search", "hang", "hang")
    with pytest.raises(BackendError, match="no response"):
        retriever.search("shipping", 3)


def test_missing_key_and_endpoint_are_config_errors(monkeypatch):
    monkeypatch.delenv("CPO_TEST_SEARCH_KEY", raising=False)
    settings = AzureSearchSettings(endpoint="http://127.0.0.1:9", api_key_env="CPO_TEST_SEARCH_KEY")
    with pytest.raises(ConfigError, match="CPO_TEST_SEARCH_KEY is not set"):
        AzureSearchRetriever(settings)
    with pytest.raises(ConfigError, match="services.retrieval.azure_search.endpoint is not set"):
        AzureSearchRetriever(AzureSearchSettings())


def test_search_before_index_is_an_error(azure_search, api_key):
    with pytest.raises(BackendError, match="search before index"):
        make_retriever(azure_search).search("tents", 3)
