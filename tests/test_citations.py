"""Citation parsing and validation, fact normalisation and the grounding check."""

from __future__ import annotations

import pytest

from cpo.citations import (
    check_grounding,
    extract_codes,
    extract_facts,
    extract_names,
    parse_citations,
    resolve_citations,
    strip_citations,
)
from cpo.models import Snippet

TENT = Snippet(
    "FERN-PRD-001",
    "Summit Ridge 2 Backpacking Tent",
    1,
    "The Summit Ridge 2 tent is priced at $329. It weighs 1.8 kg and sets up in about five "
    "minutes.",
    3.0,
)
OFFER = Snippet(
    "FERN-PRM-001",
    "WELCOME15: 15% Off Your First Order",
    1,
    "New customers can take 15% off a first order with code WELCOME15. Code WELCOME15 is valid "
    "through 31 December 2027.",
    2.5,
)
RENTAL = Snippet(
    "FERN-SUP-011",
    "Fernleaf Gear Rental",
    1,
    "Renting an Alpine Loft 20 sleeping bag costs $25 per weekend. Trailhead Plus members save "
    "10% on every rental.",
    1.0,
)
RETRIEVED = (TENT, OFFER, RENTAL)
TENT_MARK = "[Source: Summit Ridge 2 Backpacking Tent, ¶1]"
OFFER_MARK = "[Source: WELCOME15: 15% Off Your First Order, ¶1]"


# ----------------------------------------------------------------------------- parsing


def test_parse_citations_reads_title_and_paragraph():
    text = f"Tents. {TENT_MARK} Offer. {OFFER_MARK}"
    markers = parse_citations(text)
    assert [(m.title, m.paragraph_index) for m in markers] == [
        ("Summit Ridge 2 Backpacking Tent", 1),
        ("WELCOME15: 15% Off Your First Order", 1),
    ]
    assert markers[0].raw == TENT_MARK


@pytest.mark.parametrize(
    "marker",
    [
        "[source:  summit ridge 2 backpacking TENT , ¶1]",
        "[Source: Summit  Ridge 2 Backpacking Tent, ¶ 1]",
        "[Source: Summit Ridge 2 Backpacking Tent, paragraph 1]",
        "[ Source : Summit Ridge 2 Backpacking Tent,¶1 ]",
    ],
)
def test_case_and_whitespace_variants_are_valid(marker):
    resolved, invalid = resolve_citations(parse_citations(marker), RETRIEVED)
    assert invalid == []
    [(citation, snippet)] = resolved
    assert (citation.document_id, citation.title, citation.paragraph_index) == (
        "FERN-PRD-001",
        "Summit Ridge 2 Backpacking Tent",
        1,
    )
    assert snippet is TENT


def test_titles_with_commas_parse():
    comma = Snippet("X", "Rain, Snow and Shine", 2, "Text.", 1.0)
    resolved, invalid = resolve_citations(
        parse_citations("[Source: Rain, Snow and Shine, ¶2]"), (comma,)
    )
    assert invalid == [] and resolved[0][0].title == "Rain, Snow and Shine"


@pytest.mark.parametrize(
    "marker",
    [
        "[Source: Summit Ridge 2 Backpacking Tent, ¶2]",  # paragraph not retrieved
        "[Source: Summit Ridge 4 Family Tent, ¶1]",  # document not retrieved
        "[Source: Summit Ridge, ¶1]",  # partial title
    ],
)
def test_citations_of_paragraphs_not_retrieved_are_invalid(marker):
    resolved, invalid = resolve_citations(parse_citations(marker), RETRIEVED)
    assert resolved == [] and invalid == [marker]


def test_repeated_markers_count_once():
    text = f"One. {TENT_MARK} Two. {TENT_MARK}"
    resolved, _ = resolve_citations(parse_citations(text), RETRIEVED)
    assert len(resolved) == 1


def test_strip_citations_removes_markers_and_their_space():
    assert strip_citations(f"Tents are great. {TENT_MARK} Really.") == "Tents are great. Really."


# ----------------------------------------------------------------------------- facts


@pytest.mark.parametrize(
    ("claim", "support"),
    [
        ("It costs $329.", "priced at 329 dollars"),
        ("It costs 329 dollars.", "priced at $329"),
        ("Take 20% off.", "take 20 percent off"),
        ("Take 20 per cent off.", "take 20% off"),
        ("Valid through 31 December 2027.", "valid through December 31, 2027"),
        ("Valid through December 31st, 2027.", "valid through 2027-12-31"),
        ("Valid through 2027-12-31.", "valid through 31 Dec 2027"),
        ("Ends December 31.", "ends 31 December 2027"),
        ("Sets up in 5 minutes.", "sets up in about five minutes"),
        ("Spend $1,000 a year.", "spend $1000 a year"),
        ("Twenty-five points.", "25 points"),
    ],
)
def test_equivalent_forms_support_each_other(claim, support):
    assert extract_facts(claim) <= extract_facts(support, as_support=True)


