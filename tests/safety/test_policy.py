"""The screening policy: thresholds per category, compliance rules, fail closed."""

from __future__ import annotations

import pytest

from cpo.config import load_config
from cpo.decisions import content_sha256
from cpo.errors import ConfigError
from cpo.models import HARM_CATEGORIES, CategoryScores, Grounding
from cpo.safety.policy import (
    decide,
    find_banned_phrases,
    find_pii,
    luhn_valid,
    normalize_text,
    policy_sha256,
    reason_code,
)
from cpo.safety.settings import PiiSettings, SafetyPolicySettings

DEFAULT = SafetyPolicySettings()


def with_rule(rule: str, action: str, **extra) -> SafetyPolicySettings:
    """The default policy with one compliance rule's action changed."""
    compliance = DEFAULT.compliance.model_dump()
    compliance[rule].update(action=action, **extra)
    return SafetyPolicySettings.model_validate({"compliance": compliance})


@pytest.mark.parametrize("category", HARM_CATEGORIES)
@pytest.mark.parametrize(
    ("severity", "status"),
    [
        (0, "pass"),
        (1, "pass"),
        (3, "pass"),
        (4, "review"),
        (5, "review"),
        (6, "block"),
        (7, "block"),
    ],
)
def test_default_thresholds_per_category(kit, category, severity, status):
    verdict = decide(CategoryScores(**{category: severity}), kit.make_variant("v"), DEFAULT)
    assert verdict.status == status
    assert verdict.severities[category] == severity


def test_reasons_name_category_severity_and_threshold(kit):
    verdict = decide(CategoryScores(violence=6, hate=4), kit.make_variant("v"), DEFAULT)
    assert verdict.reasons == (
        "violence severity 6 >= block_at 6",
        "hate severity 4 >= review_at 4",
    )
    assert [reason_code(r) for r in verdict.reasons] == ["violence", "hate"]


def _write_thresholds(config_dir, text: str):
    (config_dir / "safety_thresholds.yaml").write_text(text, encoding="utf-8")
    return load_config(config_dir).safety


def test_changing_the_yaml_changes_the_decision(kit, config_dir):
    medium = CategoryScores(violence=4)
    variant = kit.make_variant("v")
    assert decide(medium, variant, load_config(config_dir).safety).status == "review"
    policy = _write_thresholds(config_dir, "categories:\n  violence: {review_at: 2, block_at: 4}\n")
    verdict = decide(medium, variant, policy)
    assert verdict.status == "block"
    assert verdict.reasons == ("violence severity 4 >= block_at 4",)
    # categories left out keep the defaults
    assert decide(CategoryScores(hate=4), variant, policy).status == "review"
    assert decide(CategoryScores(violence=3), variant, policy).status == "review"


def test_bundled_yaml_matches_the_code_defaults():
    assert load_config().safety == SafetyPolicySettings()


def test_a_rule_switched_off_in_yaml_stops_firing(kit, config_dir):
    variant = kit.make_variant("v", "Results guaranteed.")
    assert decide(CategoryScores(), variant, load_config(config_dir).safety).status == "review"
    policy = _write_thresholds(config_dir, "compliance:\n  banned_phrases: {action: 'off'}\n")
    assert decide(CategoryScores(), variant, policy).status == "pass"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "categories:\n  violence: {review_at: 6, block_at: 4}\n",
            "review_at (6) must not be above",
        ),
        ("categories:\n  gore: {review_at: 4, block_at: 6}\n", "unknown harm category gore"),
        ("categories:\n  hate: {block_at: 9}\n", "categories.hate.block_at"),
        ("compliance:\n  pii: {action: warn}\n", "compliance.pii.action"),
        ("compliance:\n  footer: {pattern: '(unclosed'}\n", "not a valid regular expression"),
        ("compliance:\n  banned_phrases: {phrases: ['']}\n", "must not be empty"),
    ],
)
def test_bad_policy_yaml_names_the_key(config_dir, text, problem):
    with pytest.raises(ConfigError, match="safety_thresholds.yaml") as raised:
        _write_thresholds(config_dir, text)
    assert problem in str(raised.value)


# --- compliance rules, each action -------------------------------------------------------

ACTIONS = [("block", "block"), ("review", "review"), ("off", "pass")]


