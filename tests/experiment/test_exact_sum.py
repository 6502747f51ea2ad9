"""Exactly rounded, mergeable sums: equal to math.fsum and to the exact rational sum rounded once.

References: :func:`math.fsum` (Shewchuk's algorithm, correctly rounded) and the
sum of :class:`fractions.Fraction` values (exact) converted to float (rounded
once, to nearest even).
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np
import pytest

from cpo.experiment import exact_sum
from cpo.experiment.exact_sum import ExactSums, exact_sums, fsum
from cpo.experiment.exact_sum import exact_sum as exact_sum_of

TINY = 5e-324  # the smallest subnormal
BIGGEST = sys.float_info.max


def _adversarial(seed: int) -> dict[str, np.ndarray]:
    """Arrays whose naive float sums are wrong or order dependent."""
    rng = np.random.default_rng(seed)
    wide = rng.normal(size=2000) * 10.0 ** rng.integers(-320, 300, 2000)
    cancelling = np.concatenate([wide, -wide[::-1], [1e-300, 3.0]])
    rng.shuffle(cancelling)
    return {
        "cancellation": np.array([1e100, 1.0, -1e100, 1e-100, 7.0, -7.0]),
        "wide exponents": wide,
        "cancelling pairs": cancelling,
        "subnormals": np.array([TINY, 3 * TINY, -TINY, 2.2250738585072014e-308, -1e-310] * 7),
        "negatives": -rng.random(5000),
        "rates": rng.beta(4, 7, 10_000),
        "huge": np.array([BIGGEST / 4, BIGGEST / 4, -BIGGEST / 8, 1.0, 2.0**970]),
        "integers near 2**53": np.array([2.0**52, 2.0**52, 1.0, 3.0, -1.0]),
        "ties": np.array([1.0, 2.0**-53, 2.0**-106, -(2.0**-106)]),
        "half ulp": np.array([1.0, 2.0**-53]),
        "mixed": np.concatenate([rng.integers(0, 2, 500).astype(float), rng.random(500)]),
    }


def _fraction_sum(values: np.ndarray) -> float:
    """The exact rational sum, rounded once."""
    return float(sum((Fraction(float(v)) for v in values), Fraction(0)))


@pytest.mark.parametrize("name", list(_adversarial(0)))
def test_equals_math_fsum_and_the_rounded_exact_sum(name: str) -> None:
    values = _adversarial(0)[name]
    expected = math.fsum(values.tolist())
    assert fsum(values) == expected
    assert fsum(values) == _fraction_sum(values)


@pytest.mark.parametrize("name", list(_adversarial(1)))
def test_any_split_gives_the_same_float(name: str) -> None:
    """Merging the parts' sums (in any grouping and order) gives the whole array's sum."""
    values = _adversarial(1)[name]
    whole = fsum(values)
    rng = np.random.default_rng(2)
    for _ in range(5):
        cuts = np.sort(rng.integers(0, len(values) + 1, rng.integers(1, 8)))
        parts = [exact_sum_of(part) for part in np.split(values, cuts)]
        order = rng.permutation(len(parts))
        merged = parts[order[0]]
        for i in order[1:]:
            merged = merged + parts[i]
        assert merged.value() == whole
        assert merged.count == len(values)


def test_rows_of_a_matrix_are_summed_separately() -> None:
    """Integer and non-integer rows together; each row is its own fsum."""
    rng = np.random.default_rng(3)
    matrix = np.stack(
        [
            rng.integers(0, 2, 3000).astype(float),
            rng.random(3000) * 1e-3,
            -rng.random(3000),
            rng.integers(-50, 50, 3000).astype(float),
        ]
    )
    sums = exact_sums(matrix).values()
    assert sums.tolist() == [math.fsum(row) for row in matrix.tolist()]


def test_a_column_of_a_c_ordered_matrix_is_summed_as_well() -> None:
    """Rows that are strided views (a transposed matrix) give the same sums."""
    matrix = np.random.default_rng(4).random((1000, 3))
    assert exact_sums(matrix.T).values().tolist() == [math.fsum(c) for c in matrix.T.tolist()]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0.0),
        ([-0.0], -0.0),
        ([-0.0, -0.0], -0.0),
        ([-0.0, 0.0], 0.0),
        ([1.5, -1.5], 0.0),
        ([-0.0, 1.0, -1.0], 0.0),
    ],
)
def test_signed_zeros(values: list[float], expected: float) -> None:
    """IEEE: -0.0 only when every value is -0.0; exact cancellation gives +0.0."""
    result = fsum(np.array(values))
    assert result == expected and math.copysign(1, result) == math.copysign(1, expected)


def test_negative_zero_survives_a_merge_only_with_negative_zeros() -> None:
    negative = exact_sum_of(np.array([-0.0]))
    assert math.copysign(1, (negative + exact_sum_of(np.array([]))).value()) == -1
    assert math.copysign(1, (negative + exact_sum_of(np.array([-0.0]))).value()) == -1
    cancelling = exact_sum_of(np.array([2.0])) + exact_sum_of(np.array([-2.0]))
    assert math.copysign(1, (negative + cancelling).value()) == 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, math.inf], math.inf),
        ([-math.inf, 1e308, 1.0], -math.inf),
        ([math.inf, -math.inf, 1.0], math.nan),
        ([math.nan, 2.0], math.nan),
        ([BIGGEST, BIGGEST], math.inf),
        ([-BIGGEST, -BIGGEST, 1.0], -math.inf),
    ],
)
def test_non_finite_values_and_overflow_give_numpys_result(
    values: list[float], expected: float
) -> None:
    result = fsum(np.array(values))
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.sum(np.array(values)) == pytest.approx(expected, nan_ok=True)
    assert result == pytest.approx(expected, nan_ok=True)


def test_non_finite_values_merge() -> None:
    finite = exact_sum_of(np.array([1.0, 2.0]))
    plus, minus = exact_sum_of(np.array([math.inf])), exact_sum_of(np.array([-math.inf]))
    assert (finite + plus).value() == math.inf
    assert math.isnan((plus + finite + minus).value())


def test_integer_rows_too_large_for_numpy_are_binned() -> None:
    """An integer row whose sum could pass 2**53 does not take NumPy's sum."""
    values = np.array([2.0**53, 1.0, 1.0, 2.0**60, -(2.0**60)])
    assert exact_sum._integer_sum(values) is None
    assert fsum(values) == math.fsum(values.tolist())
    assert exact_sum._integer_sum(np.array([0.0, 1.0, 1.0])) == 2.0


def test_rows_longer_than_a_chunk_or_block_are_summed_in_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunks (2**26 values in production) and blocks (2**15) add exactly."""
    monkeypatch.setattr(exact_sum, "_CHUNK", 23)
    monkeypatch.setattr(exact_sum, "_BLOCK", 5)
    values = _adversarial(5)["cancelling pairs"][:300]
    matrix = np.stack([values, values[::-1] * 3])
    expected = [math.fsum(row) for row in matrix.tolist()]
    assert exact_sums(matrix).values().tolist() == expected


def test_merging_sums_of_other_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="1 and 2 rows"):
        _ = exact_sum_of(np.ones(3)) + exact_sums(np.ones((2, 3)))


def test_sums_pickle() -> None:
    """Spark's partitions return them pickled."""
    import pickle

    sums = exact_sums(np.random.default_rng(6).random((2, 50)))
    assert pickle.loads(pickle.dumps(sums)) == sums
    assert isinstance(sums, ExactSums)
