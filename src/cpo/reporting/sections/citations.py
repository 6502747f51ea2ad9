"""Section 7, citation analysis: documents cited most, and behind each segment's best variant."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    CONTROL_ARM,
    arm_tone,
    interval_of,
    lift_records,
    primary_metric,
    significance,
    source_anchor,
)


def source_index(art: RunArtifacts) -> dict[str, dict[str, Any]]:
    """document_id -> title, source_url and the paragraphs retrieved or cited."""
    sources: dict[str, dict[str, Any]] = {}
    for segment in (art.retrieval or {}).get("segments") or []:
        for result in segment.get("results") or []:
            doc = sources.setdefault(
                str(result.get("document_id")),
                {
                    "title": result.get("title", ""),
                    "url": result.get("source_url", ""),
                    "paragraphs": set(),
                },
            )
            doc["url"] = doc["url"] or result.get("source_url", "")
    for variant in art.variants:
        for citation in variant.get("citations") or []:
            doc = sources.setdefault(
                str(citation.get("document_id")),
                {"title": citation.get("title", ""), "url": "", "paragraphs": set()},
            )
            doc["paragraphs"].add(int(citation.get("paragraph_index", 0)))
    return sources


def variant_for(art: RunArtifacts, segment: str, arm: str) -> dict[str, Any] | None:
    """The variant an arm sent to a segment (design variant_ids, else segment + tone)."""
    if arm == CONTROL_ARM:
        return next((v for v in art.variants if v.get("tone") == "control"), None)
    for plan in art.design.get("segments") or []:
        if plan.get("segment") == segment and (plan.get("variant_ids") or {}).get(arm):
            vid = plan["variant_ids"][arm]
            return next((v for v in art.variants if v.get("variant_id") == vid), None)
    tone = arm_tone(art, arm)
    return next(
        (v for v in art.variants if v.get("segment") == segment and v.get("tone") == tone), None
    )


def citations_section(art: RunArtifacts) -> dict[str, Any]:
    """Documents cited most, and the documents behind the best variants per segment."""
    metric = primary_metric(art)
    sources = source_index(art)
    counts: Counter[str] = Counter()
    variants_citing: defaultdict[str, set[str]] = defaultdict(set)
    segments_citing: defaultdict[str, set[str]] = defaultdict(set)
    for variant in art.variants:
        if variant.get("status", "generated") == "failed":
            continue
        for citation in variant.get("citations") or []:
            doc = str(citation.get("document_id"))
            counts[doc] += 1
            variants_citing[doc].add(variant["variant_id"])
            segments_citing[doc].add(variant.get("segment", ""))
    best = best_variants(art, metric)
    best_docs = Counter(d for b in best for d in b["documents"])
    documents = [
        {
            "document_id": doc,
            "anchor": source_anchor(doc),
            "title": sources.get(doc, {}).get("title", ""),
            "citations": n,
            "variants": len(variants_citing[doc]),
            "segments": len(segments_citing[doc]),
            "in_best": best_docs.get(doc, 0),
        }
        for doc, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        "metric": metric,
        "label": fmt.metric_label(metric),
        "documents": documents,
        "best": best,
    }


def best_variants(art: RunArtifacts, metric: str) -> list[dict[str, Any]]:
    """Per segment, the best-performing arm's variant, its lift and the documents it cites."""
    rows = []
    for entry in art.metrics.get("segment_breakdown") or []:
        segment, arm = str(entry.get("segment")), entry.get("best_performing_arm")
        if not arm:
            continue
        variant = variant_for(art, segment, arm) or {}
        record = next((r for r in lift_records(entry, metric) if r.get("treatment_arm") == arm), {})
        lower, upper = interval_of(significance(record).get("confidence_interval"))
        rows.append(
            {
                "segment": segment,
                "arm": arm,
                "tone": arm_tone(art, arm),
                "variant_id": variant.get("variant_id", "–"),
                "rate": fmt.pct(record.get("treatment_value")),
                "lift": fmt.pp(record.get("lift_absolute")),
                "ci": fmt.interval(lower, upper, "pp"),
                "documents": sorted(
                    {str(c.get("document_id")) for c in variant.get("citations") or []}
                ),
            }
        )
    return rows
