"""Retrieval quality on the bundled content: precision@3 against hand-made relevance labels.

Labels were judged from the documents' text (src/cpo/data/sample/content/), before
tuning: a document is relevant to a segment when a marketer would be glad to see
it cited in an email to that segment. The expired FERN-PRM-011 is never relevant.

* High-Value Recent (frequent, high-spending, recent; traits premium, loyalty, vip,
  exclusive): the Summit Series products, the Gold-member offers and desk, and the
  Rewards tier and Double Points documents (loyalty).
* At-Risk (no engagement for 90+ days; win-back, re-engagement, lapsed): the
  come-back offers, "what's new", best sellers, points-waiting, Second Trail and
  Repair Shop documents.
* New Customer (at most two purchases, recent; welcome, onboarding, first purchase):
  the welcome offers, getting-started and size guides, first-trip products.
* Standard (everyone else; value, seasonal, everyday): value and seasonal promotions
  and products for general or Standard audiences, Rewards basics, rental, price match.
"""

from __future__ import annotations

import pytest

from cpo.config import load_config
from cpo.customers import load_customers
from cpo.retrieval.query import build_segment_query, population_means
from cpo.retrieval.service import retrieve_segment
from cpo.retrieval.settings import ContentSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever
from cpo.sample_data import bundled_customers
from cpo.segmentation import segment

RELEVANT: dict[str, set[str]] = {
    "High-Value Recent": {
        "FERN-PRD-003",
        "FERN-PRD-007",
        "FERN-PRD-010",
        "FERN-PRD-011",
        "FERN-PRM-002",
        "FERN-PRM-005",
        "FERN-SUP-009",
        "FERN-SUP-004",
        "FERN-PRM-008",
    },
    "At-Risk": {
        "FERN-PRD-012",
        "FERN-PRD-013",
        "FERN-PRD-016",
        "FERN-PRM-003",
        "FERN-PRM-006",
        "FERN-SUP-008",
        "FERN-SUP-010",
    },
    "New Customer": {
        "FERN-PRD-006",
        "FERN-PRD-009",
        "FERN-PRD-014",
        "FERN-PRM-001",
        "FERN-PRM-012",
        "FERN-SUP-006",
        "FERN-SUP-007",
    },
    "Standard": {
        "FERN-PRD-002",
        "FERN-PRD-005",
        "FERN-PRD-008",
        "FERN-PRM-004",
        "FERN-PRM-007",
        "FERN-PRM-008",
        "FERN-SUP-004",
        "FERN-SUP-011",
        "FERN-PRD-001",
        "FERN-PRD-004",
        "FERN-PRD-015",
        "FERN-PRM-009",
        "FERN-PRM-010",
        "FERN-SUP-012",
        "FERN-SUP-005",
    },
}


@pytest.fixture(scope="module")
def sample_profiles():
    config = load_config()
    customers = load_customers(bundled_customers()).frame
    return segment(customers, config.experiment.segmentation, seed=42).profiles


def precision_at_3(retriever, profiles, settings: ContentSettings, documents) -> dict[str, float]:
    population = population_means(profiles)
    scores = {}
    for profile in profiles:
        query = build_segment_query(profile, population, settings)
        result = retrieve_segment(retriever, query, settings, documents)
        top = [s.document_id for s in result.results[:3]]
        assert len(top) == 3
        scores[profile.name] = sum(doc in RELEVANT[profile.name] for doc in top) / 3
    return scores


def test_labels_cover_the_sample_segments_and_real_documents(sample_profiles, sample_content):
    assert {p.name for p in sample_profiles} == set(RELEVANT)
    ids = {d.document_id for d in sample_content.documents}
    for labelled in RELEVANT.values():
        assert labelled <= ids


def test_precision_at_3_on_the_bundled_content(sample_profiles, sample_content, sample_index):
    scores = precision_at_3(
        sample_index, sample_profiles, ContentSettings(), sample_content.documents
    )
    mean = sum(scores.values()) / len(scores)
    assert mean >= 0.8, scores


def test_precision_holds_without_the_audience_boost(
    sample_profiles, sample_content, tmp_path_factory
):
    """The query terms, not the boost matching audience names, carry the relevance."""
    settings = ContentSettings(audience_boost=1.0, general_audience_boost=1.0)
    retriever = SqliteFtsRetriever(tmp_path_factory.mktemp("flat") / "i.sqlite", settings)
    retriever.index(sample_content.documents)
    scores = precision_at_3(retriever, sample_profiles, settings, sample_content.documents)
    assert sum(scores.values()) / len(scores) >= 0.8, scores