@pytest.mark.parametrize(
    ("claim", "support"),
    [
        ("It costs $329.", "priced at $299"),
        ("Take 25% off.", "take 20% off"),
        ("Take 20% off.", "20 items"),  # a plain number does not support a percentage
        ("It costs $20.", "20 items"),  # nor a price
        ("Valid through 30 December 2027.", "valid through 31 December 2027"),
        ("Valid through 31 December 2028.", "valid through 31 December 2027"),
        ("Valid through 1 April 2027.", "from 1 April"),  # the year was not stated
    ],
)
def test_different_facts_do_not_support_each_other(claim, support):
    assert not extract_facts(claim) <= extract_facts(support, as_support=True)


def test_urls_merge_fields_and_the_word_one_are_not_facts():
    assert extract_facts("Hi {first_name}, see https://x.example/offer/2027 for one pack.") == set()


def test_codes_and_names():
    assert extract_codes("Use WELCOME15 or FIRSTLIGHT; FREE shipping on USB-C gear") == {
        "WELCOME15",
        "FIRSTLIGHT",
    }
    names = extract_names(
        "Gold members earn 2 points on the Alpine Loft 20 and the Summit Series. Your Trailhead "
        "Plus membership renews in March."
    )
    assert {"Alpine Loft 20", "Summit Series", "Trailhead Plus"} <= names
    assert not any(n.startswith(("The ", "Your ")) for n in names)


# ----------------------------------------------------------------------------- grounding


def _ground(body: str, subject: str = ""):
    return check_grounding(body, RETRIEVED, subject=subject)


def test_quoted_facts_with_their_citations_are_grounded():
    body = (
        f"Hi {{first_name}},\n\nThe Summit Ridge 2 tent is priced at $329. {TENT_MARK} "
        f"New customers can take 15% off with code WELCOME15 through December 31, 2027. "
        f"{OFFER_MARK}\n\nShop now: https://example.test/2"
    )
    report = _ground(body, subject="15% off your first order")
    assert report.grounding.score == 1.0
    assert report.grounding.unsupported_claims == ()
    assert [c.document_id for c in report.citations] == ["FERN-PRD-001", "FERN-PRM-001"]


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("The tent now costs $299.", "$299"),
        ("Save 25% this week.", "25%"),
        ("Hurry, it ends 15 January 2027.", "2027-01-15"),
        ("Use code SUMMER30 at checkout.", "SUMMER30"),
        ("It weighs just 1.2 kg.", "1.2"),
        ("Trailhead Plus members save on the tent.", "Trailhead Plus"),
    ],
)
def test_unsupported_numbers_prices_percents_dates_codes_and_names(sentence, missing):
    body = f"The Summit Ridge 2 tent is priced at $329. {sentence} {TENT_MARK} {OFFER_MARK}"
    report = _ground(body)
    assert report.grounding.unsupported_claims == (sentence,)
    [claim] = [c for c in report.claims if not c.supported]
    assert missing in claim.missing
    assert report.grounding.score == pytest.approx(1 / 2)
    assert any(missing in p for p in report.problems())


def test_a_fact_in_a_retrieved_but_uncited_snippet_is_unsupported():
    body = f"Renting a sleeping bag costs $25 per weekend. {TENT_MARK} {OFFER_MARK}"
    assert _ground(body).grounding.unsupported_claims == (
        "Renting a sleeping bag costs $25 per weekend.",
    )
    cited = body + " [Source: Fernleaf Gear Rental, ¶1]"
    assert _ground(cited).grounding.score == 1.0


def test_invalid_citations_are_recorded_and_do_not_support_claims():
    bad = "[Source: Summit Ridge 2 Backpacking Tent, ¶3]"
    report = _ground(f"The Summit Ridge 2 tent is priced at $329. {bad}")
    assert report.grounding.invalid_citations == (bad,)
    assert report.citations == ()
    assert report.grounding.score == 0.0
    assert "does not name a retrieved paragraph" in report.problems()[0]


def test_sentences_without_facts_are_not_claims():
    report = _ground("Hi {first_name},\n\nWe think you will love being outside this season.")
    assert report.claims == () and report.grounding.score == 1.0


def test_subject_claims_are_checked_against_cited_titles_and_text():
    body = f"The Summit Ridge 2 tent is priced at $329. {TENT_MARK}"
    assert _ground(body, subject="The Summit Ridge 2 at $329").grounding.score == 1.0
    report = _ground(body, subject="40% off the Summit Ridge 2")
    assert report.grounding.unsupported_claims == ("40% off the Summit Ridge 2",)
