"""Power at the Holm level: in a family of m comparisons, the one of rank k (0-based, ascending raw p) is
rejected at the step-down threshold alpha / (m - k), so its MDE, items needed and seeds needed are computed at
that level (:func:`stats.correct_family`), checked against the closed forms worked here with NormalDist.

    MDE           = (z_{1 - level / 2} + z_0.8) * se
    items needed  = max(2, ceil(n * se^2 / (|delta| / (z_{1 - level / 2} + z_0.8))^2))   (no seed variance)
    seeds needed  = max(1, ceil(seeds * ((z_{1 - level / 2} + z_0.8) * se / |delta|)^2))
"""

from __future__ import annotations

import math
from dataclasses import fields
from statistics import NormalDist

import numpy as np
import pytest

from cofitune import stats

Z = NormalDist().inv_cdf


def factor(level: float) -> float:
    return Z(1 - level / 2) + Z(0.8)


def hand_items(delta: float, se: float, n: int, level: float) -> int:
    return max(2, math.ceil(n * se ** 2 / (abs(delta) / factor(level)) ** 2))


def hand_seeds(delta: float, se: float, seeds: int, level: float) -> int:
    return max(1, math.ceil(seeds * (factor(level) * se / abs(delta)) ** 2))


def made(p: float, se: float, delta: float = 0.8, n: int = 100, seeds: int = 2) -> stats.Comparison:
    """A comparison as :func:`stats.compare` builds it: power fields at alpha 0.05."""
    return stats.Comparison(delta=delta, lo=delta - 2 * se, hi=delta + 2 * se, se=se, p=p, verdict="undecided",
                            mde=factor(0.05) * se, items=n, seeds=seeds, items_needed=hand_items(delta, se, n, 0.05),
                            seeds_needed=hand_seeds(delta, se, seeds, 0.05))


# a family of m = 4, in input order; sorted raw p: 0.001 (rank 0), 0.01 (1), 0.03 (2), 0.2 (3)
FAMILY = [(0.03, 0.5), (0.001, 0.3), (0.2, 0.9), (0.01, 0.4)]  # (raw p, se)
LEVELS = [0.05 / 2, 0.05 / 4, 0.05 / 1, 0.05 / 3]  # alpha / (m - rank), in input order


def test_each_comparison_is_powered_at_its_holm_level():
    family = stats.correct_family([made(p, se) for p, se in FAMILY])
    for c, (p, se), level in zip(family, FAMILY, LEVELS):
        assert c.level == pytest.approx(level, rel=1e-12)
        assert c.mde == pytest.approx(factor(level) * se, rel=1e-12)
        assert c.items_needed == hand_items(c.delta, se, c.items, level)
        assert c.seeds_needed == hand_seeds(c.delta, se, c.seeds, level)
    smallest, largest = family[1], family[2]
    # the smallest p: alpha / m = 0.0125 -> z_{1 - 0.00625} + z_0.8 = 2.4977 + 0.8416 = 3.3393
    assert smallest.mde == pytest.approx(3.3393 * 0.3, abs=1e-4)
    assert smallest.items_needed == hand_items(0.8, 0.3, 100, 0.05 / 4) > hand_items(0.8, 0.3, 100, 0.05)
    # the largest p: alpha / 1 = 0.05, as before the correction (z_0.975 + z_0.8 = 2.8016)
    assert largest.mde == pytest.approx(2.801585 * 0.9, abs=1e-6)
    assert (largest.mde, largest.items_needed, largest.seeds_needed) == (
        made(0.2, 0.9).mde, made(0.2, 0.9).items_needed, made(0.2, 0.9).seeds_needed)


def test_a_stricter_level_can_leave_items_unable_to_settle_it():
    """The seed variance a comparison was measured with is kept: at alpha 0.05 more items still settle it, at
    alpha / 4 the seed part alone exceeds what delta allows, so no item count does."""
    # allowed variance at 0.05: (0.8 / 2.8016)^2 = 0.0815; at 0.0125: (0.8 / 3.3393)^2 = 0.0574
    # seed part 0.14 / 2 = 0.07: between the two
    c = stats.Comparison(delta=0.8, lo=-0.2, hi=1.8, se=0.5, p=0.001, verdict="undecided", mde=factor(0.05) * 0.5,
                         items=100, seeds=2, items_needed=stats.items_needed(0.8, 0.5, 100, seed_var=0.14, seeds=2),
                         seeds_needed=stats.seeds_needed(0.8, 0.5, 2), seed_var=0.14)
    assert c.items_needed is not None
    family = stats.correct_family([c] + [made(0.5, 0.3)] * 3)
    assert family[0].level == pytest.approx(0.0125) and family[0].items_needed is None
    assert family[0].seed_var == 0.14


def test_compare_records_its_level_and_seed_variance():
    rng = np.random.default_rng(9)
    b = rng.normal(0, 1, (3, 80))
    c = stats.compare({"x": b + 0.2}, {"x": b}, lambda d: float(d["x"].mean()), seed_var=0.01)
    assert (c.level, c.seed_var) == (0.05, 0.01)


def test_a_family_of_one_is_the_uncorrected_comparison():
    rng = np.random.default_rng(10)
    b = rng.normal(0, 1, 60)
    c = stats.compare({"x": b + 0.3 + rng.normal(0, 1, 60)}, {"x": b}, lambda d: float(d["x"].mean()), seed_var=0.0)
    (alone,) = stats.correct_family([c])
    assert alone.level == stats.ALPHA and alone.p_adjusted == c.p and alone.correction == "holm"
    for f in fields(stats.Comparison):
        if f.name not in ("p_adjusted", "correction"):
            assert getattr(alone, f.name) == getattr(c, f.name), f.name
