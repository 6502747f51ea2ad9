"""prob_beat_control_arms: k treatment arms against one control in one vectorized pass.

The batched sums must give the arm-by-arm numbers bit for bit (published
metrics must not move) and stay within 1e-7 of an mpmath reference on a grid
of near-certain cases: all-success and all-failure arms, zero events, 10^6 units.
"""

from __future__ import annotations

import pytest
from mp_reference import mp_prob_best

from cpo.experiment import stats
from cpo.experiment.stats import prob_beat_control, prob_beat_control_arms

mpmath = pytest.importorskip("mpmath")


def mp_greater(a, b, c, d):
    """P(Beta(a, b) > Beta(c, d)), integer parameters, in the orientation with fewest terms."""
    options = [
        (a, lambda: mp_miller(a, b, c, d)),
        (c, lambda: 1 - mp_miller(c, d, a, b)),
        (d, lambda: mp_miller(d, c, b, a)),
        (b, lambda: 1 - mp_miller(b, a, d, c)),
    ]
    return min(options, key=lambda option: option[0])[1]()


def mp_miller(a, b, c, d):
    """P(Beta(a, b) > Beta(c, d)) for integer a: Evan Miller's sum at 40 digits."""
    with mpmath.workdps(40):
        norm = mpmath.beta(c, d)
        return mpmath.fsum(
            mpmath.beta(c + i, d + b) / ((b + i) * mpmath.beta(1 + i, b) * norm)
            for i in range(int(a))
        )


def mp_bayes(x_t, n_t, x_c, n_c, prior):
    """(P(beat), expected loss of treatment, of control) at high precision."""
    with mpmath.workdps(40):
        a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
        a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
        mean_t, mean_c = mpmath.mpf(a_t) / (a_t + b_t), mpmath.mpf(a_c) / (a_c + b_c)
        loss_t = mean_c * mp_greater(a_c + 1, b_c, a_t, b_t) - mean_t * mp_greater(
            a_c, b_c, a_t + 1, b_t
        )
        return mp_greater(a_t, b_t, a_c, b_c), loss_t, loss_t + mean_t - mean_c


# (control, treatments): near-certain wins and losses, all-success and
# all-failure arms at small and at 10^6 units, zero-event arms.
GRID = [
    ((0, 1_000_000), [(0, 1_000_000), (1_000_000, 1_000_000), (5, 1_000_000), (0, 10)]),
    ((1_000_000, 1_000_000), [(999_999, 1_000_000), (0, 1_000_000), (10, 10)]),
    ((33, 120), [(9, 9), (0, 9), (120, 120), (33, 120)]),
    ((4924, 5000), [(800, 800), (4900, 5000), (5000, 5000), (0, 800)]),
    ((0, 3), [(0, 200), (3, 3), (200, 200)]),
    ((12, 1_000_000), [(0, 1_000_000), (40, 1_000_000), (7, 1_000_000)]),
]


@pytest.mark.parametrize("prior", [(1, 1), (3, 5)])
@pytest.mark.parametrize(("control", "treatments"), GRID)
def test_every_arm_within_1e_7_of_the_mpmath_reference(control, treatments, prior):
    results = prob_beat_control_arms(treatments, *control, prior=prior)
    assert len(results) == len(treatments)
    for (x_t, n_t), result in zip(treatments, results, strict=True):
        expected = mp_bayes(x_t, n_t, *control, prior)
        got = (
            result.prob_beat_control,
            result.expected_loss_treatment,
            result.expected_loss_control,
        )
        for value, reference in zip(got, expected, strict=True):
            assert value == pytest.approx(float(reference), abs=1e-7)


# Fractional priors take the slower general path: only on the smaller cases.
BIT_FOR_BIT = [(case, prior) for case in GRID for prior in ((1, 1), (2, 8))] + [
    (case, (0.5, 0.5)) for case in GRID if case[0][1] < 1_000_000
]


@pytest.mark.parametrize((("case", "prior")), BIT_FOR_BIT)
def test_batched_numbers_are_the_arm_by_arm_numbers_bit_for_bit(case, prior):
    control, treatments = case
    batched = prob_beat_control_arms(treatments, *control, prior=prior)
    for (x_t, n_t), result in zip(treatments, batched, strict=True):
        a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
        a_c, b_c = prior[0] + control[0], prior[1] + control[1] - control[0]
        one_by_one = [
            stats._prob_greater(a_t, b_t, a_c, b_c),
            stats._prob_greater(a_c + 1, b_c, a_t, b_t),
            stats._prob_greater(a_c, b_c, a_t + 1, b_t),
        ]
        jobs = [(a_t, b_t, a_c, b_c), (a_c + 1, b_c, a_t, b_t), (a_c, b_c, a_t + 1, b_t)]
        assert stats._prob_greater_many(jobs) == one_by_one
        assert result.prob_beat_control == one_by_one[0]


def test_all_arms_share_one_vectorized_evaluation(monkeypatch):
    calls = []
    original = stats._integer_sums
    monkeypatch.setattr(
        stats, "_integer_sums", lambda batch: calls.append(len(batch)) or original(batch)
    )
    prob_beat_control_arms([(30, 400), (41, 400), (25, 380), (0, 390)], 33, 410)
    assert calls == [12]  # three probabilities for each of four arms, one call


def test_invalid_and_empty_arms_get_reasons_in_place():
    results = prob_beat_control_arms([(3, 10), (0, 0), (5, 4)], 2, 10)
    assert results[0] == prob_beat_control(3, 10, 2, 10)
    assert results[1].prob_beat_control is None and results[1].reason.startswith("empty")
    assert results[2].prob_beat_control is None and results[2].reason.startswith("invalid")
    assert prob_beat_control_arms([], 2, 10) == []


def mp_prob_best_20(params):
    """P(arm i has the highest rate) = int f_i prod_{j != i} F_j, by mpmath quadrature."""
    return mp_prob_best(params, digits=20, spreads=(-12, -6, -3, 0, 3, 6, 12))


@pytest.mark.parametrize(
    "clicks",
    [
        {"control": (12, 100), "treatment_1": (18, 100), "treatment_2": (9, 80)},
        {"control": (0, 60), "treatment_1": (60, 60), "treatment_2": (30, 60)},
        {"control": (30, 500), "treatment_1": (45, 500)},
        {
            "control": (3, 20),
            "treatment_1": (4, 25),
            "treatment_2": (3, 22),
            "treatment_3": (0, 30),
        },
    ],
)
def test_prob_best_is_within_1e_6_of_the_mpmath_integral(clicks):
    from cpo.experiment.analysis_settings import AnalysisSettings
    from cpo.experiment.comparisons import prob_best

    counts = {
        arm: {"sent": n, "opened": n, "clicked": x, "converted": 0, "clicked_without_open": 0}
        for arm, (x, n) in clicks.items()
    }
    got = prob_best(counts, "click_rate", AnalysisSettings())
    expected = mp_prob_best_20([(1 + x, 1 + n - x) for x, n in clicks.values()])
    for arm, reference in zip(clicks, expected, strict=True):
        assert got[arm] == pytest.approx(float(reference), abs=1e-6)
