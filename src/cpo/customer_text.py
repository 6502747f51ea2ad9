"""What the customer receives: a screened variant without its citation markers.

Variants carry inline citations (``[Source: Title, ¶N]``) so that reviewers,
the audit and the report can check every claim. Customers never see them:
:func:`customer_message` turns a variant into the customer's copy, with
``generation.citations_in_email`` choosing how sources are shown:

* ``none`` (default): markers are removed, nothing points at sources;
* ``footnotes``: each marker becomes a numbered reference (``[1]``, ``[2]``,
  one number per cited document) and a short ``Sources:`` list with each
  document's ``source_url`` is placed before the unsubscribe footer.

The preheader (the preview line inboxes show after the subject) is the first
sentence that quotes approved content (the sentence a citation marker closes),
never the greeting; it is cut at a word boundary to about 100 characters.

Removing a marker only deletes text, so the customer copy says nothing the
screened text did not; :func:`check_customer_text` still refuses any copy in
which something that looks like a marker survived.

Shared by the send list (:mod:`cpo.experiment.sends`) and the report's and the web
app's previews, so it lives outside the stage packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cpo.citations import CITATION_PATTERN
from cpo.errors import StageError
from cpo.models import Variant
from cpo.text import split_sentences, truncate_words

CitationsInEmail = Literal["none", "footnotes"]
PREHEADER_MAX_CHARS = 100
DEFAULT_FOOTER_PATTERN = r"(?i)\bunsubscribe\b"
#: Anything shaped like a marker, even one the strict pattern does not parse.
_LOOSE_MARKER = re.compile(r"[ \t]*\[\s*Source\s*:[^\[\]\n]*\]", re.IGNORECASE)
_STRICT_MARKER = re.compile(r"[ \t]*" + CITATION_PATTERN.pattern, re.IGNORECASE)
_MARKER_LEFTOVER = re.compile(r"\[\s*Source\s*:", re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?])")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_GREETING_MAX_WORDS = 6


@dataclass(frozen=True)
class SourceLink:
    """A cited document as a footnote shows it."""

    title: str
    url: str


@dataclass(frozen=True)
class CustomerMessage:
    """A variant's customer copy; ``{first_name}`` is still a merge field.

    Attributes:
        variant_id: The screened variant this copy comes from.
        subject: Subject line.
        preheader: Preview text (first quoted fact sentence).
        body: Plain-text body without citation markers.
    """

    variant_id: str
    subject: str
    preheader: str
    body: str


def normal_title(title: str) -> str:
    """A title compared without regard to case and spacing."""
    return " ".join(title.casefold().split())


def strip_citations(text: str) -> str:
    """Remove every citation marker (and the space before it) from ``text``."""
    stripped = _LOOSE_MARKER.sub("", text)
    stripped = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", stripped)
    return _TRAILING_SPACE.sub("", stripped)


def footnote_citations(
    text: str,
    links: Mapping[str, SourceLink],
    footer_pattern: str = DEFAULT_FOOTER_PATTERN,
) -> str:
    """Replace markers with ``[n]`` and add a ``Sources:`` list before the footer.

    Args:
        text: A body with citation markers.
        links: Normalized title -> the document's title and URL; an unknown
            title is listed by the title the marker gives, without a link.
        footer_pattern: Regular expression finding the footer paragraph.

    Returns:
        The body with numbered references and the list of sources.
    """
    numbers: dict[str, int] = {}
    listed: list[SourceLink] = []

    def number(match: re.Match[str]) -> str:
        title = match.group("title").strip()
        key = normal_title(title)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            listed.append(links.get(key, SourceLink(title, "")))
        return f"[{numbers[key]}]"

    referenced = strip_citations(_STRICT_MARKER.sub(number, text))
    if not listed:
        return referenced
    lines = ["Sources:"] + [
        f"[{index}] {link.title}" + (f": {link.url}" if link.url else "")
        for index, link in enumerate(listed, start=1)
    ]
    return insert_before_footer(referenced, "\n".join(lines), footer_pattern)


def insert_before_footer(body: str, block: str, footer_pattern: str) -> str:
    """Insert a paragraph before the last paragraph when it is the footer, else at the end."""
    paragraphs = _PARAGRAPH_BREAK.split(body.rstrip())
    if len(paragraphs) > 1 and re.search(footer_pattern, paragraphs[-1]):
        paragraphs.insert(len(paragraphs) - 1, block)
    else:
        paragraphs.append(block)
    return "\n\n".join(paragraphs)


def preheader(body: str, max_chars: int = PREHEADER_MAX_CHARS) -> str:
    """The first sentence that quotes approved content, cut to ``max_chars``.

    The quoted sentence is the first one a citation marker closes; a short
    lead-in before a colon ("At a glance: ...") is dropped. A body without
    markers uses the first sentence after the greeting.

    Args:
        body: The cited body (with markers).
        max_chars: Longest preview; longer sentences are cut at a word and end in "…".
    """
    sentence = _first_quoted_sentence(body) or _first_sentence_after_greeting(body)
    sentence = strip_citations(sentence).strip()
    if len(sentence) <= max_chars:
        return sentence
    return truncate_words(sentence, max_chars - 1) + "…"


def _first_quoted_sentence(body: str) -> str:
    """The first sentence of the text a citation marker closes ("" when there is none)."""
    match = _LOOSE_MARKER.search(body)
    if match is None:
        return ""
    line_start = body.rfind("\n", 0, match.start()) + 1
    sentences = split_sentences(body[line_start : match.start()])
    return _without_lead_in(sentences[0]) if sentences else ""


def _without_lead_in(sentence: str) -> str:
    """Drop a short lead-in ending in a colon when a capitalised sentence follows it."""
    head, colon, tail = sentence.partition(": ")
    if colon and len(head) <= 40 and tail[:1].isupper():
        return tail
    return sentence


def _first_sentence_after_greeting(body: str) -> str:
    """The first sentence of the first paragraph that is not a greeting."""
    for paragraph in _PARAGRAPH_BREAK.split(body.strip()):
        sentences = split_sentences(strip_citations(paragraph))
        if not sentences or _is_greeting(paragraph):
            continue
        return sentences[0]
    return ""


def _is_greeting(paragraph: str) -> bool:
    """A short single line addressing the reader ("Hi {first_name},", "Hello there!")."""
    text = paragraph.strip()
    return (
        "\n" not in text
        and len(text.split()) <= _GREETING_MAX_WORDS
        and (text.endswith((",", "!")) or "{first_name}" in text)
    )


def customer_message(
    variant: Variant,
    *,
    mode: CitationsInEmail = "none",
    links: Mapping[str, SourceLink] | None = None,
    footer_pattern: str = DEFAULT_FOOTER_PATTERN,
) -> CustomerMessage:
    """The customer's copy of a screened variant.

    Args:
        variant: The screened variant (body with citation markers).
        mode: ``none`` removes markers; ``footnotes`` numbers them and lists sources.
        links: Normalized title -> document title and URL (``footnotes`` only).
        footer_pattern: Where the footer starts (the ``Sources:`` list goes before it).

    Raises:
        StageError: something shaped like a marker is left in the customer copy.
    """
    if mode == "footnotes":
        body = footnote_citations(variant.body, links or {}, footer_pattern)
    else:
        body = strip_citations(variant.body)
    message = CustomerMessage(
        variant_id=variant.variant_id,
        subject=strip_citations(variant.subject),
        preheader=preheader(variant.body),
        body=body,
    )
    check_customer_text(message)
    return message


def check_customer_text(message: CustomerMessage) -> None:
    """Refuse a customer copy that still contains ``[Source:``.

    Raises:
        StageError: the subject, preheader or body holds a citation marker.
    """
    for part in ("subject", "preheader", "body"):
        if _MARKER_LEFTOVER.search(getattr(message, part)):
            raise StageError(
                "assign",
                f"variant '{message.variant_id}': the customer {part} still contains a "
                "citation marker '[Source:' that could not be removed",
                hint="close every marker as [Source: Title, ¶N] in the variant (or its "
                "prompt) and run the generate stage again",
            )


def source_links(
    retrieval: Mapping[str, Any], variants: Iterable[Variant]
) -> dict[str, SourceLink]:
    """Normalized title -> title and ``source_url``, from retrieval.json and the citations.

    Args:
        retrieval: The parsed ``retrieval.json`` (``segments[].results[]``).
        variants: Variants whose citations name the titles markers use.
    """
    documents: dict[str, SourceLink] = {}
    by_title: dict[str, str] = {}
    for segment in retrieval.get("segments") or []:
        for result in segment.get("results") or []:
            doc, title = str(result.get("document_id", "")), str(result.get("title", ""))
            known = documents.get(doc)
            url = (known.url if known else "") or str(result.get("source_url") or "")
            documents[doc] = SourceLink(known.title if known else title, url)
            by_title.setdefault(normal_title(title), doc)
    for variant in variants:
        for citation in variant.citations:
            documents.setdefault(citation.document_id, SourceLink(citation.title, ""))
            by_title.setdefault(normal_title(citation.title), citation.document_id)
    return {title: documents[doc] for title, doc in by_title.items()}
