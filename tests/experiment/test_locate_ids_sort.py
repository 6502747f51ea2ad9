"""locate_ids sorts hash-and-position keys instead of argsorting: same answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cpo.experiment.aggregate import _stable_hash_order, locate_ids


@pytest.mark.parametrize("count", [0, 1, 2, 7, 1_000, 50_000])
@pytest.mark.parametrize("spread", [2**64 - 1, 2**40, 1_000])
def test_stable_hash_order_is_the_stable_argsort(count, spread):
    # A small spread forces many hashes to share their high bits (and repeats),
    # the case where runs are re-sorted by full hash.
    rng = np.random.default_rng(count + spread % 97)
    hashes = rng.integers(0, spread, count, dtype=np.uint64, endpoint=True)
    hashes *= np.uint64(0x9E3779B97F4A7C15)  # spread over the 64 bits (wrapping)
    assert np.array_equal(_stable_hash_order(hashes), np.argsort(hashes, kind="stable"))


@pytest.mark.parametrize("count", [1, 3, 20_000])
def test_locate_ids_is_arrows_index_in(count):
    rng = np.random.default_rng(count)
    known = pa.array([f"C{i:07d}" for i in rng.permutation(count)], type=pa.string())
    queried = [f"C{i:07d}" for i in rng.integers(0, count + count // 4 + 2, count * 2)]
    ids = pa.array(queried, type=pa.string())
    expected = pc.index_in(ids, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False)
    assert np.array_equal(locate_ids(ids, known), expected.astype(np.int64))


@pytest.mark.parametrize(
    "queried",
    [
        ["C1", "C22", "x", "C333", "C22"],  # ids of several lengths: matches compared by Arrow
        ["C01", None, "C02", "C99"],  # a null id matches nothing
    ],
)
def test_locate_ids_of_mixed_lengths_and_nulls_is_arrows_index_in(queried):
    known = pa.array(["C22", "C01", "C1", "C333", "C02"], type=pa.string())
    ids = pa.array(queried, type=pa.string())
    expected = pc.index_in(ids, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False)
    assert np.array_equal(locate_ids(ids, known), expected.astype(np.int64))


@pytest.mark.parametrize("width", [3, 12])  # one word, two words per id
def test_a_hash_match_of_different_ids_is_rejected(monkeypatch, width):
    from cpo.experiment import aggregate

    original = aggregate.id_hashes

    def colliding(every):
        hashes = original(every).copy()
        hashes[-1] = hashes[0]  # the last query id collides with the first known id
        return hashes

    monkeypatch.setattr(aggregate, "id_hashes", colliding)
    known = pa.array([str(i).zfill(width) for i in range(5)], type=pa.string())
    ids = pa.array([str(i).zfill(width) for i in (3, 0, 9)], type=pa.string())
    assert locate_ids(ids, known).tolist() == [3, 0, -1]
