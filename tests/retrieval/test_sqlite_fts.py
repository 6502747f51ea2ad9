"""The SQLite FTS5 backend: index build and reuse, ranking, filters, boosts, safe queries."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from cpo.errors import BackendError, ConfigError, DataValidationError
from cpo.retrieval.content import load_content
from cpo.retrieval.settings import ContentSettings, FieldWeights
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever, fts_match

AS_OF = date(2026, 11, 26)


def build(content_dir: Path, db: Path, settings: ContentSettings | None = None):
    retriever = SqliteFtsRetriever(db, settings or ContentSettings())
    report = retriever.index(load_content(content_dir, as_of=AS_OF).documents)
    return retriever, report


def test_index_holds_one_row_per_paragraph_with_its_number(content_dir: Path, tmp_path: Path):
    _, report = build(content_dir, tmp_path / "i.sqlite")
    assert report.built and report.documents == 3 and report.paragraphs == 5
    with sqlite3.connect(tmp_path / "i.sqlite") as connection:
        rows = connection.execute(
            "SELECT document_id, paragraph_index, content FROM paragraphs "
            "ORDER BY document_id, paragraph_index"
        ).fetchall()
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    assert rows[:2] == [
        ("FAN-1", 1, "Earn double loyalty points this week."),
        ("FAN-1", 2, "Points never expire while you shop."),
    ]
    assert meta["fingerprint"] == report.fingerprint
    assert meta["tokenizer"] == "porter unicode61 remove_diacritics 2"


def test_rebuild_is_skipped_when_content_is_unchanged(content_dir: Path, tmp_path: Path):
    db = tmp_path / "i.sqlite"
    _, first = build(content_dir, db)
    stamp = db.stat().st_mtime_ns
    _, second = build(content_dir, db)
    assert not second.built
    assert second.fingerprint == first.fingerprint
    assert db.stat().st_mtime_ns == stamp, "an unchanged index must not be rewritten"


def test_changed_content_rebuilds_and_gives_the_same_index_as_a_fresh_build(
    content_dir: Path, tmp_path: Path, make_doc, write_doc
):
    db = tmp_path / "i.sqlite"
    build(content_dir, db)
    write_doc(content_dir, make_doc("NEW-1", title="Kayaks", content="Sit-on-top kayaks."))
    retriever, report = build(content_dir, db)
    assert report.built and report.documents == 4
    fresh, fresh_report = build(content_dir, tmp_path / "fresh.sqlite")
    assert fresh_report.fingerprint == report.fingerprint
    query = "kayaks loyalty shipping"
    assert retriever.search(query, 10) == fresh.search(query, 10)
    assert [s.document_id for s in retriever.search("kayaks", 5)] == ["NEW-1"]


def test_stale_index_from_a_removed_document_is_replaced(content_dir: Path, tmp_path: Path):
    db = tmp_path / "i.sqlite"
    build(content_dir, db)
    (content_dir / "FAN-1.json").unlink()
    retriever, report = build(content_dir, db)
    assert report.built
    assert retriever.search("loyalty points", 5) == []


def test_refuses_to_overwrite_a_file_that_is_not_an_index(content_dir: Path, tmp_path: Path):
    precious = tmp_path / "customers.csv"
    precious.write_text("customer_id,email\n1,a@example.com\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="not a SQLite index file; refusing"):
        build(content_dir, precious)
    other_db = tmp_path / "other.sqlite"
    with sqlite3.connect(other_db) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(DataValidationError, match="not a cpo content index"):
        build(content_dir, other_db)
    assert precious.read_text(encoding="utf-8").startswith("customer_id")


def test_search_without_an_index_says_how_to_build_one(tmp_path: Path):
    retriever = SqliteFtsRetriever(tmp_path / "missing.sqlite")
    with pytest.raises(BackendError, match="cpo index CONTENT_DIR --db"):
        retriever.search("tents", 3)
    assert not (tmp_path / "missing.sqlite").exists()


def test_results_are_paragraphs_with_positive_scores_best_first(content_dir: Path, tmp_path: Path):
    retriever, _ = build(content_dir, tmp_path / "i.sqlite")
    results = retriever.search("express shipping", 5)
    assert results[0].document_id == "GEN-1"
    assert results[0].paragraph_index == 2
    assert results[0].text == "Express shipping takes two days."
    assert results[0].title == "Shipping"
    assert results[0].source_url == "https://example.com/gen-1"
    scores = [s.score for s in results]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)


def test_stemming_matches_word_forms(content_dir: Path, tmp_path: Path):
    retriever, _ = build(content_dir, tmp_path / "i.sqlite")
    assert [s.document_id for s in retriever.search("returning", 3)] == ["GEN-2"]


def test_title_and_keyword_weights_rank_a_document_about_a_theme_first(
    tmp_path: Path, make_doc, write_doc
):
    folder = tmp_path / "c"
    write_doc(
        folder,
        make_doc(
            "ABOUT",
            title="Hammocks",
            keywords=["hammock"],
            content="Light and packable for any trip.",
        ),
    )
    write_doc(
        folder,
        make_doc(
            "MENTION",
            title="Camp chairs",
            keywords=["chair"],
            content="A hammock, hammock straps, a hammock tarp and a hammock stand.",
        ),
    )
    for name in ("F1", "F2", "F3"):
        write_doc(
            folder,
            make_doc(
                name, title=f"Filler {name}", keywords=["filler"], content="Nothing relevant here."
            ),
        )
    weighted, _ = build(folder, tmp_path / "w.sqlite")
    flat_settings = ContentSettings(field_weights=FieldWeights(title=1, keywords=1, content=1))
    flat, _ = build(folder, tmp_path / "f.sqlite", flat_settings)
    assert weighted.search("hammock", 2)[0].document_id == "ABOUT"
    assert flat.search("hammock", 2)[0].document_id == "MENTION"


def test_category_and_audience_filters(content_dir: Path, tmp_path: Path):
    retriever, _ = build(content_dir, tmp_path / "i.sqlite")
    query = "shipping returns loyalty points"
    everything = {s.document_id for s in retriever.search(query, 10)}
    assert everything == {"GEN-1", "GEN-2", "FAN-1"}
    support = retriever.search(query, 10, {"category": "SUPPORT"})
    assert {s.document_id for s in support} == {"GEN-2"}
    two = retriever.search(query, 10, {"category": ["support", "promotion"]})
    assert {s.document_id for s in two} == {"GEN-2", "FAN-1"}
    fans = retriever.search(query, 10, {"audience": "loyal fans"})
    assert {s.document_id for s in fans} == {"FAN-1"}
    assert retriever.search(query, 10, {"category": "nothing-like-this"}) == []


def test_unknown_filter_key_is_a_config_error(content_dir: Path, tmp_path: Path):
    retriever, _ = build(content_dir, tmp_path / "i.sqlite")
    with pytest.raises(ConfigError, match="unknown retrieval filter"):
        retriever.search("tents", 3, {"categroy": "product"})
    with pytest.raises(ConfigError, match="string or a list of strings"):
        retriever.search("tents", 3, {"category": 7})


def test_audience_boost_multiplies_scores_of_the_segments_and_general_documents(
    tmp_path: Path, make_doc, write_doc
):
    folder = tmp_path / "c"
    text = "Trail socks keep feet dry."
    write_doc(folder, make_doc("FOR-SEG", audience="Hikers", content=text, title="Socks A"))
    write_doc(folder, make_doc("FOR-ALL", audience="All", content=text, title="Socks B"))
    write_doc(folder, make_doc("FOR-OTHER", audience="Campers", content=text, title="Socks C"))
    for name in ("F1", "F2", "F3", "F4"):
        write_doc(folder, make_doc(name, title=f"Filler {name}", content="Nothing here."))
    settings = ContentSettings(audience_boost=2.0, general_audience_boost=1.5)
    retriever, _ = build(folder, tmp_path / "i.sqlite", settings)
    plain = {s.document_id: s.score for s in retriever.search("socks", 5)}
    assert plain["FOR-SEG"] == pytest.approx(plain["FOR-OTHER"])
    boosted = retriever.search("socks", 5, {"boost_audience": "hikers"})
    scores = {s.document_id: s.score for s in boosted}
    assert [s.document_id for s in boosted] == ["FOR-SEG", "FOR-ALL", "FOR-OTHER"]
    assert scores["FOR-SEG"] == pytest.approx(2.0 * plain["FOR-SEG"])
    assert scores["FOR-ALL"] == pytest.approx(1.5 * plain["FOR-ALL"])
    assert scores["FOR-OTHER"] == pytest.approx(plain["FOR-OTHER"])


WEIRD_QUERIES = [
    '"',
    '""',
    '"unbalanced quote',
    "tents AND NOT boots OR",
    "NEAR(tents boots, 2)",
    "title:tents",
    "tent*",
    "^tents",
    "(((",
    "-tents +boots",
    "25% off!!! $$$ ???",
    "'; DROP TABLE paragraphs; --",
    "\x00 null byte",
    "   ",
    "",
    "émigré café naïve",
    "🏕️ tents 🥾",
    "a" * 5000,
    "AND OR NOT",
    '{"json": [1, 2]}',
    "tents\nboots\tshipping",
]


@pytest.mark.parametrize("query", WEIRD_QUERIES)
def test_no_user_text_breaks_the_query(content_dir: Path, tmp_path: Path, query: str):
    retriever, _ = build(content_dir, tmp_path / "i.sqlite")
    results = retriever.search(query, 5, {"category": ["product", "support"]})
    assert isinstance(results, list)


def test_operator_words_are_searched_as_words(tmp_path: Path, make_doc, write_doc):
    folder = tmp_path / "c"
    write_doc(folder, make_doc("OPS", content="Salt and pepper, not sugar."))
    write_doc(folder, make_doc("OTHER", content="Something else entirely."))
    retriever, _ = build(folder, tmp_path / "i.sqlite")
    assert [s.document_id for s in retriever.search('NOT "sugar"', 5)] == ["OPS"]


def test_fts_match_quotes_every_term():
    assert fts_match(["win-back", 'say "hi"']) == '"win-back" OR "say ""hi"""'


def test_filters_and_boost_fold_non_ascii_case(tmp_path: Path, make_doc, write_doc):
    folder = tmp_path / "c"
    write_doc(
        folder,
        make_doc("FR-1", category="Épicerie", audience="Élite", content="Café moulu du matin."),
    )
    write_doc(folder, make_doc("FR-2", category="Autre", content="Café en grains."))
    retriever, _ = build(folder, tmp_path / "i.sqlite")
    assert [s.document_id for s in retriever.search("café", 5, {"category": "ÉPICERIE"})] == [
        "FR-1"
    ]
    assert [s.document_id for s in retriever.search("cafe", 5, {"audience": "élite"})] == ["FR-1"]
    boosted = retriever.search("café", 5, {"boost_audience": "ÉLITE"})
    assert boosted[0].document_id == "FR-1"
