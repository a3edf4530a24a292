"""Verdicts in reporting, one way each: a block of rows compared with one reference and Holm-corrected as one
family (:func:`compare_block`), and a difference written as a cell (:func:`cell`, with :func:`difference` and
:func:`settle_text`, its parts). The table, the claims, the leaderboard and the bench all go through these.

A cell reads ``+1.23 [+0.40, +2.10] better``, or for an undecided comparison
``-3.24 [-6.62, -0.05] undecided (Holm p 0.29; MDE 4.63; n≈122)``: the difference (row - reference) and the
bounds of its 95% CI, each with its sign; the verdict; and what would settle an undecided one. ``Holm p``
leads where the CI alone excludes 0 and only the family's correction left it undecided.

The cell's fields (:data:`CELL_FIELDS`) are those of :class:`cofitune.stats.Comparison` (``as_dict()``), so a
comparison is written as it is; a table that stored them in columns passes a mapping of the same names.
A field that is missing, None or NaN is left out of the text.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

from cofitune import stats
from cofitune.stats.measures import compare_rows

K = TypeVar("K", bound=Hashable)
#: what a cell is written from (the names of :class:`cofitune.stats.Comparison`'s fields)
CELL_FIELDS = ("delta", "lo", "hi", "verdict", "p_adjusted", "mde", "items_needed", "seeds_needed", "seeds")


# ---- a block against one reference, Holm-corrected -------------------------------------------------------

def holm_family(comparisons: Mapping[K, stats.Comparison]) -> dict[K, stats.Comparison]:
    """Holm's correction over a family of comparisons, keyed as given (:func:`cofitune.stats.correct_family`)."""
    keys = list(comparisons)
    return dict(zip(keys, stats.correct_family([comparisons[k] for k in keys])))


def compare_block(rows: Mapping[K, dict], reference: dict, measures: Iterable[str], *, aspects: dict | None = None,
                  uni: dict | None = None, reference_first: bool = False, n_boot: int = stats.N_BOOT,
                  seed: int = stats.SEED) -> dict[tuple[K, str], stats.Comparison]:
    """Every row of a block against one reference on each measure, Holm-corrected as one family.

    Args:
        rows: key -> the row's record (:func:`cofitune.stats.measures.record`; with ``aspects`` when
            ``aspects`` is not given). The reference itself is not among them.
        reference: the reference's record.
        measures: the measures each row is compared on.
        aspects: the suites of each aspect for every comparison; None: each row's own ``record["aspects"]``.
        reference_first: compare ``reference - row`` (a new row against stored ones) instead of
            ``row - reference``.

    Returns:
        ``(key, measure) -> Comparison`` after Holm's correction, in row then measure order; a measure a row
        (or the reference) lacks the data of is left out, and out of the family.
    """
    measures = tuple(measures)
    found = {}
    for key, rec in rows.items():
        for measure in measures:
            a, b = (reference, rec) if reference_first else (rec, reference)
            c = compare_rows(a, b, measure, rec["aspects"] if aspects is None else aspects, uni,
                             n_boot=n_boot, seed=seed)
            if c is not None:
                found[(key, measure)] = c
    return holm_family(found)


# ---- a difference as a cell ----------------------------------------------------------------------------

def measure_digits(measure: str) -> int:
    """The decimals a measure's values and differences are written with: 4 for the drifts (nats per token, small),
    3 for VersM (log-likelihood margins), 2 for the scores (points)."""
    return {"Drift": 4, "TaskDrift": 4, "VersM": 3}.get(measure, 2)


def _given(c: Mapping[str, Any], field: str):
    """A field's value, or None when it is missing, None or NaN."""
    value = c.get(field)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def difference(c: Mapping[str, Any], digits: int = 2) -> str:
    """``+1.23 [+0.40, +2.10]``: the difference and its 95% CI, every number with its sign."""
    return f"{c['delta']:+.{digits}f} [{c['lo']:+.{digits}f}, {c['hi']:+.{digits}f}]"


def settle_text(c: Mapping[str, Any]) -> str:
    """What would settle an undecided comparison (empty when decided): ``Holm p`` where the CI alone excludes 0,
    the minimum detectable effect, and the items per test set (or seeds, for a row of several) that would
    detect the observed difference at 80% power."""
    if c.get("verdict") != "undecided":
        return ""
    parts = []
    p_adjusted = _given(c, "p_adjusted")
    if p_adjusted is not None and (c["lo"] > 0 or c["hi"] < 0):
        parts.append(f"Holm p {p_adjusted:.2f}")
    mde = _given(c, "mde")
    if mde is not None:
        items, seeds_needed = _given(c, "items_needed"), _given(c, "seeds_needed")
        if c["delta"] == 0:
            parts.append(f"no difference observed; MDE {mde:.3g}")
        else:
            parts += [f"MDE {mde:.3g}", f"n≈{int(items)}" if items is not None else "items alone cannot settle it"]
            if seeds_needed is not None and (_given(c, "seeds") or 1) > 1:
                parts.append(f"or {int(seeds_needed)} seeds")
    return "; ".join(parts)


def cell(c: Mapping[str, Any], digits: int = 2, *, settle: str | None = None) -> str:
    """``+1.23 [+0.40, +2.10] better`` or ``... undecided (Holm p 0.29; MDE 4.63; n≈122)``; ``–`` where
    nothing was compared. ``settle``: the text :func:`settle_text` wrote when the comparison was made, for a
    table that keeps that text rather than its fields."""
    if _given(c, "delta") is None or not isinstance(c.get("verdict"), str) or not c["verdict"]:
        return "–"
    settle = settle if isinstance(settle, str) else settle_text(c)
    return f"{difference(c, digits)} {c['verdict']}" + (f" ({settle})" if settle else "")
