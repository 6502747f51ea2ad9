"""Customer loading and validation: every bad input names the file, column and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpo.customers import REQUIRED_COLUMNS, load_customers
from cpo.errors import DataValidationError


def test_bundled_sample_loads_typed(customers_csv: Path):
    loaded = load_customers(customers_csv)
    frame = loaded.frame
    assert len(frame) == loaded.total_rows == 500
    assert loaded.rejected.empty
    assert frame["age"].dtype == np.int64
    assert frame["historical_open_rate"].dtype == float
    assert frame["customer_id"].is_unique


def test_missing_column_lists_missing_and_found(customers_csv: Path, edit_csv):
    edit_csv(customers_csv, lambda f: f.pop("historical_click_rate"))
    with pytest.raises(DataValidationError) as info:
        load_customers(customers_csv)
    message = str(info.value)
    assert str(customers_csv) in message
    assert "missing required column(s): historical_click_rate" in message


def test_duplicate_id_names_line_and_id(customers_csv: Path, edit_csv):
    edit_csv(
        customers_csv,
        lambda f: f.__setitem__(
            "customer_id", f["customer_id"].where(f.index != 9, f["customer_id"][2])
        ),
    )
    with pytest.raises(DataValidationError) as info:
        load_customers(customers_csv)
    message = str(info.value)
    assert "column 'customer_id': duplicate id" in message
    assert "line 11 (customer_id=C000003)" in message  # header is line 1, row index 9 is line 11


def test_rate_out_of_range_shows_value(customers_csv: Path, edit_csv):
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[4, "historical_open_rate"] = "1.7"

    edit_csv(customers_csv, edit)
    with pytest.raises(DataValidationError) as info:
        load_customers(customers_csv)
    message = str(info.value)
    assert "column 'historical_open_rate': out of range, must be [0, 1]" in message
    assert "line 6 (customer_id=C000005) value '1.7'" in message
    assert "--on-invalid skip" in message


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("age", "17", "out of range, must be [18, 120]"),
        ("age", "40.5", "must be a whole number"),
        ("age", "abc", "not a number"),
        ("purchase_frequency", "-1", "out of range, must be >= 0"),
        ("avg_order_value", "NaN", "missing value"),
        ("historical_click_rate", "", "missing value"),
        ("last_engagement_days", "inf", "not a number"),
        ("tier", " ", "missing value"),
        ("customer_id", "", "missing value"),
    ],
)
def test_each_bad_value_is_reported(customers_csv: Path, edit_csv, column, value, reason):
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[0, column] = value

    edit_csv(customers_csv, edit)
    with pytest.raises(DataValidationError) as info:
        load_customers(customers_csv)
    assert f"column '{column}': {reason} in 1 row(s): line 2" in str(info.value)


def test_invalid_email_never_echoes_the_value(customers_csv: Path, edit_csv):
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[3, "email"] = "jane.doe-at-example.com"

    edit_csv(customers_csv, edit)
    with pytest.raises(DataValidationError) as info:
        load_customers(customers_csv)
    assert "not a valid email address" in str(info.value)
    assert "jane.doe" not in str(info.value)


def test_empty_file_and_header_only(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="empty.csv: the file is empty"):
        load_customers(empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(REQUIRED_COLUMNS) + "\n")
    with pytest.raises(DataValidationError, match="header but no customer rows"):
        load_customers(header)


def test_missing_file_and_unsupported_type(tmp_path: Path):
    with pytest.raises(DataValidationError, match="customer file not found"):
        load_customers(tmp_path / "nope.csv")
    other = tmp_path / "customers.xlsx"
    other.write_text("x")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        load_customers(other)


def test_skip_sets_rows_aside_with_reasons_and_keeps_extra_columns(customers_csv: Path, edit_csv):
    def edit(frame: pd.DataFrame) -> None:
        frame["loyalty_points"] = "10"
        frame.loc[1, "historical_open_rate"] = "1.7"
        frame.loc[2, "age"] = "12"
        frame.loc[2, "email"] = "broken"
        frame.loc[7, "customer_id"] = frame.loc[6, "customer_id"]

    edit_csv(customers_csv, edit)
    loaded = load_customers(customers_csv, on_invalid="skip")
    assert len(loaded.frame) == 497 and len(loaded.rejected) == 3
    assert "loyalty_points" in loaded.frame.columns
    reasons = dict(zip(loaded.rejected["line"], loaded.rejected["reason"], strict=True))
    assert reasons[3] == "historical_open_rate: out of range, must be [0, 1]"
    assert "age: out of range" in reasons[4] and "email: not a valid email" in reasons[4]
    assert reasons[9] == "customer_id: duplicate id (first occurrence kept)"


def test_parquet_rows_are_numbered(tmp_path: Path, customers_frame: pd.DataFrame):
    frame = customers_frame.copy()
    frame.loc[3, "historical_click_rate"] = 2.5
    path = tmp_path / "customers.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataValidationError, match=r"row 4 \(customer_id=C000004\) value '2.5'"):
        load_customers(path)
    frame.loc[3, "historical_click_rate"] = 0.1
    frame.to_parquet(path, index=False)
    assert len(load_customers(path).frame) == len(frame)


def test_all_rows_invalid_in_skip_mode_is_an_error(customers_csv: Path, edit_csv):
    edit_csv(customers_csv, lambda f: f.__setitem__("age", "5"))
    with pytest.raises(DataValidationError, match="no valid customer rows"):
        load_customers(customers_csv, on_invalid="skip")
