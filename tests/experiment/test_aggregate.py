"""Reduction of per-recipient records to sufficient statistics (cpo.experiment.aggregate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cpo.errors import DataValidationError
from cpo.experiment import aggregate
from cpo.experiment.aggregate import (
    DEFAULT_SEGMENT,
    STAT_COLUMNS,
    SufficientStatistics,
    aggregate_file,
    aggregate_records,
    id_hashes,
)


def _random_records(n: int, seed: int = 3) -> pd.DataFrame:
    """Records with consistent flags (converted <= clicked <= opened), four arms, three segments."""
    rng = np.random.default_rng(seed)
    opened = rng.random(n) < 0.4
    clicked = opened & (rng.random(n) < 0.3)
    converted = clicked & (rng.random(n) < 0.5)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "experiment_arm": rng.choice(["control", "treatment_1", "treatment_2"], n),
            "segment": rng.choice(["At-Risk", "Standard", "New"], n),
            "opened": opened.astype(int),
            "clicked": clicked.astype(int),
            "converted": converted.astype(int),
            "engagement_source": "simulated",
        }
    )


def _loop_counts(frame: pd.DataFrame) -> dict[tuple[str, str], list[int]]:
    """The obvious per-record loop, as the reference for the vectorized reduction."""
    counts: dict[tuple[str, str], list[int]] = {}
    for row in frame.to_dict("records"):
        key = (row["experiment_arm"], row.get("segment", DEFAULT_SEGMENT))
        cell = counts.setdefault(key, [0, 0, 0, 0])
        cell[0] += 1
        cell[1] += int(row["opened"] or row["clicked"])
        cell[2] += int(row["clicked"])
        cell[3] += int(row["converted"])
    return counts


def _as_dict(statistics: SufficientStatistics) -> dict[tuple[str, str], list[int]]:
    table = statistics.table
    return {
        (r.experiment_arm, r.segment): [r.sent, r.opened, r.clicked, r.converted]
        for r in table.itertuples()
    }


def test_records_reduce_to_the_same_counts_as_a_loop():
    frame = _random_records(5000)
    statistics = aggregate_records(frame.to_dict("records"))
    assert _as_dict(statistics) == _loop_counts(frame)
    assert list(statistics.table.columns) == list(STAT_COLUMNS)
    assert statistics.records == 5000 and statistics.engagement_sources == ("simulated",)
    assert statistics.arms == ["control", "treatment_1", "treatment_2"]


def test_dataframe_and_dicts_give_identical_tables():
    frame = _random_records(800)
    from_frame = aggregate_records(frame)
    from_dicts = aggregate_records(frame.to_dict("records"))
    pd.testing.assert_frame_equal(from_frame.table, from_dicts.table)


def test_records_without_segment_are_one_segment_all():
    records = [
        {"experiment_arm": "control", "opened": 1, "clicked": 0, "converted": 0},
        {"experiment_arm": "treatment_1", "opened": 1, "clicked": 1, "converted": 1},
    ]
    statistics = aggregate_records(records)
    assert statistics.segments == [DEFAULT_SEGMENT]
    assert statistics.by_arm()["treatment_1"]["converted"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, 1), (False, 0), (1, 1), (0, 0), (1.0, 1), ("1", 1), ("true", 1), ("FALSE", 0),
     (np.int8(1), 1), (np.bool_(True), 1)],
)  # fmt: skip
def test_binary_values_in_many_spellings(value, expected):
    records = [{"experiment_arm": "control", "opened": value, "clicked": 0, "converted": 0}]
    assert aggregate_records(records).by_arm()["control"]["opened"] == expected


@pytest.mark.parametrize("bad", [2, -1, 0.5, "maybe", None, float("nan"), ""])
def test_non_binary_values_are_an_error_naming_column_and_row(bad):
    records = [
        {"experiment_arm": "control", "opened": 1, "clicked": 0, "converted": 0},
        {"experiment_arm": "control", "opened": 1, "clicked": bad, "converted": 0},
    ]
    with pytest.raises(DataValidationError) as error:
        aggregate_records(records, source="my.csv")
    message = str(error.value)
    assert "my.csv" in message and "'clicked'" in message and "row 2" in message


def test_click_without_open_counts_as_open_and_is_tallied():
    records = [
        {"experiment_arm": "control", "opened": 0, "clicked": 1, "converted": 0},
        {"experiment_arm": "control", "opened": 0, "clicked": 0, "converted": 0},
    ]
    counts = aggregate_records(records).by_arm()["control"]
    assert counts["opened"] == 1 and counts["clicked"] == 1
    assert counts["clicked_without_open"] == 1


def test_missing_columns_are_named():
    with pytest.raises(DataValidationError, match="missing column\\(s\\) clicked, converted"):
        aggregate_records([{"experiment_arm": "control", "opened": 1}])


def test_blank_arm_is_an_error():
    records = [{"experiment_arm": " ", "opened": 1, "clicked": 0, "converted": 0}]
    with pytest.raises(DataValidationError, match="'experiment_arm' is empty in 1 row"):
        aggregate_records(records)


def test_duplicate_customers_are_an_error_unless_allowed():
    records = [
        {
            "customer_id": "A",
            "experiment_arm": "control",
            "opened": 1,
            "clicked": 0,
            "converted": 0,
        },
        {
            "customer_id": "A",
            "experiment_arm": "control",
            "opened": 0,
            "clicked": 0,
            "converted": 0,
        },
    ]
    with pytest.raises(DataValidationError, match="1 customer_id value\\(s\\) occur more"):
        aggregate_records(records)
    assert aggregate_records(records, check_duplicates=False).by_arm()["control"]["sent"] == 2


def test_non_dict_record_is_an_error():
    with pytest.raises(DataValidationError, match="record 1 is a list"):
        aggregate_records([["control", 1, 0, 0]])


def _both_paths(records: list[dict]) -> tuple[SufficientStatistics, SufficientStatistics]:
    """The dicts through aggregate_records, and the same records as a DataFrame."""
    return aggregate_records(records), aggregate_records(pd.DataFrame.from_records(records))


def _mixed_spellings(n: int) -> list[dict]:
    """Well-formed records whose flags mix bool, int, float and NumPy spellings."""
    spellings = [(True, False), (1, 0), (1.0, 0.0), (np.int8(1), np.int8(0)),
                 (np.bool_(True), np.bool_(False))]  # fmt: skip
    records = _random_records(n).to_dict("records")
    for i, record in enumerate(records):
        one, zero = spellings[i % len(spellings)]
        for flag in ("opened", "clicked", "converted"):
            record[flag] = one if record[flag] else zero
    return records


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r,
        lambda r: [{k: v for k, v in x.items() if k != "segment"} for x in r],
        lambda r: [{k: v for k, v in x.items() if k != "engagement_source"} for x in r],
        lambda r: [
            {**x, "engagement_source": "imported" if i % 7 else "simulated"}
            for i, x in enumerate(r)
        ],
        lambda r: [
            {**x, "customer_id": None if i % 3 else x["customer_id"]} for i, x in enumerate(r)
        ],
        lambda r: [{k: v for k, v in x.items() if k != "customer_id"} for x in r],
    ],
    ids=["all-columns", "no-segment", "no-source", "two-sources", "some-ids-none", "no-ids"],
)
def test_dicts_and_the_same_dataframe_give_identical_statistics(edit):
    records = edit(_mixed_spellings(600))
    from_dicts, from_frame = _both_paths(records)
    pd.testing.assert_frame_equal(from_dicts.table, from_frame.table)
    assert from_dicts.engagement_sources == from_frame.engagement_sources
    assert from_dicts.records == from_frame.records == 600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"segment": None}, "column 'segment' is empty in 1 row"),
        ({"experiment_arm": ""}, "column 'experiment_arm' is empty in 1 row"),
        ({"opened": "1e0"}, "column 'opened' must be 0/1 or true/false"),
        ({"clicked": 2}, "column 'clicked' must be 0/1 or true/false"),
        ({"converted": float("nan")}, "column 'converted' must be 0/1 or true/false"),
    ],
)
def test_one_odd_record_among_many_gets_the_dataframe_paths_error(change, message):
    records = _mixed_spellings(2000)
    records[1234] = {**records[1234], **change}
    with pytest.raises(DataValidationError, match=message) as error:
        aggregate_records(records, source="big.csv")
    assert "big.csv" in str(error.value) and "1235" in str(error.value)


def test_a_segment_in_only_some_records_is_an_error_for_the_others():
    records = [{k: v for k, v in x.items() if k != "segment"} for x in _mixed_spellings(50)]
    records[20] = {**records[20], "segment": "Standard"}
    with pytest.raises(DataValidationError, match="column 'segment' is empty in 49 row"):
        aggregate_records(records)


def test_a_mapping_that_is_not_a_dict_is_still_refused():
    with pytest.raises(DataValidationError, match="record 1 is a Series"):
        aggregate_records([pd.Series({"experiment_arm": "control", "opened": 1, "clicked": 0,
                                      "converted": 0})])  # fmt: skip


def test_no_records_give_an_empty_table():
    statistics = aggregate_records([])
    assert statistics.table.empty and statistics.records == 0 and statistics.arms == []


# --------------------------------------------------------------------------
# Files, streamed in batches
# --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_streamed_in_small_batches_match_in_memory(tmp_path, suffix):
    frame = _random_records(2500)
    path = tmp_path / f"engagement{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, row_group_size=300)
    streamed = aggregate_file(path, batch_rows=700)
    pd.testing.assert_frame_equal(streamed.table, aggregate_records(frame).table)
    assert streamed.records == 2500 and streamed.engagement_sources == ("simulated",)


def test_a_parquet_dataset_folder_streams_its_part_files(tmp_path):
    frame = _random_records(2500)
    folder = tmp_path / "engagement.parquet"
    folder.mkdir()
    for part, start in enumerate(range(0, 2500, 1000)):  # three part files, as Spark writes
        frame.iloc[start : start + 1000].to_parquet(folder / f"part-{part:05d}.zstd.parquet")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")
    streamed = aggregate_file(folder, batch_rows=700)
    pd.testing.assert_frame_equal(streamed.table, aggregate_records(frame).table)
    assert streamed.records == 2500
    frame.loc[2400, "customer_id"] = frame.loc[3, "customer_id"]  # across part files
    frame.iloc[2000:].to_parquet(folder / "part-00002.zstd.parquet")
    with pytest.raises(DataValidationError, match="'C000003'"):
        aggregate_file(folder)


def test_parquet_booleans_and_dictionary_labels(tmp_path):
    table = pa.table(
        {
            "experiment_arm": pa.array(["control", "treatment_1", "control"]).dictionary_encode(),
            "opened": [True, True, False],
            "clicked": [False, True, False],
            "converted": [False, False, False],
        }
    )
    path = tmp_path / "bools.parquet"
    pq.write_table(table, path)
    counts = aggregate_file(path).by_arm()
    assert counts["control"] == {
        "sent": 2, "opened": 1, "clicked": 0, "converted": 0, "clicked_without_open": 0
    }  # fmt: skip


def test_duplicates_across_batches_are_found(tmp_path):
    frame = _random_records(1000)
    frame.loc[900, "customer_id"] = frame.loc[5, "customer_id"]
    path = tmp_path / "dups.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="'C000005'"):
        aggregate_file(path, batch_rows=100)
    assert aggregate_file(path, check_duplicates=False, batch_rows=100).records == 1000


@pytest.mark.parametrize(
    "ids",
    [
        pa.array(["C001", "C002", "C001", "C010"]),  # equal lengths: 64-bit word path
        pa.array(["a", "bb", "a", "", "ccc", "bb"]),  # mixed lengths: byte path
        pa.array(["x" * 37, "y" * 37, "x" * 37], pa.large_string()),
        pa.array(["é", "e", "é"]),  # UTF-8 bytes
    ],
)
def test_id_hashes_are_equal_exactly_for_equal_strings(ids):
    hashes = id_hashes(ids)
    values = ids.to_pylist()
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (hashes[i] == hashes[j]) == (a == b)
    # A slice of a larger array (non-zero offset) hashes the same.
    assert list(id_hashes(ids.slice(1))) == list(hashes[1:])


@pytest.mark.parametrize(
    "column",
    [pa.array([7, 8, 7, 9]), pa.array(["A", "B", "A", "C"]).dictionary_encode()],
)
def test_numeric_and_dictionary_ids_are_checked(tmp_path, column):
    table = pa.table({"customer_id": column, "experiment_arm": ["control"] * 4,
                      "opened": [0] * 4, "clicked": [0] * 4, "converted": [0] * 4})  # fmt: skip
    path = tmp_path / "ids.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataValidationError, match="1 customer_id value"):
        aggregate_file(path)


def test_hash_collisions_are_not_reported_as_duplicates(tmp_path, monkeypatch):
    # Force every id to the same hash: the strings must be compared before
    # anything is reported.
    monkeypatch.setattr(aggregate, "id_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    frame = _random_records(300)
    path = tmp_path / "unique.parquet"
    frame.to_parquet(path)
    assert aggregate_file(path, batch_rows=100).records == 300
    frame.loc[299, "customer_id"] = frame.loc[0, "customer_id"]
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="'C000000'"):
        aggregate_file(path, batch_rows=100)


def test_missing_ids_are_not_duplicates(tmp_path):
    frame = _random_records(10)
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame.loc[[2, 5], "customer_id"] = None
    path = tmp_path / "gaps.parquet"
    frame.to_parquet(path)
    assert aggregate_file(path).records == 10
    assert aggregate_records(frame).records == 10


def test_bad_value_in_a_later_batch_names_its_row(tmp_path):
    frame = _random_records(1000)
    frame["converted"] = frame["converted"].astype(object)
    frame.loc[876, "converted"] = "yes please"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="row 877"):
        aggregate_file(path, batch_rows=100)


def test_file_errors(tmp_path):
    with pytest.raises(DataValidationError, match="not found"):
        aggregate_file(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        aggregate_file(tmp_path / "x.json")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="cannot be read as parquet"):
        aggregate_file(tmp_path / "broken.parquet")
    (tmp_path / "cols.csv").write_text("customer_id,opened\nA,1\n")
    with pytest.raises(DataValidationError, match="missing column"):
        aggregate_file(tmp_path / "cols.csv")


# --------------------------------------------------------------------------
# Counts computed elsewhere
# --------------------------------------------------------------------------


def test_from_counts_accepts_arm_or_arm_segment_keys():
    statistics = SufficientStatistics.from_counts(
        {"control": {"sent": 10, "clicked": 2, "opened": 3}, ("treatment_1", "S"): {"sent": 5}}
    )
    assert statistics.by_arm()["control"]["clicked"] == 2
    assert statistics.segments == sorted([DEFAULT_SEGMENT, "S"])


@pytest.mark.parametrize(
    "counts",
    [{"sent": 5, "opened": 6}, {"sent": 5, "opened": 2, "clicked": 3}, {"sent": -1},
     {"sent": 2.5}, {"sent": True}],
)  # fmt: skip
def test_from_counts_rejects_impossible_counts(counts):
    with pytest.raises(DataValidationError):
        SufficientStatistics.from_counts({"control": counts})
