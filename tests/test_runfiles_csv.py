"""CSV files are formula-injection safe (OWASP) and cpo's own readers undo the escaping."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from cpo.runfiles import escape_formula, escape_formulas, read_csv, write_csv

HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\tTAB", "\rCR"]


@pytest.mark.parametrize("value", HOSTILE)
def test_text_starting_with_a_trigger_gets_a_quote(value):
    assert escape_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["Ada", "", "'quoted", "a=b", 3, -1.5, None])
def test_other_cells_are_unchanged(value):
    assert escape_formula(value) == value


def test_written_cells_are_escaped_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["=A1", "C2", "'=B2", "-7"],
            "lift": [-0.25, 0.5, -1.0, 2.0],
            "count": [-3, 1, 2, 3],
            "segment": pd.Categorical(["@risk", "ok", "@risk", "ok"]),
        }
    )
    path = tmp_path / "out.csv"
    write_csv(path, frame)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["customer_id"] for r in rows] == ["'=A1", "C2", "''=B2", "'-7"]
    assert [r["lift"] for r in rows] == ["-0.25", "0.5", "-1.0", "2.0"]
    assert [r["count"] for r in rows] == ["-3", "1", "2", "3"]
    assert [r["segment"] for r in rows] == ["'@risk", "ok", "'@risk", "ok"]
    back = read_csv(path, dtype={"customer_id": str, "segment": str}, keep_default_na=False)
    assert back["customer_id"].tolist() == ["=A1", "C2", "'=B2", "-7"]  # exact round trip
    assert back["segment"].tolist() == ["@risk", "ok", "@risk", "ok"]
    assert back["lift"].tolist() == [-0.25, 0.5, -1.0, 2.0]
    assert frame["customer_id"].tolist() == ["=A1", "C2", "'=B2", "-7"]  # input untouched


def test_categorical_labels_round_trip(tmp_path):
    path = tmp_path / "labels.csv"
    write_csv(path, pd.DataFrame({"segment": ["+VIP", "Other", "+VIP"], "n": [1, 2, 3]}))
    back = read_csv(path, dtype={"segment": "category"})
    assert back["segment"].tolist() == ["+VIP", "Other", "+VIP"]


def test_mixed_object_column_escapes_only_text():
    frame = pd.DataFrame({"mixed": pd.Series([1, "=x", None, -2.5], dtype=object)})
    assert escape_formulas(frame)["mixed"].tolist()[:2] == [1, "'=x"]
    assert escape_formulas(frame)["mixed"].tolist()[3] == -2.5
