"""The tree search's decisions, one stage of the DAG: each level's (or the exhaustive grid's) choice from the
evaluated trials' ``metrics.json`` contents, with the paired-bootstrap margin of the choice over the runner-up.
The tree itself (nodes, children, selection by a criterion) is :mod:`cofitune.core.search`.
"""

from __future__ import annotations

from cofitune.core.region import Region
from cofitune.core.search import SEARCH_TRIAL_METHOD, all_nodes, children, criterion_key, eligible_nodes, select
from cofitune.stats import UNI_DEFAULT, uni_score


def trial_node(metrics: dict, where: str) -> Region:
    """The region a trial's ``metrics.json`` (read from ``where``) trained: its coarse_only params."""
    run = metrics["run"]
    ident = f"{run['method']}/{run['variant']}"
    if run["method"] != SEARCH_TRIAL_METHOD:
        raise ValueError(f"{where}: run {ident} is not a {SEARCH_TRIAL_METHOD} search trial")
    try:
        node = Region.from_params(run["params"])
    except ValueError as err:
        raise ValueError(f"{where}: run {ident} trained no grid node: {err}") from None
    if node not in all_nodes():
        raise ValueError(f"{where}: run {ident} trained {node or run['params']}, no grid node")
    return node


def node_scores(metrics: dict, uni: dict[str, float] | None = None) -> dict:
    """Spec / Vers / Uni of one evaluated trial (a ``metrics.json`` mapping); ``uni``: the weights."""
    m = metrics["metrics"]
    return {"spec": m["spec"], "vers": m["vers"], "uni": uni_score(m["spec"], m["vers"], uni)}


def decision_margin(best: dict, eligible: list[dict], trials: dict[Region, dict], key: str,
                    uni: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 1234) -> dict | None:
    """How far the chosen node leads the runner-up on the criterion's score, with a paired-bootstrap 95% CI.

    ``key`` is ``uni`` or ``spec``; the runner-up is the best other eligible node (the earlier one on
    ties). ``within_noise`` is true when the CI of the lead reaches 0: the decision is not resolved by
    the test sets' size. None when no other node was eligible.
    """
    from cofitune.stats.measures import compare_rows, record

    others = [s for s in eligible if s["node"] != best["node"]]
    if not others:
        return None
    runner = max(others, key=lambda s: s[key])  # max() keeps the first of equal scores
    a, b = trials[best["node"]], trials[runner["node"]]
    c = compare_rows(record(a), record(b), "Uni" if key == "uni" else "Spec", a["metrics"]["aspects_tasks"], uni,
                     n_boot=n_boot, seed=seed)
    return {"runner_up": runner["node"].id, "key": key, "delta": best[key] - runner[key], "ci95": [c.lo, c.hi],
            "within_noise": c.verdict == "undecided", "mde": c.mde, "items_needed": c.items_needed}


def _decide(nodes: list[Region], trials: dict[Region, dict], original: dict, criterion: str,
            min_vers_pct: float | None, uni: dict[str, float] | None) -> tuple[list[dict], dict | None, dict | None]:
    """Score ``nodes`` (in order), select one, and measure its margin: (visited, best, margin)."""
    scores = [{"node": n, **node_scores(trials[n], uni)} for n in nodes]
    vers_ref = node_scores(original)["vers"]
    best = select(scores, criterion, vers_ref=vers_ref, min_vers_pct=min_vers_pct)
    margin = None
    if best is not None:
        margin = decision_margin(best, eligible_nodes(scores, criterion, vers_ref, min_vers_pct), trials,
                                 criterion_key(criterion), uni)
    visited = [{**{k: v for k, v in s.items() if k != "node"}, **s["node"].record()} for s in scores]
    return visited, best, margin


def decide_level(level: int, parent: Region, trials: dict[Region, dict], original: dict, *, criterion: str,
                 min_vers_pct: float | None, order: str, uni: dict[str, float] | None = None) -> dict:
    """The decision record of one tree level: every visited node's scores, the chosen child and its margin.

    When the criterion rejects every child the parent is kept (``chosen`` = parent, ``stopped`` true),
    so the search never silently picks a node that violates the constraint.
    """
    expected = children(parent, level, order)
    if set(trials) != set(expected):
        raise ValueError(f"level {level}: got trials {sorted(n.id for n in trials)}, expected "
                         f"{[n.id for n in expected]}")
    visited, best, margin = _decide(expected, trials, original, criterion, min_vers_pct, uni)
    return {
        "level": level, "parent": parent.id, "criterion": criterion, "min_vers_pct": min_vers_pct,
        "order": order, "uni_weights": uni or UNI_DEFAULT, "stopped": best is None, "visited": visited,
        "chosen": (best["node"] if best else parent).record(), "margin": margin,
    }


def decide_grid(trials: dict[Region, dict], original: dict, *, criterion: str, min_vers_pct: float | None,
                uni: dict[str, float] | None = None) -> dict:
    """The exhaustive search's decision over the full grid (8 ranges x 3 module sets)."""
    grid = all_nodes()
    if set(trials) != set(grid):
        raise ValueError(f"the exhaustive grid needs all {len(grid)} nodes, got {sorted(n.id for n in trials)}")
    visited, best, margin = _decide(grid, trials, original, criterion, min_vers_pct, uni)
    if best is None:
        raise ValueError(f"criterion {criterion} (min_vers_pct={min_vers_pct}) rejects every grid node")
    return {"mode": "exhaustive", "criterion": criterion, "min_vers_pct": min_vers_pct,
            "uni_weights": uni or UNI_DEFAULT, "visited": visited, "chosen": best["node"].record(),
            "margin": margin}
