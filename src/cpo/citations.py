"""Citation parsing and validation, and the grounding check, for every backend.

Inline citations look like ``[Source: Document Title, ¶N]``. A citation is
*valid* only when it names a paragraph that retrieval returned for the variant's
segment (title compared without regard to case, whitespace, quote or dash style).

Grounding: the body is split into sentences; a sentence that states a number, a
price, a percentage, a date or a named offer (an offer code in capitals such as
``WELCOME15``, or a product / plan name that appears in the retrieved snippets)
is a *claim*. A claim is supported when every fact it states is found in a
snippet the variant validly cites (or in that snippet's title). Facts are
normalised before comparison, so ``$329`` matches ``329 dollars``, ``20%``
matches ``20 percent``, ``five`` matches ``5`` and ``31 December 2027`` matches
``December 31, 2027`` and ``2027-12-31``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from cpo.models import Citation, Grounding, Snippet
from cpo.text import STOPWORDS, split_sentences

CITATION_PATTERN = re.compile(
    r"\[\s*Source\s*:\s*(?P<title>[^\[\]]+?)\s*,\s*"
    r"(?:¶|§|para(?:graph)?\.?|p\.)\s*(?P<index>\d+)\s*\]",
    re.IGNORECASE,
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MERGE_FIELD = re.compile(r"\{[a-z_]+\}")

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DATE_PATTERNS = (
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<month>[01]?\d)-(?P<day>[0-3]?\d)\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b", re.IGNORECASE),
    re.compile(r"\b(?P<month>[01]?\d)/(?P<day>[0-3]?\d)/(?P<year>(?:19|20)\d\d)\b"),
    re.compile(rf"\b{_MONTH}\s+{_YEAR}\b", re.IGNORECASE),
)
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_MONEY_PATTERNS = (
    re.compile(
        rf"(?:US\$|[$€£]|\b(?:USD|EUR|GBP)\s?)\s?(?P<n>{_NUMBER})"
        r"(?:\s?(?P<scale>k|m|bn|thousand|million|billion)\b)?",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![\w.]){'(?P<n>' + _NUMBER + ')'}\s?(?P<scale>thousand|million|billion)?\s?"
        r"(?:dollars?|usd|euros?|eur|pounds?|gbp|bucks)\b",
        re.IGNORECASE,
    ),
)
_PERCENT = re.compile(rf"(?<![\w.])(?P<n>{_NUMBER})\s?(?:%|percent\b|per\s?cent\b|pct\b)", re.I)
_PLAIN_NUMBER = re.compile(rf"(?<![\w.]){'(?P<n>' + _NUMBER + ')'}(?:st|nd|rd|th)?(?![\d])")
_CODE = re.compile(r"\b[A-Z][A-Z0-9]{3,}\b")
#: Words in capitals that are emphasis or common acronyms, not offer codes.
_NOT_CODES = frozenset(
    {
        "FREE",
        "SALE",
        "TODAY",
        "HURRY",
        "LAST",
        "CHANCE",
        "ONLY",
        "MORE",
        "BEST",
        "SAVE",
        "THIS",
        "THAT",
        "WITH",
        "YOUR",
        "JUST",
        "NOTE",
        "SOON",
        "WEEK",
        "DEAL",
        "DEALS",
        "HTTP",
        "HTTPS",
        "HTML",
        "FAQS",
    }
)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUMBER_WORD = re.compile(
    r"\b(?P<tens>twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ]"
    r"(?P<unit>one|two|three|four|five|six|seven|eight|nine)\b|\b(?P<word>"
    + "|".join(_NUMBER_WORDS)
    + r")\b",
    re.IGNORECASE,
)
_NAME_TOKEN = re.compile(r"[A-Z][\w'’&-]*|\d+(?:\.\d+)?")
_CALENDAR_WORDS = frozenset(
    {m.capitalize() for m in _MONTHS}
    | {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)


@dataclass(frozen=True)
class CitationMarker:
    """One ``[Source: Title, ¶N]`` marker as written in a text.

    Attributes:
        raw: The marker exactly as written.
        title: The title inside it.
        paragraph_index: N (1-based).
        start: Offset of the marker in the text.
    """

    raw: str
    title: str
    paragraph_index: int
    start: int


@dataclass(frozen=True)
class Claim:
    """A sentence that states facts, and the facts no cited snippet supports."""

    sentence: str
    facts: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def supported(self) -> bool:
        """True when every fact of the sentence is in a cited snippet."""
        return not self.missing


@dataclass(frozen=True)
class GroundingReport:
    """The full result of :func:`check_grounding` (``grounding`` is what variants record)."""

    citations: tuple[Citation, ...]
    grounding: Grounding
    claims: tuple[Claim, ...]
    markers: tuple[CitationMarker, ...]

    def problems(self) -> list[str]:
        """Human-readable problems, for logs and for a repair prompt."""
        found = [f"citation {raw} does not name a retrieved paragraph" for raw in self.invalid]
        for claim in self.claims:
            if claim.missing:
                found.append(
                    f"unsupported claim (no cited source contains {', '.join(claim.missing)}): "
                    f"{claim.sentence}"
                )
        return found

    @property
    def invalid(self) -> tuple[str, ...]:
        """The invalid citation markers."""
        return self.grounding.invalid_citations


def parse_citations(text: str) -> list[CitationMarker]:
    """Find every ``[Source: Title, ¶N]`` marker in ``text``, in order."""
    return [
        CitationMarker(
            raw=match.group(0),
            title=match.group("title").strip(),
            paragraph_index=int(match.group("index")),
            start=match.start(),
        )
        for match in CITATION_PATTERN.finditer(text)
    ]


def strip_citations(text: str) -> str:
    """Remove citation markers (and the space before them) from ``text``."""
    return re.sub(r"[ \t]*" + CITATION_PATTERN.pattern, "", text, flags=re.IGNORECASE)


def format_citation(title: str, paragraph_index: int) -> str:
    """Return the marker for a paragraph: ``[Source: Title, ¶N]``."""
    return f"[Source: {title}, ¶{paragraph_index}]"


def normalize_title(title: str) -> str:
    """Canonical form of a title for comparison (case, spacing, quotes, dashes)."""
    text = unicodedata.normalize("NFKC", title)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[‐‑‒–—―]", "-", text)
    return " ".join(text.casefold().split()).strip(" .\"'")


def distinct_citations(text: str) -> list[tuple[str, int]]:
    """The distinct (normalised title, paragraph) pairs cited in ``text``, in order."""
    seen: dict[tuple[str, int], None] = {}
    for marker in parse_citations(text):
        seen.setdefault((normalize_title(marker.title), marker.paragraph_index), None)
    return list(seen)


def resolve_citations(
    markers: Iterable[CitationMarker], snippets: Sequence[Snippet]
) -> tuple[list[tuple[Citation, Snippet]], list[str]]:
    """Match markers against the snippets retrieved for the segment.

    Returns:
        The distinct valid citations with their snippets (in order of first use),
        and the raw text of each invalid marker.
    """
    by_key: dict[tuple[str, int], Snippet] = {}
    for ranked in snippets:
        # Two documents with the same title: the better-ranked paragraph is the one cited.
        by_key.setdefault((normalize_title(ranked.title), ranked.paragraph_index), ranked)
    valid: dict[tuple[str, int], tuple[Citation, Snippet]] = {}
    invalid: list[str] = []
    for marker in markers:
        key = (normalize_title(marker.title), marker.paragraph_index)
        snippet = by_key.get(key)
        if snippet is None:
            if marker.raw not in invalid:
                invalid.append(marker.raw)
            continue
        citation = Citation(snippet.document_id, snippet.title, snippet.paragraph_index)
        valid.setdefault(key, (citation, snippet))
    return list(valid.values()), invalid


# ----------------------------------------------------------------------------- facts


def _canonical_number(text: str, scale: str | None = None) -> str:
    """``"1,000.00"`` -> ``"1000"``; ``"2.5", "k"`` -> ``"2500"``."""
    value = float(text.replace(",", ""))
    factor = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
    value *= factor.get((scale or "").lower(), 1.0)
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _words_to_digits(text: str, include_one: bool) -> str:
    """Replace number words (``five``, ``twenty-five``) with digits."""

    def replace(match: re.Match[str]) -> str:
        if match.group("tens"):
            tens = _NUMBER_WORDS[match.group("tens").lower()]
            return str(tens + _NUMBER_WORDS[match.group("unit").lower()])
        word = match.group("word").lower()
        if word == "one" and not include_one:
            return match.group(0)
        return str(_NUMBER_WORDS[word])

    return _NUMBER_WORD.sub(replace, text)


def _blank(text: str, start: int, end: int) -> str:
    """Replace a span with spaces so later patterns do not match inside it."""
    return text[:start] + " " * (end - start) + text[end:]


def _date_facts(text: str) -> tuple[set[str], str]:
    """Dates in ``text`` as facts (``date:2027-12-31``, ``md:12-31``, ``month:2027-12``)."""
    facts: set[str] = set()
    for pattern in _DATE_PATTERNS:
        for match in list(pattern.finditer(text)):
            parts = match.groupdict()
            month_text = parts["month"].lower()
            month = _MONTHS.get(month_text) or int(month_text)
            day = int(parts["day"]) if parts.get("day") else None
            if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
                continue
            year = parts.get("year")
            if day is None:
                facts.add(f"month:{year}-{month:02d}")
            elif year:
                facts.add(f"date:{year}-{month:02d}-{day:02d}")
            else:
                facts.add(f"md:{month:02d}-{day:02d}")
            text = _blank(text, match.start(), match.end())
    return facts, text


def states_date(text: str) -> bool:
    """True when ``text`` states a calendar date ("31 March 2027", "2027-03-31", "March 2027")."""
    return bool(_date_facts(text)[0])


def _expand_dates(facts: set[str]) -> set[str]:
    """A full date also supports its month-day and its month (for support sets)."""
    expanded = set(facts)
    for fact in facts:
        if fact.startswith("date:"):
            year, month, day = fact[5:].split("-")
            expanded.update({f"md:{month}-{day}", f"month:{year}-{month}", f"number:{year}"})
        if fact.startswith("month:"):
            expanded.add(f"number:{fact[6:10]}")
    return expanded


def extract_facts(text: str, *, as_support: bool = False) -> set[str]:
    """The numeric facts a text states, normalised (money, percent, date, number).

    Args:
        text: A sentence (claim side) or a snippet (support side).
        as_support: Support texts also count ``one`` as 1 and let a date, price
            or percentage support the bare number in it.

    Returns:
        Facts such as ``money:329``, ``percent:20``, ``date:2027-12-31``,
        ``md:04-30``, ``number:1.8``.
    """
    return set(_facts_cached(text, as_support))


@lru_cache(maxsize=8192)
def _facts_cached(text: str, as_support: bool) -> frozenset[str]:
    """Memoised :func:`extract_facts` (the same snippets are checked many times)."""
    return frozenset(_extract_facts(text, as_support=as_support))


def _extract_facts(text: str, *, as_support: bool = False) -> set[str]:
    """Uncached fact extraction (see :func:`extract_facts`)."""
    text = _MERGE_FIELD.sub(" ", _URL.sub(" ", text))
    text = _words_to_digits(text, include_one=as_support)
    if not any(ch.isdigit() for ch in text):
        return set()
    facts, text = _date_facts(text)
    for pattern, kind in [(p, "money") for p in _MONEY_PATTERNS] + [(_PERCENT, "percent")]:
        for match in list(pattern.finditer(text)):
            value = _canonical_number(match.group("n"), match.groupdict().get("scale"))
            facts.add(f"{kind}:{value}")
            if as_support:
                facts.add(f"number:{value}")
            text = _blank(text, match.start(), match.end())
    for match in _PLAIN_NUMBER.finditer(text):
        facts.add(f"number:{_canonical_number(match.group('n'))}")
    return _expand_dates(facts) if as_support else facts


def extract_codes(text: str) -> set[str]:
    """Offer codes: words in capitals of 4+ characters (``WELCOME15``, ``FIRSTLIGHT``)."""
    return set(_codes_cached(text))


@lru_cache(maxsize=8192)
def _codes_cached(text: str) -> frozenset[str]:
    """Memoised :func:`extract_codes`."""
    text = _MERGE_FIELD.sub(" ", _URL.sub(" ", text))
    return frozenset(m.group(0) for m in _CODE.finditer(text) if m.group(0) not in _NOT_CODES)


def extract_names(text: str) -> set[str]:
    """Product, plan and offer names: runs of 2+ capitalised words (and numbers).

    ``"Gold members earn 2 points on the Summit Ridge 2 tent"`` gives
    ``{"Summit Ridge 2"}``. Leading and trailing common words (``The``, ``Your``)
    are dropped, and runs made only of month or weekday names are ignored.
    """
    return set(_names_cached(text))


@lru_cache(maxsize=8192)
def _names_cached(text: str) -> frozenset[str]:
    """Memoised :func:`extract_names`."""
    names: set[str] = set()
    for sentence in split_sentences(_URL.sub(" ", text)):
        tokens = [(m.group(0), m.start(), m.end()) for m in _NAME_TOKEN.finditer(sentence)]
        run: list[str] = []
        previous_end = -1
        for token, start, end in tokens:
            contiguous = previous_end >= 0 and sentence[previous_end:start].strip() == ""
            if not contiguous:
                _add_name(run, names)
                run = []
            run.append(token)
            previous_end = end
        _add_name(run, names)
    return frozenset(names)


def _add_name(run: list[str], names: set[str]) -> None:
    """Trim common words off a run of capitalised tokens and keep it if it is a name."""
    tokens = list(run)
    while tokens and (tokens[0].lower() in STOPWORDS or tokens[0][0].isdigit()):
        tokens.pop(0)
    while tokens and tokens[-1].lower() in STOPWORDS:
        tokens.pop()
    words = [t for t in tokens if not t[0].isdigit()]
    if len(tokens) >= 2 and words and not all(w in _CALENDAR_WORDS for w in words):
        names.add(" ".join(tokens))


def _contains_phrase(haystack: str, phrase: str) -> bool:
    """Whole-word, case-insensitive phrase search."""
    if phrase.casefold() not in haystack.casefold():
        return False
    pattern = r"(?<![\w])" + re.escape(phrase) + r"(?![\w])"
    return re.search(pattern, haystack, re.IGNORECASE) is not None


# ----------------------------------------------------------------------------- grounding


@dataclass(frozen=True)
class SupportIndex:
    """What the cited snippets (and their titles) state, for claim checking."""

    facts: frozenset[str]
    text: str

    @classmethod
    def of(cls, snippets: Iterable[Snippet]) -> SupportIndex:
        """Build the index of a set of cited snippets."""
        texts = [f"{s.title}.\n{s.text}" for s in snippets]
        facts: set[str] = set()
        for text in texts:
            facts |= extract_facts(text, as_support=True)
        return cls(frozenset(facts), "\n".join(texts))

    def missing(self, sentence: str, known_names: Iterable[str]) -> tuple[list[str], list[str]]:
        """Return (facts stated, facts not supported) for one sentence."""
        stated: list[str] = []
        missing: list[str] = []
        for fact in sorted(extract_facts(sentence)):
            stated.append(_show_fact(fact))
            if fact not in self.facts:
                missing.append(_show_fact(fact))
        for code in sorted(extract_codes(sentence)):
            stated.append(code)
            if not _contains_phrase(self.text, code):
                missing.append(code)
        for name in sorted(known_names):
            if name not in stated and _contains_phrase(sentence, name):
                stated.append(name)
                if not _contains_phrase(self.text, name):
                    missing.append(name)
        return stated, missing


def _show_fact(fact: str) -> str:
    """``"money:329"`` -> ``"$329"`` (for messages)."""
    kind, _, value = fact.partition(":")
    return {"money": f"${value}", "percent": f"{value}%"}.get(kind, value)


def check_grounding(
    body: str,
    retrieved: Sequence[Snippet],
    *,
    subject: str = "",
) -> GroundingReport:
    """Validate the citations of a variant and check that its claims are grounded.

    Args:
        body: The variant body, citation markers included.
        retrieved: Every snippet retrieved for the variant's segment.
        subject: The subject line; checked as one more sentence when given.

    Returns:
        A :class:`GroundingReport` whose ``grounding`` has the score (share of
        claim sentences that are fully supported; 1.0 when there are none), the
        unsupported sentences and the invalid citation markers.
    """
    markers = parse_citations(body)
    resolved, invalid = resolve_citations(markers, retrieved)
    support = SupportIndex.of(snippet for _, snippet in resolved)
    known_names: set[str] = set()
    for snippet in retrieved:
        known_names |= extract_names(snippet.text)
    sentences = ([subject] if subject.strip() else []) + split_sentences(strip_citations(body))
    claims: list[Claim] = []
    for sentence in sentences:
        stated, missing = support.missing(sentence, known_names)
        if stated:
            claims.append(Claim(sentence.strip(), tuple(stated), tuple(missing)))
    supported = sum(1 for c in claims if c.supported)
    score = round(supported / len(claims), 4) if claims else 1.0
    grounding = Grounding(
        score=score,
        unsupported_claims=tuple(c.sentence for c in claims if not c.supported),
        invalid_citations=tuple(invalid),
    )
    return GroundingReport(
        citations=tuple(c for c, _ in resolved),
        grounding=grounding,
        claims=tuple(claims),
        markers=tuple(markers),
    )
