"""Exactly rounded sums that merge: the same float however the values are grouped.

A float sum depends on the order of the additions; NumPy adds one array
pairwise, an engine that sums per partition adds the partial sums in
another order, and the last bits differ. :class:`ExactSums` keeps each sum
exactly, as the integer ``Σ value × 2**1074`` (every finite float64 is an
integer multiple of ``2**-1074``), so partial sums merge by integer addition
and :meth:`ExactSums.values` rounds the total once, correctly (CPython's
``int / int`` is correctly rounded): the result equals :func:`math.fsum` of
all the values, whatever the grouping.

The vectorized reduction splits each value into its sign and biased exponent
(a bin) and two halves of its significand (the value with the low 26
significand bits cleared, and the rest); every half in a bin is a multiple of
one power of two and below ``2**27`` of it, so ``np.bincount``'s float sums of
the halves per bin are exact for up to ``2**26`` values per call. Python
integers then add the few non-empty bins. Integer-valued rows whose sum
cannot exceed ``2**53`` (0/1 outcomes, indicators) skip this: any order of
NumPy's sum is exact there.

Non-finite values give the sum of the non-finite values (NaN, or ±inf), as
NumPy's sum would; an empty sum is 0.0 and a sum of negative zeros is -0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``Σ value × 2**SCALE_BITS`` is an integer for every finite float64.
SCALE_BITS = 1074
_SCALE = 1 << SCALE_BITS
#: Bins per row: the 12 high bits of a float64 (sign and biased exponent).
_BINS = 4096
_EXPONENT_BITS = np.uint64(52)
_LOW_BITS = 26
_HIGH_HALF = np.uint64(((1 << 64) - 1) ^ ((1 << _LOW_BITS) - 1))
#: Values per row whose bin sums are added as floats: they stay below 2**53 units.
_CHUNK = 1 << 26
#: Values per bincount call (all rows together): the temporaries fit in the CPU cache.
_BLOCK = 1 << 15
#: Biased exponents from here on are summed value by value (a bin's float sum
#: of halves could overflow); also the non-finite values' exponent (2047).
_HUGE = 1990
_NON_FINITE = 2047
_NEGATIVE_ZERO = np.uint64(1 << 63)
#: Rows whose integer values reach this (times the count) are not summed by NumPy.
_EXACT_INTEGERS = float(1 << 53)


@dataclass(frozen=True)
class ExactSums:
    """Exact sums of the rows of a matrix (sums over its last axis); ``+`` merges.

    Attributes:
        count: Values summed per row.
        scaled: Per row, the sum of the finite values times ``2**1074`` (exact).
        special: Per row, the sum of the non-finite values (0.0 when none).
        negative_zero: Per row, whether every value is -0.0 (True when none).
    """

    count: int
    scaled: tuple[int, ...]
    special: tuple[float, ...]
    negative_zero: tuple[bool, ...]

    def __add__(self, other: ExactSums) -> ExactSums:
        """The sums of both sets of values (the same rows, other values)."""
        if len(self.scaled) != len(other.scaled):
            raise ValueError(
                f"cannot merge sums of {len(self.scaled)} and {len(other.scaled)} rows"
            )
        return ExactSums(
            self.count + other.count,
            tuple(a + b for a, b in zip(self.scaled, other.scaled, strict=True)),
            tuple(a + b for a, b in zip(self.special, other.special, strict=True)),
            tuple(a and b for a, b in zip(self.negative_zero, other.negative_zero, strict=True)),
        )

    def values(self) -> np.ndarray:
        """The correctly rounded sum of each row, as float64."""
        return np.array([self._rounded(row) for row in range(len(self.scaled))], dtype=float)

    def value(self) -> float:
        """The correctly rounded sum of the only row."""
        if len(self.scaled) != 1:
            raise ValueError(f"value() of {len(self.scaled)} rows; use values()")
        return self._rounded(0)

    def _rounded(self, row: int) -> float:
        """One row's sum, rounded once."""
        special, scaled = self.special[row], self.scaled[row]
        if special != 0.0:  # also NaN
            return special
        if scaled == 0:
            return -0.0 if self.count and self.negative_zero[row] else 0.0
        try:
            return scaled / _SCALE
        except OverflowError:
            return float("inf") if scaled > 0 else float("-inf")


def exact_sums(values: np.ndarray) -> ExactSums:
    """The exact sums over the last axis of a float array: one row (1-D) or k rows (k × n).

    The rows are reduced together, one bincount per half and block of columns.
    """
    rows = np.asarray(values, dtype=float)
    rows = rows[None, :] if rows.ndim == 1 else rows
    if rows.ndim != 2:
        raise ValueError(f"exact_sums takes a 1-D or 2-D array, not {rows.ndim}-D")
    count = rows.shape[1]
    scaled = [0] * len(rows)
    special = [0.0] * len(rows)
    integer = [_integer_sum(row) for row in rows]
    binned = [i for i, total in enumerate(integer) if total is None]
    for i, total in enumerate(integer):
        if total is not None:
            scaled[i] = int(total) << SCALE_BITS
    if binned:
        for i, (total, non_finite) in zip(binned, _binned_sums(rows, binned), strict=True):
            scaled[i], special[i] = total, non_finite
    zeros = tuple(
        scaled[i] == 0 and special[i] == 0.0 and _all_negative_zero(rows[i])
        for i in range(len(rows))
    )
    return ExactSums(count, tuple(scaled), tuple(special), zeros)


