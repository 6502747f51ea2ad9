"""Engagement as counts per arm (and segment): parsing, every error, and equivalence.

Counts go straight to sufficient statistics; the analysis of a counts file must
give the same numbers as the equivalent per-recipient file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpo.errors import DataValidationError
from cpo.experiment.aggregate import aggregate_records
from cpo.experiment.analysis import analyze
from cpo.experiment.engagement import (
    detect_layout,
    import_counts,
    import_engagement,
    is_counts_file,
)
from cpo.experiment.metrics import analyze_file

PUBLISHED = """experiment_arm,sent,opened,clicked,converted
control,1000,300,80,10
treatment_1,1000,330,95,12
"""


def write(tmp_path: Path, text: str, name: str = "counts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def expand(counts: dict[tuple[str, str], tuple[int, int, int, int]]) -> pd.DataFrame:
    """The per-recipient file equivalent to ``counts`` ((arm, segment) -> sent, o, c, v)."""
    frames = []
    for (arm, segment), (sent, opened, clicked, converted) in counts.items():
        index = np.arange(sent)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"{arm}-{segment}-{i}" for i in index],
                    "experiment_arm": arm,
                    "segment": segment,
                    "opened": (index < opened).astype(int),
                    "clicked": (index < clicked).astype(int),
                    "converted": (index < converted).astype(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def numbers(metrics: dict) -> dict:
    """The statistical content of metrics.json (no timestamp, source or warnings).

    regression_adjustment is left out too: it says why nothing was adjusted,
    which differs between counts and per-recipient records without customers.
    """
    skip = {"computed_at", "engagement_source", "warnings", "regression_adjustment"}
    return {k: v for k, v in metrics.items() if k not in skip}


# ---- the acceptance example ----


def test_published_counts_analyse_like_the_per_recipient_file(tmp_path):
    counts = write(tmp_path, PUBLISHED)
    recipients = tmp_path / "recipients.csv"
    expand(
        {("control", "all"): (1000, 300, 80, 10), ("treatment_1", "all"): (1000, 330, 95, 12)}
    ).drop(columns="segment").to_csv(recipients, index=False)
    from_counts = analyze_file(counts, config={})
    from_records = analyze_file(recipients, config={})
    assert numbers(from_counts) == numbers(from_records)
    assert from_counts["engagement_source"] == "imported"
    click = next(r for r in from_counts["lift_analysis"] if r["metric"] == "click_rate")
    # 80/1000 vs 95/1000: Pearson chi-square without continuity correction, p = 0.2352.
    assert round(click["statistical_significance"]["p_value"], 4) == 0.2352


def test_segmented_counts_match_records_through_the_library(tmp_path):
    table = {
        ("control", "Hikers"): (120, 40, 9, 2),
        ("control", "Paddlers"): (80, 20, 4, 0),
        ("treatment_1", "Hikers"): (118, 47, 15, 4),
        ("treatment_1", "Paddlers"): (83, 31, 7, 1),
        ("treatment_2", "Hikers"): (121, 35, 8, 3),
        ("treatment_2", "Paddlers"): (79, 18, 3, 0),
    }
    lines = ["experiment_arm,segment,sent,opened,clicked,converted"]
    lines += [f"{a},{s},{n},{o},{c},{v}" for (a, s), (n, o, c, v) in table.items()]
    imported = import_counts(write(tmp_path, "\n".join(lines) + "\n"))
    direct = analyze(imported.statistics(), computed_at="t")
    records = analyze(aggregate_records(expand(table)), computed_at="t")
    assert numbers(direct) == numbers(records)
    assert imported.counts["recipients"] == 601 and imported.has_segments


def test_parquet_counts_and_tolerant_text(tmp_path):
    frame = pd.DataFrame(
        {
            "Experiment_Arm": ["Control", "treatment_1"],
            "sent": [50, 60],
            "opened": [20.0, 30.0],
            "clicked": [5, 9],
            "converted": [1, 2],
        }
    )
    path = tmp_path / "counts.parquet"
    frame.to_parquet(path)
    assert is_counts_file(path)
    imported = import_counts(path)
    assert list(imported.table["experiment_arm"]) == ["control", "treatment_1"]
    assert imported.table["opened"].tolist() == [20, 30]
    text = write(
        tmp_path, "experiment_arm, sent, opened, clicked, converted\ncontrol, 7, 3, 1, 0\n"
    )
    assert import_counts(text).table["sent"].tolist() == [7]


def test_layout_detection():
    assert (
        detect_layout(Path("f"), ["experiment_arm", *"sent opened clicked converted".split()])
        == "counts"
    )
    assert detect_layout(Path("f"), ["customer_id", "opened", "clicked", "converted", "sent"]) == (
        "recipients"
    )
    with pytest.raises(DataValidationError, match="missing column.*clicked.*counts layout"):
        detect_layout(Path("f"), ["experiment_arm", "sent", "opened", "converted"])


# ---- errors: each names the file, the line and the fix ----


@pytest.mark.parametrize(
    ("row", "message", "hint"),
    [
        ("treatment_1,100,120,5,1", r"'opened': larger than 'sent'.*line 3 \(opened 120 > sent 100",
         "not open events"),
        ("treatment_1,100,10,12,1", r"'clicked': larger than 'opened'.*line 3", "also opened"),
        ("treatment_1,100,10,5,6", r"'converted': larger than 'clicked'.*line 3", "clicked and"),
        ("treatment_1,-5,0,0,0", r"'sent': not a non-negative whole number.*line 3 value '-5'",
         "whole number"),
        ("treatment_1,100,10.5,5,1", r"column 'opened'.*line 3 value '10.5'", "whole number"),
        ("treatment_1,1 000,10,5,1", r"column 'sent'.*line 3 value '1 000'", "separators"),
        ("treatment_1,,10,5,1", r"column 'sent'.*line 3", "no blanks"),
        (",100,10,5,1", r"column 'experiment_arm': missing value.*line 3", "experiment_arm"),
        ("control,100,10,5,1", r"\(control, all\) on lines 2, 3", "add the rows' counts"),
    ],
)  # fmt: skip
def test_invalid_counts_name_file_line_and_fix(tmp_path, row, message, hint):
    path = write(
        tmp_path, f"experiment_arm,sent,opened,clicked,converted\ncontrol,100,10,5,1\n{row}\n"
    )
    with pytest.raises(DataValidationError, match=message) as caught:
        import_counts(path)
    assert str(path) in str(caught.value)
    assert hint in caught.value.hint


def test_duplicate_pairs_are_per_segment(tmp_path):
    text = (
        "experiment_arm,segment,sent,opened,clicked,converted\n"
        "control,North,10,1,0,0\ncontrol,South,10,1,0,0\ncontrol,North,5,1,0,0\n"
    )
    with pytest.raises(DataValidationError, match=r"\(control, North\) on lines 2, 4"):
        import_counts(write(tmp_path, text))


def test_header_only_and_wrong_layout(tmp_path):
    with pytest.raises(DataValidationError, match="header but no rows"):
        import_counts(write(tmp_path, "experiment_arm,sent,opened,clicked,converted\n"))
    events = write(tmp_path, "customer_id,event,timestamp\nc1,open,2025-01-01\n", "events.csv")
    with pytest.raises(DataValidationError, match="events layout"):
        import_counts(events)
    with pytest.raises(DataValidationError, match="import_counts"):
        import_engagement(write(tmp_path, PUBLISHED), pd.DataFrame())


# ---- against a run: arms, segments and sent versus the assignments ----


@pytest.fixture
def assignments() -> pd.DataFrame:
    """Two segments, control and treatment_1 (3 each per segment), two holdout customers."""
    rows = []
    for segment in ("Hikers", "Paddlers"):
        for arm in ("control", "treatment_1", "treatment_1", "control", "treatment_1", "control"):
            rows.append({"segment": segment, "experiment_arm": arm})
        rows.append({"segment": segment, "experiment_arm": "holdout"})
    frame = pd.DataFrame(rows)
    frame.insert(0, "customer_id", [f"x{i}" for i in range(len(frame))])
    return frame


def test_unknown_arm_in_a_run_is_an_error(tmp_path, assignments):
    text = "experiment_arm,sent,opened,clicked,converted\ncontrol,6,2,1,0\ntreatment_9,6,2,1,0\n"
    with pytest.raises(DataValidationError, match=r"line 3 value 'treatment_9'") as caught:
        import_counts(write(tmp_path, text), assignments)
    assert "control, treatment_1" in caught.value.hint


def test_unknown_segment_in_a_run_is_an_error(tmp_path, assignments):
    text = "experiment_arm,segment,sent,opened,clicked,converted\ncontrol,Climbers,3,1,0,0\n"
    with pytest.raises(DataValidationError, match="segment.*line 2 value 'Climbers'") as caught:
        import_counts(write(tmp_path, text), assignments)
    assert "Hikers, Paddlers" in caught.value.hint


def test_unknown_arm_against_design_arms(tmp_path):
    text = "experiment_arm,sent,opened,clicked,converted\ncontrol,6,2,1,0\ntreatment_2,6,2,1,0\n"
    with pytest.raises(DataValidationError, match="the design's arms"):
        import_counts(write(tmp_path, text), arms=["control", "treatment_1"])


def test_sent_above_assigned_is_an_error(tmp_path, assignments):
    text = "experiment_arm,segment,sent,opened,clicked,converted\ncontrol,Hikers,4,1,0,0\n"
    with pytest.raises(DataValidationError, match=r"line 2: sent 4 is more than the 3"):
        import_counts(write(tmp_path, text), assignments)


def test_holdout_rows_and_missing_recipients_are_warned(tmp_path, assignments):
    text = (
        "experiment_arm,sent,opened,clicked,converted\n"
        "control,6,2,1,0\ntreatment_1,5,3,1,1\nholdout,2,1,0,0\n"
    )
    imported = import_counts(write(tmp_path, text), assignments)
    assert {w["code"] for w in imported.warnings} == {"holdout_engagement", "missing_recipients"}
    assert imported.counts["missing_recipients"] == 1
    assert imported.counts["holdout_rows"] == 1
    assert list(imported.table["experiment_arm"]) == ["control", "treatment_1"]
    assert "treatment_1 1" in next(
        w["message"] for w in imported.warnings if w["code"] == "missing_recipients"
    )
