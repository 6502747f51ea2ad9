"""Per-segment profiles: size, share, feature means and medians, a definition."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cpo.customers import NUMERIC_RANGES
from cpo.models import SegmentProfile


def build_profiles(
    customers: pd.DataFrame,
    assignments: pd.DataFrame,
    definitions: dict[int, str],
    traits: dict[int, tuple[str, ...]],
) -> list[SegmentProfile]:
    """Summarize each non-empty segment (ordered by ``segment_id``)."""
    features = [c for c in NUMERIC_RANGES if c in customers.columns]
    data = customers[features].copy()
    data["segment_id"] = assignments["segment_id"].to_numpy()
    grouped = data.groupby("segment_id", sort=True)
    means = grouped[features].mean()
    medians = grouped[features].median()
    sizes = grouped.size()
    names = assignments.drop_duplicates("segment_id").set_index("segment_id")["segment"]
    total = len(assignments)
    profiles = []
    for label, size in zip(sizes.index.to_list(), sizes.to_list(), strict=True):
        segment_id = int(label)
        profiles.append(
            SegmentProfile(
                name=str(names[label]),
                segment_id=segment_id,
                size=int(size),
                share=round(int(size) / total, 6),
                definition=definitions.get(segment_id, ""),
                means=_rounded(means.loc[label]),
                medians=_rounded(medians.loc[label]),
                traits=traits.get(segment_id, ()),
            )
        )
    return profiles


def _rounded(row: pd.Series) -> dict[str, float]:
    """Feature -> value rounded to 4 decimals (plain floats for JSON)."""
    return {str(k): round(float(v), 4) for k, v in row.items() if np.isfinite(v)}


def describe_centroid(name: str, profile_means: dict[str, float], overall: dict[str, float]) -> str:
    """One sentence contrasting a cluster's means with the population's."""
    contrasts = []
    for feature, value in profile_means.items():
        base = overall.get(feature)
        if base:
            ratio = value / base
            if ratio >= 1.25 or ratio <= 0.8:
                word = "higher" if ratio > 1 else "lower"
                contrasts.append(
                    (abs(np.log(ratio)), f"{word} {feature} ({value:.3g} vs {base:.3g})")
                )
    contrasts.sort(reverse=True)
    detail = "; ".join(text for _, text in contrasts[:3]) or "values close to the overall average"
    return f"{name}: customers with {detail}."
