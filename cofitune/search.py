"""Coarse tree search over (layer range x module set) regions (docs/method.md section 2).

Level 1 compares the three half-depth ranges (all modules), level 2 the quarter ranges inside the
winner, level 3 the module sets inside the winning range (``order="range-first"``, the default); with
``order="module-first"`` the module set is chosen first on the whole depth, then the ranges. Pure
functions, unit-tested on hand-made score tables; the DAG only calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cofitune.selection import LAYER_RANGES, MODULE_SETS
from cofitune.stats import UNI_DEFAULT, uni_score

HALVES = ("bottom-plus", "middle-plus", "top-plus")
QUARTERS = {"bottom-plus": ("bottom1", "bottom2"), "middle-plus": ("bottom2", "middle"),
            "top-plus": ("middle", "top"), "all": ("bottom1", "bottom2", "middle", "top")}
MODULES = tuple(MODULE_SETS)  # mha, ffn, mha+ffn
CRITERIA = ("uni", "spec_at_vers")
ORDERS = ("range-first", "module-first")


@dataclass(frozen=True, order=True)
class Node:
    layers: str
    modules: str

    @property
    def id(self) -> str:
        return f"{self.modules}@{self.layers}"


SEARCH_TRIAL_METHOD = "coarse_only"  # tree-search nodes train their region without a mask
ROOT = Node("all", "mha+ffn")  # = Full SFT's region (Full SFT also trains embeddings/head/norms)


def children(node: Node, level: int, order: str = "range-first") -> list[Node]:
    """Nodes compared at ``level`` (1, 2, 3) below ``node`` (the previous level's winner)."""
    if order not in ORDERS:
        raise ValueError(f"search.order must be one of {ORDERS}, got {order!r}")
    if level not in (1, 2, 3):
        raise ValueError(f"tree level must be 1, 2 or 3, got {level}")
    if order == "range-first":
        if level == 1:
            return [Node(r, node.modules) for r in HALVES]
        if level == 2:
            return [Node(r, node.modules) for r in QUARTERS[node.layers]]
        return [Node(node.layers, m) for m in MODULES]
    if level == 1:
        return [Node(node.layers, m) for m in MODULES]
    if level == 2:
        return [Node(r, node.modules) for r in HALVES]
    return [Node(r, node.modules) for r in QUARTERS[node.layers]]


def all_nodes() -> list[Node]:
    """The exhaustive grid: 8 ranges x 3 module sets."""
    return [Node(r, m) for r in LAYER_RANGES for m in MODULES]


def criterion_key(criterion: str) -> str:
    """The score a criterion maximises: ``uni`` -> Uni, ``spec_at_vers`` -> Spec."""
    if criterion not in CRITERIA:
        raise ValueError(f"search.criterion must be one of {CRITERIA}, got {criterion!r}")
    return "uni" if criterion == "uni" else "spec"


def eligible_nodes(scores: list[dict], criterion: str, vers_ref: float | None,
                   min_vers_pct: float | None) -> list[dict]:
    """The scored nodes a criterion may choose from (``spec_at_vers``: Vers >= min_vers_pct% of vers_ref)."""
    if criterion_key(criterion) == "uni":
        return scores
    if vers_ref is None or min_vers_pct is None:
        raise ValueError("criterion spec_at_vers needs vers_ref and min_vers_pct")
    return [s for s in scores if s["vers"] >= min_vers_pct / 100.0 * vers_ref]


def select(scores: list[dict], criterion: str = "uni", *, vers_ref: float | None = None,
           min_vers_pct: float | None = None) -> dict | None:
    """Pick the best scored node.

    Args:
        scores: ``[{"node": Node, "spec": float, "vers": float, "uni": float}, ...]`` in node order.
        criterion: ``uni`` (max Uni) or ``spec_at_vers`` (max Spec among nodes with
            ``vers >= min_vers_pct / 100 * vers_ref``).

    Returns:
        The chosen entry, or None when the criterion rejects every node. Ties go to the earlier node,
        so a run is reproducible regardless of float noise in the order of evaluation.
    """
    if not scores:
        raise ValueError("select needs at least one scored node")
    key = criterion_key(criterion)
    best = None
    for entry in eligible_nodes(scores, criterion, vers_ref, min_vers_pct):  # strict '>': first of equal scores
        if best is None or entry[key] > best[key]:
            best = entry
    return best


# ---- DAG glue: node <-> run variant, and one tree level's decision file --------------------------

NODE_PREFIX = "node."


def node_variant(node: Node) -> str:
    """Run variant of a search trial, e.g. ``node.ffn.bottom2``."""
    return f"{NODE_PREFIX}{node.modules}.{node.layers}"


def node_from_variant(variant: str) -> Node | None:
    """Inverse of :func:`node_variant`; None for ordinary variants."""
    if not variant.startswith(NODE_PREFIX):
        return None
    modules, _, layers = variant[len(NODE_PREFIX):].partition(".")
    if modules not in MODULES or layers not in LAYER_RANGES:
        raise ValueError(f"search trial variant {variant!r} names no node (modules.layers)")
    return Node(layers, modules)


def trial_node(metrics: dict, where: str) -> Node:
    """The region a trial's ``metrics.json`` (read from ``where``) trained: its coarse_only params."""
    run = metrics["run"]
    if run["method"] != SEARCH_TRIAL_METHOD:
        raise ValueError(f"{where}: run {run['method']}/{run['variant']} is not a "
                         f"{SEARCH_TRIAL_METHOD} search trial")
    node = Node(run["params"].get("layers"), run["params"].get("modules"))
    if node not in all_nodes():
        raise ValueError(f"{where}: run {run['method']}/{run['variant']} trained {node}, no grid node")
    return node


def node_scores(metrics: dict, uni: dict[str, float] | None = None) -> dict:
    """Spec / Vers / Uni of one evaluated trial (a ``metrics.json`` mapping); ``uni``: the weights."""
    m = metrics["metrics"]
    return {"spec": m["spec"], "vers": m["vers"], "uni": uni_score(m["spec"], m["vers"], uni)}


def decision_margin(best: dict, eligible: list[dict], trials: dict[Node, dict], key: str,
                    uni: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 1234) -> dict | None:
    """How far the chosen node leads the runner-up on the criterion's score, with a paired-bootstrap 95% CI.

    ``key`` is ``uni`` or ``spec``; the runner-up is the best other eligible node (the earlier one on
    ties). ``within_noise`` is true when the CI of the lead reaches 0: the decision is not resolved by
    the test sets' size. None when no other node was eligible.
    """
    from cofitune.measures import compare_rows, record

    others = [s for s in eligible if s["node"] != best["node"]]
    if not others:
        return None
    runner = max(others, key=lambda s: s[key])  # max() keeps the first of equal scores
    a, b = trials[best["node"]], trials[runner["node"]]
    c = compare_rows(record(a), record(b), "Uni" if key == "uni" else "Spec", a["metrics"]["aspects_tasks"], uni,
                     n_boot=n_boot, seed=seed)
    return {"runner_up": runner["node"].id, "key": key, "delta": best[key] - runner[key], "ci95": [c.lo, c.hi],
            "within_noise": c.verdict == "undecided", "mde": c.mde, "items_needed": c.items_needed}


def _decide(nodes: list[Node], trials: dict[Node, dict], original: dict, criterion: str,
            min_vers_pct: float | None, uni: dict[str, float] | None) -> tuple[list[dict], dict | None, dict | None]:
    """Score ``nodes`` (in order), select one, and measure its margin: (visited, best, margin)."""
    scores = [{"node": n, **node_scores(trials[n], uni)} for n in nodes]
    vers_ref = node_scores(original)["vers"]
    best = select(scores, criterion, vers_ref=vers_ref, min_vers_pct=min_vers_pct)
    margin = None
    if best is not None:
        margin = decision_margin(best, eligible_nodes(scores, criterion, vers_ref, min_vers_pct), trials,
                                 criterion_key(criterion), uni)
    visited = [{**{k: v for k, v in s.items() if k != "node"}, **_node_record(s["node"])} for s in scores]
    return visited, best, margin


def _node_record(node: Node) -> dict:
    return {"node": node.id, "layers": node.layers, "modules": node.modules}


def decide_level(level: int, parent: Node, trials: dict[Node, dict], original: dict, *, criterion: str,
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
        "chosen": _node_record(best["node"] if best else parent), "margin": margin,
    }


def decide_grid(trials: dict[Node, dict], original: dict, *, criterion: str, min_vers_pct: float | None,
                uni: dict[str, float] | None = None) -> dict:
    """The exhaustive search's decision over the full grid (8 ranges x 3 module sets)."""
    grid = all_nodes()
    if set(trials) != set(grid):
        raise ValueError(f"the exhaustive grid needs all {len(grid)} nodes, got {sorted(n.id for n in trials)}")
    visited, best, margin = _decide(grid, trials, original, criterion, min_vers_pct, uni)
    if best is None:
        raise ValueError(f"criterion {criterion} (min_vers_pct={min_vers_pct}) rejects every grid node")
    return {"mode": "exhaustive", "criterion": criterion, "min_vers_pct": min_vers_pct,
            "uni_weights": uni or UNI_DEFAULT, "visited": visited, "chosen": _node_record(best["node"]),
            "margin": margin}
