"""Section 6, the safety audit: coverage computed from the audit log against variants.json."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts


def safety_counts(art: RunArtifacts) -> dict[str, Any]:
    """Coverage and outcomes computed from the audit log against variants.json."""
    from cpo.decisions import final_decisions

    run_id = art.manifest.get("run_id")
    ids = [str(v["variant_id"]) for v in art.variants]
    latest: dict[str, dict[str, Any]] = {}
    for entry in art.audit.entries:
        if entry.get("kind") == "screening" and entry.get("run_id") == run_id:
            latest[entry["variant_id"]] = entry
    screened = [vid for vid in ids if vid in latest]
    statuses = Counter(latest[vid].get("status") for vid in screened)
    finals = final_decisions(art.audit.entries, run_id)
    return {
        "total": len(ids),
        "screened": len(screened),
        "coverage": len(screened) / len(ids) if ids else 0.0,
        "unscreened": [vid for vid in ids if vid not in latest],
        "passed": statuses.get("pass", 0),
        "review": statuses.get("review", 0),
        "blocked": statuses.get("block", 0),
        "latest": latest,
        "final": {vid: finals[vid].status for vid in ids if vid in finals},
    }


def safety_section(art: RunArtifacts) -> dict[str, Any]:
    """Coverage, outcomes, categories, reasons and the audit chain's status."""
    counts = safety_counts(art)
    recorded = art.manifest.get("safety") or {}
    variants = {str(v["variant_id"]): v for v in art.variants}
    rows = []
    for vid, entry in counts["latest"].items():
        variant = variants.get(vid, {})
        rows.append(
            {
                "variant_id": vid,
                "segment": entry.get("segment", variant.get("segment", "")),
                "tone": entry.get("tone", variant.get("tone", "")),
                "status": entry.get("status", ""),
                "final": counts["final"].get(vid, ""),
                "severities": entry.get("severities") or {},
                "reasons": "; ".join(entry.get("reasons") or []) or "–",
            }
        )
    manifest_coverage = recorded.get("coverage")
    return {
        **{
            k: counts[k] for k in ("total", "screened", "passed", "review", "blocked", "unscreened")
        },
        "coverage": fmt.pct(counts["coverage"], 0 if counts["coverage"] in (0, 1) else 1),
        "complete": counts["screened"] == counts["total"] and counts["total"] > 0,
        "manifest_coverage": manifest_coverage,
        "coverage_disagrees": manifest_coverage is not None
        and not math.isclose(float(manifest_coverage), counts["coverage"]),
        "by_category": recorded.get("by_category") or {},
        "by_reason": recorded.get("by_reason") or {},
        "backend": recorded.get("backend", ""),
        "chain_ok": art.audit.ok,
        "chain_message": art.audit.message,
        "entries": len(art.audit.entries),
        "head_hash": (recorded.get("audit") or {}).get("head_hash") or "",
        "rows": rows,
        "categories": sorted({c for r in rows for c in r["severities"]}),
    }
