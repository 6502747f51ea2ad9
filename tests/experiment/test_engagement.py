"""Engagement import: both layouts, CSV and Parquet, and every validation case."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cpo.errors import DataValidationError
from cpo.experiment.engagement import ENGAGEMENT_COLUMNS, import_engagement

SENT = "2025-03-01T09:00:00.000Z"


@pytest.fixture
def assignments() -> pd.DataFrame:
    """Six recipients (c1..c6) in two arms and one holdout customer (h1)."""
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6", "h1"],
            "segment": ["a", "a", "a", "b", "b", "b", "a"],
            "experiment_arm": [
                "control",
                "treatment_1",
                "control",
                "treatment_1",
                "control",
                "treatment_1",
                "holdout",
            ],
            "variant_id": ["control", "v1", "control", "v2", "control", "v2", ""],
            "assigned_at": SENT,
            "assignment_method": "stratified_block",
        }
    )


def write(tmp_path: Path, text: str, name: str = "engagement.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def flags(result, customer_id):
    row = result.frame.set_index("customer_id").loc[customer_id]
    return int(row["opened"]), int(row["clicked"]), int(row["converted"])


def codes(result):
    return {w["code"] for w in result.warnings}


# ---- (a) one row per recipient ----

CLEAN_RECIPIENTS = """customer_id,opened,clicked,converted
c1,1,0,0
c2,true,TRUE,false
c3,0,0,0
c4,1,1,1
c5,False,0,0
c6,0.0,0,0
"""


def test_recipient_layout_clean_file(tmp_path, assignments):
    result = import_engagement(write(tmp_path, CLEAN_RECIPIENTS), assignments)
    assert result.layout == "recipients" and result.source == "imported"
    assert tuple(result.frame.columns) == ENGAGEMENT_COLUMNS
    assert result.frame["customer_id"].tolist() == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert flags(result, "c2") == (1, 1, 0) and flags(result, "c4") == (1, 1, 1)
    assert set(result.frame["engagement_source"]) == {"imported"}
    assert result.warnings == []
    assert all(v == 0 for k, v in result.counts.items() if k not in ("rows", "recipients"))


def test_recipient_layout_parquet(tmp_path, assignments):
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "opened": [True, True, False, True, False, False],
            "clicked": [False, True, False, True, False, False],
            "converted": [0, 0, 0, 1, 0, 0],
        }
    )
    path = tmp_path / "engagement.parquet"
    frame.to_parquet(path)
    result = import_engagement(path, assignments)
    assert flags(result, "c4") == (1, 1, 1) and flags(result, "c3") == (0, 0, 0)


def test_recipient_layout_every_validation_case(tmp_path, assignments):
    text = """customer_id,opened,clicked,converted
c1,0,1,0
c2,0,0,1
c3,1,0,0
c3,1,0,0
c4,0,0,0
c4,1,0,0
zz,1,1,1
h1,1,0,0
"""
    result = import_engagement(write(tmp_path, text), assignments)
    counts = result.counts
    assert counts["click_without_open"] == 1 and flags(result, "c1") == (1, 1, 0)
    assert counts["conversion_without_click"] == 1 and flags(result, "c2") == (0, 0, 1)
    assert counts["duplicate_rows"] == 2 and counts["duplicate_conflicts"] == 1
    assert flags(result, "c4") == (1, 0, 0)  # duplicates combined with "any"
    assert counts["unknown_customers"] == 1 and counts["unknown_customer_rows"] == 1
    assert counts["holdout_customers"] == 1 and counts["holdout_rows"] == 1
    assert counts["missing_recipients"] == 2  # c5 and c6 have no row
    assert set(result.frame["customer_id"]) == {"c1", "c2", "c3", "c4"}
    assert codes(result) == {
        "click_without_open",
        "conversion_without_click",
        "duplicate_rows",
        "unknown_customers",
        "holdout_engagement",
        "missing_recipients",
    }
    missing = next(w for w in result.warnings if w["code"] == "missing_recipients")
    assert "control 1" in missing["message"] and "treatment_1 1" in missing["message"]


def test_bad_flag_value_names_file_column_and_line(tmp_path, assignments):
    path = write(tmp_path, "customer_id,opened,clicked,converted\nc1,1,0,0\nc2,yes,0,0\n")
    with pytest.raises(DataValidationError) as info:
        import_engagement(path, assignments)
    message = str(info.value)
    assert str(path) in message and "column 'opened'" in message and "line 3" in message


def test_blank_customer_id_is_an_error(tmp_path, assignments):
    path = write(tmp_path, "customer_id,opened,clicked,converted\n,1,0,0\n")
    with pytest.raises(DataValidationError, match="column 'customer_id'.*line 2"):
        import_engagement(path, assignments)


@pytest.mark.parametrize(
    "header, missing",
    [("customer_id,opened,clicked", "converted"), ("customer_id,event", "timestamp")],
)
def test_missing_columns_are_named(tmp_path, assignments, header, missing):
    path = write(tmp_path, header + "\nc1,1,0\n")
    with pytest.raises(DataValidationError, match=missing):
        import_engagement(path, assignments)


def test_no_matching_recipient_is_an_error(tmp_path, assignments):
    path = write(tmp_path, "customer_id,opened,clicked,converted\nq1,1,0,0\n")
    with pytest.raises(DataValidationError, match="no row matches"):
        import_engagement(path, assignments)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("missing.csv", None, "not found"),
        ("empty.csv", "", "empty"),
        ("header.csv", "customer_id,opened,clicked,converted\n", "no rows"),
        ("data.json", "{}", "unsupported"),
    ],
)
def test_unreadable_files(tmp_path, assignments, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataValidationError, match=match):
        import_engagement(path, assignments)


# ---- (b) one row per event ----


def test_event_layout_every_validation_case(tmp_path, assignments):
    text = """customer_id,event,timestamp
