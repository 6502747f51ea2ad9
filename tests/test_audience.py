"""Whom a document is for: audience matching, eligibility, tier mentions (library level)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cpo.audience import (
    find_mentions,
    reaches,
    remove_mentions,
    segment_audiences,
    unmatched_audiences,
)
from cpo.errors import DataValidationError
from cpo.models import SegmentProfile
from cpo.retrieval.content import load_content
from cpo.retrieval.eligibility import (
    audience_values,
    build_guards,
    eligible_shares,
    parse_condition,
    unknown_segment_guard,
)
from cpo.retrieval.query import build_segment_query
from cpo.retrieval.service import retrieve_segment
from cpo.retrieval.settings import ContentSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever

AS_OF = date(2026, 11, 26)


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write one document as ``<document_id>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['document_id']}.json"
    path.write_text(json.dumps(record), encoding="utf-8")


def make_record(document_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid document for everyone; ``overrides`` replace fields."""
    return {
        "document_id": document_id,
        "title": f"Title of {document_id}",
        "category": "product",
        "content": "Kayak paragraph one.\n\nKayak paragraph two.",
        "audience": "All",
        "keywords": ["kayak"],
        "approval_date": "2026-01-01",
        **overrides,
    }


DEFAULT = ContentSettings()


# -- audiences -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "segment", "expected"),
    [
        ("High-Value", "High-Value Recent", True),
        ("high value", "High-Value Recent", True),
        ("High-Value Recent", "High-Value Recent", True),
        ("Recent High-Value", "High-Value Recent", True),
        ("At-Risk", "High-Value Recent", False),
        ("Gold", "Golden Hour Shoppers", False),
        ("Value Seekers", "High-Value Recent", False),
        ("All", "Anything", True),
        ("everyone", "Anything", True),
    ],
)
def test_default_audience_matching(audience: str, segment: str, expected: bool):
    assert reaches(audience, segment, DEFAULT) is expected


def test_configured_aliases_win_over_word_matching():
    settings = ContentSettings(
        audiences={"VIP": ["High-Value Recent", "Loyal Fans"], "High-Value": ["Whales"]}
    )
    assert reaches("vip", "high-value recent", settings)
    assert reaches("VIP", "Loyal Fans", settings)
    assert not reaches("VIP", "At-Risk", settings)
    # mapped explicitly, so the word match no longer applies
    assert not reaches("High-Value", "High-Value Recent", settings)
    assert reaches("High-Value", "Whales", settings)


def test_general_audiences_are_configurable():
    settings = ContentSettings(general_audiences=["Tous"])
    assert reaches("tous", "Anything", settings)
    assert reaches("All", "Anything", settings)  # fallback.audience stays general
    assert not reaches("Everyone", "Anything", settings)


def test_segment_audiences_and_unmatched_ones():
    audiences = ["All", "High-Value", "At-Risk", "Students", "High-Value"]
    specific, general = segment_audiences("High-Value Recent", audiences, DEFAULT)
    assert (specific, general) == (["High-Value"], ["All"])
    segments = ["High-Value Recent", "At-Risk"]
    assert unmatched_audiences(audiences, segments, DEFAULT) == ["Students"]


def _profile(name: str, traits: tuple[str, ...] = ()) -> SegmentProfile:
    return SegmentProfile(name=name, segment_id=0, size=10, share=1.0, definition="", traits=traits)


@pytest.fixture
def kayak_index(tmp_path: Path):
    """Kayak content for 'Paddlers', 'Climbers' and everyone."""
    folder = tmp_path / "content"
    write_record(
        folder,
        make_record(
            "PAD-1", audience="Paddlers", keywords=["kayak"], content="Kayak rentals by the hour."
        ),
    )
    write_record(
        folder,
        make_record(
            "CLM-1", audience="Climbers", keywords=["kayak"], content="Kayak and climb weekends."
        ),
    )
    write_record(folder, make_record("ALL-1", keywords=["kayak"], content="Kayak storage is free."))
    content = load_content(folder, as_of=AS_OF)
    retriever = SqliteFtsRetriever(tmp_path / "index.sqlite")
    retriever.index(content.documents)
    return retriever, content


