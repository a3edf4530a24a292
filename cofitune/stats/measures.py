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
    "VersM": (True, "continuous versatility: mean over aspects of the gold choice's log-likelihood margin over the best "
                    "distractor, on the scale the suite's headline ranks (multiple-choice suites; > 0 exactly when right)"),
    "Drift": (False, "mean per-token KL(p_original || p_row) on the drift probe (nats; lower = less forgetting)"),
    "TaskDrift": (False, "the same KL on the speciality task's own training prompts (nats): how far the row moved on "
                         "the new task's data, which predicts forgetting (RL's Razor)"),
}


#: higher is better, for every measure a comparison can be made on (the table's MEASURES and the others)
HIGHER_IS_BETTER = {**{m: hib for m, (hib, _) in MEASURES.items()}, "Uni": True, "SpecNLL": False}


def record(metrics: dict | list[dict]) -> dict:
    """What :func:`compare_rows` compares: one ``metrics.json`` (or one per seed of a row): its strata, its seeds,
    the cluster key of each item where its items come in clusters, and each suite's chance level."""
    runs = metrics if isinstance(metrics, list) else [metrics]
    first = runs[0]["metrics"]
    return {"data": strata(runs), "seeds": [r.get("run", {}).get("seed") for r in runs],
            "clusters": clusters(first), "chance": {k: v.get("chance") for k, v in first["suites"].items()}}


def clusters(metrics: dict) -> dict[str, list]:
    """Stratum -> one cluster key per item, for the strata whose items come in clusters: the speciality items that
    share a passage or document (``spec_clusters``: Spec and its NLL), a suite's items that share a prompt (IFEval's
    instructions). The seeds of a row score the same items, so one run's keys are the row's."""
    out = {}
    if metrics.get("spec_clusters"):
        out["spec"] = out["nll"] = list(metrics["spec_clusters"])
    for name, suite in metrics["suites"].items():
        if suite.get("clusters"):
            out[f"s:{name}"] = list(suite["clusters"])
    return out


def strata(runs: list[dict]) -> dict[str, np.ndarray]:
    """A row's per-item data, ``(seeds, items)`` per test set: ``spec``, ``s:<suite>`` (headline item scores),
    ``m:<suite>`` (the gold choice's margin, multiple-choice suites), ``drift`` and ``tdrift`` (the task drift probe's),
    when every seed measured them."""
    mets = [r["metrics"] for r in runs]
    out = {"spec": np.array([m["spec_items"] for m in mets], dtype=float)}
    for name in mets[0]["suites"]:
        out[f"s:{name}"] = np.array([m["suites"][name]["items"] for m in mets], dtype=float)
        if all("margin" in m["suites"][name] for m in mets):
            out[f"m:{name}"] = np.array([m["suites"][name]["margin"] for m in mets], dtype=float)
    if all("spec_nll_items" in m for m in mets):
        out["nll"] = np.array([m["spec_nll_items"] for m in mets], dtype=float)
    if all(m.get("drift") for m in mets):
        out["drift"] = np.array([m["drift"]["items"] for m in mets], dtype=float)
    if all(m.get("task_drift") for m in mets):
        out["tdrift"] = np.array([m["task_drift"]["items"] for m in mets], dtype=float)
    return out


def _aspect_mean(d: dict[str, np.ndarray], aspects: dict[str, list[str]], prefix: str, scale: float = 100.0) -> float:
    per_aspect = [[scale * d[f"{prefix}{t}"].mean() for t in ts if f"{prefix}{t}" in d] for ts in aspects.values()]
    return float(np.mean([np.mean(v) for v in per_aspect if v]))


def measure_stat(measure: str, aspects: dict[str, list[str]], uni: dict | None = None):
    """``(stat, strata keys)`` of a measure (or ``Uni``) for :func:`cofitune.stats.compare`."""
    if measure == "Spec":
        return (lambda d: float(d["spec"].mean())), ("spec",)
    if measure == "Drift":
        return (lambda d: float(d["drift"].mean())), ("drift",)
    if measure == "TaskDrift":
        return (lambda d: float(d["tdrift"].mean())), ("tdrift",)
    if measure == "SpecNLL":
        return (lambda d: float(d["nll"].mean())), ("nll",)
    suites = [t for ts in aspects.values() for t in ts]
    if measure == "Vers":
        return (lambda d: _aspect_mean(d, aspects, "s:")), tuple(f"s:{t}" for t in suites)
    if measure == "VersM":
        return (lambda d: _aspect_mean(d, aspects, "m:", scale=1.0)), tuple(f"m:{t}" for t in suites)
    if measure == "Uni":
        return ((lambda d: uni_score(float(d["spec"].mean()), _aspect_mean(d, aspects, "s:"), uni)),
                ("spec", *(f"s:{t}" for t in suites)))
    raise ValueError(f"unknown measure {measure!r}; known: {sorted(HIGHER_IS_BETTER)}")


