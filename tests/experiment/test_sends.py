"""The send list: only sendable variants, merge fields rendered safely, holdout excluded."""

from __future__ import annotations

import pandas as pd
import pytest

from cpo.customer_text import SourceLink
from cpo.experiment.sends import (
    SEND_COLUMNS,
    MessageOptions,
    build_send_list,
    render,
    template_parts,
    unknown_merge_fields,
)
from cpo.models import Citation
from cpo.safety.local import LocalSafetyAnalyzer
from cpo.safety.merge import MergeScreener
from cpo.safety.settings import SafetyPolicySettings


@pytest.fixture
def screen():
    """The real merge screen: local backend and the default policy."""
    return MergeScreener(LocalSafetyAnalyzer(), SafetyPolicySettings())


@pytest.mark.parametrize(
    "template, name, expected",
    [
        ("Hi {first_name}, welcome", "Ada", "Hi Ada, welcome"),
        ("{first_name}{first_name}", "Bo", "BoBo"),
        ("Save {{50%}} today", "Ada", "Save {50%} today"),
        ("Literal {{first_name}} stays", "Ada", "Literal {first_name} stays"),
        ("A {stray brace and {0.__class__}", "Ada", "A {stray brace and {0.__class__}"),
        ("No fields", "Ada", "No fields"),
    ],
)
def test_render(template, name, expected):
    assert render(template, pd.Series([name])).tolist() == [expected]


def test_a_name_is_inserted_once_and_never_rescanned():
    names = pd.Series(["{first_name}", "{{x}}", "Zoë"])
    assert render("Hi {first_name}!", names).tolist() == [
        "Hi {first_name}!",
        "Hi {{x}}!",
        "Hi Zoë!",
    ]


def test_template_parts_and_unknown_fields():
    assert template_parts("a{first_name}b{{c}}") == ["a", None, "b{c}"]
    assert unknown_merge_fields("Hi {first_name} {last_name} {{city}} {0}") == ["last_name"]


@pytest.fixture
def send_inputs(xkit):
    variants = {v.variant_id: v for v in xkit.variant_set(["a"])}
    variants["s0-urgent"] = xkit.make_variant(
        "s0-urgent", "a", "urgent", "Ends {tonight} {{sale}}", subject="{first_name}, hurry"
    )
    assignments = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5"],
            "segment": "a",
            "experiment_arm": ["control", "treatment_1", "holdout", "treatment_1", "control"],
            "variant_id": ["control", "s0-urgent", "", "s0-urgent", "control"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["c5", "c4", "c3", "c2", "c1"],
            "email": ["e5@x.org", "e4@x.org", "e3@x.org", "e2@x.org", "e1@x.org"],
            "first_name": ["Eve", "  ", "Cy", "Bo\nBcc: x", "Ada"],
        }
    )
    return assignments, customers, variants


def test_send_list_renders_and_excludes_holdout(send_inputs, screen):
    assignments, customers, variants = send_inputs
    sendable = {vid: variants[vid] for vid in ("control", "s0-urgent")}
    result = build_send_list(assignments, customers, sendable, screen=screen)
    frame = result.frame
    assert tuple(frame.columns) == SEND_COLUMNS
    assert frame["customer_id"].tolist() == ["c1", "c2", "c4", "c5"]
    assert "c3" not in set(frame["customer_id"])
    assert frame.loc[0, "email"] == "e1@x.org" and frame.loc[0, "first_name"] == "Ada"
    assert frame.loc[0, "body"].startswith("Hi Ada,\n\nBrowse the latest gear.")
    assert frame.loc[1, "subject"] == "Bo Bcc: x, hurry"  # control characters flattened
    assert frame.loc[2, "subject"] == "there, hurry" and frame.loc[2, "body"].startswith(
        "Hi there,"
    )
    assert "Ends {tonight} {sale}" in frame.loc[2, "body"]
    assert result.missing_names == 1
    assert result.unknown_fields == {"s0-urgent": ["tonight"]}
    assert not frame["body"].str.contains("{first_name}", regex=False).any()


def test_a_variant_not_in_the_sendable_set_is_refused(send_inputs, screen):
    assignments, customers, variants = send_inputs
    with pytest.raises(ValueError, match="s0-urgent"):
        build_send_list(assignments, customers, {"control": variants["control"]}, screen=screen)


def test_recipients_without_customer_record_are_refused(send_inputs, screen):
    assignments, customers, variants = send_inputs
    with pytest.raises(ValueError, match="no customer record"):
        build_send_list(assignments, customers.iloc[1:], variants, screen=screen)


CITED_BODY = (
    "Hello {first_name},\n\n"
    "Here is what changed at Lumen Bank this spring.\n\n"
    "- Everyday Saver accounts now earn 4.1% a year. [Source: Savings Rates 2027, ¶2]\n"
    "- Sending money to a friend is free. [Source: fee schedule, ¶1]\n\n"
    "Open an account today: https://lumen.example/open?ref=spring&x=1\n\n"
    "Unsubscribe: https://lumen.example/u"
)


