"""The statistics layer: verdicts, power (closed form and simulation), Holm, hierarchical bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cofitune import stats


def mean_of(name):
    return lambda d: float(d[name].mean())


def test_power_factor_is_the_textbook_value():
    # z_0.975 + z_0.8 = 1.959964 + 0.841621
    assert stats.power_factor() == pytest.approx(2.801585, abs=1e-6)


def test_mde_and_n_needed_closed_form():
    assert stats.mde_paired(sd_diff=2.0, n=100) == pytest.approx(2.801585 * 2.0 / 10, rel=1e-6)
    # n = ((z_a + z_b) * sd / delta)^2 = (2.801585 * 2 / 0.5)^2 = 125.58 -> 126
    assert stats.n_needed_paired(delta=0.5, sd_diff=2.0) == 126
    assert stats.n_needed_paired(delta=-0.5, sd_diff=2.0) == 126
    assert stats.n_needed_paired(delta=0.0, sd_diff=2.0) is None


def test_mde_has_80_percent_power_in_simulation():
    rng = np.random.default_rng(0)
    n, sd = 200, 1.5
    effect = stats.mde_paired(sd, n)
    z = stats._z(0.975)
    hits = 0
    sims = 4000
    for _ in range(sims):
        d = rng.normal(effect, sd, size=n)
        hits += abs(d.mean()) / (d.std(ddof=1) / math.sqrt(n)) > z
    assert hits / sims == pytest.approx(0.80, abs=0.025)


def test_bootstrap_comparison_matches_the_closed_form():
    rng = np.random.default_rng(1)
    n = 400
    b = rng.normal(0, 1, size=n)
    a = b + rng.normal(0.1, 2.0, size=n)
    c = stats.compare({"x": a}, {"x": b}, mean_of("x"), n_boot=4000)
    sd = float(np.std(a - b, ddof=1))
    assert c.delta == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert c.se == pytest.approx(sd / math.sqrt(n), rel=0.06)
    assert c.mde == pytest.approx(stats.mde_paired(sd, n), rel=0.06)
    assert c.items_needed == pytest.approx(stats.n_needed_paired(c.delta, sd), rel=0.13)
    assert c.items == n and c.seeds == 1


@pytest.mark.parametrize("lo,hi,hib,expected", [
    (0.1, 2.0, True, "better"), (-2.0, -0.1, True, "worse"), (-0.1, 2.0, True, "undecided"),
    (0.0, 2.0, True, "undecided"), (-2.0, 0.0, True, "undecided"),  # a CI touching 0 decides nothing
    (0.1, 2.0, False, "worse"), (-2.0, -0.1, False, "better"), (0.0, 0.0, False, "undecided"),
])
def test_verdict_on_hand_cases(lo, hi, hib, expected):
    assert stats.verdict(lo, hi, higher_is_better=hib) == expected


def test_compare_verdicts_on_hand_tables():
    base = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1] * 10, dtype=float)
    better = base.copy()
    better[base == 0] = 1  # +0.5 on every second item: decided
    assert stats.compare({"x": better}, {"x": base}, mean_of("x")).verdict == "better"
    assert stats.compare({"x": base}, {"x": better}, mean_of("x")).verdict == "worse"
    assert stats.compare({"x": base}, {"x": better}, mean_of("x"), higher_is_better=False).verdict == "better"
    one_off = base.copy()
    one_off[0] = 1  # one item of 100 differs: every draw's difference is >= 0, the CI touches 0
    c = stats.compare({"x": one_off}, {"x": base}, mean_of("x"))
    assert c.lo == 0.0 and c.verdict == "undecided"
    assert c.items_needed is not None and c.items_needed > 100
    same = stats.compare({"x": base}, {"x": base}, mean_of("x"))
    assert (same.delta, same.lo, same.hi, same.verdict, same.items_needed) == (0.0, 0.0, 0.0, "undecided", None)


def test_holm_against_a_hand_computation():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5)
    assert stats.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_family_correction_can_only_undecide():
    rng = np.random.default_rng(2)
    b = rng.normal(0, 1, 60)
    weak = stats.compare({"x": b + 0.3 + rng.normal(0, 1, 60)}, {"x": b}, mean_of("x"))
    strong = stats.compare({"x": b + 3.0}, {"x": b}, mean_of("x"))
    fam = stats.correct_family([weak, strong] + [weak] * 8)
    assert fam[1].verdict == "better" and fam[1].correction == "holm"
    assert all(c.p_adjusted >= c.p for c in fam)
    assert all(c.verdict == "undecided" for c in fam if c.p_adjusted >= 0.05)


def test_variance_components_recover_a_known_seed_variance():
    rng = np.random.default_rng(3)
    seed_sd, item_sd, s, n = 0.5, 1.0, 4, 300
    est = []
    for _ in range(300):
        x = 2.0 + rng.normal(0, seed_sd, size=(s, 1)) + rng.normal(0, item_sd, size=(s, n))
        est.append(stats.variance_components(x))
    assert np.mean([e["seed"] for e in est]) == pytest.approx(seed_sd ** 2, abs=0.03)
    assert np.mean([e["item"] for e in est]) == pytest.approx(item_sd ** 2, abs=0.01)


def test_variance_components_on_shared_items_keep_the_seed_variance():
    """Every seed of a row scores the same items, and items differ a lot in difficulty: the item effect is
    common to all seeds and must not be taken out of the seeds' spread (it would hide the seed variance)."""
    rng = np.random.default_rng(7)
    seed_sd, item_sd, noise_sd, s, n = 0.3, 3.0, 0.5, 3, 200
    est, sv = [], []
    for k in range(300):
        x = rng.normal(0, seed_sd, (s, 1)) + rng.normal(0, item_sd, (1, n)) + rng.normal(0, noise_sd, (s, n))
        est.append(stats.variance_components(x)["seed"])
        if k < 60:
            sv.append(stats.seed_variance({"x": x}, mean_of("x"), n_boot=200, seed=k)["seed"])
    assert np.mean(est) == pytest.approx(seed_sd ** 2, abs=0.015)
    assert np.mean(sv) == pytest.approx(seed_sd ** 2, rel=0.35)
    # the item-sampling variance of one seed's mean still counts the item effect
    x = rng.normal(0, seed_sd, (s, 1)) + rng.normal(0, item_sd, (1, n)) + rng.normal(0, noise_sd, (s, n))
    item = stats.seed_variance({"x": x}, mean_of("x"), n_boot=400, seed=1)["item"]
    assert item == pytest.approx((item_sd ** 2 + noise_sd ** 2) / n, rel=0.3)