c1,delivered,2025-03-01T09:01:00Z
c1,open,2025-03-01T10:00:00Z
c1,open,2025-03-01T11:00:00Z
c2,click,2025-03-01T10:00:00Z
c3,open,2025-03-01T10:00:00+00:00
c3,conversion,2025-03-01T12:00:00
c4,open,2025-02-28T10:00:00Z
c4,bounce,2025-03-01T09:00:30Z
c5,unsubscribe,2025-03-02T09:00:00Z
c5,open,2025-03-01T10:00:00Z
c5,open,2025-03-01T10:00:00Z
zz,open,2025-03-01T10:00:00Z
h1,click,2025-03-01T10:00:00Z
"""
    result = import_engagement(write(tmp_path, text), assignments)
    counts = result.counts
    assert result.layout == "events"
    assert result.frame["customer_id"].tolist() == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert flags(result, "c1") == (1, 0, 0)  # two opens = opened
    assert flags(result, "c2") == (1, 1, 0) and counts["click_without_open"] == 1
    assert flags(result, "c3") == (1, 0, 1) and counts["conversion_without_click"] == 1
    assert flags(result, "c4") == (0, 0, 0) and counts["events_before_send"] == 1
    assert counts["bounced_recipients"] == 1 and counts["unsubscribed_recipients"] == 1
    assert counts["duplicate_events"] == 1
    assert counts["unknown_customers"] == 1 and counts["holdout_customers"] == 1
    assert flags(result, "c6") == (0, 0, 0) and counts["recipients_without_events"] == 1
    assert counts["open_events"] == 4  # c1 x2, c3, c5 (deduplicated)
    assert counts["delivered_events"] == 1
    assert codes(result) == {
        "click_without_open",
        "conversion_without_click",
        "events_before_send",
        "duplicate_events",
        "unknown_customers",
        "holdout_engagement",
    }


def test_event_aliases_and_explicit_send_time(tmp_path, assignments):
    text = (
        "customer_id,event,timestamp\n"
        "c1,Opened,2025-03-01T08:00:00Z\n"
        "c2,clicked,2025-03-01T10:00Z\n"
    )
    result = import_engagement(write(tmp_path, text), assignments, send_time="2025-03-01T07:00:00")
    assert flags(result, "c1") == (1, 0, 0) and result.counts["events_before_send"] == 0
    assert flags(result, "c2") == (1, 1, 0)


def test_event_layout_parquet_with_datetime_column(tmp_path, assignments):
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "event": ["open", "conversion"],
            "timestamp": pd.to_datetime(["2025-03-01 10:00", "2025-03-01 11:00"], utc=True),
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    result = import_engagement(path, assignments)
    assert flags(result, "c1") == (1, 0, 0) and flags(result, "c2") == (0, 0, 1)


@pytest.mark.parametrize(
    "row, column",
    [("c1,opend,2025-03-01T10:00:00Z", "event"), ("c1,open,yesterday", "timestamp")],
)
def test_event_errors_name_column_and_line(tmp_path, assignments, row, column):
    path = write(
        tmp_path, "customer_id,event,timestamp\nc2,open,2025-03-01T10:00:00Z\n" + row + "\n"
    )
    with pytest.raises(DataValidationError) as info:
        import_engagement(path, assignments)
    assert f"column '{column}'" in str(info.value) and "line 3" in str(info.value)


def test_parquet_nulls_are_errors_naming_the_row(tmp_path, assignments):
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "opened": pd.array([1, None], dtype="Int64"),
            "clicked": [0, 0],
            "converted": [0, 0],
        }
    )
    path = tmp_path / "nulls.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="column 'opened'.*row 2"):
        import_engagement(path, assignments)
    events = pd.DataFrame(
        {
            "customer_id": ["c1", None],
            "event": ["open", "open"],
            "timestamp": pd.to_datetime(["2025-03-01 10:00", "2025-03-01 10:00"]),
        }
    )
    events.to_parquet(path)
    with pytest.raises(DataValidationError, match="column 'customer_id'.*row 2"):
        import_engagement(path, assignments)
    events["customer_id"] = ["c1", "c2"]
    events["timestamp"] = pd.to_datetime(["2025-03-01 10:00", None])
    events.to_parquet(path)
    with pytest.raises(DataValidationError, match="column 'timestamp'.*row 2"):
        import_engagement(path, assignments)