@pytest.mark.parametrize(("action", "status"), ACTIONS)
def test_grounding_rule(kit, action, status):
    grounding = Grounding(score=0.5, unsupported_claims=("40% off everything",),
                          invalid_citations=("FERN-XXX-999#2",))  # fmt: skip
    variant = kit.make_variant("v", grounding=grounding)
    verdict = decide(CategoryScores(), variant, with_rule("grounding", action))
    assert verdict.status == status
    if action != "off":
        assert verdict.reasons == ("invalid citations: FERN-XXX-999#2", "unsupported claims: 1")


def test_grounding_defaults_to_block(kit):
    variant = kit.make_variant("v", grounding=Grounding(0.8, unsupported_claims=("x",)))
    assert decide(CategoryScores(), variant, DEFAULT).status == "block"


@pytest.mark.parametrize(("action", "status"), ACTIONS)
def test_banned_phrase_rule(kit, action, status):
    variant = kit.make_variant("v", "Warmth GUARANTEED all winter.")
    verdict = decide(CategoryScores(), variant, with_rule("banned_phrases", action))
    assert verdict.status == status
    assert verdict.reasons == (() if action == "off" else ("banned phrase: guaranteed",))


def test_banned_phrases_default_to_review(kit):
    verdict = decide(CategoryScores(), kit.make_variant("v", "It's risk-free."), DEFAULT)
    assert (verdict.status, verdict.reasons) == ("review", ("banned phrase: risk-free",))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Satisfaction Guaranteed!", ["guaranteed"]),
        ("ｇｕａｒａｎｔｅｅｄ warmth", ["guaranteed"]),  # full-width letters
        ("guarantéed warmth", ["guaranteed"]),  # accent
        ("It is 100%   SAFE for kids", ["100% safe"]),
        ("a no-risk trial", ["no risk"]),
        ("totally risk free", ["risk-free"]),
        ("secure checkout, procure gear, manicure kit", []),  # "cure" inside words
        ("a guarantee of quality", []),  # not the listed word
        ("This balm is a cure.", ["cure"]),
    ],
)
def test_banned_phrases_match_whole_words_on_normalized_text(text, found):
    phrases = ("guaranteed", "100% safe", "no risk", "risk-free", "cure")
    assert find_banned_phrases(text, phrases) == found


def test_normalize_text():
    assert normalize_text("  Ｒisk\u2011FREE\u00a0 Café  ") == "risk-free cafe"


@pytest.mark.parametrize(("action", "status"), ACTIONS)
def test_pii_rule(kit, action, status):
    variant = kit.make_variant("v", "Write to jane.doe@example.com any time.")
    verdict = decide(CategoryScores(), variant, with_rule("pii", action))
    assert verdict.status == status
    assert verdict.reasons == (() if action == "off" else ("pii: email address",))


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Mail me at jane.doe+tents@example.co.uk", ["email"]),
        ("Call 555-867-5309 today", ["phone"]),
        ("Call (555) 867-5309 today", ["phone"]),
        ("Call 1-800-555-0199 today", ["phone"]),
        ("Ring +44 20 7946 0958", ["phone"]),
        ("Card 4111 1111 1111 1111 on file", ["card"]),
        ("Card 4111-1111-1111-1111 on file", ["card"]),
        ("Card 5500005555555559", ["card"]),
        ("Number 4111 1111 1111 1112", []),  # fails the Luhn check
        ("Hi {first_name}, your {email} and {{ last_name }} are safe", []),  # merge fields
        ("Order by 2026-01-05; ships in 3 to 5 days for $14.95", []),  # dates and prices
        ("Item 1234567890 and SKU FERN-2026-0105-7788", []),  # bare numbers are not phones
        ("Email jo@x.io or call 555.867.5309", ["email", "phone"]),
    ],
)
def test_pii_detection(text, kinds):
    assert find_pii(text, PiiSettings()) == kinds


def test_pii_allow_list_and_detect_selection():
    text = "Support: help@fernleaf.example.com or 555-010-0199; me: jo@x.io"
    allow = PiiSettings(allow=("help@fernleaf.example.com", "555-010-0199"))
    assert find_pii(text, allow) == ["email"]
    only_phone = PiiSettings(detect=("phone",))
    assert find_pii(text, only_phone) == ["phone"]
    assert find_pii("Support: help@fernleaf.example.com", allow) == []


