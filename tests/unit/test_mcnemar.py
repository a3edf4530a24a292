"""McNemar's exact test on the items two runs disagree on (:func:`stats.flips`): of the discordant pairs, how
many the row lost (reference right, row wrong) and gained (reference wrong, row right); under no difference
each discordant pair is a fair coin, so p = min(1, 2 * P[X <= min(lost, gained)]), X ~ Binomial(lost + gained,
1/2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cofitune import stats


def test_a_hand_count():
    a = [1, 0, 1, 1, 0, 0, 1, 0]  # the row
    b = [1, 1, 0, 0, 0, 1, 1, 0]  # the reference
    # lost (b 1, a 0): items 1 and 5; gained (b 0, a 1): items 2 and 3; agreeing: 0, 4, 6, 7
    out = stats.flips(a, b)
    assert (out["lost"], out["gained"], out["n"]) == (2, 2, 8)
    assert out["p"] == 1.0  # 2 * P[X <= 2], X ~ Bin(4, 1/2) = 2 * 11/16 > 1 -> 1
    # booleans and floats 0.0/1.0 count the same
    assert stats.flips(np.array(a, dtype=bool), np.array(b, dtype=float)) == out


def vectors(lost: int, gained: int, agree: int = 5) -> tuple[list[int], list[int]]:
    """A row and a reference with exactly these flips (and some agreeing items, both right and both wrong)."""
    a = [0] * lost + [1] * gained + [1] * agree + [0] * agree
    b = [1] * lost + [0] * gained + [1] * agree + [0] * agree
    return a, b


@pytest.mark.parametrize("lost,gained,p", [
    (1, 2, 1.0),  # 2 * P[X <= 1], Bin(3): 2 * (1 + 3) / 8 = 1.0
    (0, 6, 0.03125),  # 2 * P[X = 0], Bin(6): 2 * 1 / 64 = 2/64
    (6, 0, 0.03125),  # two-sided: the same the other way
    # 2 * P[X <= 2], Bin(11): 2 * (C(11,0) + C(11,1) + C(11,2)) / 2^11 = 2 * (1 + 11 + 55) / 2048 = 134 / 2048
    (2, 9, 0.0654296875),
    (0, 0, 1.0),  # no discordant pair: nothing to test
    (5, 5, 1.0),
])
def test_golden_p_values(lost, gained, p):
    out = stats.flips(*vectors(lost, gained))
    assert (out["lost"], out["gained"], out["n"]) == (lost, gained, lost + gained + 10)
    assert out["p"] == pytest.approx(p, rel=1e-12)


def test_large_counts_stay_exact():
    assert 2 * sum(math.comb(11, i) for i in range(3)) / 2 ** 11 == 0.0654296875  # the golden (2, 9) literal
    # 2 * P[X = 0], Bin(300) = 2 / 2^300 (about 2e-90): integer sums divided once, no underflow on the way
    out = stats.flips(*vectors(0, 300))
    assert out["p"] == pytest.approx(2 / 2 ** 300, rel=1e-12)
    assert stats.flips(*vectors(900, 1000))["p"] == pytest.approx(
        min(1.0, 2 * sum(math.comb(1900, i) for i in range(901)) / 2 ** 1900), rel=1e-12)


@pytest.mark.parametrize("a,b,match", [
    ([0, 1, 2], [0, 1, 1], "0/1"),
    ([0, 1, 1], [0, 0.5, 1], "0/1"),
    ([0, 1, float("nan")], [0, 1, 1], "0/1"),
    ([0, 1], [0, 1, 1], "length"),
])
def test_bad_vectors_raise(a, b, match):
    with pytest.raises(ValueError, match=match):
        stats.flips(a, b)


def test_against_scipy_binomtest():
    scipy_stats = pytest.importorskip("scipy.stats")
    for lost in range(0, 16):
        for gained in range(0, 16):
            if lost + gained == 0:
                continue
            want = scipy_stats.binomtest(min(lost, gained), lost + gained, 0.5).pvalue
            assert stats.flips(*vectors(lost, gained))["p"] == pytest.approx(want, rel=1e-9), (lost, gained)