def test_hierarchical_bootstrap_carries_the_seed_variance():
    rng = np.random.default_rng(4)
    seed_sd, item_sd, s, n = 0.5, 1.0, 5, 200
    theory = 2 * 1.96 * math.sqrt(seed_sd ** 2 / s + item_sd ** 2 / (s * n))
    items_only = 2 * 1.96 * item_sd / math.sqrt(s * n)
    widths = []
    for k in range(60):
        x = rng.normal(0, seed_sd, size=(s, 1)) + rng.normal(0, item_sd, size=(s, n))
        lo, hi = stats.hierarchical_mean_ci(x, n_boot=400, seed=k)
        widths.append(hi - lo)
    # the percentile bootstrap over 5 seeds shrinks the seed part by (S-1)/S: allow for it
    assert np.mean(widths) == pytest.approx(theory * math.sqrt(0.8), rel=0.15)
    assert np.mean(widths) > 3 * items_only


def test_items_needed_knows_when_items_cannot_help():
    # the seed part alone (0.5 / 2 = 0.25) exceeds what delta 0.5 allows ((0.5 / 2.8)^2 = 0.032)
    assert stats.items_needed(0.5, se=0.6, n=100, seed_var=0.5, seeds=2) is None
    assert stats.items_needed(0.5, se=0.6, n=100) == math.ceil(100 * 0.36 / (0.5 / 2.801585) ** 2)


def test_paired_seeds_need_equal_counts():
    with pytest.raises(ValueError, match="equal seed counts"):
        stats.bootstrap_delta({"x": np.zeros((2, 5))}, {"x": np.zeros((3, 5))}, mean_of("x"), paired_seeds=True)
    with pytest.raises(ValueError, match="different item counts"):
        stats.bootstrap_delta({"x": np.zeros(5)}, {"x": np.zeros(6)}, mean_of("x"))


def test_seed_variance_of_any_statistic_recovers_the_components():
    rng = np.random.default_rng(5)
    seed_sd, item_sd, s, n = 0.5, 1.0, 3, 200
    est = [stats.seed_variance({"x": rng.normal(0, seed_sd, (s, 1)) + rng.normal(0, item_sd, (s, n))},
                               mean_of("x"), n_boot=200, seed=k) for k in range(150)]
    assert np.mean([e["seed"] for e in est]) == pytest.approx(seed_sd ** 2, abs=0.05)
    assert np.mean([e["item"] for e in est]) == pytest.approx(item_sd ** 2 / n, rel=0.1)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.seed_variance({"x": np.zeros(5)}, mean_of("x"))


def test_a_large_seed_variance_means_items_cannot_settle_it():
    rng = np.random.default_rng(6)
    b = rng.normal(0, 1.0, (3, 400))
    a = b + np.array([[1.0], [-1.0], [0.9]]) + rng.normal(0, 0.01, (3, 400))  # the seeds dominate
    sv = stats.seed_variance({"x": a}, mean_of("x"))["seed"]
    assert sv == pytest.approx(np.var([1.0, -1.0, 0.9], ddof=1), rel=0.05)
    c = stats.compare({"x": a}, {"x": b}, mean_of("x"), seed_var=sv)
    assert c.verdict == "undecided" and c.items_needed is None  # more items cannot settle a seed effect
    assert c.seeds_needed is not None and c.seeds_needed > 3
    from cofitune.reporting.verdicts import settle_text

    assert "items alone cannot settle it" in settle_text(c.as_dict())
