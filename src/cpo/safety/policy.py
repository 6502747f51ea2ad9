"""The screening policy: harm severities and compliance rules to pass / review / block.

:func:`decide` is a pure function of the backend's scores, the variant and the
policy (safety_thresholds.yaml), so the same policy applies whichever backend
scored the text, and a decision can be explained line by line:

* per harm category, ``severity >= block_at`` blocks and ``severity >= review_at``
  needs review ("violence severity 6 >= block_at 6");
* compliance rules, each ``block`` / ``review`` / ``off``: grounding problems
  reported by generation, banned phrases, personal data, a missing unsubscribe
  footer, custom blocklist hits, audience values (tiers) named in a message whose
  recipients do not all hold them (:class:`MentionCheck`, from retrieval.json);
* fail closed: a screening error (scores missing) is always a ``block`` with
  reason ``screening_error: ...``; a variant whose generation failed is a
  ``block`` with reason ``generation_failed``.

The strictest action wins: any block makes the verdict ``block``; otherwise any
review makes it ``review``; otherwise ``pass``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cpo.audience import find_mentions
from cpo.citations import strip_citations
from cpo.decisions import screening_text
from cpo.models import (
    CONTROL_TONE,
    HARM_CATEGORIES,
    CategoryScores,
    ScreeningStatus,
    Variant,
    Verdict,
)
from cpo.safety.settings import PiiSettings, SafetyPolicySettings
from cpo.text import relative_time_phrases

ACTION_RANK = {"off": 0, "pass": 0, "review": 1, "block": 2}
REASON_MAX_CHARS = 240

#: Merge fields such as ``{first_name}`` are placeholders filled at send time.
MERGE_FIELD = re.compile(r"\{\{?\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}?\}")
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
#: North American numbers need separators, so bare order numbers are not phones.
PHONE_NANP = re.compile(
    r"(?<![\w-])(?:\+?1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
)
#: International numbers need the leading ``+``.
PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?![\w-])")
PII_LABELS = {"email": "email address", "phone": "phone number", "card": "card number"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired for a text.

    Attributes:
        code: Rule family for counting: a harm category, ``banned_phrase``, ``pii``,
            ``footer``, ``grounding``, ``blocklist``, ``audience_mentions``,
            ``screening_error`` or ``generation_failed``.
        action: ``review`` or ``block``.
        reason: Human-readable reason recorded in the verdict and audit log.
    """

    code: str
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class MentionCheck:
    """Audience values a variant must not name (held by not every recipient).

    Attributes:
        forbidden: The values, e.g. ``("Bronze", "Silver")`` for an all-Gold segment.
        recipients: Who receives the variant, for the reason ("segment 'X'", "all customers").
        match_case: Match the values case-sensitively.
    """

    forbidden: tuple[str, ...]
    recipients: str
    match_case: bool = False


