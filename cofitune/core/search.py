"""Coarse tree search over (layer range x module set) regions (docs/method.md section 2).

Level 1 compares the three half-depth ranges (all modules), level 2 the quarter ranges inside the
winner, level 3 the module sets inside the winning range (``order="range-first"``, the default); with
``order="module-first"`` the module set is chosen first on the whole depth, then the ranges. Pure
functions, unit-tested on hand-made score tables; the DAG only calls them.
"""

from __future__ import annotations

from cofitune.core.region import Region
from cofitune.core.selection import LAYER_RANGES, MODULE_SETS

HALVES = ("bottom-plus", "middle-plus", "top-plus")
QUARTERS = {"bottom-plus": ("bottom1", "bottom2"), "middle-plus": ("bottom2", "middle"),
            "top-plus": ("middle", "top"), "all": ("bottom1", "bottom2", "middle", "top")}
MODULES = tuple(MODULE_SETS)  # mha, ffn, mha+ffn
CRITERIA = ("uni", "spec_at_vers")
ORDERS = ("range-first", "module-first")


SEARCH_TRIAL_METHOD = "coarse_only"  # tree-search nodes train their region without a mask
ROOT = Region("all", "mha+ffn")  # = Full SFT's region (Full SFT also trains embeddings/head/norms)


def children(node: Region, level: int, order: str = "range-first") -> list[Region]:
    """Nodes compared at ``level`` (1, 2, 3) below ``node`` (the previous level's winner)."""
    if order not in ORDERS:
        raise ValueError(f"search.order must be one of {ORDERS}, got {order!r}")
    if level not in (1, 2, 3):
        raise ValueError(f"tree level must be 1, 2 or 3, got {level}")
    if order == "range-first":
        if level == 1:
            return [Region(r, node.modules) for r in HALVES]
        if level == 2:
            return [Region(r, node.modules) for r in QUARTERS[node.layers]]
        return [Region(node.layers, m) for m in MODULES]
    if level == 1:
        return [Region(node.layers, m) for m in MODULES]
    if level == 2:
        return [Region(r, node.modules) for r in HALVES]
    return [Region(r, node.modules) for r in QUARTERS[node.layers]]


def all_nodes() -> list[Region]:
    """The exhaustive grid: 8 ranges x 3 module sets."""
    return [Region(r, m) for r in LAYER_RANGES for m in MODULES]


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
        scores: ``[{"node": Region, "spec": float, "vers": float, "uni": float}, ...]`` in node order.
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
