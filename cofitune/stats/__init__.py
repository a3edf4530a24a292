"""The statistics layer every comparison goes through: bootstrap CIs (single, paired, stratified by suite,
hierarchical over seeds then items, clustered), a verdict, the minimum detectable effect, what would settle an
undecided comparison, Holm's correction for a family of comparisons, and McNemar's exact test of item flips.

Conventions (one place for each):

- A *paired* comparison resamples the same items for both sides (and the same seed indices when both
  sides ran the same seeds), so item difficulty cancels.
- Data are ``{stratum: array}`` mappings; a stratum is one test set (the speciality items, one lm-eval
  suite, the drift probe). An array is ``(items,)`` for one seed or ``(seeds, items)`` for several. One
  bootstrap draw resamples seeds first, then items within each stratum (a two-stage, hierarchical
  bootstrap), so seed variance is part of the interval.
- *Clusters*: items that share a source (SQuAD questions on one passage) are not independent. A stratum given
  cluster keys (``clusters={stratum: one key per item}``) is resampled by whole clusters: each draw takes as
  many clusters as there are, with replacement, and every item of each (the same clusters for both sides of a
  paired comparison), so a draw's item count varies and the interval carries the design effect
  ``1 + (m - 1) ICC``. A stratum without keys, or whose clusters are all single items, is resampled by item.
- ``verdict``: ``better`` / ``worse`` when the 95% CI of the difference excludes 0 (and, in a family, the
  Holm-adjusted p-value is below alpha), oriented by ``higher_is_better``; ``undecided`` when the CI
  touches 0.
- Power: two-sided alpha = 0.05, power = 0.8. The MDE is ``(z_{1-alpha/2} + z_power) * SE``; SE is the
  bootstrap standard error of the difference (for a plain paired mean, ``sd(a - b) / sqrt(n)``). Items
  needed scale SE by ``1 / sqrt(n)`` (with clusters, by clusters; items are reported, assuming new items come
  in clusters of the same mean size). In a Holm family (:func:`correct_family`) a comparison is rejected at
  its own step-down threshold, so its MDE, items and seeds needed are recomputed there: rank k (0-based, by
  ascending raw p, ties in input order) of m is at ``alpha / (m - k)``; ``Comparison.level`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

import numpy as np

UNI_DEFAULT = {"spec": 0.5, "vers": 0.5}
ALPHA = 0.05
POWER = 0.8
N_BOOT = 1000
SEED = 1234
VERDICTS = ("better", "worse", "undecided")
CORRECTION = "holm"


def uni_score(spec: float, vers: float, weights: dict[str, float] | None = None) -> float:
    """Uni = w_spec * Spec + w_vers * Vers (config key ``uni``; default (Spec + Vers) / 2)."""
    w = UNI_DEFAULT if weights is None else weights
    return w["spec"] * spec + w["vers"] * vers


def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


def power_factor(alpha: float = ALPHA, power: float = POWER) -> float:
    """``z_{1-alpha/2} + z_power`` (2.8016 for the defaults)."""
    return _z(1 - alpha / 2) + _z(power)


def bootstrap_ci(values, n_boot: int = N_BOOT, seed: int = SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` (resampling items with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_bootstrap_ci(a, b, n_boot: int = N_BOOT, seed: int = SEED, level: float = 0.95) -> tuple[float, float]:
    """CI of ``mean(a) - mean(b)`` over the same items (paired resampling)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs equal-length item lists, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_boot=n_boot, seed=seed, level=level)


# --------------------------------------------------------------------------- power


