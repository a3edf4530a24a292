"""The measures every comparison is made on, read from ``metrics.json`` files, and the paired comparison of
two rows through :mod:`cofitune.stats`. No files, no reporting: the table, the claims, the tree search's
decisions and the bench gates all use these."""

from __future__ import annotations

import numpy as np

from cofitune import stats
from cofitune.stats import uni_score

#: the measures every row is compared on: name -> (higher is better, what it is)
MEASURES = {
    "Spec": (True, "speciality: the task's primary metric (0-100)"),
    "Vers": (True, "versatility: mean over aspects of the headline suite scores (0-100)"),
    "VersP": (True, "continuous versatility: mean over aspects of 100 * p(gold choice), multiple-choice suites"),
    "Drift": (False, "mean per-token KL(p_original || p_row) on the drift probe (nats; lower = less forgetting)"),
}


#: higher is better, for every measure a comparison can be made on (the table's MEASURES and the others)
HIGHER_IS_BETTER = {**{m: hib for m, (hib, _) in MEASURES.items()}, "Uni": True, "SpecNLL": False}


def record(metrics: dict | list[dict]) -> dict:
    """What :func:`compare_rows` compares: one ``metrics.json`` (or one per seed of a row)."""
    runs = metrics if isinstance(metrics, list) else [metrics]
    return {"data": strata(runs), "seeds": [r.get("run", {}).get("seed") for r in runs]}


def strata(runs: list[dict]) -> dict[str, np.ndarray]:
    """A row's per-item data, ``(seeds, items)`` per test set: ``spec``, ``s:<suite>`` (headline item scores),
    ``p:<suite>`` (p_gold, multiple-choice suites) and ``drift`` (when every seed measured them)."""
    mets = [r["metrics"] for r in runs]
    out = {"spec": np.array([m["spec_items"] for m in mets], dtype=float)}
    for name in mets[0]["suites"]:
        out[f"s:{name}"] = np.array([m["suites"][name]["items"] for m in mets], dtype=float)
        if all("p_gold" in m["suites"][name] for m in mets):
            out[f"p:{name}"] = np.array([m["suites"][name]["p_gold"] for m in mets], dtype=float)
    if all("spec_nll_items" in m for m in mets):
        out["nll"] = np.array([m["spec_nll_items"] for m in mets], dtype=float)
    if all(m.get("drift") for m in mets):
        out["drift"] = np.array([m["drift"]["items"] for m in mets], dtype=float)
    return out


def _aspect_mean(d: dict[str, np.ndarray], aspects: dict[str, list[str]], prefix: str) -> float:
    per_aspect = [[100.0 * d[f"{prefix}{t}"].mean() for t in ts if f"{prefix}{t}" in d] for ts in aspects.values()]
    return float(np.mean([np.mean(v) for v in per_aspect if v]))


def measure_stat(measure: str, aspects: dict[str, list[str]], uni: dict | None = None):
    """``(stat, strata keys)`` of a measure (or ``Uni``) for :func:`cofitune.stats.compare`."""
    if measure == "Spec":
        return (lambda d: float(d["spec"].mean())), ("spec",)
    if measure == "Drift":
        return (lambda d: float(d["drift"].mean())), ("drift",)
    if measure == "SpecNLL":
        return (lambda d: float(d["nll"].mean())), ("nll",)
    suites = [t for ts in aspects.values() for t in ts]
    if measure == "Vers":
        return (lambda d: _aspect_mean(d, aspects, "s:")), tuple(f"s:{t}" for t in suites)
    if measure == "VersP":
        return (lambda d: _aspect_mean(d, aspects, "p:")), tuple(f"p:{t}" for t in suites)
    if measure == "Uni":
        return ((lambda d: uni_score(float(d["spec"].mean()), _aspect_mean(d, aspects, "s:"), uni)),
                ("spec", *(f"s:{t}" for t in suites)))
    raise ValueError(f"unknown measure {measure!r}; known: {sorted(HIGHER_IS_BETTER)}")


def value(metrics: dict, measure: str) -> float | None:
    """One ``metrics.json``'s point value of ``measure`` (None when it lacks the data, e.g. VersP without a
    multiple-choice suite)."""
    stat, keys = measure_stat(measure, metrics["metrics"]["aspects_tasks"])
    d = _select(strata([metrics]), keys)
    return None if d is None else stat(d)


def variance_split(rec: dict, measure: str, aspects: dict, uni: dict | None = None) -> dict | None:
    """Seed and item components of one seed's ``measure`` for a row with several seeds (else None)."""
    stat, keys = measure_stat(measure, aspects, uni)
    d = _select(rec["data"], keys)
    if d is None or len(rec["seeds"]) < 2:
        return None
    return stats.seed_variance({k: np.asarray(v) for k, v in d.items()}, stat)


def _select(data: dict, keys: tuple[str, ...]) -> dict | None:
    """The strata a measure needs; None when the row lacks them (``VersP``/``Drift`` of older files)."""
    present = {k: data[k] for k in keys if k in data}
    if not present or (len(keys) == 1 and keys[0] not in data):
        return None
    return present


def compare_rows(a: dict, b: dict | None, measure: str, aspects: dict, uni: dict | None = None,
                 stat=None, keys=None, n_boot: int = stats.N_BOOT, seed: int = stats.SEED) -> stats.Comparison | None:
    """Paired comparison of two rows' strata on one measure (None when either row lacks its data).

    Seeds are paired when both rows ran the same seed list; otherwise each side's seeds are resampled
    on their own (seeds, then items: the hierarchical bootstrap)."""
    if stat is None:
        stat, keys = measure_stat(measure, aspects, uni)
    da = _select(a["data"], keys)
    db = _select(b["data"], keys) if b is not None else None
    if da is None or (b is not None and (db is None or set(da) != set(db))):
        return None
    paired = b is not None and a["seeds"] == b["seeds"] and len(a["seeds"]) > 1
    # the seed part of the difference's variance, per seed, where both sides measured it: it tells whether
    # more items can settle the comparison at all
    sides = [x for x in (da, db) if x is not None]
    seed_var = (sum(stats.seed_variance(x, stat)["seed"] for x in sides)
                if all(next(iter(x.values())).shape[0] > 1 for x in sides) else 0.0)
    return stats.compare(da, db, stat, higher_is_better=HIGHER_IS_BETTER.get(measure, True), paired_seeds=paired,
                         n_boot=n_boot, seed=seed, seed_var=seed_var)