def policy_sha256(policy: SafetyPolicySettings) -> str:
    """sha256 of the policy's canonical JSON (recorded with every decision).

    Canonical JSON as everywhere in cpo: sorted keys, no spaces, UTF-8.
    """
    canonical = json.dumps(
        policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decide(
    scores: CategoryScores | None,
    variant: Variant,
    policy: SafetyPolicySettings,
    *,
    backend: str = "",
    error: str | None = None,
    mentions: MentionCheck | None = None,
) -> Verdict:
    """Decide pass / review / block for one variant.

    Args:
        scores: The backend's severities, or ``None`` when screening failed.
        variant: The screened variant (its text, grounding and status).
        policy: safety_thresholds.yaml.
        backend: Backend name recorded in the verdict.
        error: Why screening failed; makes the verdict a block (fail closed).
        mentions: Audience values its recipients do not all hold (None: not checked).

    Returns:
        The verdict. When screening failed, ``severities`` is empty.
    """
    findings = evaluate(scores, variant, policy, error=error, mentions=mentions)
    return Verdict(
        variant_id=variant.variant_id,
        status=strictest(findings),
        severities=scores.severities() if scores is not None and error is None else {},
        reasons=tuple(f.reason for f in findings),
        backend=backend,
    )


def evaluate(
    scores: CategoryScores | None,
    variant: Variant,
    policy: SafetyPolicySettings,
    *,
    error: str | None = None,
    mentions: MentionCheck | None = None,
) -> list[Finding]:
    """Return every rule that fires, block findings first, in a stable order."""
    findings: list[Finding] = []
    if variant.status == "failed":
        detail = one_line(variant.error or "no error recorded")
        findings.append(Finding("generation_failed", "block", f"generation_failed: {detail}"))
        return findings
    if error is not None or scores is None:
        detail = one_line(error or "the backend returned no scores")
        findings.append(Finding("screening_error", "block", f"screening_error: {detail}"))
    else:
        findings.extend(category_findings(scores, policy))
        findings.extend(blocklist_findings(scores, policy))
    findings.extend(compliance_findings(variant, policy))
    findings.extend(audience_mention_findings(variant, mentions, policy))
    return sorted(findings, key=lambda f: -ACTION_RANK[f.action])


def strictest(findings: list[Finding]) -> ScreeningStatus:
    """``block`` if any finding blocks, else ``review`` if any reviews, else ``pass``."""
    rank = max((ACTION_RANK[f.action] for f in findings), default=0)
    return ("pass", "review", "block")[rank]


def category_findings(scores: CategoryScores, policy: SafetyPolicySettings) -> list[Finding]:
    """Compare each harm severity with its category's thresholds."""
    findings = []
    for category, severity in scores.severities().items():
        limits = policy.categories[category]
        if severity >= limits.block_at:
            reason = f"{category} severity {severity} >= block_at {limits.block_at}"
            findings.append(Finding(category, "block", reason))
        elif severity >= limits.review_at:
            reason = f"{category} severity {severity} >= review_at {limits.review_at}"
            findings.append(Finding(category, "review", reason))
    return findings


def blocklist_findings(scores: CategoryScores, policy: SafetyPolicySettings) -> list[Finding]:
    """A finding per custom blocklist that matched (Azure backend)."""
    action = policy.compliance.blocklist.action
    if action == "off":
        return []
    return [
        Finding("blocklist", action, f"blocklist hit: {name}")
        for name in sorted(set(scores.blocklist_hits))
    ]


def compliance_findings(variant: Variant, policy: SafetyPolicySettings) -> list[Finding]:
    """Grounding, banned phrases, relative time, PII and footer rules (each skipped when ``off``).

    Relative time: a deadline such as "48 hours only", "this weekend" or "starting
    Friday" (the same phrases the grounded composer refuses to quote without a
    date) cannot be placed by a reader, so the message goes to ``relative_time``'s
    action (review by default).
    """
    rules = policy.compliance
    findings: list[Finding] = []
    if rules.grounding.action != "off":
        findings.extend(
            Finding("grounding", rules.grounding.action, reason)
            for reason in grounding_problems(variant)
        )
    if rules.banned_phrases.action != "off":
        findings.extend(
            Finding("banned_phrase", rules.banned_phrases.action, f"banned phrase: {phrase}")
            for phrase in find_banned_phrases(screening_text(variant), rules.banned_phrases.phrases)
        )
    if rules.relative_time.action != "off":
        phrases = dict.fromkeys(p.lower() for p in relative_time_phrases(screening_text(variant)))
        findings.extend(
            Finding("relative_time", rules.relative_time.action, f"relative time: {phrase}")
            for phrase in phrases
        )
    if rules.pii.action != "off":
        findings.extend(
            Finding("pii", rules.pii.action, f"pii: {PII_LABELS[kind]}")
            for kind in find_pii(screening_text(variant), rules.pii)
        )
    if rules.footer.action != "off" and not re.search(rules.footer.pattern, variant.body):
        findings.append(Finding("footer", rules.footer.action, "missing footer"))
    return findings


def mention_checks(
    retrieval: dict[str, Any], variants: Sequence[Variant]
) -> dict[str, MentionCheck]:
    """Per variant id, the audience values it must not name (from a loaded retrieval.json).

    A segment's variants must not name what not all of the segment's customers hold;
    the control goes to everyone, so it must not name what not all customers hold. A
    variant of a segment the file does not list gets the everyone check (strictest).
    Returns an empty dict for a retrieval.json written without customer data.
    """
    section = retrieval.get("audience_mentions")
    if not isinstance(section, dict):
        return {}
    match_case = bool(section.get("match_case", False))
    everyone = tuple((section.get("everyone") or {}).get("not_held_by_all") or ())
    by_segment = {
        str(entry.get("segment")): tuple(
            (entry.get("audience_values") or {}).get("not_held_by_all") or ()
        )
        for entry in retrieval.get("segments") or ()
        if isinstance(entry, dict)
    }
    checks = {}
    for variant in variants:
        if variant.tone != CONTROL_TONE and variant.segment in by_segment:
            recipients = f"segment '{variant.segment}'"
            forbidden = by_segment[variant.segment]
        else:
            recipients, forbidden = "all customers (the control goes to everyone)", everyone
        checks[variant.variant_id] = MentionCheck(forbidden, recipients, match_case)
    return checks


def audience_mention_findings(
    variant: Variant, mentions: MentionCheck | None, policy: SafetyPolicySettings
) -> list[Finding]:
    """A finding when the variant names an audience value its recipients do not all hold.

    Citation markers are left out: they name a source's title for reviewers, and the
    send list removes them before anything reaches a customer.
    """
    action = policy.compliance.audience_mentions.action
    if action == "off" or mentions is None or not mentions.forbidden:
        return []
    text = strip_citations(screening_text(variant))
    named = find_mentions(text, mentions.forbidden, mentions.match_case)
    if not named:
        return []
    reason = one_line(
        f"audience mention: names {', '.join(named)}, not held by every customer of "
        f"{mentions.recipients}"
    )
    return [Finding("audience_mentions", action, reason)]


def grounding_problems(variant: Variant) -> list[str]:
    """Reasons for the grounding problems generation reported on the variant."""
    grounding = variant.grounding
    problems = []
    if grounding.invalid_citations:
        names = ", ".join(sorted(set(grounding.invalid_citations)))
        problems.append(one_line(f"invalid citations: {names}"))
    if grounding.unsupported_claims:
        problems.append(f"unsupported claims: {len(grounding.unsupported_claims)}")
    return problems


def normalize_text(text: str) -> str:
    """Normalize text for phrase matching.

    Unicode compatibility forms (full-width letters, ligatures), accents removed,
    case folded, curly quotes and dashes made plain, runs of whitespace collapsed.
    """
    if not text.isascii():  # ASCII text has no accents or compatibility forms
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = text.translate(_PUNCTUATION)
    text = text.casefold()
    return re.sub(r"\s+", " ", text).strip()


_PUNCTUATION = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2010": "-", "\u2011": "-",
     "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u00a0": " "}
)  # fmt: skip