@pytest.fixture
def cited_inputs(xkit):
    variant = xkit.make_variant("s0-informational", "savers", "informational")
    variant = type(variant)(
        **{
            **{f: getattr(variant, f) for f in variant.__dataclass_fields__},
            "body": CITED_BODY,
            "subject": "{first_name}, your savings news",
            "citations": (
                Citation("LB-1", "Savings Rates 2027", 2),
                Citation("LB-2", "Fee Schedule", 1),
            ),
        }
    )
    ids = [f"L{i}" for i in range(6)]
    assignments = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": "savers",
            "experiment_arm": "treatment_1",
            "variant_id": "s0-informational",
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": [
                "I will kill you http://phish.example 4111 1111 1111 1111",
                "<script>alert(1)</script>",
                "Zoë\u200b\nO'Hara\t",
                "",
                "A" * 80,
                "Zoë O'Hara",
            ],
        }
    )
    return assignments, customers, {"s0-informational": variant}


def test_customers_get_clean_copy_preheader_and_html(cited_inputs, screen):
    assignments, customers, variants = cited_inputs
    frame = build_send_list(assignments, customers, variants, screen=screen).frame
    assert tuple(frame.columns) == SEND_COLUMNS
    assert "preheader" in SEND_COLUMNS and "body_html" in SEND_COLUMNS
    for column in ("subject", "preheader", "body", "body_html"):
        assert not frame[column].astype(str).str.contains("[Source:", regex=False).any()
    body = frame.loc[0, "body"]
    assert "- Everyday Saver accounts now earn 4.1% a year.\n- Sending money" in body
    assert set(frame["preheader"]) == {"Everyday Saver accounts now earn 4.1% a year."}
    page = frame.loc[0, "body_html"]
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    assert "<title>" in page and "<ul" in page and page.count("<li") == 2
    assert '<a href="https://lumen.example/open?ref=spring&amp;x=1"' in page
    assert "<script" not in page.lower() and "<link" not in page and "<img" not in page


def test_hostile_names_are_withheld_escaped_or_cleaned(cited_inputs, screen):
    assignments, customers, variants = cited_inputs
    result = build_send_list(assignments, customers, variants, screen=screen)
    frame = result.frame.set_index("customer_id")
    # the threat + phishing link + card number never reaches the send list
    assert "L0" not in frame.index
    withheld = result.withheld.set_index("customer_id")
    assert list(withheld.index) == ["L0"]
    assert set(withheld.loc["L0", "reason"].split(";")) == {"violence", "link", "pii_card"}
    assert "kill" not in result.withheld.to_csv()  # a reason code, never the value
    # markup is text: escaped in HTML, kept literally in the plain-text body
    assert frame.loc["L1", "body"].startswith("Hello <script>alert(1)</script>,")
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in frame.loc["L1", "body_html"]
    assert "<script>" not in frame.loc["L1", "body_html"]
    # control and zero-width characters removed, so two spellings are one value
    assert frame.loc["L2", "first_name"] == "Zoë O'Hara" == frame.loc["L5", "first_name"]
    assert frame.loc["L2", "subject"] == "Zoë O'Hara, your savings news"
    assert "Zoë O&#x27;Hara" in frame.loc["L2", "body_html"]
    assert frame.loc["L3", "body"].startswith("Hello there,")
    assert frame.loc["L4", "first_name"] == "A" * 50  # length cap
    assert result.missing_names == 1


def test_each_distinct_name_is_screened_once(cited_inputs):
    assignments, _, variants = cited_inputs
    calls: list[str] = []

    class Counting(LocalSafetyAnalyzer):
        def analyze(self, text):
            calls.append(text)
            return super().analyze(text)

    analyzer = Counting()
    many = pd.concat([assignments] * 200, ignore_index=True)
    many["customer_id"] = [f"M{i}" for i in range(len(many))]
    people = pd.DataFrame(
        {"customer_id": many["customer_id"], "first_name": ["Ana", "Ben", "Ana ", ""] * 300}
    )
    result = build_send_list(
        many, people, variants, screen=MergeScreener(analyzer, SafetyPolicySettings())
    )
    assert sorted(calls) == ["Ana", "Ben"]
    assert len(result.frame) == 1200
    assert result.frame["body"].cat.categories.size == 3  # Ana, Ben, fallback


def test_without_email_and_first_name_columns(cited_inputs, screen):
    assignments, customers, variants = cited_inputs
    ids_only = customers[["customer_id"]]
    options = MessageOptions(greeting_fallback="friend")
    result = build_send_list(assignments, ids_only, variants, screen=screen, options=options)
    assert result.frame["email"].eq("").all() and len(result.frame) == 6
    assert result.frame["body"].str.startswith("Hello friend,").all()
    assert result.missing_names == 6 and result.withheld.empty


def test_footnotes_number_sources_and_link_their_urls(cited_inputs, screen):
    assignments, customers, variants = cited_inputs
    links = {
        "savings rates 2027": SourceLink("Savings Rates 2027", "https://lumen.example/rates"),
        "fee schedule": SourceLink("Fee Schedule", ""),
    }
    options = MessageOptions(citations="footnotes", links=links)
    frame = build_send_list(assignments, customers, variants, screen=screen, options=options).frame
    body = frame.loc[0, "body"]
    assert "4.1% a year.[1]\n- Sending money to a friend is free.[2]" in body
    assert body.endswith(
        "Sources:\n[1] Savings Rates 2027: https://lumen.example/rates\n[2] Fee Schedule"
        "\n\nUnsubscribe: https://lumen.example/u"
    )
    assert '<a href="https://lumen.example/rates"' in frame.loc[0, "body_html"]
    assert "[Source:" not in body
