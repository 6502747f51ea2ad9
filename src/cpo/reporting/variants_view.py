"""Section 9: the variants per segment and tone, citations highlighted and linked.

Variant text is untrusted (a language model may have written it): it is escaped
first, and only the citation markers the generation stage defines
(``[Source: Title, ¶N]``) are turned into links to the source list.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from cpo.generation.citations import CITATION_PATTERN
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.context import CONTROL_ARM, safety_counts, source_anchor, source_index

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _normal(title: str) -> str:
    return " ".join(title.lower().split())


def render_body(body: str, title_to_doc: dict[str, str]) -> Markup:
    """Escaped body as paragraphs, each citation marker a link to its source.

    Args:
        body: The variant's body text.
        title_to_doc: Normalized title -> document_id for linking.

    Returns:
        Safe HTML.
    """
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(body.strip()):
        parts: list[Markup] = []
        position = 0
        for match in CITATION_PATTERN.finditer(paragraph):
            parts.append(escape(paragraph[position : match.start()]))
            parts.append(_citation_markup(match, title_to_doc))
            position = match.end()
        parts.append(escape(paragraph[position:]))
        text = Markup("").join(parts).replace("\n", Markup("<br>"))
        paragraphs.append(Markup("<p>") + text + Markup("</p>"))
    return Markup("").join(paragraphs)


def _citation_markup(match: re.Match[str], title_to_doc: dict[str, str]) -> Markup:
    """A highlighted citation: a link when its document is known, flagged otherwise."""
    doc = title_to_doc.get(_normal(match.group("title")))
    if doc is None:
        return Markup('<mark class="cite cite-unknown" title="no such source">{}</mark>').format(
            match.group(0)
        )
    return Markup('<a class="cite" href="#{}">{}</a>').format(source_anchor(doc), match.group(0))


def variants_section(art: RunArtifacts) -> dict[str, Any]:
    """Variants grouped by segment (the control first), and the source list."""
    sources = source_index(art)
    titles = {_normal(str(info.get("title", ""))): doc for doc, info in sources.items()}
    safety = safety_counts(art)
    groups: dict[str, list[dict[str, Any]]] = {}
    for variant in sorted(art.variants, key=_order):
        own = {
            _normal(str(c.get("title", ""))): str(c.get("document_id"))
            for c in variant.get("citations") or []
        }
        segment = (
            "Control (every segment)"
            if variant.get("tone") == CONTROL_ARM
            else str(variant.get("segment"))
        )
        groups.setdefault(segment, []).append(_variant_view(variant, {**titles, **own}, safety))
    return {
        "groups": [{"segment": name, "variants": items} for name, items in groups.items()],
        "sources": [
            {
                "document_id": doc,
                "anchor": source_anchor(doc),
                "title": info.get("title", ""),
                "url": info.get("url", ""),
                "paragraphs": ", ".join(f"¶{p}" for p in sorted(info["paragraphs"]))
                or "retrieved, not cited",
                "cited": bool(info["paragraphs"]),
            }
            for doc, info in sorted(sources.items())
        ],
    }


def _order(variant: dict[str, Any]) -> tuple:
    """Control first, then by segment and tone order."""
    tones = ("urgent", "informational", "friendly")
    tone = str(variant.get("tone"))
    return (
        tone != CONTROL_ARM,
        str(variant.get("segment")),
        tones.index(tone) if tone in tones else len(tones),
        tone,
    )


def _variant_view(
    variant: dict[str, Any], title_to_doc: dict[str, str], safety: dict[str, Any]
) -> dict[str, Any]:
    grounding = variant.get("grounding") or {}
    vid = str(variant["variant_id"])
    screening = safety["latest"].get(vid, {})
    return {
        "variant_id": vid,
        "tone": variant.get("tone", ""),
        "subject": variant.get("subject", ""),
        "body": render_body(str(variant.get("body", "")), title_to_doc),
        "status": variant.get("status", "generated"),
        "error": variant.get("error") or "",
        "screening": screening.get("status", "not screened"),
        "final": safety["final"].get(vid, ""),
        "reasons": "; ".join(screening.get("reasons") or []),
        "grounding": fmt.pct(grounding.get("score"), 0) if grounding else fmt.MISSING,
        "unsupported": len(grounding.get("unsupported_claims") or []),
        "invalid_citations": len(grounding.get("invalid_citations") or []),
        "citations": len(variant.get("citations") or []),
        "backend": variant.get("backend", ""),
    }