def mde_paired(sd_diff: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Closed-form minimum detectable effect of a paired mean difference (normal approximation)."""
    return power_factor(alpha, power) * sd_diff / math.sqrt(n)


def n_needed_paired(delta: float, sd_diff: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Items a paired test needs to detect ``delta`` at this spread; None when ``delta`` is 0."""
    if delta == 0:
        return None
    return max(2, math.ceil((power_factor(alpha, power) * sd_diff / abs(delta)) ** 2))


def items_needed(delta: float, se: float, n: int, *, seed_var: float = 0.0, seeds: int = 1,
                 alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Items per test set that would detect ``delta`` given the current SE at ``n`` items.

    ``n`` counts items even where a stratum was resampled by clusters: the item part of the variance then
    shrinks with the number of clusters, and the answer assumes new items come in clusters of the current
    mean size, so clusters grow in proportion to items and the same ratio holds (report items; divide by the
    mean cluster size for passages).

    With ``seed_var`` (the seed component of the difference's variance, per seed) the seed part of the
    variance does not shrink with items: if it alone exceeds what ``delta`` allows, no item count settles
    it (None). ``delta == 0`` (or a non-finite one) is never settled (None).
    """
    if delta == 0 or not (math.isfinite(delta) and math.isfinite(se)):
        return None
    allowed = (abs(delta) / power_factor(alpha, power)) ** 2  # the variance the estimate may have
    seed_part = seed_var / seeds
    item_part = max(se ** 2 - seed_part, 0.0)
    if seed_part >= allowed:
        return None
    if item_part == 0:
        return n
    return max(2, math.ceil(n * item_part / (allowed - seed_part)))


def seeds_needed(delta: float, se: float, seeds: int, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Seeds (at the current items) that would detect ``delta``: the whole variance scales with 1/seeds."""
    if delta == 0 or not (math.isfinite(delta) and math.isfinite(se)):
        return None
    return max(1, math.ceil(seeds * (power_factor(alpha, power) * se / abs(delta)) ** 2))


# --------------------------------------------------------------------------- bootstrap engine


Data = Mapping[str, np.ndarray]
Clusters = Mapping[str, Sequence]
#: how one clustered stratum is drawn: item indices sorted by cluster, each cluster's start there, its size
ClusterPlan = tuple[np.ndarray, np.ndarray, np.ndarray]


def _as_2d(data: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in data.items():
        x = np.asarray(v, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"stratum {k!r}: expected (items,) or (seeds, items), got shape {x.shape}")
        out[k] = x
    return out


def _seed_counts(data: dict[str, np.ndarray]) -> int:
    counts = {x.shape[0] for x in data.values()}
    if len(counts) != 1:
        raise ValueError(f"strata have different seed counts: {sorted(counts)}")
    return counts.pop()


def _cluster_plans(data: dict[str, np.ndarray], clusters: Clusters | None) -> dict[str, ClusterPlan]:
    """What :func:`_draw_items` needs for each stratum resampled by clusters (a key per item, any hashable).

    A stratum whose clusters are all single items gets no plan: resampling its clusters is resampling its
    items, so it takes the item path (the same draws, bit for bit).
    """
    plans = {}
    for k, keys in (clusters or {}).items():
        if k not in data:
            raise ValueError(f"clusters given for stratum {k!r}, which the data lack (strata: {sorted(data)})")
        n = data[k].shape[1]
        if len(keys) != n:
            raise ValueError(f"stratum {k!r}: {len(keys)} cluster keys for {n} items (one key per item)")
        codes: dict = {}
        index = np.array([codes.setdefault(key, len(codes)) for key in keys], dtype=int)
        if len(codes) == n:
            continue
        sizes = np.bincount(index)
        plans[k] = (np.argsort(index, kind="stable"), np.cumsum(sizes) - sizes, sizes)
    return plans


def _draw_clusters(rng: np.random.Generator, plan: ClusterPlan) -> np.ndarray:
    """Item indices of one draw of whole clusters: as many clusters as there are, with replacement, each
    drawn cluster's items together (so the count varies with the clusters drawn)."""
    order, starts, sizes = plan
    drawn = rng.integers(0, sizes.size, size=sizes.size)
    counts = sizes[drawn]
    at = np.cumsum(counts) - counts  # where each drawn cluster begins in the draw
    return order[np.arange(counts.sum()) + np.repeat(starts[drawn] - at, counts)]


def _draw_items(rng: np.random.Generator, data: dict[str, np.ndarray],
                plans: Mapping[str, ClusterPlan]) -> dict[str, np.ndarray]:
    """One draw's item indices per stratum, in the data's order: whole clusters where planned, else items
    with replacement (exactly the draws made before clusters existed)."""
    return {k: _draw_clusters(rng, plans[k]) if k in plans else rng.integers(0, x.shape[1], size=x.shape[1])
            for k, x in data.items()}


def point(data: Mapping[str, Sequence], stat: Callable[[dict[str, np.ndarray]], float]) -> float:
    """``stat`` on the per-item means over seeds."""
    return float(stat({k: x.mean(axis=0) for k, x in _as_2d(data).items()}))


def _check_pair(a2: dict[str, np.ndarray], b2: dict[str, np.ndarray] | None) -> None:
    """A paired comparison's sides must hold the same test sets, each with the same items."""
    if b2 is None:
        return
    if set(a2) != set(b2):
        raise ValueError(f"paired comparison needs the same test sets, got {sorted(a2)} and {sorted(b2)}")
    for k in a2:
        if a2[k].shape[1] != b2[k].shape[1]:
            raise ValueError(f"{k}: runs scored different item counts ({a2[k].shape[1]} vs {b2[k].shape[1]})")


def bootstrap_delta(a: Mapping[str, Sequence], b: Mapping[str, Sequence] | None,
                    stat: Callable[[dict[str, np.ndarray]], float], *, paired_seeds: bool = False,
                    n_boot: int = N_BOOT, seed: int = SEED, clusters: Clusters | None = None) -> np.ndarray:
    """Bootstrap distribution of ``stat(a) - stat(b)`` (or of ``stat(a)`` when ``b`` is None).

    ``stat`` maps ``{stratum: per-item values (mean over the drawn seeds)}`` to a number. Each draw
    resamples the seeds of each side (one index set for both when ``paired_seeds``), then the items of
    each stratum with one index set for both sides. ``clusters`` (stratum -> one cluster key per item) makes
    a stratum's draw whole clusters instead, the same ones for both sides: ``stat`` then sees a varying
    number of items there. Without it the draws are those this function always made.
    """
    a2 = _as_2d(a)
    b2 = _as_2d(b) if b is not None else None
    _check_pair(a2, b2)
    plans = _cluster_plans(a2, clusters)
    sa = _seed_counts(a2)
    sb = _seed_counts(b2) if b2 is not None else 0
    if paired_seeds and sa != sb:
        raise ValueError(f"paired seeds need equal seed counts, got {sa} and {sb}")
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for r in range(n_boot):
        ia = rng.integers(0, sa, size=sa)
        ib = ia if paired_seeds else (rng.integers(0, sb, size=sb) if b2 is not None else None)
        items = _draw_items(rng, a2, plans)
        va = stat({k: x[ia].mean(axis=0)[items[k]] for k, x in a2.items()})
        out[r] = va if b2 is None else va - stat({k: x[ib].mean(axis=0)[items[k]] for k, x in b2.items()})
    return out


def hierarchical_mean_ci(matrix, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float]:
    """95% CI of the grand mean of a (seeds, items) matrix, resampling seeds then items."""
    boots = bootstrap_delta({"x": matrix}, None, lambda d: d["x"].mean(), n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(lo), float(hi)


def variance_components(matrix) -> dict[str, float]:
    """Seed and item components of a (seeds, items) score matrix whose seeds all scored the same items
    (a crossed design, as every row of this pipeline is: moments of the two-way random-effects model).

    ``seed``: the variance of a single seed's mean that comes from the seed alone (training randomness);
    ``item``: the per-item variance around a seed's mean (so ``item / n`` is the item-sampling variance of
    one seed's mean). The seeds' means differ by the seed effect plus only the seed x item interaction, since
    the items are shared, so the interaction (the two-way residual), not the whole item variance, is what is
    taken out of their spread.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"variance components need at least 2 seeds and 2 items, got shape {x.shape}")
    s, n = x.shape
    seed_means = x.mean(axis=1)
    resid = x - seed_means[:, None] - x.mean(axis=0)[None, :] + x.mean()
    interaction = float((resid ** 2).sum() / ((s - 1) * (n - 1)))
    within = float(((x - seed_means[:, None]) ** 2).sum() / (s * (n - 1)))
    between = float(seed_means.var(ddof=1))
    return {"seed": max(between - interaction / n, 0.0), "item": within, "seeds": s, "items": n}


def seed_variance(data: Mapping[str, Sequence], stat: Callable[[dict[str, np.ndarray]], float],
                  n_boot: int = 200, seed: int = SEED, clusters: Clusters | None = None) -> dict[str, float]:
    """The seed and item components of the variance of one seed's ``stat`` (any measure, moments), for seeds
    that all scored the same items (a crossed design, as every row of this pipeline is).

    ``item``: the item-sampling variance of one seed's value (items bootstrapped); ``seed``: the variance of
    the per-seed values beyond what the seed x item interaction explains (floored at 0). Because the items
    are shared, the part of the item noise common to all seeds does not separate their values: the bootstrap
    draws one item index set for all seeds and measures how much the seeds' deviations from their mean move.
    More items shrink only ``item``; more seeds shrink ``seed``. ``clusters``: as for :func:`bootstrap_delta`
    (items drawn as whole clusters, so ``item`` carries the design effect).
    """
    d = _as_2d(data)
    s = _seed_counts(d)
    if s < 2:
        raise ValueError(f"seed variance needs at least 2 seeds, got {s}")
    plans = _cluster_plans(d, clusters)
    values = [stat({k: x[i] for k, x in d.items()}) for i in range(s)]
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, s))
    for r in range(n_boot):
        items = _draw_items(rng, d, plans)
        boots[r] = [stat({k: x[i][items[k]] for k, x in d.items()}) for i in range(s)]
    item = float(boots.var(axis=0, ddof=1).mean())
    deviations = boots - boots.mean(axis=1, keepdims=True)
    interaction = float(deviations.var(axis=0, ddof=1).mean()) * s / (s - 1)
    return {"seed": max(float(np.var(values, ddof=1)) - interaction, 0.0), "item": item, "seeds": s}


# --------------------------------------------------------------------------- verdicts


def verdict(lo: float, hi: float, higher_is_better: bool = True) -> str:
    """``better`` / ``worse`` when the CI excludes 0, oriented by ``higher_is_better``; else ``undecided``."""
    if lo > 0:
        return "better" if higher_is_better else "worse"
    if hi < 0:
        return "worse" if higher_is_better else "better"
    return "undecided"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class Comparison:
    """One paired comparison, everything a table cell or a gate needs."""

    delta: float
    lo: float
    hi: float
    se: float
    p: float
    verdict: str
    mde: float
    items: int
    seeds: int
    items_needed: int | None  # at the current seeds; None: no item count settles it
    seeds_needed: int | None  # at the current items
    higher_is_better: bool = True
    p_adjusted: float | None = None
    correction: str | None = None
    seed_var: float = 0.0  # the seed part of the difference's variance, per seed (what items_needed was given)
    level: float = ALPHA  # the two-sided level mde / items_needed / seeds_needed are at (Holm's, in a family)

    def as_dict(self) -> dict:
        return asdict(self)


def compare(a: Mapping[str, Sequence], b: Mapping[str, Sequence] | None,
            stat: Callable[[dict[str, np.ndarray]], float], *, higher_is_better: bool = True,
            paired_seeds: bool = False, n_boot: int = N_BOOT, seed: int = SEED,
            seed_var: float = 0.0, clusters: Clusters | None = None) -> Comparison:
    """Paired comparison ``stat(a) - stat(b)`` (``b`` None: ``stat(a)`` against 0).

    ``seed_var``: the difference's variance per seed that comes from training seeds, when it was
    measured (a study of several seeds); it tells whether more items can settle the comparison.
    ``clusters``: stratum -> one cluster key per item, for strata resampled by whole clusters
    (:func:`bootstrap_delta`). The power numbers are at alpha (``level``); :func:`correct_family` moves
    them to each comparison's Holm level.
    """
    a2 = _as_2d(a)
    delta = point(a2, stat) - (point(b, stat) if b is not None else 0.0)
    boots = bootstrap_delta(a2, b, stat, paired_seeds=paired_seeds, n_boot=n_boot, seed=seed, clusters=clusters)
    lo, hi = (float(q) for q in np.quantile(boots, [0.025, 0.975]))
    se = float(boots.std(ddof=1))
    p = 1.0 if se == 0 else 2 * (1 - NormalDist().cdf(abs(delta) / se))
    if se == 0 and delta != 0:
        p = 0.0
    n = min(x.shape[1] for x in a2.values())
    seeds = _seed_counts(a2)
    return Comparison(delta=delta, lo=lo, hi=hi, se=se, p=p, verdict=verdict(lo, hi, higher_is_better),
                      mde=power_factor() * se, items=n, seeds=seeds,
                      items_needed=items_needed(delta, se, n, seed_var=seed_var, seeds=seeds),
                      seeds_needed=seeds_needed(delta, se, seeds), higher_is_better=higher_is_better,
                      seed_var=seed_var, level=ALPHA)


def holm_levels(pvalues: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """Each p-value's Holm step-down threshold, in input order: rank k (0-based, by ascending p, ties in input
    order) of m is tested at ``alpha / (m - k)``."""
    order = np.argsort(np.asarray(pvalues, dtype=float), kind="stable")
    m = len(order)
    levels = [alpha] * m
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - rank)
    return levels


def at_level(c: Comparison, level: float) -> Comparison:
    """``c`` with its power numbers (MDE, items needed, seeds needed) at two-sided ``level``: what it would
    take to reject at the level it is actually tested at. Unchanged where it already is at that level."""
    if level == c.level:
        return c
    return replace(c, level=level, mde=power_factor(level) * c.se,
                   items_needed=items_needed(c.delta, c.se, c.items, seed_var=c.seed_var, seeds=c.seeds,
                                             alpha=level),
                   seeds_needed=seeds_needed(c.delta, c.se, c.seeds, alpha=level))


def correct_family(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Holm-adjust a family: a comparison stays decided only if its CI excludes 0 and its adjusted p < alpha.

    Each comparison's power numbers move to its own Holm level (:func:`holm_levels`): in a family the MDE is
    what could be detected at the threshold that comparison faces, not at alpha. A family of one is as it was.
    """
    pvalues = [c.p for c in comparisons]
    out = []
    for c, p_adj, level in zip(comparisons, holm(pvalues), holm_levels(pvalues, alpha)):
        v = c.verdict if p_adj < alpha else "undecided"
        out.append(replace(at_level(c, level), p_adjusted=p_adj, correction=CORRECTION, verdict=v))
    return out


# --------------------------------------------------------------------------- flips (McNemar)


def _binary(values, name: str) -> np.ndarray:
    """``values`` as a 1-D boolean vector; ValueError unless every value is 0 or 1."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"flips: {name} must be one 0/1 vector of items, got shape {x.shape}")
    if not np.isin(x, (0.0, 1.0)).all():
        bad = sorted({float(v) for v in x[~np.isin(x, (0.0, 1.0))]}, key=str)[:5]
        raise ValueError(f"flips: {name} must hold 0/1 item scores only, found {bad}")
    return x == 1.0


def mcnemar_exact(lost: int, gained: int) -> float:
    """McNemar's exact two-sided p: ``min(1, 2 P[X <= min(lost, gained)])``, X ~ Binomial(lost + gained, 1/2)
    (each discordant item is a fair coin when the two runs do not differ); 1 without discordant items.

    Exact: the binomial coefficients (``math.comb``'s values, each from the last: C(d, i+1) = C(d, i) (d - i) /
    (i + 1), since calling ``math.comb`` for each costs seconds at thousands of flips) are summed as integers and
    divided by 2^d once, so nothing is lost to rounding on the way.
    """
    d, k = lost + gained, min(lost, gained)
    if d == 0:
        return 1.0
    term = tail = 1  # C(d, 0)
    for i in range(k):
        term = term * (d - i) // (i + 1)
        tail += term
    return min(1.0, 2 * tail / 2 ** d)


def flips(a, b) -> dict:
    """The items two runs disagree on, for equal-length 0/1 item vectors ``a`` (the row) and ``b`` (the
    reference): ``lost`` (b right, a wrong), ``gained`` (b wrong, a right), ``n`` items, and McNemar's exact
    ``p`` (:func:`mcnemar_exact`). Two rows with the same accuracy can still differ on many items; this says
    whether the flips lean one way more than chance would."""
    x, y = _binary(a, "a"), _binary(b, "b")
    if x.size != y.size:
        raise ValueError(f"flips need equal-length item vectors, got {x.size} and {y.size} items")
    lost, gained = int(np.sum(~x & y)), int(np.sum(x & ~y))
    return {"lost": lost, "gained": gained, "n": int(x.size), "p": mcnemar_exact(lost, gained)}
