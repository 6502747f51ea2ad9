"""Customer loading and validation: every bad input names the file, column and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cpo_testkit import BEHAVIOUR_COLUMNS

from cpo.customer_reader import read_customer_columns
from cpo.customer_settings import CustomerSettings
from cpo.customers import REQUIRED_COLUMNS, load_customers, merged_settings
from cpo.errors import ConfigError, DataValidationError


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


# --- Files from other systems: optional names and emails, encodings, delimiters, mapping ---


def bakery_frame(rows: int = 12) -> pd.DataFrame:
    """Customers of a small bakery chain in German-speaking cities, as text cells."""
    cities = ["München", "Zürich", "Köln", "Graz"]
    tiers = ["Brötchen-Club", "Stammkunde", "Gast"]
    names = ["Jürgen", "", "Anouk", "Zoë"]
    return pd.DataFrame(
        {
            "customer_id": [f"BK-{i:04d}" for i in range(rows)],
            "first_name": [names[i % len(names)] for i in range(rows)],
            "age": [str(22 + 3 * i) for i in range(rows)],
            "location": [cities[i % len(cities)] for i in range(rows)],
            "tier": [tiers[i % len(tiers)] for i in range(rows)],
            "purchase_frequency": [str(1 + i % 9) for i in range(rows)],
            "avg_order_value": [f"{7.5 + i * 1.25:.2f}" for i in range(rows)],
            "last_engagement_days": [str(3 + 11 * i) for i in range(rows)],
            "historical_open_rate": [f"{0.1 + 0.05 * (i % 10):.2f}" for i in range(rows)],
            "historical_click_rate": [f"{0.01 + 0.02 * (i % 5):.2f}" for i in range(rows)],
        }
    )


def test_behavioural_columns_only_load_with_blank_names_and_no_email(tmp_path: Path):
    path = tmp_path / "export.csv"
    bakery_frame()[BEHAVIOUR_COLUMNS].to_csv(path, index=False)
    loaded = load_customers(path)
    assert len(loaded.frame) == 12 and loaded.rejected.empty
    assert not loaded.has_email and "email" not in loaded.frame.columns
    assert loaded.frame["first_name"].eq("").all()


def test_blank_first_names_are_kept_blank_not_rejected(tmp_path: Path):
    path = tmp_path / "with_names.csv"
    frame = bakery_frame()
    frame["email"] = [f"kunde{i}@baeckerei.example" for i in range(len(frame))]
    frame.to_csv(path, index=False, encoding="utf-8")
    loaded = load_customers(path)
    assert loaded.rejected.empty and loaded.has_email
    assert list(loaded.frame["first_name"][:4]) == ["Jürgen", "", "Anouk", "Zoë"]


def test_email_column_all_blank_is_no_email_but_one_blank_email_is_rejected(tmp_path: Path):
    path = tmp_path / "blank_emails.csv"
    frame = bakery_frame()
    frame["email"] = ""
    frame.to_csv(path, index=False)
    assert not load_customers(path).has_email
    frame["email"] = [f"k{i}@example.org" for i in range(len(frame))]
    frame.loc[4, "email"] = " "
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"column 'email': missing value in 1 row\(s\): line 6"
    ):
        load_customers(path)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_non_utf8_file_names_the_line_and_suggests_an_encoding(tmp_path: Path, encoding: str):
    path = tmp_path / "legacy.csv"
    frame = bakery_frame()
    frame[["location", "tier", "first_name"]] = ["Berlin", "Gold", "Ann"]  # ASCII only...
    frame.loc[6, "location"] = "Düsseldorf"  # ...but here: row 6 is line 8
    frame.to_csv(path, index=False, encoding=encoding)
    with pytest.raises(DataValidationError) as info:
        load_customers(path)
    message = str(info.value)
    assert str(path) in message and "line 8" in message and "0xfc" in message
    assert "--encoding latin-1" in message and "cp1252" in message
    loaded = load_customers(path, settings=CustomerSettings(encoding=encoding))
    assert loaded.frame.loc[6, "location"] == "Düsseldorf"


def test_encoding_error_line_is_right_across_scan_chunks(tmp_path: Path, monkeypatch):
    import cpo.customer_reader as reader

    monkeypatch.setattr(reader, "_SCAN_CHUNK", 7)  # splits lines and multi-byte characters
    path = tmp_path / "mixed.csv"
    text = "a,b\n" + "".join(f"Zoë{i},{i}\n" for i in range(20))
    path.write_bytes(text.encode("utf-8") + b"Caf\xe9,x\n")
    assert reader.first_undecodable(path, "utf-8-sig") == (22, 0xE9)
    assert reader.first_undecodable(path, "latin-1") is None


def test_utf8_byte_order_mark_does_not_rename_the_first_column(tmp_path: Path):
    path = tmp_path / "excel.csv"
    bakery_frame().to_csv(path, index=False, encoding="utf-8-sig")
    assert load_customers(path).frame.columns[0] == "customer_id"
    assert load_customers(path, settings=CustomerSettings(encoding="utf-8")).frame.columns[0] == (
        "customer_id"
    )


@pytest.mark.parametrize(("separator", "suffix"), [(";", ".csv"), ("\t", ".tsv"), ("\t", ".txt")])
def test_semicolon_and_tab_files_are_detected(tmp_path: Path, separator: str, suffix: str):
    path = tmp_path / f"export{suffix}"
    frame = bakery_frame()
    frame["note"] = "Sauerteig, Roggen"  # a comma inside a value must not confuse detection
    frame.to_csv(path, index=False, sep=separator)
    loaded = load_customers(path)
    assert len(loaded.frame.columns) == len(frame.columns)
    assert loaded.frame.loc[0, "note"] == "Sauerteig, Roggen"
    assert loaded.frame["avg_order_value"].iloc[1] == 8.75


def test_unknown_delimiter_is_an_error_with_a_delimiter_hint(tmp_path: Path):
    path = tmp_path / "pipes.csv"
    bakery_frame().to_csv(path, index=False, sep="|")
    with pytest.raises(DataValidationError) as info:
        load_customers(path)
    assert "could not detect the delimiter" in str(info.value)
    assert "--delimiter" in str(info.value)
    assert len(load_customers(path, settings=CustomerSettings(delimiter="|")).frame) == 12
    with pytest.raises(DataValidationError, match="splitting the header line on the semicolon"):
        load_customers(path, settings=CustomerSettings(delimiter=";"))


def test_a_directory_is_named_as_a_directory(tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    bakery_frame().to_csv(folder / "kunden.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        load_customers(folder)
    assert "is a directory" in str(info.value) and "kunden.csv" in str(info.value)


def test_column_mapping_renames_their_columns(tmp_path: Path):
    path = tmp_path / "crm.csv"
    theirs = {"customer_id": "KundenNr", "tier": "Stufe", "first_name": "Vorname"}
    bakery_frame().rename(columns=theirs).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_customers(path)
    assert "missing required column(s): customer_id, tier" in str(info.value)
    assert "--map THEIRS=OURS" in str(info.value)
    mapping = {v: k for k, v in theirs.items()}
    loaded = load_customers(path, settings=CustomerSettings(columns=mapping))
    assert loaded.frame.loc[0, "customer_id"] == "BK-0000"
    assert loaded.frame.loc[0, "first_name"] == "Jürgen"


def test_missing_column_hint_suggests_a_close_name(tmp_path: Path):
    path = tmp_path / "crm.csv"
    bakery_frame().rename(columns={"customer_id": "CustomerID"}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="--map CustomerID=customer_id"):
        load_customers(path)


def test_mapping_errors_name_both_columns(tmp_path: Path):
    path = tmp_path / "crm.csv"
    bakery_frame().to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_customers(path, settings=CustomerSettings(columns={"Level": "tier"}))
    assert "Level=tier" in str(info.value) and "no column 'Level'" in str(info.value)
    with pytest.raises(DataValidationError) as info:
        load_customers(path, settings=CustomerSettings(columns={"location": "tier"}))
    message = str(info.value)
    assert "location=tier" in message and "already has a column 'tier'" in message


def test_mapping_may_swap_two_columns(tmp_path: Path):
    path = tmp_path / "swapped.csv"
    frame = bakery_frame()
    frame.rename(columns={"location": "tier", "tier": "location"}).to_csv(path, index=False)
    settings = CustomerSettings(columns={"location": "tier", "tier": "location"})
    loaded = load_customers(path, settings=settings)
    assert list(loaded.frame["location"]) == list(frame["location"])


def test_parquet_ignores_encoding_and_delimiter_but_maps(tmp_path: Path):
    path = tmp_path / "export.parquet"
    frame = bakery_frame()[BEHAVIOUR_COLUMNS].rename(columns={"tier": "segment_level"})
    frame["age"] = frame["age"].astype(int)
    frame.to_parquet(path, index=False)
    settings = CustomerSettings(columns={"segment_level": "tier"}, encoding="cp1252", delimiter=";")
    loaded = load_customers(path, settings=settings)
    assert len(loaded.frame) == 12 and loaded.frame.loc[1, "location"] == "Zürich"


def test_command_line_values_are_merged_over_the_config():
    config = CustomerSettings(columns={"CustID": "customer_id", "Ort": "location"}, delimiter=";")
    merged = merged_settings(config, {"Ort": "tier"}, encoding="latin-1", delimiter=None)
    assert merged.columns == {"CustID": "customer_id", "Ort": "tier"}
    assert (merged.encoding, merged.delimiter) == ("iso8859-1", ";")
    with pytest.raises(ConfigError, match="several columns are mapped onto customer_id"):
        merged_settings(config, {"Kunde": "customer_id"})


def test_all_rows_rejected_names_the_most_common_reason(tmp_path: Path):
    path = tmp_path / "young.csv"
    frame = bakery_frame()
    frame["age"] = "16"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_customers(path, on_invalid="skip")
    assert "12 rejected; most common reason: age: out of range" in str(info.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_report_reads_the_columns_the_way_the_run_did(tmp_path: Path, suffix: str):
    path = tmp_path / f"crm{suffix}"
    frame = bakery_frame().rename(columns={"customer_id": "KundenNr", "age": "Alter"})
    frame["KundenNr"] = [f"{i:05d}" for i in range(len(frame))]  # leading zeros stay
    if suffix == ".csv":
        frame.to_csv(path, index=False, sep=";", encoding="cp1252")
    else:
        frame.to_parquet(path, index=False)
    settings = CustomerSettings(
        columns={"KundenNr": "customer_id", "Alter": "age"}, encoding="cp1252"
    )
    loaded = load_customers(path, settings=settings)
    wanted = ("customer_id", "age", "location", "avg_order_value")
    columns = read_customer_columns(path, loaded.reading, wanted)
    assert list(columns.columns) == ["customer_id", "age", "location", "avg_order_value"]
    assert columns["customer_id"].iloc[3] == "00003" and columns["location"].iloc[1] == "Zürich"
    assert columns["age"].dtype.kind == "i" and columns["avg_order_value"].iloc[1] == 8.75


def test_decimal_commas_are_named_as_such(tmp_path: Path):
    path = tmp_path / "excel_de.csv"
    frame = bakery_frame()
    frame.loc[2, "avg_order_value"] = "12,50"
    frame.loc[5, "avg_order_value"] = "zwölf"
    frame.to_csv(path, index=False, sep=";")
    with pytest.raises(DataValidationError) as info:
        load_customers(path)
    message = str(info.value)
    assert "column 'avg_order_value': decimal comma" in message and "line 4" in message
    assert "column 'avg_order_value': not a number in 1 row(s): line 7" in message


def test_vectorized_email_check_agrees_with_the_python_pattern() -> None:
    """Arrow's RE2 pattern gives Python's verdict, Unicode whitespace included."""
    import re

    import numpy as np
    import pandas as pd

    from cpo.customers import EMAIL_PATTERN, _matches_email

    spaces = [chr(c) for c in range(0x110000) if re.fullmatch(r"\s", chr(c))]
    lookalikes = ["\u200b", "\ufeff", "\u180e", "\u00ad"]  # not whitespace to Python
    values = ["a@b.c", "a@b", "@b.c", "a@.c", "a@b.", "a@@b.c", "ä@ü.ö", "x.y@z.co.uk", ""]
    for char in spaces + lookalikes:
        values += [f"a{char}b@c.d", f"ab@c{char}x.d", f"ab@c.d{char}e"]
    rng = np.random.default_rng(5)
    alphabet = list("ab@. .\t") + spaces[:6]
    values += ["".join(rng.choice(alphabet, int(rng.integers(1, 9)))) for _ in range(3000)]
    expected = np.array([re.match(EMAIL_PATTERN, v) is not None for v in values])
    assert (_matches_email(pd.Series(values, dtype=object)) == expected).all()