def test_documents_reach_only_their_segments_and_aliases_are_boosted(kayak_index):
    retriever, content = kayak_index
    settings = ContentSettings(min_score=0.0)
    query = build_segment_query(_profile("Weekend Paddlers", ("kayak",)), {}, settings)
    result = retrieve_segment(retriever, query, settings, content.documents)
    ids = [s.document_id for s in result.results]
    assert "CLM-1" not in ids
    assert set(ids) == {"PAD-1", "ALL-1"}
    assert result.audiences == {"specific": ["Paddlers"], "general": ["All"]}
    plain = retriever.search("kayak", 10, {"audience": ["paddlers", "all"]})
    raw = {s.document_id: s.score for s in plain}
    scores = {s.document_id: s.score for s in result.results}
    assert scores["PAD-1"] == pytest.approx(raw["PAD-1"] * settings.audience_boost)
    assert scores["ALL-1"] == pytest.approx(raw["ALL-1"] * settings.general_audience_boost)


# -- tier mentions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("As a valued Gold member, enjoy this.", ["Gold"]),
        ("Use code GOLD20 at checkout.", ["Gold"]),
        ("Gold-tier and silver members alike.", ["Gold", "Silver"]),
        ("Golden hour hikes and marigold seeds.", []),
        ("Nothing about tiers.", []),
        ("Silver and Gold members save more.", ["Gold", "Silver"]),
        ("The gold standard in tents.", []),
        ("Silver linings ahead.", []),
    ],
)
def test_find_mentions_any_case_letters_only_boundaries(text: str, found: list[str]):
    assert find_mentions(text, ["Gold", "Silver"]) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Orders over $50 ship free.", []),
        ("Free shipping on every order.", []),
        ("Free returns within 30 days.", []),
        ("Start a free trial today.", []),
        ("Free plan users get two seats.", ["Free"]),
        ("Upgrade from the Free tier to Pro.", ["Free", "Pro"]),
        ("Teams on the free plan keep their data.", ["Free"]),
        ("We are pro-active about security.", []),
        ("FREE tier limits apply.", ["Free"]),
    ],
)
def test_tier_values_that_are_ordinary_words(text: str, found: list[str]):
    # A SaaS export's tiers (Free/Pro/Business): "free" in copy is rarely the tier.
    assert find_mentions(text, ["Free", "Pro", "Business"]) == found


def test_find_mentions_can_match_case():
    assert find_mentions("gold standard service", ["Gold"], match_case=True) == []
    assert find_mentions("Gold members", ["Gold"], match_case=True) == ["Gold"]


def test_remove_mentions_keeps_other_sentences_and_reports_removed_ones():
    text = "As a valued Gold member, save 20%. Shipping is free. Silver members earn points."
    kept, removed = remove_mentions(text, ["Gold", "Silver"])
    assert kept == "Shipping is free."
    assert removed == [
        ("As a valued Gold member, save 20%.", ["Gold"]),
        ("Silver members earn points.", ["Silver"]),
    ]
    assert remove_mentions("Gold members only.", ["Gold"])[0] == ""
    assert remove_mentions(text, []) == (text, [])


# -- eligibility -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "op", "value"),
    [
        ("tier == Gold", "tier", "==", "Gold"),
        ("tier in [Gold, Platinum]", "tier", "in", ["Gold", "Platinum"]),
        ("age >= 30", "age", ">=", 30),
        ("age between [18, 30]", "age", "between", [18, 30]),
        ("tier not_in [Bronze]", "tier", "not_in", ["Bronze"]),
        ("plan != Free Trial", "plan", "!=", "Free Trial"),
    ],
)
def test_short_condition_form(text: str, column: str, op: str, value):
    condition = parse_condition(text)
    assert (condition.column, condition.op, condition.value) == (column, op, value)


def test_invalid_eligibility_is_reported_with_file_and_field(tmp_path: Path):
    folder = tmp_path / "content"
    write_record(folder, make_record("BAD-1", eligibility=["tier = Gold"]))
    write_record(folder, make_record("BAD-2", eligibility=[{"column": "age", "op": ">="}]))
    with pytest.raises(DataValidationError) as caught:
        load_content(folder, as_of=AS_OF)
    message = str(caught.value)
    assert "BAD-1.json: field 'eligibility': entry 0: expected 'column op value'" in message
    assert "BAD-2.json: field 'eligibility': entry 0: value: Field required" in message


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": [f"c{i}" for i in range(8)],
        "tier": ["Gold", "Gold", "Gold", "Silver", "Gold", "Gold", "Silver", "Silver"],
        "age": [25, 35, 45, 55, 30, 40, 20, 60],
    }
)
SEGMENT = pd.Series(["A", "A", "A", "A", "B", "B", "C", "C"])


