"""Query language and segment query construction."""

from __future__ import annotations

import pytest

from cpo.models import SegmentProfile
from cpo.retrieval.query import (
    build_segment_query,
    derived_terms,
    format_query,
    parse_query,
    population_means,
)
from cpo.retrieval.settings import ContentSettings, SegmentQuerySettings


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("premium loyalty", ["premium", "loyalty"]),
        ('"we miss you" win-back', ["we miss you", "win-back"]),
        ("What's new for the season?", ["what's", "new", "season"]),
        ("the and of", ["the", "and", "of"]),
        ('tents AND "boots', ["tents", "boots"]),
        ("25% off!", ["25", "off"]),
        ("Tents tents TENTS", ["tents"]),
        ('""', []),
        ("", []),
    ],
)
def test_parse_query(text: str, terms: list[str]):
    assert parse_query(text) == terms


def test_format_then_parse_round_trips():
    terms = ["new customer", "welcome", "first purchase", "win-back"]
    assert format_query(terms) == '"new customer" welcome "first purchase" win-back'
    assert parse_query(format_query(terms)) == terms


def profile(name: str, traits=(), size=100, **means) -> SegmentProfile:
    return SegmentProfile(
        name=name,
        segment_id=0,
        size=size,
        share=0.5,
        definition="",
        means=means,
        traits=tuple(traits),
    )


def test_population_means_are_size_weighted():
    profiles = [profile("A", size=100, spend=10.0), profile("B", size=300, spend=50.0)]
    assert population_means(profiles) == {"spend": pytest.approx(40.0)}


def test_segment_query_combines_name_traits_expansions_and_derived_words():
    settings = ContentSettings()
    big = profile("Big Spenders", traits=["vip"], avg_order_value=300.0, purchase_frequency=5.0)
    population = {"avg_order_value": 100.0, "purchase_frequency": 5.0}
    query = build_segment_query(big, population, settings)
    assert query.sources["name"] == ["big spenders"]
    assert query.sources["traits"] == ["vip"]
    assert query.sources["derived"] == ["premium", "exclusive"]
    assert "early access" in query.sources["expansions"]
    assert "flagship" in query.sources["expansions"], "derived words are expanded too"
    assert query.terms[:2] == ("big spenders", "vip")
    assert len(query.terms) == len(set(query.terms))
    assert query.filters == {"boost_audience": "Big Spenders"}
    assert parse_query(query.text) == list(query.terms)


def test_derived_words_need_a_strong_contrast_and_keep_only_the_top_features():
    settings = ContentSettings()
    population = {"avg_order_value": 100.0, "purchase_frequency": 5.0, "last_engagement_days": 60}
    mild = profile("Mild", avg_order_value=120.0, purchase_frequency=5.5, last_engagement_days=55)
    assert derived_terms(mild, population, settings) == []
    strong = profile(
        "Strong", avg_order_value=40.0, purchase_frequency=1.0, last_engagement_days=240.0
    )
    # |log ratio|: frequency 1.61, recency 1.39, spend 0.92 -> the two largest count.
    assert derived_terms(strong, population, settings) == [
        "welcome",
        "first purchase",
        "win-back",
        "we miss you",
    ]


def test_a_feature_without_words_for_its_direction_does_not_use_a_slot():
    settings = ContentSettings()
    population = {"last_engagement_days": 60.0, "avg_order_value": 100.0}
    recent_big = profile("Recent Big", last_engagement_days=5.0, avg_order_value=200.0)
    assert derived_terms(recent_big, population, settings) == ["premium", "exclusive"]


def test_works_for_segments_without_traits_or_known_features():
    query = build_segment_query(profile("Cluster 3", weird_feature=2.0), {}, ContentSettings())
    assert query.terms == ("cluster 3",)


def test_per_segment_terms_categories_and_replace():
    settings = ContentSettings(
        segments={
            "vip club": SegmentQuerySettings(terms=["concierge"], categories=["support"]),
            "Only": SegmentQuerySettings(terms=["kayak"], replace=True),
        }
    )
    vip = build_segment_query(profile("VIP Club", traits=["vip"]), {}, settings)
    assert vip.terms[0] == "concierge"
    assert "vip" in vip.terms
    assert vip.filters == {"boost_audience": "VIP Club", "category": ["support"]}
    only = build_segment_query(profile("Only", traits=["vip"]), {}, settings)
    assert only.terms == ("kayak",)


def test_max_terms_caps_the_query():
    settings = ContentSettings(max_terms=3)
    query = build_segment_query(profile("Loyal", traits=["loyalty", "vip"]), {}, settings)
    assert query.terms == ("loyal", "loyalty", "vip")


def test_disabling_name_and_derived_words():
    settings = ContentSettings(use_segment_name=False, derived_terms={"enabled": False})
    query = build_segment_query(
        profile("Name", avg_order_value=999.0), {"avg_order_value": 1.0}, settings
    )
    assert query.terms == ()
    assert query.text == ""
