"""Section 5, data quality: the sample-ratio check, every warning, the engagement source."""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    HOLDOUT_ARM,
    cell,
    engagement_source,
    is_simulated,
    recipients_frame,
    round1,
)


def quality_section(art: RunArtifacts, log_warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """Sample-ratio check, warnings from every stage, the engagement source."""
    srm = art.metrics.get("srm") or {}
    expected, observed = srm.get("expected"), srm.get("observed")
    arms = _srm_arms(art, expected, observed)
    return {
        "srm": {
            "method": srm.get("method", "–"),
            "p_value": cell("srm:p_value", srm.get("p_value"), fmt.pval(srm.get("p_value"))),
            "mismatch": srm.get("mismatch"),
            "reason": srm.get("reason") or "",
            "rows": [
                {
                    "arm": arm,
                    "expected": fmt.num(round1(_pick(expected, i, arm))),
                    "observed": fmt.num(_pick(observed, i, arm)),
                }
                for i, arm in enumerate(arms)
            ],
            "segments": _srm_segments(srm),
        },
        "warnings": _all_warnings(art, log_warnings),
        "source": engagement_source(art),
        "simulated": is_simulated(art),
        "engagement_rows": len(art.engagement),
        "holdout_rows": int((art.engagement["experiment_arm"].astype(str) == HOLDOUT_ARM).sum()),
        "unmatched": _unmatched_assignments(art),
    }


def _srm_arms(art: RunArtifacts, expected: Any, observed: Any) -> list[str]:
    for value in (observed, expected):
        if isinstance(value, dict):
            return list(value)
    arms = sorted(art.metrics.get("arms") or {})
    return arms


def _pick(values: Any, index: int, arm: str) -> Any:
    if isinstance(values, dict):
        return values.get(arm)
    if isinstance(values, list | tuple) and index < len(values):
        return values[index]
    return None


def _srm_segments(srm: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-segment SRM records when metrics.json has them (list or dict)."""
    raw = srm.get("segments") or srm.get("by_segment") or []
    items = raw.items() if isinstance(raw, dict) else [(r.get("segment"), r) for r in raw]
    return [
        {
            "segment": name,
            "method": record.get("method", "–"),
            "p_value": fmt.pval(record.get("p_value")),
            "mismatch": record.get("mismatch"),
            "reason": record.get("reason") or "",
        }
        for name, record in items
        if isinstance(record, dict)
    ]


def _all_warnings(art: RunArtifacts, log_warnings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Analysis, design and stage warnings, each once."""
    seen, result = set(), []
    sources = (
        ("analysis", art.metrics.get("warnings") or []),
        ("design", art.design.get("warnings") or []),
        ("run log", log_warnings),
    )
    for origin, warnings in sources:
        for warning in warnings:
            message = str(warning.get("message", ""))
            if message and message not in seen:
                seen.add(message)
                result.append(
                    {"origin": origin, "code": str(warning.get("code", "")), "message": message}
                )
    return result


def _unmatched_assignments(art: RunArtifacts) -> int | None:
    """Recipients in engagement.csv without an assignment (None when no assignments.csv)."""
    if art.assignments is None or "customer_id" not in art.assignments.columns:
        return None
    assigned = art.assignments["customer_id"].astype(str)
    recipients = recipients_frame(art)["customer_id"].astype(str)
    return _count_missing(recipients, assigned)


def _count_missing(values: Any, known: Any) -> int:
    """How many entries of ``values`` do not occur in ``known`` (two 1-d sequences of text).

    A hash lookup of the ids (:mod:`cpo.idjoin`) on
    Arrow arrays: no Python string per id (1M ids: ~0.3 s, against ~2 s with
    ``pandas.factorize`` over object arrays and ~11 s with ``Series.isin``).
    """
    import numpy as np

    from cpo.idjoin import row_positions

    if len(values) == 0:
        return 0
    return int(np.count_nonzero(row_positions(values, known) < 0))
