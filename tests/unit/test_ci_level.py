"""The confidence level of every CI the statistics layer reports is 95%, not merely "a CI".

Two independent checks, each of which a CI computed at another level (90%, say) fails:

- an exact case: the bootstrap distribution of the mean of 0/1 items is a binomial, so its 2.5% and 97.5%
  quantiles are known in closed form (worked below by hand and recomputed with ``math.comb``);
- the share of the bootstrap distribution (recomputed with :func:`stats.bootstrap_delta`, same seed) that lies
  inside ``[lo, hi]`` is 0.95, with 0.025 in each tail, to within the 1/n_boot granularity of the draws.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from cofitune import stats

# 9 items, 4 of them right. One bootstrap draw resamples 9 items with replacement, so the number of right ones
# is Binomial(9, 4/9) and the draw's mean is that count / 9. Its CDF, P(X <= j) = sum_{i<=j} C(9,i) p^i q^(9-i)
# with p = 4/9, q = 5/9:
#   j:       0       1       2       3       4       5       6       7       8
#   CDF: 0.0050  0.0413  0.1575  0.3743  0.6345  0.8426  0.9537  0.9917  0.9993
# The 2.5% quantile is the first j with CDF > 0.025: j = 1; the 97.5% quantile the first with CDF >= 0.975:
# j = 7. So the 95% CI of the mean is [1/9, 7/9]. At 90% it would be [2/9, 6/9] (CDF > 0.05 at j = 2,
# CDF >= 0.95 at j = 6). Every CDF value sits at least 0.016 from the quantile levels, 6 standard errors
# of an empirical CDF over 4000 draws, so the seeded bootstrap lands on these atoms exactly.
ITEMS = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
CI95 = (1 / 9, 7 / 9)
CI90 = (2 / 9, 6 / 9)
N_BOOT = 4000


def binomial_quantile(n: int, k: int, q: float) -> int:
    """The q-quantile of Binomial(n, k/n) (the first j whose CDF reaches q), from the definition."""
    p = k / n
    cdf = 0.0
    for j in range(n + 1):
        cdf += comb(n, j) * p ** j * (1 - p) ** (n - j)
        if cdf >= q:
            return j
    return n


def mean_x(d):
    return float(d["x"].mean())


def test_the_hand_worked_quantiles():
    assert (binomial_quantile(9, 4, 0.025), binomial_quantile(9, 4, 0.975)) == (1, 7)
    assert (binomial_quantile(9, 4, 0.05), binomial_quantile(9, 4, 0.95)) == (2, 6)


# every public way to get a CI of a mean: the item CI (speciality scores), a comparison against 0 (a row's own
# CI in the table), a paired comparison against an all-zero row, and the hierarchical CI over (seeds, items)
CIS = {
    "bootstrap_ci": lambda: stats.bootstrap_ci(ITEMS, n_boot=N_BOOT, seed=3),
    "compare_to_zero": lambda: (lambda c: (c.lo, c.hi))(stats.compare({"x": ITEMS}, None, mean_x, n_boot=N_BOOT,
                                                                     seed=3)),
    "compare_paired": lambda: (lambda c: (c.lo, c.hi))(stats.compare({"x": ITEMS}, {"x": [0.0] * 9}, mean_x,
                                                                     n_boot=N_BOOT, seed=3)),
    "hierarchical_mean_ci": lambda: stats.hierarchical_mean_ci(np.array([ITEMS]), n_boot=N_BOOT, seed=3),
}


@pytest.mark.parametrize("name", sorted(CIS))
def test_the_ci_of_a_binomial_mean_is_the_exact_95_percent_interval(name):
    lo, hi = CIS[name]()
    assert (lo, hi) == pytest.approx(CI95, abs=1e-12), f"{name} gave {(lo, hi)}; a 90% CI is {CI90}"


def test_bootstrap_ci_level_argument_is_honoured():
    # the same exact case through the explicit level: 90% is the narrower atom pair
    assert stats.bootstrap_ci(ITEMS, n_boot=N_BOOT, seed=3, level=0.90) == pytest.approx(CI90, abs=1e-12)
    assert stats.paired_bootstrap_ci(ITEMS, [0.0] * 9, n_boot=N_BOOT, seed=3) == pytest.approx(CI95, abs=1e-12)


def _shares(boots: np.ndarray, lo: float, hi: float) -> tuple[float, float, float]:
    """(below lo, inside [lo, hi], above hi) as shares of the draws."""
    return float((boots < lo).mean()), float(((boots >= lo) & (boots <= hi)).mean()), float((boots > hi).mean())


@pytest.mark.parametrize("n_boot", [1000, 400])
def test_a_comparison_ci_holds_95_percent_of_its_bootstrap_distribution(n_boot):
    rng = np.random.default_rng(11)
    b = rng.normal(0, 1, 50)
    a = {"x": b + rng.normal(0.2, 1, 50), "y": rng.normal(0, 1, 30)}
    ref = {"x": b, "y": rng.normal(0, 1, 30)}

    def stat(d):
        return float(d["x"].mean() + 0.5 * d["y"].mean())

    c = stats.compare(a, ref, stat, n_boot=n_boot, seed=5)
    boots = stats.bootstrap_delta(a, ref, stat, n_boot=n_boot, seed=5)  # the draws the CI was read from
    below, inside, above = _shares(boots, c.lo, c.hi)
    # distinct continuous draws: the percentile CI keeps 95% inside and 2.5% in each tail, give or take one
    # draw per bound (np.quantile interpolates between neighbouring order statistics)
    assert inside == pytest.approx(0.95, abs=2 / n_boot)
    assert below == pytest.approx(0.025, abs=1 / n_boot) and above == pytest.approx(0.025, abs=1 / n_boot)


def test_a_hierarchical_ci_holds_95_percent_of_its_bootstrap_distribution():
    rng = np.random.default_rng(12)
    matrix = rng.normal(0, 0.5, (4, 1)) + rng.normal(0, 1, (4, 60))  # (seeds, items)
    lo, hi = stats.hierarchical_mean_ci(matrix, n_boot=1000, seed=8)
    boots = stats.bootstrap_delta({"x": matrix}, None, mean_x, n_boot=1000, seed=8)
    below, inside, above = _shares(boots, lo, hi)
    assert inside == pytest.approx(0.95, abs=2 / 1000)
    assert below == pytest.approx(0.025, abs=1 / 1000) and above == pytest.approx(0.025, abs=1 / 1000)
