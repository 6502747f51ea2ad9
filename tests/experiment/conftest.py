"""Fixtures for the experiment tests (design, assignment, sends, engagement, simulation).

Variants steer the screening backend with markers: ``[violence:6]`` in a body
makes the real screening policy block it, ``[violence:4]`` sends it to review
(default thresholds), so a test states each variant's fate in its text.
"""

from __future__ import annotations

import pandas as pd
import pytest
from cpo_testkit import FOOTER, MarkerAnalyzer, VariantsStage

from cpo.decisions import FinalDecision, content_sha256
from cpo.experiment.design import CONTROL_VARIANT_ID
from cpo.models import Grounding, Variant

EXPERIMENT_TONES = ("urgent", "informational", "friendly")


def make_variant(
    variant_id: str,
    segment: str,
    tone: str,
    text: str = "Our new tents are in.",
    subject: str = "News for {first_name}",
    status: str = "generated",
) -> Variant:
    """A variant with a {first_name} greeting and the unsubscribe footer."""
    return Variant(
        variant_id=variant_id,
        segment=segment,
        tone=tone,
        subject=subject,
        body=f"Hi {{first_name}},\n\n{text}\n\n{FOOTER}",
        grounding=Grounding(score=1.0),
        backend="test",
        status=status,
        error="model returned nothing" if status == "failed" else None,
    )


def variant_set(segments: list[str], texts: dict[str, str] | None = None) -> list[Variant]:
    """Control plus one variant per segment x tone; ``texts`` overrides bodies by id."""
    texts = texts or {}
    variants = [make_variant(CONTROL_VARIANT_ID, "all", "control", "Browse the latest gear.")]
    for s_index, segment in enumerate(segments):
        for tone in EXPERIMENT_TONES:
            vid = f"s{s_index}-{tone}"
            variants.append(make_variant(vid, segment, tone, texts.get(vid, f"{tone} news.")))
    return variants


def decisions_for(variants: list[Variant], statuses: dict[str, str] | None = None):
    """Final decisions: ``pass`` unless ``statuses`` says otherwise (by variant id)."""
    statuses = statuses or {}
    return {
        v.variant_id: FinalDecision(
            variant_id=v.variant_id,
            segment=v.segment,
            tone=v.tone,
            status=statuses.get(v.variant_id, "pass"),
            screening_status="pass",
            reasons=("test",),
            content_sha256=content_sha256(v),
        )
        for v in variants
    }


class ExperimentKit:
    """Helpers for the experiment tests (a fixture, since tests cannot import conftest)."""

    tones = EXPERIMENT_TONES
    MarkerAnalyzer = MarkerAnalyzer
    VariantsStage = VariantsStage
    make_variant = staticmethod(make_variant)
    variant_set = staticmethod(variant_set)
    decisions_for = staticmethod(decisions_for)


@pytest.fixture
def xkit() -> type[ExperimentKit]:
    """The :class:`ExperimentKit` helpers."""
    return ExperimentKit


@pytest.fixture
def synthetic_customers() -> pd.DataFrame:
    """2,000 customers in three uneven segments with history and contact columns."""
    n = 2000
    ids = [f"X{i:05d}" for i in range(n)]
    segment = ["alpha" if i % 10 < 5 else "beta" if i % 10 < 8 else "gamma" for i in range(n)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "segment": segment,
            "first_name": [f"Name{i}" for i in range(n)],
            "email": [f"user{i}@example.org" for i in range(n)],
            "historical_open_rate": [0.1 + 0.3 * ((i * 37) % 100) / 100 for i in range(n)],
            "historical_click_rate": [0.01 + 0.05 * ((i * 53) % 100) / 100 for i in range(n)],
        }
    )