def test_eligible_shares_per_segment():
    conditions = [parse_condition("tier == Gold"), parse_condition("age >= 30")]
    assert eligible_shares(conditions, CUSTOMERS, SEGMENT) == {"A": 0.5, "B": 1.0, "C": 0.0}


def test_audience_values_held_by_all():
    values = audience_values(CUSTOMERS, SEGMENT, ["tier"])
    assert values.columns == {"tier": ["Gold", "Silver"]}
    assert values.held_by_all == {
        "A": {"tier": None},
        "B": {"tier": "Gold"},
        "C": {"tier": "Silver"},
    }
    assert values.forbidden("B") == ["Silver"]
    assert values.forbidden("A") == ["Gold", "Silver"]
    assert values.forbidden("unknown segment") == ["Gold", "Silver"]


@pytest.mark.parametrize(("minimum", "excluded_for"), [(1.0, ["A", "C"]), (0.5, ["C"])])
def test_min_eligible_share(tmp_path: Path, minimum: float, excluded_for: list[str]):
    folder = tmp_path / "content"
    write_record(folder, make_record("GOLD-1", eligibility=["tier == Gold", "age >= 30"]))
    write_record(folder, make_record("ALL-1"))
    content = load_content(folder, as_of=AS_OF)
    settings = ContentSettings(min_eligible_share=minimum)
    guards, _ = build_guards(content.documents, CUSTOMERS, SEGMENT, settings)
    assert [name for name, guard in guards.items() if "GOLD-1" in guard.excluded] == excluded_for
    assert guards["A"].eligible_shares == {"GOLD-1": 0.5}
    if "A" in excluded_for:
        assert guards["A"].excluded["GOLD-1"].startswith("not eligible: 50.0% of the segment")


def test_eligibility_on_a_missing_column_names_document_and_columns(tmp_path: Path):
    folder = tmp_path / "content"
    write_record(folder, make_record("PLAN-1", eligibility=["plan == Pro"]))
    content = load_content(folder, as_of=AS_OF)
    with pytest.raises(DataValidationError) as caught:
        build_guards(content.documents, CUSTOMERS, SEGMENT, DEFAULT)
    assert "PLAN-1" in str(caught.value) and "'plan'" in str(caught.value)
    assert "customer_id, tier, age" in (caught.value.hint or "")


def test_guard_excludes_documents_and_strips_tier_sentences(tmp_path: Path):
    folder = tmp_path / "content"
    write_record(
        folder,
        make_record(
            "PRM-1",
            keywords=["kayak"],
            content="As a valued Gold member, kayak free. Kayak tours leave daily."
            "\n\nGold members kayak first.",
        ),
    )
    write_record(folder, make_record("GLD-1", keywords=["kayak"], eligibility=["tier == Gold"]))
    content = load_content(folder, as_of=AS_OF)
    retriever = SqliteFtsRetriever(tmp_path / "index.sqlite")
    retriever.index(content.documents)
    guards, _ = build_guards(content.documents, CUSTOMERS, SEGMENT, DEFAULT)
    settings = ContentSettings(min_score=0.0)
    for name, kept_text in (("A", "Kayak tours leave daily."), ("B", None)):
        query = build_segment_query(_profile(name, ("kayak",)), {}, settings)
        result = retrieve_segment(retriever, query, settings, content.documents, guard=guards[name])
        texts = {(s.document_id, s.paragraph_index): s.text for s in result.results}
        if name == "A":  # mixed tiers: no tier named, ¶2 dropped, not eligible for GLD-1
            assert texts == {("PRM-1", 1): kept_text}
            assert [(r.sentence, r.paragraph_dropped) for r in result.removals] == [
                ("As a valued Gold member, kayak free.", False),
                ("Gold members kayak first.", True),
            ]
        else:  # all Gold: everything stays
            assert ("PRM-1", 2) in texts and ("GLD-1", 1) in texts
            assert result.removals == ()


def test_a_segment_without_customers_gets_the_strictest_guard(tmp_path: Path):
    folder = tmp_path / "content"
    write_record(folder, make_record("GOLD-1", eligibility=["tier == Gold"]))
    write_record(folder, make_record("ALL-1"))
    content = load_content(folder, as_of=AS_OF)
    values = audience_values(CUSTOMERS, SEGMENT, ["tier"])
    guard = unknown_segment_guard(content.documents, values, DEFAULT)
    assert list(guard.excluded) == ["GOLD-1"]
    assert guard.forbidden == ("Gold", "Silver")
