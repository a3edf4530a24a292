"""The claims table: each claim of the paper and of this project, tested on the rows a run produced.

Every claim becomes one or more paired comparisons (:func:`cofitune.reporting.aggregate.compare_rows`: paired
bootstrap over seeds then items) with an effect, a 95% CI, a verdict and, when undecided, the items that
would settle it. Directional claims of one (task, model) block form one family under Holm's correction; the
equivalence claim (C6) is judged by its CI against a stated margin and is not part of the family. A claim
whose rows the run lacks is listed as ``not tested`` with the rows it needs.
"""

from __future__ import annotations

import math

import pandas as pd

from cofitune import stats
from cofitune.core.region import Region
from cofitune.reporting import verdicts
from cofitune.stats import measures
from cofitune.stats.measures import compare_rows, measure_stat

VERS_MEASURES = ("Vers", "VersM", "Drift", "TaskDrift")
DRIFTS = ("Drift", "TaskDrift")
SPEC_SHARE = 0.9  # C3: CoFiTune keeps at least this share of Full SFT's Spec
#: C6's equivalence margins: Vers in score points; VersM in its margin units (nats, or nats per character on an
#: acc_norm suite: 0.01 is about a tenth of a typical item's margin on the demo's suites); Drift and TaskDrift: 10%
#: of the coarse-only row's
EQUIV_MARGIN = {"Vers": 1.0, "VersM": 0.01}
DRIFT_EQUIV_SHARE = 0.1
PAPER_REGION = Region("bottom2", "ffn")  # C4: FFN in (N/4, N/2]

CLAIMS = {
    "C1": ("paper", "Full SFT loses versatility", "worse"),
    "C2": ("paper", "CoFiTune keeps more versatility than Full SFT", "better"),
    "C3": ("paper", f"CoFiTune keeps >= {SPEC_SHARE:.0%} of Full SFT's Spec", "better"),
    "C4": ("paper", "FFN in (N/4, N/2] is the best coarse node", "better"),
    "C5": ("paper", "the soft mask adds versatility over coarse-only (same region)", "better"),
    "C6": ("project", "under AdamW a grad-target soft mask is equivalent to coarse-only (same region)", "equivalent"),
}
COLUMNS = ["model", "task", "claim", "source", "statement", "comparison", "measure", "expected", "effect", "lo",
           "hi", "verdict", "status", "p_adjusted", "mde", "items_needed", "seeds_needed", "seeds", "items", "note"]


def _name(row: pd.Series) -> str:
    return f"{row.method}/{row.variant}"


def _region(row: pd.Series) -> Region | None:
    return Region.from_params(row["_record"]["params"])


def _status(expected: str, verdict: str) -> str:
    if verdict == expected:
        return "supported"
    return "undecided" if verdict == "undecided" else "contradicted"


def _entry(block: pd.Series, claim: str, comparison: str, measure: str, c: stats.Comparison | None,
           note: str = "") -> dict:
    source, statement, expected = CLAIMS[claim]
    base = {"model": block.model, "task": block.task, "claim": claim, "source": source, "statement": statement,
            "comparison": comparison, "measure": measure, "expected": expected, "note": note}
    if c is None:
        return {**base, "status": "not tested", "verdict": "", "note": note or f"{measure} not measured"}
    return {**base, "effect": c.delta, "lo": c.lo, "hi": c.hi, "verdict": c.verdict,
            "p_adjusted": c.p_adjusted, "mde": c.mde, "items_needed": c.items_needed,
            "seeds_needed": c.seeds_needed, "seeds": c.seeds,
            "items": c.items, "_c": c}


def _missing(block: pd.Series, claim: str, needs: str) -> dict:
    return _entry(block, claim, "–", "–", None, note=f"needs rows: {needs}")


def _scaled_spec(row: pd.Series, share: float) -> dict:
    """``row``'s record with its Spec items scaled by ``share`` (C3 compares Spec(a) - share * Spec(b))."""
    rec = row["_record"]
    return {**rec, "data": {**rec["data"], "spec": share * rec["data"]["spec"]}}


