"""compliance.audience_mentions: a message naming a tier not every recipient holds."""

from __future__ import annotations

import pytest

from cpo.models import CategoryScores, Variant
from cpo.safety.policy import MentionCheck, decide, mention_checks, reason_code
from cpo.safety.settings import SafetyPolicySettings

DEFAULT = SafetyPolicySettings()
FOOTER = "\n\nUnsubscribe any time."


def variant(body: str, segment: str = "Savers", tone: str = "friendly", vid: str = "v1"):
    return Variant(vid, segment, tone, "Your savings", body + FOOTER)


def policy(action: str) -> SafetyPolicySettings:
    return SafetyPolicySettings.model_validate(
        {"compliance": {"audience_mentions": {"action": action}}}
    )


MIXED = MentionCheck(("Premier", "Standard"), "segment 'Savers'")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("As a valued Premier member, earn 2% cashback.", "review"),
        ("Use code PREMIER20 for a bonus.", "review"),
        ("Savings accounts pay 4.1% interest.", "pass"),
        ("A premiere screening for clients.", "pass"),
    ],
)
def test_tier_named_for_a_mixed_segment_goes_to_review(body: str, status: str):
    verdict = decide(CategoryScores(), variant(body), DEFAULT, mentions=MIXED)
    assert verdict.status == status
    if status == "review":
        assert verdict.reasons == (
            "audience mention: names Premier, not held by every customer of segment 'Savers'",
        )


@pytest.mark.parametrize(("action", "status"), [("block", "block"), ("off", "pass")])
def test_rule_action_is_configurable(action: str, status: str):
    body = "As a valued Premier member, earn 2% cashback."
    assert decide(CategoryScores(), variant(body), policy(action), mentions=MIXED).status == status


def test_a_value_all_recipients_hold_may_be_named():
    all_premier = MentionCheck(("Standard",), "segment 'Premier Savers'")
    body = "As a valued Premier member, earn 2% cashback."
    assert decide(CategoryScores(), variant(body), DEFAULT, mentions=all_premier).status == "pass"
    assert decide(CategoryScores(), variant(body), DEFAULT).status == "pass"  # not checked


def test_match_case_from_the_run():
    lower = MentionCheck(("Standard",), "segment 'Savers'", match_case=True)
    body = "Standard delivery is free. Our standard rates apply."
    assert decide(CategoryScores(), variant(body), DEFAULT, mentions=lower).status == "review"
    only_lower = "Our standard rates apply."
    assert decide(CategoryScores(), variant(only_lower), DEFAULT, mentions=lower).status == "pass"


RETRIEVAL = {
    "audience_mentions": {
        "columns": {"tier": ["Premier", "Standard"]},
        "match_case": False,
        "everyone": {"held_by_all": {"tier": None}, "not_held_by_all": ["Premier", "Standard"]},
    },
    "segments": [
        {
            "segment": "Premier Savers",
            "audience_values": {
                "held_by_all": {"tier": "Premier"},
                "not_held_by_all": ["Standard"],
            },
        },
        {
            "segment": "Savers",
            "audience_values": {
                "held_by_all": {"tier": None},
                "not_held_by_all": ["Premier", "Standard"],
            },
        },
    ],
}


def test_mention_checks_per_variant_from_retrieval_json():
    variants = [
        variant("x", "Premier Savers", vid="a"),
        variant("x", "Savers", vid="b"),
        variant("x", "all", "control", vid="control"),
        variant("x", "Renamed Segment", vid="c"),
    ]
    checks = mention_checks(RETRIEVAL, variants)
    assert checks["a"] == MentionCheck(("Standard",), "segment 'Premier Savers'")
    assert checks["b"].forbidden == ("Premier", "Standard")
    everyone = "all customers (the control goes to everyone)"
    assert checks["control"] == MentionCheck(("Premier", "Standard"), everyone)
    assert checks["c"].recipients == everyone  # unknown segment: strictest check
    assert mention_checks({"segments": []}, variants) == {}


def test_reason_code_counts_the_rule():
    assert reason_code("audience mention: names Gold, not held by ...") == "audience_mentions"


def test_citation_markers_do_not_count_as_mentions():
    """Markers name a source title for reviewers; the send list removes them."""
    body = "Express shipping takes two days. [Source: Free Shipping for Premier Members, ¶1]"
    assert decide(CategoryScores(), variant(body), DEFAULT, mentions=MIXED).status == "pass"
    told = "Premier members ship free. [Source: Free Shipping for Premier Members, ¶1]"
    assert decide(CategoryScores(), variant(told), DEFAULT, mentions=MIXED).status == "review"