@lru_cache(maxsize=256)
def _phrase_pattern(phrase: str) -> tuple[re.Pattern[str], str]:
    """Whole-word pattern for a phrase, and its longest word (a cheap pre-check).

    Spaces and hyphens in the phrase match spaces or hyphens, so "no risk" also
    finds "no-risk" and "risk-free" also finds "risk free".
    """
    words = re.split(r"[\s-]+", normalize_text(phrase))
    body = r"[\s-]+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)"), max(words, key=len)


def find_banned_phrases(text: str, phrases: tuple[str, ...]) -> list[str]:
    """The configured phrases found in ``text`` (whole words, case-insensitive)."""
    normalized = normalize_text(text)
    found: dict[str, str] = {}  # pattern -> first phrase; "no risk" and "no-risk" are one
    for phrase in phrases:
        pattern, longest_word = _phrase_pattern(phrase)
        if longest_word not in normalized or pattern.pattern in found:
            continue  # a substring test is ~50x cheaper than the regex
        if pattern.search(normalized):
            found[pattern.pattern] = phrase
    return list(found.values())


def find_pii(text: str, settings: PiiSettings) -> list[str]:
    """Kinds of personal data found in ``text``: ``email``, ``phone``, ``card``.

    Merge fields (``{first_name}``) are removed first: they are placeholders.
    Card numbers must pass the Luhn check; values in ``settings.allow`` are ignored.
    """
    text = MERGE_FIELD.sub(" ", text)
    allowed = {_compact(value) for value in settings.allow}
    found = []
    card_spans = []
    if "email" in settings.detect and "@" in text and _any_match(EMAIL, text, allowed):
        found.append("email")
    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if (
            13 <= len(digits) <= 19
            and luhn_valid(digits)
            and _compact(match.group()) not in allowed
        ):
            card_spans.append(match.span())
    if "card" in settings.detect and card_spans:
        found.append("card")
    if "phone" in settings.detect and _has_phone(text, card_spans, allowed):
        found.append("phone")
    return found


def _has_phone(text: str, card_spans: list[tuple[int, int]], allowed: set[str]) -> bool:
    """True when a phone number (outside a card number) is in the text."""
    for pattern in (PHONE_NANP, PHONE_INTL):
        for match in pattern.finditer(text):
            inside_card = any(s <= match.start() < e for s, e in card_spans)
            digits = re.sub(r"\D", "", match.group())
            if (
                not inside_card
                and 8 <= len(digits) <= 15
                and _compact(match.group()) not in allowed
            ):
                return True
    return False


def _any_match(pattern: re.Pattern[str], text: str, allowed: set[str]) -> bool:
    return any(_compact(m.group()) not in allowed for m in pattern.finditer(text))


def _compact(value: str) -> str:
    return re.sub(r"\s+", "", value).casefold()


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number passes."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def one_line(text: str) -> str:
    """Collapse a message to one line of at most :data:`REASON_MAX_CHARS` characters."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= REASON_MAX_CHARS else flat[: REASON_MAX_CHARS - 3] + "..."


_REASON_CODES = (
    ("screening_error", "screening_error"),
    ("generation_failed", "generation_failed"),
    ("banned phrase", "banned_phrase"),
    ("relative time", "relative_time"),
    ("pii", "pii"),
    ("missing footer", "footer"),
    ("invalid citations", "grounding"),
    ("unsupported claims", "grounding"),
    ("blocklist hit", "blocklist"),
    ("audience mention", "audience_mentions"),
    *((f"{c} severity", c) for c in HARM_CATEGORIES),
)


def reason_code(reason: str) -> str:
    """The rule family of a recorded reason (for counting in the manifest summary)."""
    for prefix, code in _REASON_CODES:
        if reason.startswith(prefix):
            return code
    return "other"
