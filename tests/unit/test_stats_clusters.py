"""The cluster bootstrap: items that share a cluster (SQuAD questions on one passage) are not independent, so a
clustered stratum is resampled by whole clusters (:func:`stats.bootstrap_delta`'s ``clusters``).

Design effect: for G clusters of m items each, item = cluster effect + noise, the variance of the grand mean is
``var / n * (1 + (m - 1) * ICC)`` with n = G * m items and ICC = var(cluster) / var (the intra-cluster
correlation); resampling items as if they were independent reports the naive ``var / n`` instead.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cofitune import stats

G, M = 40, 5  # 40 clusters (passages) of 5 items (questions)
N = G * M
CLUSTER_SD, NOISE_SD = 1.0, 1.0  # ICC = 1 / (1 + 1) = 0.5
ICC = CLUSTER_SD ** 2 / (CLUSTER_SD ** 2 + NOISE_SD ** 2)
VAR = CLUSTER_SD ** 2 + NOISE_SD ** 2
ANALYTIC_SE = math.sqrt(VAR / N * (1 + (M - 1) * ICC))  # sqrt(2 / 200 * 3) = 0.1732
NAIVE_SE = math.sqrt(VAR / N)  # 0.1
KEYS = [f"passage-{g:02d}" for g in range(G) for _ in range(M)]  # one passage id per item, as SQuAD has


def mean_x(d: dict[str, np.ndarray]) -> float:
    return float(d["x"].mean())


def clustered(rng: np.random.Generator) -> np.ndarray:
    """One data set: every item is its cluster's effect plus its own noise (ICC 0.5)."""
    return np.repeat(rng.normal(0, CLUSTER_SD, G), M) + rng.normal(0, NOISE_SD, N)


def test_the_cluster_bootstrap_se_follows_the_design_effect():
    """Averaged over 30 data sets (fixed seed), the cluster-bootstrap SE of the mean is the analytic one and the
    item-bootstrap SE is the naive one.

    Tolerance 10%: one data set's cluster SE is an SD estimated from 40 cluster means, relative SD about
    1 / sqrt(2 * 39) = 11%, so the mean of 30 has about 2% (plus under 1% Monte Carlo error at 500 draws); the
    bootstrap reads low by a few percent (its (G - 1) / G on the variance, Jensen's on the square root). Measured:
    0.95 (cluster) and 0.97 (item) of the analytic SEs at this seed, 0.94 to 0.99 at five others. A bootstrap that
    ignored the clusters (0.1 against 0.173, -42%) is far outside.
    """
    rng = np.random.default_rng(2024)
    cluster_se, item_se = [], []
    for k in range(30):
        x = clustered(rng)
        by_cluster = stats.bootstrap_delta({"x": x}, None, mean_x, clusters={"x": KEYS}, n_boot=500, seed=k)
        cluster_se.append(by_cluster.std(ddof=1))
        item_se.append(stats.bootstrap_delta({"x": x}, None, mean_x, n_boot=500, seed=k).std(ddof=1))
    assert np.mean(cluster_se) == pytest.approx(ANALYTIC_SE, rel=0.10)
    assert np.mean(item_se) == pytest.approx(NAIVE_SE, rel=0.10)
    # the design effect sqrt(1 + 4 * 0.5) = 1.73: clearly wider, on average and on every data set
    assert np.mean(cluster_se) / np.mean(item_se) > 1.5
    assert all(c > 1.15 * i for c, i in zip(cluster_se, item_se))


