"""Section 9: the variants per segment and tone, citations highlighted and linked.

Variant text is untrusted (a language model may have written it): it is escaped
first, and only the citation markers the generation stage defines
(``[Source: Title, ¶N]``) are turned into links to the source list.

Beside each screened (cited) version the section shows what the customer
receives: the customer copy of :mod:`cpo.customer_text` (markers
removed, or numbered footnotes with ``generation.citations_in_email:
footnotes``) with its preheader, made with the run's own configuration. It
also states how many recipients were withheld because a merge value (their
first name) failed screening.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from cpo import run_folder
from cpo.citations import CITATION_PATTERN
from cpo.customer_text import (
    DEFAULT_FOOTER_PATTERN,
    CustomerMessage,
    SourceLink,
    customer_message,
    source_links,
)
from cpo.errors import CpoError
from cpo.models import Citation, Variant
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.citations import source_index
from cpo.reporting.sections.common import CONTROL_ARM, source_anchor
from cpo.reporting.sections.safety import safety_counts
from cpo.settings_base import EXPERIMENT_CONFIG_FILE, SAFETY_CONFIG_FILE

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
    copies = _customer_copies(art)
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
        view = _variant_view(variant, {**titles, **own}, safety)
        view.update(_customer_view(copies.get(view["variant_id"])))
        groups.setdefault(segment, []).append(view)
    return {
        "groups": [{"segment": name, "variants": items} for name, items in groups.items()],
        "citations_in_email": _email_setting(art, "citations_in_email", "none"),
        "withheld": _withheld(art),
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


def _config_section(art: RunArtifacts, file: str) -> dict[str, Any]:
    """One config file's snapshot from the manifest ({} when absent)."""
    return ((art.manifest.get("config") or {}).get(file)) or {}


def _email_setting(art: RunArtifacts, key: str, default: str) -> str:
    """A ``generation:`` key of the run's experiment config."""
    generation = _config_section(art, EXPERIMENT_CONFIG_FILE).get("generation") or {}
    return str(generation.get(key) or default)


def _customer_copies(art: RunArtifacts) -> dict[str, CustomerMessage | str]:
    """Each variant's customer copy as the send list made it (or why it cannot be made)."""
    footer = (
        ((_config_section(art, SAFETY_CONFIG_FILE).get("compliance") or {}).get("footer")) or {}
    ).get("pattern") or DEFAULT_FOOTER_PATTERN
    mode = _email_setting(art, "citations_in_email", "none")
    variants = [_as_variant(v) for v in art.variants if v.get("status") != "failed"]
    links: dict[str, SourceLink] = source_links(art.retrieval or {}, variants)
    copies: dict[str, CustomerMessage | str] = {}
    for variant in variants:
        try:
            copies[variant.variant_id] = customer_message(
                variant,
                mode="footnotes" if mode == "footnotes" else "none",
                links=links,
                footer_pattern=footer,
            )
        except CpoError as exc:  # a copy that would be refused at send time
            copies[variant.variant_id] = exc.message
    return copies


def _as_variant(data: dict[str, Any]) -> Variant:
    """The fields of a variants.json entry the customer copy needs."""
    return Variant(
        variant_id=str(data["variant_id"]),
        segment=str(data.get("segment", "")),
        tone=str(data.get("tone", "")),
        subject=str(data.get("subject", "")),
        body=str(data.get("body", "")),
        citations=tuple(
            Citation(
                str(c.get("document_id", "")),
                str(c.get("title", "")),
                int(c.get("paragraph_index", 0)),
            )
            for c in data.get("citations") or []
        ),
    )


def _customer_view(copy: CustomerMessage | str | None) -> dict[str, Any]:
    """Template fields of the customer copy (escaped; empty for failed variants)."""
    if copy is None:
        return {
            "customer_subject": "",
            "customer_preheader": "",
            "customer_body": "",
            "customer_error": "",
        }
    if isinstance(copy, str):
        return {
            "customer_subject": "",
            "customer_preheader": "",
            "customer_body": "",
            "customer_error": copy,
        }
    return {
        "customer_subject": copy.subject,
        "customer_preheader": copy.preheader,
        "customer_body": render_body(copy.body, {}),
        "customer_error": "",
    }


def _withheld(art: RunArtifacts) -> dict[str, Any]:
    """Recipients withheld because a merge value failed screening (from the manifest)."""
    withheld = (art.manifest.get("experiment") or {}).get("withheld") or {}
    return {
        "customers": int(withheld.get("customers", 0)),
        "reasons": ", ".join(
            f"{code} {n}" for code, n in (withheld.get("by_reason") or {}).items()
        ),
        "values_screened": int(withheld.get("values_screened", 0)),
        "file": withheld.get("file", run_folder.WITHHELD.name),
        "recorded": bool(withheld),
    }