def exact_sum(values: np.ndarray) -> ExactSums:
    """The exact sum of a 1-D array (one row)."""
    return exact_sums(np.ravel(np.asarray(values, dtype=float)))


def fsum(values: np.ndarray) -> float:
    """The correctly rounded sum of an array's values (:func:`math.fsum`, vectorized)."""
    return exact_sum(values).value()


def _integer_sum(row: np.ndarray) -> float | None:
    """NumPy's sum of an integer-valued row when every order of summing it is exact, else None."""
    if not len(row):
        return 0.0
    head = row[:64]
    if not np.array_equal(np.trunc(head), head):
        return None
    if not np.array_equal(np.trunc(row), row):
        return None
    largest = float(np.abs(row).max())
    if not largest * len(row) < _EXACT_INTEGERS:  # also false for inf
        return None
    return float(row.sum())


def _all_negative_zero(row: np.ndarray) -> bool:
    """Whether every value of a row (whose sum is 0) is -0.0; True for no values."""
    return bool(np.all(row.view(np.uint64) == _NEGATIVE_ZERO))


def _binned_sums(rows: np.ndarray, which: list[int]) -> list[tuple[int, float]]:
    """Per row of ``which``: the exact scaled sum of its finite values and the non-finite sum."""
    totals = [0] * len(which)
    huge: set[int] = set()
    for start in range(0, rows.shape[1], _CHUNK):
        halves = _bin_halves(rows, which, start, min(start + _CHUNK, rows.shape[1]))
        used = np.flatnonzero((halves[0] != 0) | (halves[1] != 0))
        row_of, exponent = used % len(which), used // len(which) % (_BINS // 2)
        huge.update(row_of[exponent >= _HUGE].tolist())
        kept = exponent < _HUGE
        for row, high, low, shift in _bin_integers(
            halves, used[kept], row_of[kept], exponent[kept]
        ):
            totals[row] += ((high << _LOW_BITS) + low) << shift
    specials = [0.0] * len(which)
    for row in huge:
        extra, specials[row] = _huge_sums(rows[which[row]])
        totals[row] += extra
    return list(zip(totals, specials, strict=True))


def _bin_integers(
    halves: np.ndarray, used: np.ndarray, row_of: np.ndarray, exponent: np.ndarray
) -> zip[tuple[int, int, int, int]]:
    """Per used bin: its row, both halves' sums as integers and the shift that scales them.

    A bin of biased exponent ``E`` holds multiples of ``2**(max(E, 1) - 1075)``
    (low halves) and of ``2**26`` times that (high halves), so both sums are
    integers below ``2**53`` in those units; ``2**1074`` times the bin's sum is
    ``(high << 26) + low`` shifted left by ``max(E, 1) - 1``.
    """
    unit = np.maximum(exponent, 1) - 1075
    high = np.ldexp(halves[0, used], -(unit + _LOW_BITS)).astype(np.int64)
    low = np.ldexp(halves[1, used], -unit).astype(np.int64)
    return zip(
        row_of.tolist(), high.tolist(), low.tolist(), (unit + SCALE_BITS).tolist(), strict=True
    )


def _bin_halves(rows: np.ndarray, which: list[int], start: int, stop: int) -> np.ndarray:
    """The float sums of both halves per bin (exact), shape (2, bins × rows).

    Entry ``bin × len(which) + row``, so the bins a block uses are close
    together and its bincounts are short. Taken in blocks of about
    ``_BLOCK`` values, whose temporaries stay in the CPU cache; the blocks'
    bin sums add exactly (a chunk's do).
    """
    size = len(which) * _BINS
    rows_of = np.arange(len(which), dtype=np.int64)[:, None]
    halves = np.zeros((2, size))
    step = max(1, _BLOCK // len(which))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the bin is not used
        for first in range(start, stop, step):
            block = rows[which, first : min(first + step, stop)]
            bits = block.view(np.uint64)
            index = (bits >> _EXPONENT_BITS).view(np.int64)
            index *= len(which)
            index += rows_of
            low_entry = int(index.min())
            index -= low_entry
            high = (bits & _HIGH_HALF).view(float)
            low = block - high
            sums = [np.bincount(index.ravel(), part.ravel()) for part in (high, low)]
            halves[:, low_entry : low_entry + len(sums[0])] += sums
    return halves


def _huge_sums(row: np.ndarray) -> tuple[int, float]:
    """A row's huge finite values summed one by one (scaled), and its non-finite sum."""
    finite = np.isfinite(row)
    total = sum(_scaled(float(v)) for v in row[(np.abs(row) >= _HUGE_VALUE) & finite])
    special = 0.0
    if not finite.all():
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in NumPy's sum
            special = float(row[~finite].sum())
    return total, special


#: The smallest magnitude whose biased exponent is ``_HUGE``.
_HUGE_VALUE = float(2.0 ** (_HUGE - 1023))


def _scaled(value: float) -> int:
    """A finite float times ``2**1074``, exactly (an integer)."""
    numerator, denominator = value.as_integer_ratio()
    return numerator << (SCALE_BITS + 1 - denominator.bit_length())
