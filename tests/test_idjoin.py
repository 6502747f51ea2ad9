"""cpo.idjoin: the hash-lookup join gives the rows a pandas merge gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpo.idjoin import has_repeats, row_positions, take_rows


def test_positions_agree_with_a_dict_of_first_occurrences() -> None:
    rng = np.random.default_rng(7)
    known = pd.Series([f"C{int(v):06d}" for v in rng.integers(0, 5_000, size=4_000)])
    ids = pd.Series([f"C{int(v):06d}" for v in rng.integers(0, 6_000, size=3_000)])
    first: dict[str, int] = {}
    for index, value in enumerate(known):
        first.setdefault(value, index)
    expected = [first.get(value, -1) for value in ids]
    assert row_positions(ids, known).tolist() == expected


def test_numbers_and_text_are_compared_as_text_and_empty_inputs_work() -> None:
    assert row_positions(pd.Series([3, 1, 9]), pd.Series(["1", "2", "3"])).tolist() == [2, 0, -1]
    assert row_positions(pd.Series([], dtype=str), pd.Series(["a"])).tolist() == []
    assert row_positions(pd.Series(["a", "b"]), pd.Series([], dtype=str)).tolist() == [-1, -1]


def test_take_rows_equals_an_inner_merge_for_unique_keys() -> None:
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "tier": ["x", "y", "z", "w"]})
    engagement = pd.DataFrame({"customer_id": ["d", "q", "a", "c"], "opened": [1, 0, 0, 1]})
    position = row_positions(engagement["customer_id"], customers["customer_id"])
    found = position >= 0
    joined = pd.concat(
        [
            engagement.loc[found].reset_index(drop=True),
            take_rows(customers[["tier"]], position[found]),
        ],
        axis=1,
    )
    expected = engagement.merge(customers, on="customer_id", how="inner")
    pd.testing.assert_frame_equal(joined, expected)


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["C-1"],
        ["C-1", "C-2", "C-3"],
        ["C-1", "C-2", "C-1"],
        ["", None, "x"],
        ["", "", "x"],
        [None, "a", None],
        [1, 2, 3],
        [1, 2, 1],
        ["a-very-long-customer-identifier-0001", "a-very-long-customer-identifier-0002"],
    ],
)
def test_has_repeats_equals_duplicated(ids: list[object]) -> None:
    for dtype in (object, "str") if all(isinstance(i, str) or i is None for i in ids) else (None,):
        series = pd.Series(ids, dtype=dtype)
        assert has_repeats(series) is bool(series.duplicated().any()), (ids, dtype)


def test_has_repeats_on_a_million_distinct_and_one_repeated_id() -> None:
    ids = pd.Series([f"C{n:07d}" for n in range(1_000_000)], dtype="str")
    assert has_repeats(ids) is False
    assert has_repeats(pd.concat([ids, ids.iloc[[123_456]]], ignore_index=True)) is True


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["C-1"],
        ["C-1", "C-2", "C-3"],
        ["C-1", "C-2", "C-1"],
        ["C-1", None, "C-3"],
        ["", "C-2", ""],
    ],
)
def test_ids_in_the_order_of_known_get_the_lookups_positions(ids: list[str | None]) -> None:
    from cpo.experiment.aggregate import locate_ids
    from cpo.idjoin import text_array

    known = pd.Series(ids, dtype=object)
    lookup = locate_ids(text_array(known), text_array(known))
    positions = row_positions(known.copy(), known)
    assert positions.dtype == np.int64
    assert positions.tolist() == lookup.tolist()
    # the first occurrence, whatever the shortcut: a repeat maps to its first row
    first = {value: index for index, value in reversed(list(enumerate(ids))) if value is not None}
    assert [positions[i] for i, v in enumerate(ids) if v is not None] == [
        first[v] for v in ids if v is not None
    ]


def test_a_million_ids_in_the_same_order_map_to_themselves() -> None:
    ids = pd.Series([f"C{n:07d}" for n in range(1_000_000)], dtype="str")
    assert (row_positions(ids, ids.copy()) == np.arange(1_000_000)).all()
    shuffled = ids.sample(frac=1.0, random_state=3).reset_index(drop=True)
    positions = row_positions(shuffled, ids)
    assert (ids.to_numpy()[positions] == shuffled.to_numpy()).all()
