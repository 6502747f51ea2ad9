"""The report's monitoring block and summary sentence (cpo.reporting.sections.monitoring).

The report only presents metrics.json's ``sequential`` history; these tests give it
histories with and without a decided arm.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cpo.experiment.aggregate import SufficientStatistics
from cpo.experiment.analysis import analyze_document
from cpo.experiment.sequential import record_look
from cpo.reporting.sections import monitoring


def monitored_run(tmp_path: Path, lifts: list[float]) -> Any:
    """Run artifacts whose metrics.json holds one look per lift (treatment_1 vs control)."""
    history, document = None, None
    for look, lift in enumerate(lifts, start=1):
        sent = 4000 * look
        counts = {
            "control": {"sent": sent, "opened": sent // 4, "clicked": sent // 20},
            "treatment_1": {"sent": sent, "opened": sent // 4,
                            "clicked": round(sent / 20 * (1 + lift))},
        }  # fmt: skip
        document = analyze_document(SufficientStatistics.from_counts(counts))
        history = record_look(history, document, tau=0.03)
    assert document is not None
    metrics = replace(document, sequential=history).to_dict()
    return SimpleNamespace(metrics=metrics, run_dir=tmp_path)


def test_a_decided_arm_is_summarised_with_its_sequence(tmp_path: Path) -> None:
    """A large lift: the sentence names the arm, the sequence and the always-valid p."""
    art = monitored_run(tmp_path, [0.5, 0.5, 0.5])
    sentences = monitoring.summary_sentences(art)
    assert len(sentences) == 1
    assert sentences[0].startswith("Monitored with always-valid inference, at look 3:")
    assert "treatment_1 is better than control (+" in sentences[0]
    section = monitoring.monitoring_section(art)
    assert section is not None and section["look"] == 3
    assert [row["look"] for row in section["history"]] == [1, 2, 3]
    assert all(row["significant"] for row in section["history"][1:])
    chart = monitoring.sequence_chart(art)
    assert chart.startswith("<svg") and chart.count("look ") >= 3


def test_an_undecided_history_says_keep_collecting(tmp_path: Path) -> None:
    """No difference: the sentence says no sequence excludes zero yet."""
    art = monitored_run(tmp_path, [0.0, 0.0])
    (sentence,) = monitoring.summary_sentences(art)
    assert "at look 2 no arm's confidence sequence excludes zero yet" in sentence


def test_a_run_without_monitoring_shows_nothing(tmp_path: Path) -> None:
    """metrics.json without ``sequential``: no block, no sentence, no chart."""
    art = monitored_run(tmp_path, [0.1])
    art.metrics.pop("sequential")
    assert monitoring.monitoring_section(art) is None
    assert monitoring.summary_sentences(art) == []
    assert monitoring.sequence_chart(art) == ""
