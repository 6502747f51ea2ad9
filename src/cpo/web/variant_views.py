"""What the variants and review pages show about each variant of a run.

Each variant comes with the exact source paragraphs it cites (from the run's
retrieval.json), its latest screening decision from the hash-chained audit log
(severities, reasons) folded with any human decision (:mod:`cpo.decisions`),
and the customer's copy made by the same code as the send list
(:mod:`cpo.customer_text`, :mod:`cpo.emailhtml`). Reading the decisions
verifies the audit chain first, so a tampered log shows as an error, never as
a variant that looks approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.audit import KIND_SCREENING
from cpo.customer_text import (
    DEFAULT_FOOTER_PATTERN,
    CustomerMessage,
    customer_message,
    source_links,
)
from cpo.decisions import FinalDecision, final_decisions, load_verified
from cpo.emailhtml import escape_merge_value, html_template
from cpo.errors import CpoError
from cpo.models import Variant
from cpo.run_folder import RETRIEVAL, read_manifest, read_retrieval, read_variants
from cpo.settings_base import EXPERIMENT_CONFIG_FILE, SAFETY_CONFIG_FILE

#: The greeting word when the run's config names none (as the send list).
DEFAULT_GREETING_FALLBACK = "there"


@dataclass(frozen=True)
class SourceParagraph:
    """One cited paragraph: where it is from and its text (``None`` when not retrieved)."""

    document_id: str
    title: str
    paragraph_index: int
    text: str | None
    source_url: str


@dataclass(frozen=True)
class VariantView:
    """Everything a page shows about one variant.

    Attributes:
        variant: The variant as generated (subject and body with citation markers).
        decision: Its final decision from the audit log (``None``: never screened).
        severities: Harm severities of its latest screening (0-7 per category).
        sources: The paragraphs its citations name, in citation order.
        customer: The customer's copy (``None`` when it cannot be made).
        customer_error: Why the customer's copy cannot be made.
    """

    variant: Variant
    decision: FinalDecision | None
    severities: dict[str, int]
    sources: tuple[SourceParagraph, ...]
    customer: CustomerMessage | None
    customer_error: str

    @property
    def status(self) -> str:
        """The final status (``unscreened`` when the audit has no decision)."""
        return self.decision.status if self.decision else "unscreened"


@dataclass(frozen=True)
class CopySettings:
    """How the run makes customer copies (from its config snapshot)."""

    citations: str
    footer_pattern: str
    greeting_fallback: str


def copy_settings(manifest: dict[str, Any]) -> CopySettings:
    """The run's customer-copy settings as its manifest's config snapshot recorded them."""
    snapshot = manifest.get("config") or {}
    experiment = snapshot.get(EXPERIMENT_CONFIG_FILE) or {}
    safety = snapshot.get(SAFETY_CONFIG_FILE) or {}
    footer = ((safety.get("compliance") or {}).get("footer") or {}).get("pattern")
    mode = (experiment.get("generation") or {}).get("citations_in_email")
    fallback = (experiment.get("customers") or {}).get("greeting_fallback")
    return CopySettings(
        citations="footnotes" if mode == "footnotes" else "none",
        footer_pattern=str(footer or DEFAULT_FOOTER_PATTERN),
        greeting_fallback=str(fallback or DEFAULT_GREETING_FALLBACK),
    )


def variant_views(run_dir: Path) -> list[VariantView]:
    """Every variant of the run with its sources, screening and customer copy.

    Raises:
        DataValidationError: variants.json is missing or malformed.
        AuditError: the audit log fails verification.
    """
    manifest = read_manifest(run_dir)
    variants = read_variants(run_dir)
    retrieval = read_retrieval(run_dir) if RETRIEVAL.path(run_dir).is_file() else {}
    _, entries, _ = load_verified(run_dir)
    decisions = final_decisions(entries, manifest.get("run_id"))
    severities = _latest_severities(entries, manifest.get("run_id"))
    settings = copy_settings(manifest)
    paragraphs = _paragraphs(retrieval)
    links = source_links(retrieval, variants)
    views = []
    for variant in variants:
        customer, problem = None, ""
        if variant.status != "failed":
            try:
                customer = customer_message(
                    variant,
                    mode="footnotes" if settings.citations == "footnotes" else "none",
                    links=links,
                    footer_pattern=settings.footer_pattern,
                )
            except CpoError as exc:
                problem = exc.message
        views.append(
            VariantView(
                variant=variant,
                decision=decisions.get(variant.variant_id),
                severities=severities.get(variant.variant_id, {}),
                sources=tuple(_sources(variant, paragraphs)),
                customer=customer,
                customer_error=problem or (variant.error or ""),
            )
        )
    return views


def _latest_severities(entries: list[dict[str, Any]], run_id: Any) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for entry in entries:
        if entry.get("kind", KIND_SCREENING) == KIND_SCREENING and entry.get("run_id") == run_id:
            found[str(entry.get("variant_id"))] = dict(entry.get("severities") or {})
    return found


def _paragraphs(retrieval: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Every retrieved paragraph by (document id, paragraph number)."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for segment in retrieval.get("segments") or []:
        for result in segment.get("results") or []:
            key = (str(result.get("document_id")), int(result.get("paragraph_index", 0)))
            found.setdefault(key, result)
    return found


def _sources(
    variant: Variant, paragraphs: dict[tuple[str, int], dict[str, Any]]
) -> list[SourceParagraph]:
    sources = []
    for citation in variant.citations:
        result = paragraphs.get((citation.document_id, citation.paragraph_index)) or {}
        sources.append(
            SourceParagraph(
                document_id=citation.document_id,
                title=citation.title,
                paragraph_index=citation.paragraph_index,
                text=str(result["snippet"]) if "snippet" in result else None,
                source_url=str(result.get("source_url") or ""),
            )
        )
    return sources


def preview_html(view: VariantView, manifest: dict[str, Any]) -> str:
    """The HTML email of a variant as a customer with a blank first name receives it."""
    if view.customer is None:
        raise ValueError(f"variant {view.variant.variant_id} has no customer copy")
    settings = copy_settings(manifest)
    template = html_template(
        view.customer.subject,
        view.customer.preheader,
        view.customer.body,
        footer_pattern=settings.footer_pattern,
    )
    return template.format(first_name=escape_merge_value(settings.greeting_fallback))


def find_view(run_dir: Path, variant_id: str) -> VariantView | None:
    """The view of one variant (``None`` when the run has no such variant)."""
    for view in variant_views(run_dir):
        if view.variant.variant_id == variant_id:
            return view
    return None


__all__ = [
    "SourceParagraph",
    "VariantView",
    "copy_settings",
    "find_view",
    "preview_html",
    "variant_views",
]
