"""Text helpers shared by generation, retrieval, screening and the send list.

Kept dependency-free and deterministic: sentence splitting, word counting,
relevance terms (lower-cased, stop words removed, lightly stemmed), and the two
phrase families the composer and the screening policy agree on:

* *relative-time* phrases ("48 hours only", "this weekend", "starting Friday",
  "ends tomorrow"): a deadline a reader cannot place without a date;
* *urgency* wording ("Act fast", "Don't miss", "while you can", "today"): pressure
  that is honest only when the quoted content carries a date or deadline.
"""

from __future__ import annotations

import re

#: Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    {
        "e.g",
        "i.e",
        "etc",
        "vs",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "no",
        "approx",
        "inc",
        "ltd",
        "co",
        "corp",
        "jr",
        "sr",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "fig",
        "min",
        "max",
        "est",
    }
)
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+(?=[\"'“‘(\[]?[A-Z0-9$€£¡¿])")
_WORD = re.compile(r"[^\W_]", re.UNICODE)
_TERM = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your yours yourself us get got one every per via""".split()
)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences.

    Line breaks always end a sentence (bullets, headings, greetings), and a full
    stop after a known abbreviation (``e.g.``, ``St.``, ``Dec.``) does not.

    Args:
        text: One paragraph or a whole email body.

    Returns:
        The non-empty sentences, stripped, in order.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        sentences.extend(_split_line(line))
    return sentences


def _split_line(line: str) -> list[str]:
    """Split one line at sentence boundaries, skipping abbreviations."""
    parts: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        candidate = line[start : match.start()].rstrip()
        last_word = candidate.rsplit(None, 1)[-1] if candidate.split() else ""
        if last_word.rstrip(".").lower().lstrip("(\"'") in _ABBREVIATIONS:
            continue
        parts.append(line[start : match.end()].strip())
        start = match.end()
    tail = line[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def count_words(text: str) -> int:
    """Count words: whitespace-separated tokens with at least one letter or digit.

    Punctuation on its own (``-``, ``—``, ``•``) is not a word; a merge field such
    as ``{first_name}`` and a link each count as one word.
    """
    return sum(1 for token in text.split() if _WORD.search(token))


def words(text: str) -> list[str]:
    """Return the whitespace-separated tokens of ``text`` that count as words."""
    return [token for token in text.split() if _WORD.search(token)]


def stem(term: str) -> str:
    """A light, deterministic English stemmer (plural and common suffixes)."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ers", "er"), ("ed", ""), ("es", "e")):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)] + keep
    if term.endswith("s") and not term.endswith("ss") and len(term) > 3:
        return term[:-1]
    return term


def terms(text: str) -> list[str]:
    """Relevance terms of a text: lower-case, stop words dropped, stemmed."""
    found = _TERM.findall(text.lower().replace("-", " "))
    return [stem(t) for t in found if t not in STOPWORDS and len(t) > 1]


def truncate_words(text: str, max_chars: int) -> str:
    """Cut ``text`` at a word boundary so it has at most ``max_chars`` characters.

    Trailing connectors and punctuation (``and``, ``with``, ``:``, ``,``) are
    dropped so the result still reads as a phrase.
    """
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1].rsplit(" ", 1)[0] if " " in text[:max_chars] else ""
    cut = cut[:max_chars]
    dangling = {"and", "or", "with", "for", "to", "the", "a", "an", "of", "in", "on", "your", "&"}
    tokens = cut.split()
    while tokens and (
        tokens[-1].lower().strip(",:;-–—") in dangling or not _WORD.search(tokens[-1])
    ):
        tokens.pop()
    return " ".join(tokens).rstrip(",:;-–— ")


_COUNT = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty-four|forty-eight|seventy-two)"
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
#: Deadlines stated relative to an unknown "now": they need a date beside them.
RELATIVE_TIME = re.compile(
    "|".join(
        (
            rf"\b{_COUNT}[- ](?:hours?|days?|weeks?)\s+only\b",
            rf"\bonly\s+(?:for\s+)?(?:the\s+next\s+)?{_COUNT}[- ](?:more\s+)?(?:hours?|days?)\b",
            rf"\b(?:for|in|within|over)\s+the\s+next\s+{_COUNT}\s+(?:hours?|days?)\b",
            rf"\b{_COUNT}-hour\s+(?:sale|flash|deal|offer|event|window|special)\b",
            r"\b(?:today|tonight|tomorrow|weekend|week)\s+only\b",
            r"\bonly\s+(?:today|tonight|tomorrow|this\s+week(?:end)?)\b",
            r"\btomorrow\b",
            r"\btonight\b",
            rf"\b(?:this|next|coming)\s+(?:weekend|week|month|{_WEEKDAY})\b",
            rf"\b(?:starting|starts|start|until|till|through|thru|ends?|ending|by|before)\s+"
            rf"(?:this\s+|next\s+)?(?:{_WEEKDAY}|today|tonight|midnight|sunday)\b",
        )
    ),
    re.IGNORECASE,
)
#: Wording that asks the reader to hurry.
URGENCY = re.compile(
    r"\b(?:act\s+(?:fast|now|quickly)|don['’]?t\s+miss|do\s+not\s+miss|while\s+(?:you\s+can|"
    r"it\s+lasts|they\s+last|stocks?\s+last)|today|hurry|don['’]?t\s+wait|do\s+not\s+wait|"
    r"now\s+is\s+the\s+time|right\s+now|before\s+it(?:['’]s|\s+is)\s+gone|last\s+chance|"
    r"ends?\s+soon|limited\s+time|time\s+is\s+running\s+out|running\s+out|worth\s+acting\s+on|"
    r"(?:act|buy|shop|order|book|look|join|claim|redeem)\s+now|slips?\s+away|"
    r"slips?\s+down\s+your\s+inbox)\b",
    re.IGNORECASE,
)


def relative_time_phrases(text: str) -> list[str]:
    """Relative-time deadlines in ``text`` ("48 hours only", "this weekend"), in order.

    Args:
        text: Any text: a sentence, a template line, a whole email.

    Returns:
        The matched phrases as written (empty when there are none).
    """
    return [" ".join(m.group().split()) for m in RELATIVE_TIME.finditer(text)]


def urgency_phrases(text: str) -> list[str]:
    """Urgency wording in ``text`` ("Act fast", "Don't miss", "today"), in order."""
    return [" ".join(m.group().split()) for m in URGENCY.finditer(text)]