def test_pii_defaults_to_block_and_never_records_the_value(kit):
    verdict = decide(CategoryScores(), kit.make_variant("v", "Call 555-867-5309"), DEFAULT)
    assert verdict.status == "block"
    assert verdict.reasons == ("pii: phone number",)
    assert "867" not in " ".join(verdict.reasons)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True)],
)
def test_luhn(digits, valid):
    # 79927398713 is the worked example of the Luhn algorithm (ISO/IEC 7812-1 annex).
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(("action", "status"), ACTIONS)
def test_footer_rule(kit, action, status):
    variant = kit.make_variant("v", "No footer here.", footer=False)
    verdict = decide(CategoryScores(), variant, with_rule("footer", action))
    assert verdict.status == status
    assert verdict.reasons == (() if action == "off" else ("missing footer",))


def test_footer_pattern_is_configurable(kit):
    variant = kit.make_variant("v", "Manage preferences: https://x.example/prefs", footer=False)
    assert decide(CategoryScores(), variant, DEFAULT).reasons == ("missing footer",)
    policy = with_rule("footer", "block", pattern=r"(?i)manage preferences")
    assert decide(CategoryScores(), variant, policy).status == "pass"


def test_footer_in_subject_does_not_count(kit):
    variant = kit.make_variant("v", "Body only.", footer=False, subject="Unsubscribe anytime")
    assert "missing footer" in decide(CategoryScores(), variant, DEFAULT).reasons


@pytest.mark.parametrize(("action", "status"), ACTIONS)
def test_blocklist_rule(kit, action, status):
    scores = CategoryScores(blocklist_hits=("brand-terms",))
    verdict = decide(scores, kit.make_variant("v"), with_rule("blocklist", action))
    assert verdict.status == status


def test_strictest_action_wins_and_block_reasons_come_first(kit):
    variant = kit.make_variant("v", "Guaranteed warmth. Call 555-867-5309.")
    verdict = decide(CategoryScores(hate=4), variant, DEFAULT)
    assert verdict.status == "block"
    assert verdict.reasons[0] == "pii: phone number"
    assert set(verdict.reasons[1:]) == {
        "hate severity 4 >= review_at 4",
        "banned phrase: guaranteed",
    }


# --- fail closed ------------------------------------------------------------------------


def test_screening_error_is_a_block_never_a_pass(kit):
    verdict = decide(
        None, kit.make_variant("v"), DEFAULT, backend="azure", error="timeout\nafter 3"
    )
    assert verdict.status == "block"
    assert verdict.reasons == ("screening_error: timeout after 3",)
    assert verdict.severities == {}
    assert verdict.backend == "azure"


def test_missing_scores_without_error_text_still_block(kit):
    verdict = decide(None, kit.make_variant("v"), DEFAULT)
    assert verdict.status == "block"
    assert reason_code(verdict.reasons[0]) == "screening_error"


def test_screening_error_blocks_even_with_every_rule_off(kit):
    compliance = {rule: {"action": "off"} for rule in DEFAULT.compliance.model_dump()}
    policy = SafetyPolicySettings.model_validate(
        {"categories": {c: {"review_at": 8, "block_at": 8} for c in HARM_CATEGORIES},
         "compliance": compliance}
    )  # fmt: skip
    assert decide(CategoryScores(violence=7), kit.make_variant("v"), policy).status == "pass"
    assert decide(None, kit.make_variant("v"), policy, error="down").status == "block"


def test_failed_generation_is_blocked_as_generation_failed(kit):
    variant = kit.make_variant("v", status="failed")
    verdict = decide(None, variant, DEFAULT)
    assert verdict.status == "block"
    assert verdict.reasons == ("generation_failed: model returned nothing",)


# --- the control message and hashes -----------------------------------------------------


def test_bundled_control_message_passes_the_default_policy():
    from cpo.generation.prompts import PromptLibrary
    from cpo.generation.service import control_variant

    config = load_config()
    control = control_variant(PromptLibrary.for_config(config))  # brand filled, footer added
    verdict = decide(CategoryScores(), control, config.safety)
    assert (verdict.status, verdict.reasons) == ("pass", ())


def test_content_and_policy_hashes_change_with_their_inputs(kit):
    a, b = kit.make_variant("v", "one"), kit.make_variant("v", "two")
    assert content_sha256(a) != content_sha256(b)
    assert len(content_sha256(a)) == 64
    stricter = SafetyPolicySettings.model_validate({"categories": {"hate": {"block_at": 4}}})
    assert policy_sha256(DEFAULT) != policy_sha256(stricter)
    assert policy_sha256(DEFAULT) == policy_sha256(SafetyPolicySettings())