def value(metrics: dict, measure: str) -> float | None:
    """One ``metrics.json``'s point value of ``measure`` (None when it lacks the data, e.g. VersM without a
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
    """The strata a measure needs; None when the row lacks them (``VersM``/``Drift`` of older files)."""
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
    keyed = {k: v for k, v in (a.get("clusters") or {}).items() if k in da}  # the same items on both sides
    # the seed part of the difference's variance, per seed, where both sides measured it: it tells whether
    # more items can settle the comparison at all
    sides = [x for x in (da, db) if x is not None]
    seed_var = (sum(stats.seed_variance(x, stat)["seed"] for x in sides)
                if all(next(iter(x.values())).shape[0] > 1 for x in sides) else 0.0)
    return stats.compare(da, db, stat, higher_is_better=HIGHER_IS_BETTER.get(measure, True), paired_seeds=paired,
                         n_boot=n_boot, seed=seed, seed_var=seed_var, clusters=keyed or None)


# --------------------------------------------------------------------------- signal: chance and flips


def binary_suites(record: dict) -> list[str]:
    """The suites whose items are right/wrong (0/1 in every seed): the ones flips are counted on."""
    return [k[2:] for k, x in record["data"].items() if k.startswith("s:") and np.isin(x, (0.0, 1.0)).all()]


def majority(items: np.ndarray) -> np.ndarray:
    """One 0/1 vector from a ``(seeds, items)`` 0/1 matrix: an item is right when more than half of the seeds got
    it right (one seed: itself)."""
    return (np.asarray(items, dtype=float).mean(axis=0) > 0.5).astype(float)


def flips(a: dict, b: dict, suite: str) -> dict | None:
    """Items of ``suite`` that row ``a`` lost (``b`` right, ``a`` wrong) and gained against reference ``b``, with
    McNemar's exact p (:func:`cofitune.stats.flips`); a row of several seeds counts an item by its majority.
    None when either row lacks the suite or its items are not right/wrong."""
    key = f"s:{suite}"
    if key not in a["data"] or key not in b["data"] or suite not in binary_suites(a) or suite not in binary_suites(b):
        return None
    return stats.flips(majority(a["data"][key]), majority(b["data"][key]))


def over_chance(record: dict, suite: str, chance: float | None, clusters=None) -> stats.Comparison | None:
    """The suite's score minus its chance level (points), with its bootstrap CI and verdict: ``better`` is a suite
    the row is decidedly above chance on. None when the chance level is unknown (a stock lm-eval task)."""
    key = f"s:{suite}"
    if chance is None or key not in record["data"]:
        return None
    shifted = {key: np.asarray(record["data"][key], dtype=float) - chance / 100.0}
    return stats.compare(shifted, None, lambda d: 100.0 * float(d[key].mean()),
                         clusters=None if clusters is None else {key: clusters})


def sign_agreement(a: dict, b: dict, continuous: str) -> list[dict]:
    """Whether a continuous per-item score moves with accuracy: for each suite of two ``metrics.json`` (row ``a``,
    reference ``b``) on which accuracy's paired change is decided, the change in accuracy (points) and in the mean
    of ``continuous`` (a per-item field of the suite, e.g. ``margin``), and whether their signs agree.

    This is how the continuous score was chosen (docs/statistics.md): a score that is a real quantity of the model
    and moves with accuracy agrees wherever accuracy's change is decided."""
    out = []
    sa, sb = a["metrics"]["suites"], b["metrics"]["suites"]
    for suite in sorted(set(sa) & set(sb)):
        if continuous not in sa[suite] or continuous not in sb[suite]:
            continue
        key = "x"
        c = stats.compare({key: sa[suite]["items"]}, {key: sb[suite]["items"]}, lambda d: 100.0 * float(d[key].mean()))
        if c.verdict == "undecided":
            continue
        moved = float(np.mean(sa[suite][continuous]) - np.mean(sb[suite][continuous]))
        out.append({"suite": suite, "accuracy": c.delta, continuous: moved,
                    "agrees": bool(np.sign(moved) == np.sign(c.delta))})
    return out
