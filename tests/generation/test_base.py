"""Hard constraints, call-to-action detection, variant ids and text helpers."""

from __future__ import annotations

import pytest

from cpo.generation.base import has_call_to_action, validate_message, variant_id
from cpo.generation.settings import DEFAULT_CTA_VERBS
from cpo.models import GenerationConstraints
from cpo.text import count_words, split_sentences, truncate_words

LIMITS = GenerationConstraints()
M1 = "[Source: Alpha Guide, ¶1]"
M2 = "[Source: Beta Guide, ¶2]"


def _body(words: int, markers: str = f"{M1} {M2}", cta: str = "Shop now.") -> str:
    """A body of exactly ``words`` words (markers excluded), CTA included."""
    filler = max(0, words - count_words(cta))
    return " ".join(["word"] * filler) + f" {markers}\n\n{cta}"


def _problems(subject="A fine subject", body=None, limits=LIMITS):
    return validate_message(subject, body or _body(150), limits, DEFAULT_CTA_VERBS)


def test_a_valid_message_has_no_problems():
    assert _problems() == []


@pytest.mark.parametrize(
    ("words", "ok"), [(49, False), (50, True), (99, True), (100, True), (200, True), (201, False)]
)
def test_body_word_limits_are_the_floor_and_the_maximum(words, ok):
    """body_min_words is a target; the hard range is body_floor_words-body_max_words."""
    problems = _problems(body=_body(words))
    assert (problems == []) is ok
    if not ok:
        assert problems == [
            f"the body has {words} words (citation markers excluded); it must have 50-200 "
            "(aim for 100-200)"
        ]


def test_the_floor_never_exceeds_the_target():
    """Old configs with a target under the default floor keep their target as the floor."""
    limits = GenerationConstraints(body_min_words=30, body_max_words=60)
    assert _problems(body=_body(29), limits=limits)[0].startswith("the body has 29 words")
    assert _problems(body=_body(30), limits=limits) == []


def test_citation_markers_do_not_count_as_words():
    many = " ".join([M1, M2] * 20)
    assert _problems(body=_body(150, markers=many)) == []


@pytest.mark.parametrize(("length", "ok"), [(60, True), (61, False)])
def test_subject_limit(length, ok):
    problems = _problems(subject="x" * length)
    assert (problems == []) is ok
    if not ok:
        assert problems == ["the subject has 61 characters; the limit is 60"]


def test_empty_subject():
    assert _problems(subject="  ") == ["the subject line is empty"]


@pytest.mark.parametrize(
    ("markers", "count"),
    [(M1, 1), (f"{M1} {M1}", 1), (f"{M1} {M2} [Source: C, ¶1] [Source: D, ¶4]", 4)],
)
def test_citation_count_is_of_distinct_paragraphs(markers, count):
    [problem] = _problems(body=_body(150, markers=markers))
    assert f"cites {count} distinct source paragraph(s); it must cite 2-3" in problem


def test_missing_call_to_action():
    [problem] = _problems(body=_body(150, cta="We hope you like it."))
    assert problem.startswith("the body has no call to action")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Shop the sale today.", True),
        ("Please browse our new arrivals.", True),
        ("Don't forget to claim your credit.", True),
        ("— Visit us in store.", True),
        ("Sign up for the newsletter.", True),
        ("Details: https://example.test/offer", True),
        ("We shop for the best materials.", False),
        ("You are receiving this email. Unsubscribe: https://example.test/u", False),
        ("Our shopkeepers are friendly.", False),
    ],
)
def test_call_to_action_detection(text, found):
    assert has_call_to_action(f"Hello there.\n\n{text}", DEFAULT_CTA_VERBS) is found


def test_unfilled_placeholders_are_reported():
    body = _body(150, cta="Shop now: {url}") + "\nHi {first_name}"
    [problem] = _problems(body=body)
    assert "{url}" in problem and "{first_name}" not in problem.split(";")[0]


def test_custom_limits_are_used():
    limits = GenerationConstraints(
        subject_max_chars=20, body_min_words=10, body_max_words=30, min_citations=1, max_citations=1
    )
    assert _problems(subject="Short", body=_body(20, markers=M1), limits=limits) == []


def test_variant_id_is_deterministic_and_depends_on_every_input():
    base = ("At-Risk", "urgent", "openai", "gpt-4o-mini", "ab" * 32)
    first = variant_id(*base)
    assert first == variant_id(*base) and first.startswith("v-") and len(first) == 14
    for position in range(5):
        changed = list(base)
        changed[position] += "x"
        assert variant_id(*changed) != first


# ----------------------------------------------------------------------------- text


def test_split_sentences_handles_abbreviations_prices_and_lines():
    text = "Hi {first_name},\nIt costs $6.95, e.g. for socks. Dr. Lee agrees! Done?\n- A bullet"
    assert split_sentences(text) == [
        "Hi {first_name},",
        "It costs $6.95, e.g. for socks.",
        "Dr. Lee agrees!",
        "Done?",
        "A bullet",
    ]


def test_count_words_ignores_lone_punctuation():
    assert count_words("Hi {first_name}, — see https://x.test/a - now!") == 5


def test_truncate_words_cuts_at_a_word_boundary_without_dangling_words():
    assert truncate_words("Lightweight tents and sleeping bags for winter", 24) == (
        "Lightweight tents"
    )
    assert truncate_words("Short", 24) == "Short"
