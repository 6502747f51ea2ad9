"""id_hashes against its definition, and locate_ids' matched pairs, on awkward inputs."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cpo.experiment import aggregate

MULTIPLIER = 0x100000001B3
MASK = (1 << 64) - 1


def reference_hash(text: str) -> int:
    """The documented hash in Python integers: length seed, 8-byte words, splitmix64."""
    data = text.encode("utf-8")
    value = (len(data) * 0x9E3779B97F4A7C15) & MASK
    for start in range(0, len(data), 8):
        word = int.from_bytes(data[start : start + 8].ljust(8, b"\0"), "little")
        value = (value * MULTIPLIER + word) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


@pytest.mark.parametrize("width", [0, 1, 7, 8, 9, 10, 16, 17, 23])
@pytest.mark.parametrize("large", [False, True])
def test_fixed_width_hashes_match_the_definition(width: int, large: bool) -> None:
    generator = random.Random(width)
    texts = ["".join(generator.choice("abcXYZ019") for _ in range(width)) for _ in range(300)]
    array = pa.array(texts, type=pa.large_string() if large else pa.string())
    for sliced in (array, array.slice(3, 101)):  # offsets not at 0: unaligned word views
        expected = [reference_hash(text) for text in sliced.to_pylist()]
        assert aggregate.id_hashes(sliced).tolist() == expected


def test_mixed_width_and_unicode_hashes_match_the_definition() -> None:
    generator = random.Random(4)
    alphabet = "aé€😀1"
    texts = ["".join(generator.choice(alphabet) for _ in range(generator.randint(0, 12)))]
    texts += ["".join(generator.choice(alphabet) for _ in range(n)) for n in range(30)]
    assert aggregate.id_hashes(pa.array(texts)).tolist() == [reference_hash(t) for t in texts]


@pytest.mark.parametrize("seed", range(5))
def test_locate_ids_equals_index_in(seed: int) -> None:
    generator = random.Random(seed)
    known = list({f"K{generator.randrange(10**6)}" for _ in range(2000)})
    ids = [generator.choice(known) if generator.random() < 0.7 else f"U{i}" for i in range(3000)]
    expected = pc.index_in(pa.array(ids), value_set=pa.array(known)).fill_null(-1)
    assert aggregate.locate_ids(pa.array(ids), pa.array(known)).tolist() == expected.to_pylist()


def test_sorted_pairs_packed_and_argsort_agree() -> None:
    generator = np.random.default_rng(2)
    rows = generator.permutation(1000).astype(np.int64)
    partners = generator.integers(0, 5000, 1000).astype(np.int64)
    packed = aggregate._sorted_pairs(rows.copy(), partners.copy(), 5000)
    wide = aggregate._sorted_pairs(rows.copy(), partners.copy(), 1 << 62)  # argsort branch
    order = np.argsort(rows)
    for result in (packed, wide):
        assert result[0].tolist() == rows[order].tolist()
        assert result[1].tolist() == partners[order].tolist()
