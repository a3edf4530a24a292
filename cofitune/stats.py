"""Bootstrap confidence intervals (percentile), single and paired."""

from __future__ import annotations

import numpy as np


UNI_DEFAULT = {"spec": 0.5, "vers": 0.5}


def uni_score(spec: float, vers: float, weights: dict[str, float] | None = None) -> float:
    """Uni = w_spec * Spec + w_vers * Vers (config key ``uni``; default (Spec + Vers) / 2)."""
    w = UNI_DEFAULT if weights is None else weights
    return w["spec"] * spec + w["vers"] * vers


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 1234, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` (resampling items with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_bootstrap_ci(a, b, n_boot: int = 1000, seed: int = 1234, level: float = 0.95) -> tuple[float, float]:
    """CI of ``mean(a) - mean(b)`` over the same items (paired resampling)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs equal-length item lists, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_boot=n_boot, seed=seed, level=level)
