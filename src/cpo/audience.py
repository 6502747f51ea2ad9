"""Whom a document is for: audiences matched to segments, and audience-value mentions.

Every approved document names its ``audience``. An audience reaches a segment when

* it is general (``content.general_audiences``, e.g. "All", "Everyone", or the
  ``fallback.audience``): it reaches every segment;
* it is configured in ``content.audiences`` (audience -> segment names): it reaches
  exactly those segments (names compared case-insensitively);
* otherwise, when every word of the audience is a word of the segment's name
  (case-insensitive, hyphens split words): "High-Value" reaches "High-Value Recent",
  "At-Risk" reaches "At-Risk", "Gold" reaches no segment called "Silver Savers".

An audience that reaches no segment of the run is reported (its content is never used).

It lives outside the stage packages because three of them use it (retrieval,
generation and the screening policy).

The second half is the tier backstop: a sentence that names a value of an audience
column (``content.audience_columns``, by default ``tier``: "Gold", "Silver", ...) is
quoted only for segments whose customers all hold that value. :func:`find_mentions`
is shared by the retrieve stage (which removes such sentences from snippets) and the
screening policy (which sends a variant that still names one to review).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from cpo.text import split_sentences

if TYPE_CHECKING:
    from cpo.retrieval.settings import ContentSettings

_WORDS = re.compile(r"[^\W_]+")


def audience_words(text: str) -> frozenset[str]:
    """The lower-cased words of a name (hyphens and punctuation separate words)."""
    return frozenset(word.casefold() for word in _WORDS.findall(text))


def general_audiences(settings: ContentSettings) -> frozenset[str]:
    """The audience values (case-folded) that mean every segment."""
    return frozenset(
        a.casefold() for a in [*settings.general_audiences, settings.fallback.audience]
    )


def is_general(audience: str, settings: ContentSettings) -> bool:
    """True when ``audience`` is written for everyone."""
    return audience.casefold() in general_audiences(settings)


def reaches(audience: str, segment: str, settings: ContentSettings) -> bool:
    """True when content for ``audience`` may be used for ``segment`` (module docstring)."""
    if is_general(audience, settings):
        return True
    configured = {k.casefold(): v for k, v in settings.audiences.items()}
    names = configured.get(audience.casefold())
    if names is not None:
        return segment.casefold() in {n.casefold() for n in names}
    words = audience_words(audience)
    return bool(words) and words <= audience_words(segment)


def segment_audiences(
    segment: str, audiences: Iterable[str], settings: ContentSettings
) -> tuple[list[str], list[str]]:
    """Of ``audiences``, those written for ``segment`` and the general ones (sorted)."""
    distinct = sorted(set(audiences))
    general = [a for a in distinct if is_general(a, settings)]
    specific = [a for a in distinct if a not in general and reaches(a, segment, settings)]
    return specific, general


def unmatched_audiences(
    audiences: Iterable[str], segments: Sequence[str], settings: ContentSettings
) -> list[str]:
    """Audiences (not general) that reach none of ``segments``, sorted."""
    return sorted(
        audience
        for audience in set(audiences)
        if not is_general(audience, settings)
        and not any(reaches(audience, segment, settings) for segment in segments)
    )


def unmatched_warning(audience: str, documents: Sequence[str], segments: Sequence[str]) -> str:
    """The warning for an audience no segment matches."""
    shown = ", ".join(documents[:5]) + (
        f" and {len(documents) - 5} more" if len(documents) > 5 else ""
    )
    return (
        f"audience '{audience}' matches no segment ({', '.join(segments)}); its content "
        f"({shown}) is not used: map it in content.audiences "
        f"(e.g. '{audience}': [{segments[0] if segments else 'Segment Name'}]) or fix the "
        "document's audience"
    )


@lru_cache(maxsize=256)
def mention_pattern(values: tuple[str, ...], match_case: bool) -> re.Pattern[str] | None:
    """A pattern for any of ``values`` (longest first), or None when empty.

    A value matches where no letter touches it: "Gold" is found in "Gold members",
    "Gold-tier" and the code "GOLD20", not in "Golden" or "marigold".
    """
    wanted = sorted({v.strip() for v in values if v.strip()}, key=lambda v: (-len(v), v))
    if not wanted:
        return None
    body = "|".join(r"\s+".join(re.escape(w) for w in value.split()) for value in wanted)
    return re.compile(rf"(?<![^\W\d_])(?:{body})(?![^\W\d_])", 0 if match_case else re.I)


#: Words that make a sentence-initial value a tier ("Free plan", "Gold members").
TIER_NOUNS = frozenset(
    "tier tiers plan plans member members membership memberships level levels status "
    "customer customers account accounts subscriber subscribers subscription "
    "subscriptions user users card cards cardholder cardholders client clients seat seats "
    "license licenses edition perks benefits".split()
)
_NEXT_WORD = re.compile(r"[\s,&/-]*([^\W\d_]+)")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n])[\s\"'“‘(\[*•-]*$")


def find_mentions(text: str, values: Sequence[str], match_case: bool = False) -> list[str]:
    """The ``values`` named in ``text`` (see :func:`mention_pattern`), spelt as in ``values``.

    With ``match_case`` only the data's own spelling counts. Otherwise a mention is
    the data's spelling ("Gold") or capitals ("GOLD20"). Because tier names are often
    ordinary words, another spelling ("free", "silver"), and a one-word value opening
    a sentence, count only when a word such as tier, plan or members is among the next
    three: "free shipping" and "Free returns on every order" do not name the tier
    "Free"; "free plan users", "silver members" and "Silver and Gold members" do.
    """
    pattern = mention_pattern(tuple(sorted(values)), match_case)
    if pattern is None:
        return []
    lookup = {_key(v, match_case): v for v in values}
    found = set()
    for match in pattern.finditer(text):
        value = lookup.get(_key(match.group(0), match_case), match.group(0))
        if match_case or _names_value(text, match, value):
            found.add(value)
    return sorted(found)


def _names_value(text: str, match: re.Match[str], value: str) -> bool:
    """Whether a case-insensitive match is a mention of ``value`` (see :func:`find_mentions`)."""
    spelt = match.group(0)
    if spelt.isupper() and any(c.isalpha() for c in spelt):
        return True
    as_spelt = spelt == value or (value.islower() and spelt.capitalize() == value.capitalize())
    if as_spelt and len(value.split()) > 1:
        return True
    if as_spelt and not _SENTENCE_END.search(text[: match.start()]):
        return True
    return any(word.casefold() in TIER_NOUNS for word in _next_words(text, match.end(), 3))


def _next_words(text: str, start: int, count: int) -> list[str]:
    """Up to ``count`` words after ``start``, stopping at the end of the clause."""
    words: list[str] = []
    position = start
    while len(words) < count:
        following = _NEXT_WORD.match(text, position)
        if not following:
            break
        words.append(following.group(1))
        position = following.end()
    return words


def _key(value: str, match_case: bool) -> str:
    """How two spellings of a value are compared."""
    collapsed = " ".join(value.split())
    return collapsed if match_case else collapsed.casefold()


def remove_mentions(
    text: str, values: Sequence[str], match_case: bool = False
) -> tuple[str, list[tuple[str, list[str]]]]:
    """Drop the sentences of a paragraph that name any of ``values``.

    Returns:
        The remaining sentences joined by spaces ('' when none is left), and each
        removed sentence with the values it named.
    """
    if not values or mention_pattern(tuple(sorted(values)), match_case) is None:
        return text, []
    kept: list[str] = []
    removed: list[tuple[str, list[str]]] = []
    for sentence in split_sentences(text):
        named = find_mentions(sentence, values, match_case)
        if named:
            removed.append((sentence, named))
        else:
            kept.append(sentence)
    if not removed:
        return text, []
    return " ".join(kept), removed
