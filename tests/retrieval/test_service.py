"""Per-segment retrieval policy: threshold, per-document cap, fallback; retrieval.json helpers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cpo.errors import DataValidationError
from cpo.models import SegmentProfile, Snippet
from cpo.retrieval.content import load_content
from cpo.retrieval.query import build_segment_query
from cpo.retrieval.service import (
    diversify,
    find_profile,
    retrieval_document,
    retrieve_segment,
)
from cpo.retrieval.settings import ContentSettings, FallbackSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever
from cpo.run_folder import read_profiles, segment_snippets

AS_OF = date(2026, 11, 26)


def profile(name: str, traits=()) -> SegmentProfile:
    return SegmentProfile(
        name=name, segment_id=7, size=10, share=0.1, definition="", traits=tuple(traits)
    )


@pytest.fixture
def indexed(content_dir: Path, tmp_path: Path):
    content = load_content(content_dir, as_of=AS_OF)
    retriever = SqliteFtsRetriever(tmp_path / "i.sqlite", ContentSettings())
    retriever.index(content.documents)
    return retriever, content


def snippet(document_id: str, paragraph: int, score: float) -> Snippet:
    return Snippet(document_id, "t", paragraph, "x", score)


def test_diversify_caps_paragraphs_per_document():
    ranked = [snippet("A", 1, 9), snippet("A", 2, 8), snippet("A", 3, 7), snippet("B", 1, 6)]
    kept = diversify(ranked, 3, max_per_document=2)
    assert [(s.document_id, s.paragraph_index) for s in kept] == [("A", 1), ("A", 2), ("B", 1)]


def test_relevant_results_need_no_fallback(indexed):
    retriever, content = indexed
    settings = ContentSettings()
    query = build_segment_query(profile("Loyal Fans", ["loyalty"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    assert not result.fallback and result.warnings == ()
    assert [(s.document_id, s.paragraph_index) for s in result.results][:2] == [
        ("FAN-1", 1),
        ("FAN-1", 2),
    ]
    assert all(s.score >= settings.min_score for s in result.results)


def test_nothing_clears_the_threshold_so_general_content_is_used_with_a_warning(indexed):
    retriever, content = indexed
    settings = ContentSettings()
    query = build_segment_query(profile("Kayakers", ["kayak"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    assert result.fallback
    assert len(result.results) == 3, "all general paragraphs (top_k 4, but only 3 exist)"
    assert {s.audience for s in result.results} == {"All"}
    assert "no result cleared min_score 2" in result.warnings[0]
    assert "audience 'All'" in result.warnings[0]


def test_a_high_threshold_turns_weak_matches_into_fallback(indexed):
    retriever, content = indexed
    strict = ContentSettings(min_score=1000)
    query = build_segment_query(profile("Loyal Fans", ["loyalty"]), {}, strict)
    result = retrieve_segment(retriever, query, strict, content.documents)
    assert result.fallback
    assert result.best_score > 0
    assert "FAN-1" not in {s.document_id for s in result.results}


def test_too_few_relevant_results_are_topped_up_to_min_results(tmp_path: Path, make_doc, write_doc):
    folder = tmp_path / "c"
    write_doc(
        folder,
        make_doc(
            "ONE",
            audience="Climbers",
            title="Chalk",
            keywords=["climbing"],
            content="Climbing chalk for grip.",
        ),
    )
    write_doc(folder, make_doc("GEN", title="Shipping", content="Free shipping on all orders."))
    for name in ("F1", "F2"):
        write_doc(folder, make_doc(name, audience="Other", title=name, content="Unrelated."))
    content = load_content(folder, as_of=AS_OF)
    retriever = SqliteFtsRetriever(tmp_path / "i.sqlite")
    retriever.index(content.documents)
    settings = ContentSettings(min_results=2)
    query = build_segment_query(profile("Climbers", ["climbing"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    assert [s.document_id for s in result.results] == ["ONE", "GEN"]
    assert result.fallback
    assert "only 1 result(s) cleared min_score" in result.warnings[0]


def test_last_resort_is_the_first_paragraph_of_general_documents(indexed):
    retriever, content = indexed
    settings = ContentSettings(fallback=FallbackSettings(query="zzzz nothing matches"))
    query = build_segment_query(profile("Kayakers", ["kayak"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    assert [(s.document_id, s.paragraph_index, s.score) for s in result.results] == [
        ("GEN-1", 1, 0.0),
        ("GEN-2", 1, 0.0),
    ]


def test_no_general_content_at_all_is_warned(tmp_path: Path, make_doc, write_doc):
    folder = tmp_path / "c"
    write_doc(folder, make_doc("ONLY", audience="Climbers", content="Climbing chalk."))
    content = load_content(folder, as_of=AS_OF)
    retriever = SqliteFtsRetriever(tmp_path / "i.sqlite")
    retriever.index(content.documents)
    settings = ContentSettings()
    query = build_segment_query(profile("Kayakers", ["kayak"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    assert result.results == () and not result.fallback
    assert any("no general content" in w for w in result.warnings)


def test_retrieval_document_and_load_snippets_round_trip(indexed):
    retriever, content = indexed
    settings = ContentSettings()
    query = build_segment_query(profile("Loyal Fans", ["loyalty"]), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    document = retrieval_document("sqlite_fts", content, [result])
    assert list(document) == [
        "backend",
        "as_of",
        "content_sha256",
        "documents",
        "excluded",
        "segments",
    ]
    assert document["as_of"] == "2026-11-26"
    entry = document["segments"][0]
    assert list(entry) == [
        "segment",
        "segment_id",
        "query",
        "filters",
        "fallback",
        "warnings",
        "results",
        "audiences",
        "removed_sentences",
    ]
    assert entry["audiences"] == {"specific": ["Loyal Fans"], "general": ["All"]}
    assert entry["filters"]["audience"] == ["Loyal Fans", "All"]
    assert list(entry["results"][0]) == [
        "document_id",
        "title",
        "paragraph_index",
        "snippet",
        "score",
        "category",
        "audience",
        "source_url",
    ]
    snippets = segment_snippets(document, "Loyal Fans")
    assert [(s.document_id, s.paragraph_index, s.text) for s in snippets] == [
        (s.document_id, s.paragraph_index, s.text) for s in result.results
    ]
    with pytest.raises(DataValidationError, match="no segment 'Nobody'; it has: \"Loyal Fans\""):
        segment_snippets(document, "Nobody")
    with pytest.raises(DataValidationError, match="malformed"):
        segment_snippets({"segments": [{"segment": "Loyal Fans"}]}, "Loyal Fans")


def test_read_profiles_and_find_profile(tmp_path: Path):
    path = tmp_path / "segment_profiles.json"
    path.write_text(
        '{"segments": [{"name": "At-Risk", "segment_id": 1, "size": 3, '
        '"share": 0.5, "means": {"x": 1}, "traits": ["win-back"]}]}',
        encoding="utf-8",
    )
    profiles = read_profiles(path)
    assert profiles[0].traits == ("win-back",)
    assert find_profile(profiles, "at-risk").name == "At-Risk"
    with pytest.raises(DataValidationError, match="the segments are: 'At-Risk'"):
        find_profile(profiles, "Nope")
    path.write_text('{"segments": [{"segment_id": 1}]}', encoding="utf-8")
    with pytest.raises(DataValidationError, match="not a valid segment_profiles.json"):
        read_profiles(path)
    with pytest.raises(DataValidationError, match="segment profiles not found"):
        read_profiles(tmp_path / "missing.json")
