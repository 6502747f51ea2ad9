"""The customer copy: no citation markers, footnotes on request, a preheader from a quoted fact."""

from __future__ import annotations

import pytest

from cpo.customer_text import (
    SourceLink,
    customer_message,
    footnote_citations,
    preheader,
    source_links,
    strip_citations,
)
from cpo.errors import StageError
from cpo.models import Citation, Variant

FOOTER = "Unsubscribe at any time: https://grocer.example/u"
BODY = (
    "Hi {first_name},\n\n"
    "At a glance: Fresh sourdough is baked every morning at 6 am. It sells out by noon. "
    "[Source: Bakery Hours, ¶1]\n\n"
    "Members save 10% on produce on Tuesdays [Source: Member Days, para. 2], all year.\n\n"
    "Order online: https://grocer.example/order\n\n" + FOOTER
)


def variant(body: str = BODY, subject: str = "Fresh bread, {first_name}") -> Variant:
    return Variant(
        "s1-friendly",
        "regulars",
        "friendly",
        subject,
        body,
        citations=(Citation("G-1", "Bakery Hours", 1), Citation("G-2", "Member Days", 2)),
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Save 10%. [Source: Deals, ¶1]", "Save 10%."),
        ("Save 10% [Source: Deals, ¶1].", "Save 10%."),
        ("Save [source : deals , paragraph 3] now", "Save now"),
        ("A [Source: Title without paragraph] B", "A B"),
        ("No markers here.", "No markers here."),
        ("- Fact one. [Source: A, ¶1]\n- Fact two. [Source: B, ¶2]", "- Fact one.\n- Fact two."),
    ],
)
def test_strip_citations(text, expected):
    assert strip_citations(text) == expected


def test_preheader_is_the_first_quoted_sentence_without_lead_in():
    assert preheader(BODY) == "Fresh sourdough is baked every morning at 6 am."


def test_preheader_is_cut_at_a_word_and_skips_the_greeting_without_markers():
    long = "Hello {first_name}!\n\n" + "Our winter market opens on the square " * 5 + "today."
    text = preheader(long)
    assert text.startswith("Our winter market opens") and text.endswith("…")
    assert len(text) <= 100 and "Hello" not in text


def test_footnotes_number_each_document_once_and_list_links_before_the_footer():
    links = {"bakery hours": SourceLink("Bakery Hours", "https://grocer.example/bakery")}
    body = BODY.replace("[Source: Member Days, para. 2]", "[Source: Bakery Hours, ¶3]")
    body += ""
    result = footnote_citations(body, links)
    assert "sells out by noon.[1]" in result and "on Tuesdays[1], all year." in result
    assert result.endswith("Sources:\n[1] Bakery Hours: https://grocer.example/bakery\n\n" + FOOTER)


def test_customer_message_and_source_links_from_retrieval():
    retrieval = {
        "segments": [
            {
                "results": [
                    {
                        "document_id": "G-2",
                        "title": "Member Days",
                        "source_url": "https://g.example/m",
                    },
                    {"document_id": "G-1", "title": "Bakery Hours", "source_url": None},
                ]
            }
        ]
    }
    links = source_links(retrieval, [variant()])
    message = customer_message(variant(), mode="footnotes", links=links)
    assert "[2] Member Days: https://g.example/m" in message.body
    assert "[1] Bakery Hours\n" in message.body  # no URL: the title alone
    plain = customer_message(variant())
    assert "[Source" not in plain.body and "[1]" not in plain.body
    assert plain.subject == "Fresh bread, {first_name}"


def test_a_marker_that_cannot_be_removed_stops_the_send_list():
    broken = variant(BODY.replace("[Source: Member Days, para. 2]", "[Source: Member Days"))
    with pytest.raises(StageError, match="s1-friendly.*citation marker"):
        customer_message(broken)