def test_a_draw_takes_whole_clusters_so_its_item_count_varies():
    """Unequal clusters: each draw's items are whole clusters (every item of a drawn cluster, together), the
    count varies between draws; an unclustered stratum next to it keeps its item count."""
    keys = [0] * 1 + [1] * 2 + [2] * 3 + [3] * 4  # clusters of 1, 2, 3, 4 items
    x = np.array([0.0] + [1.0] * 2 + [2.0] * 3 + [3.0] * 4)  # an item's value names its cluster
    seen: list[tuple[np.ndarray, int]] = []

    def record(d):
        seen.append((d["x"].copy(), d["y"].size))
        return 0.0

    stats.bootstrap_delta({"x": x, "y": np.arange(7.0)}, None, record, clusters={"x": keys}, n_boot=200)
    sizes = {v.size for v, _ in seen}
    assert len(sizes) > 3 and all(4 <= s <= 16 for s in sizes)  # 4 clusters drawn: 1 to 4 items each
    for v, y_size in seen:
        assert y_size == 7
        counts = np.bincount(v.astype(int), minlength=4)
        assert all(c % (g + 1) == 0 for g, c in enumerate(counts))  # whole clusters only
        assert sum(c // (g + 1) for g, c in enumerate(counts)) == 4  # as many clusters as there are


def test_a_paired_comparison_draws_the_same_clusters_for_both_sides():
    """a = b + 1 on every item: whatever clusters a draw takes, both sides take the same ones, so every draw's
    difference is exactly 1 (SE 0). With a cluster-level effect the paired SE follows the design effect."""
    rng = np.random.default_rng(11)
    b = clustered(rng)
    exact = stats.compare({"x": b + 1.0}, {"x": b}, mean_x, clusters={"x": KEYS})
    assert (exact.delta, exact.lo, exact.hi, exact.se) == (pytest.approx(1.0), pytest.approx(1.0),
                                                           pytest.approx(1.0), pytest.approx(0.0, abs=1e-12))
    # the difference a - b is clustered itself (ICC 0.5): shifted by 0.2
    a = b + 0.2 + clustered(rng)
    c = stats.compare({"x": a}, {"x": b}, mean_x, clusters={"x": KEYS}, n_boot=2000)
    plain = stats.compare({"x": a}, {"x": b}, mean_x, n_boot=2000)
    assert c.delta == plain.delta == pytest.approx(float(np.mean(a - b)))
    assert c.se > 1.3 * plain.se  # design effect 1.73; one data set: a wide margin
    # compare passes the clusters through to the bootstrap (same seed: the same draws)
    boots = stats.bootstrap_delta({"x": a}, {"x": b}, mean_x, clusters={"x": KEYS}, n_boot=2000)
    assert c.se == pytest.approx(float(boots.std(ddof=1)), rel=1e-12)


def test_singleton_clusters_are_item_resampling():
    """One item per cluster (keys of any kind and order): the same draws as resampling items, bit for bit."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, (2, 60)), rng.normal(0, 1, (2, 60))
    data_a, data_b = {"x": a, "y": a[:, :30]}, {"x": b, "y": b[:, :30]}

    def stat(d):
        return float(d["x"].mean() - 0.5 * d["y"].mean())

    plain = stats.bootstrap_delta(data_a, data_b, stat, n_boot=300)
    for keys in (list(range(60)), [f"q{i}" for i in reversed(range(60))]):
        same = stats.bootstrap_delta(data_a, data_b, stat, clusters={"x": keys, "y": keys[:30]}, n_boot=300)
        np.testing.assert_array_equal(same, plain)
    assert stats.compare(data_a, data_b, stat, clusters={"x": list(range(60))}) == stats.compare(data_a, data_b, stat)


def test_clusters_of_the_wrong_length_or_stratum_raise():
    data = {"spec": np.zeros(10), "s:mmlu": np.zeros(4)}
    with pytest.raises(ValueError, match="spec"):
        stats.bootstrap_delta(data, None, lambda d: 0.0, clusters={"spec": [0, 0, 1]})
    with pytest.raises(ValueError, match="s:mmlu"):
        stats.compare(data, data, lambda d: 0.0, clusters={"s:mmlu": [0] * 5})
    with pytest.raises(ValueError, match="nope"):
        stats.bootstrap_delta(data, None, lambda d: 0.0, clusters={"nope": [0] * 10})


def test_seed_variance_resamples_clusters_too():
    """The item component of one seed's mean carries the design effect when the clusters are given."""
    rng = np.random.default_rng(8)
    x = clustered(rng) + rng.normal(0, 0.3, (3, N))  # 3 seeds scoring the same clustered items
    item = stats.seed_variance({"x": x}, mean_x, n_boot=400)["item"]
    by_cluster = stats.seed_variance({"x": x}, mean_x, n_boot=400, clusters={"x": KEYS})["item"]
    assert by_cluster > 2 * item  # the design effect on the variance is about 3
