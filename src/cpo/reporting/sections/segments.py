"""Section 4, the segment breakdown (exploratory): per segment, the primary metric's lifts."""

from __future__ import annotations

from typing import Any

from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections.common import (
    CONTROL_ARM,
    arm_tone,
    cell,
    primary_metric,
)
from cpo.reporting.sections.results import arm_rows, lift_rows


def segments_section(art: RunArtifacts) -> dict[str, Any]:
    """Per segment: size, best arm, and the primary metric's lifts (exploratory)."""
    metric = primary_metric(art)
    segments = []
    for entry in art.metrics.get("segment_breakdown") or []:
        name = str(entry.get("segment"))
        segments.append(
            {
                "segment": name,
                "sample_size": cell(
                    f"segment:{name}:sample_size",
                    entry.get("sample_size"),
                    fmt.num(entry.get("sample_size")),
                ),
                "best_arm": entry.get("best_performing_arm") or fmt.MISSING,
                "control_best": entry.get("best_performing_arm") == CONTROL_ARM,
                "best_tone": arm_tone(art, entry.get("best_performing_arm") or ""),
                "lift_percent": cell(
                    f"segment:{name}:lift_percent",
                    entry.get("lift_percent"),
                    fmt.signed_pct(entry.get("lift_percent")),
                ),
                "arms": arm_rows(art, entry, segment=name),
                "lifts": lift_rows(art, entry, metric, segment=name),
            }
        )
    return {"metric": metric, "label": fmt.metric_label(metric), "segments": segments}