def _block_claims(block: pd.DataFrame, uni: dict | None) -> list[dict]:
    first = block.iloc[0]
    aspects = first["_record"]["aspects"]
    by = {m: [r for _, r in block[block.method == m].iterrows()] for m in block.method.unique()}
    original, full = (by.get("original") or [None])[0], (by.get("full_sft") or [None])[0]
    cofi, coarse = by.get("cofitune", []), by.get("coarse_only", [])
    out = []

    def cmp(a, b, measure, rec_b=None):
        return compare_rows(a["_record"], rec_b or b["_record"], measure, aspects, uni)

    def vers(claim: str, a, b) -> list[dict]:
        """A versatility claim on every measure; Vers carries the item flips behind it."""
        return [_entry(first, claim, f"{_name(a)} vs {_name(b)}", m, cmp(a, b, m),
                       note=flips_note(a["_record"], b["_record"]) if m == "Vers" else "") for m in VERS_MEASURES]

    if full is not None and original is not None:
        out += vers("C1", full, original)
    else:
        out.append(_missing(first, "C1", "original, full_sft"))
    if full is not None and cofi:
        for row in cofi:
            out += vers("C2", row, full)
            out.append(_entry(first, "C3", f"{_name(row)} vs {SPEC_SHARE} x {_name(full)}", "Spec",
                              cmp(row, full, "Spec", rec_b=_scaled_spec(full, SPEC_SHARE))))
    else:
        out += [_missing(first, "C2", "full_sft, cofitune"), _missing(first, "C3", "full_sft, cofitune")]
    paper_node = [r for r in coarse if _region(r) == PAPER_REGION]
    others = [r for r in coarse if _region(r) != PAPER_REGION]
    if paper_node and others:
        stat, _ = measure_stat("Uni", aspects, uni)
        best = max(others, key=lambda r: stats.point({k: v for k, v in r["_record"]["data"].items()}, stat))
        out.append(_entry(first, "C4", f"{_name(paper_node[0])} vs best other coarse node {_name(best)}", "Uni",
                          cmp(paper_node[0], best, "Uni"), note=f"{len(others) + 1} coarse nodes in the run"))
    else:
        out.append(_missing(first, "C4", f"coarse_only at {PAPER_REGION} and at other regions (the search grid)"))
    pairs = [(r, c) for r in cofi for c in coarse if _region(r) == _region(c)]
    for r, c in pairs:
        out += vers("C5", r, c)
    if not pairs:
        out.append(_missing(first, "C5", "cofitune and coarse_only on the same region"))
    grad = [(r, c) for r, c in pairs if r["_record"]["params"].get("target") == "grad"]
    for r, c in grad:
        for m in VERS_MEASURES:
            comp = cmp(r, c, m)
            margin = (EQUIV_MARGIN.get(m) if m not in DRIFTS
                      else DRIFT_EQUIV_SHARE * c[m] if not math.isnan(c[m]) else None)
            out.append(_equivalence(_entry(first, "C6", f"{_name(r)} vs {_name(c)}", m, comp), comp, margin))
    if not grad:
        out.append(_missing(first, "C6", "cofitune (target: grad) and coarse_only on the same region"))
    return out


def flips_note(a: dict, b: dict) -> str:
    """``flips: mmlu −1/+2 (p 1); piqa −9/+2 (p 0.065)``: per right/wrong suite, the items ``a`` lost and gained
    against ``b`` with McNemar's exact p (:func:`cofitune.stats.measures.flips`)."""
    parts = []
    for suite in measures.binary_suites(a):
        f = measures.flips(a, b, suite)
        if f is not None:
            parts.append(f"{suite} −{f['lost']}/+{f['gained']} (p {f['p']:.2g})")
    return "flips: " + "; ".join(parts) if parts else ""


def _equivalence(entry: dict, c: stats.Comparison | None, margin: float | None) -> dict:
    entry.pop("_c", None)  # not in the Holm family
    if c is None or margin is None:
        return entry
    within = -margin <= c.lo and c.hi <= margin
    status = "supported" if within else ("contradicted" if c.verdict != "undecided" else "undecided")
    return {**entry, "status": status, "note": f"equivalence margin ±{margin:.4g}"}


def build_claims(table: pd.DataFrame, uni: dict | None = None) -> pd.DataFrame:
    """The claims of every (task, model) block of a table built with ``keep_records=True``."""
    rows = []
    for _, block in table.groupby(["task", "model"], sort=False):
        entries = _block_claims(block, uni)
        family = verdicts.holm_family({n: e["_c"] for n, e in enumerate(entries) if "_c" in e})
        for n, c in family.items():
            entries[n].update(verdict=c.verdict, p_adjusted=c.p_adjusted,
                              status=_status(entries[n]["expected"], c.verdict))
        for e in entries:
            e.pop("_c", None)
        rows += entries
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


NOTE = ("Each claim is tested as paired comparisons on this run's rows: effect = row - reference, paired-bootstrap "
        "95% CI (seeds, then items), Holm's correction over each block's directional comparisons. "
        "Drift and TaskDrift (the general probe's and the task's own prompts'): lower is better, so 'worse' means "
        "the row moved further from the original. C3 tests "
        f"Spec(CoFiTune) - {SPEC_SHARE} x Spec(Full SFT) > 0. C6 is an equivalence claim: supported when the CI "
        "lies inside the stated margin. An undecided difference says what would settle it: Holm's adjusted p where "
        "the CI alone excludes 0, the minimum detectable effect, and the items per test set (or seeds) that would "
        "detect the observed effect at 80% power.")


def _difference(r: pd.Series) -> dict:
    """A claim's comparison, as its columns hold it (the fields of :func:`cofitune.reporting.verdicts.cell`)."""
    return {"delta": r.effect, **{f: r.get(f) for f in verdicts.CELL_FIELDS if f != "delta"}}


def claims_markdown(claims: pd.DataFrame) -> str:
    out = ["# cofitune: claims", "", NOTE, ""]
    header = ["Claim", "Comparison", "Measure", "Effect [95% CI], verdict", "Status", "Note"]
    for (task, model), block in claims.groupby(["task", "model"], sort=False):
        out += [f"## {task} · {model}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, r in block.iterrows():
            note = r.note if isinstance(r.note, str) else ""
            out.append(f"| {r.claim} ({r.source}): {r.statement} | {r.comparison} | {r.measure} | "
                       f"{verdicts.cell(_difference(r), verdicts.measure_digits(r.measure))} | **{r.status}** | "
                       f"{note} |")
        out.append("")
    return "\n".join(out)
