"""One loop compares a block with a reference and Holm-corrects it, and one format writes a difference cell, for
every report: the table, the claims, the leaderboard and the bench (cofitune/reporting/verdicts.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cofitune import stats
from cofitune.reporting import verdicts
from cofitune.stats.measures import compare_rows, record

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")

UNDECIDED = {"verdict": "undecided", "p_adjusted": 0.2913, "mde": 4.634, "items_needed": 122, "seeds_needed": None,
             "seeds": 1}


@pytest.mark.parametrize("fields, digits, text", [
    ({"delta": 1.234, "lo": 0.4, "hi": 2.1, "verdict": "better"}, 2, "+1.23 [+0.40, +2.10] better"),
    ({"delta": -3.381, "lo": -6.8, "hi": -0.3, "verdict": "worse", "p_adjusted": 0.01}, 2,
     "-3.38 [-6.80, -0.30] worse"),
    ({"delta": -1.51213, "lo": -1.61262, "hi": -1.41477, "verdict": "better"}, 4, "-1.5121 [-1.6126, -1.4148] better"),
    # the CI alone excludes 0; Holm's correction over the family left it undecided: say so first
    ({"delta": -3.24, "lo": -6.62, "hi": -0.05, **UNDECIDED}, 2,
     "-3.24 [-6.62, -0.05] undecided (Holm p 0.29; MDE 4.63; n≈122)"),
    ({"delta": 0.95, "lo": -0.65, "hi": 2.69, **UNDECIDED, "mde": 2.4123, "items_needed": 383}, 2,
     "+0.95 [-0.65, +2.69] undecided (MDE 2.41; n≈383)"),
    ({"delta": 0.5, "lo": -1.0, "hi": 2.0, **UNDECIDED, "mde": 1.5, "items_needed": None, "seeds_needed": 7,
      "seeds": 3}, 2, "+0.50 [-1.00, +2.00] undecided (MDE 1.5; items alone cannot settle it; or 7 seeds)"),
    ({"delta": 0.5, "lo": -1.0, "hi": 2.0, **UNDECIDED, "mde": 1.5, "seeds_needed": 7}, 2,
     "+0.50 [-1.00, +2.00] undecided (MDE 1.5; n≈122)"),  # one seed: more seeds is no option
    ({"delta": 0.0, "lo": -1.0, "hi": 1.0, **UNDECIDED, "mde": 2.8, "items_needed": None}, 2,
     "+0.00 [-1.00, +1.00] undecided (no difference observed; MDE 2.8)"),
    # a table's columns: NaN where a field is unset; nothing compared: a dash
    ({"delta": 0.5, "lo": -1.0, "hi": 2.0, **UNDECIDED, "mde": 1.5, "items_needed": math.nan,
      "seeds_needed": math.nan, "seeds": 2}, 2,
     "+0.50 [-1.00, +2.00] undecided (MDE 1.5; items alone cannot settle it)"),
    ({"delta": math.nan, "verdict": ""}, 2, "–"),
    ({}, 2, "–"),
    # stored without the power fields (the bench's standing): the Holm note alone
    ({"delta": -3.8, "lo": -7.69, "hi": -0.55, "verdict": "undecided", "p_adjusted": 0.4758}, 2,
     "-3.80 [-7.69, -0.55] undecided (Holm p 0.48)"),
])
def test_a_difference_cell(fields, digits, text):
    assert verdicts.cell(fields, digits) == text


def test_a_cell_keeps_the_settle_text_it_was_given():
    fields = {"delta": 0.5, "lo": -1.0, "hi": 2.0, "verdict": "undecided"}
    assert verdicts.cell(fields, settle="MDE 3; n≈9") == "+0.50 [-1.00, +2.00] undecided (MDE 3; n≈9)"
    assert verdicts.cell({**fields, "verdict": "better"}, settle="") == "+0.50 [-1.00, +2.00] better"
    assert verdicts.settle_text({**fields, "verdict": "better", "mde": 1.0}) == ""


def _rec(rng, shift=0.0, n=40, drift=True):
    suites = {name: {"items": (rng.uniform(size=n) < 0.5).astype(float).tolist()} for name in ("mmlu", "arc")}
    m = {"metrics": {"spec_items": (rng.uniform(0, 100, n) + shift).tolist(), "suites": suites,
                     "aspects_tasks": {"knowledge": ["mmlu"], "reasoning": ["arc"]}}}
    if drift:
        m["metrics"]["drift"] = {"items": rng.uniform(0, 1, n).tolist()}
    return {**record(m), "aspects": m["metrics"]["aspects_tasks"]}


def test_compare_block_is_every_comparison_then_holm_over_the_family():
    rng = np.random.default_rng(3)
    ref = _rec(rng)
    rows = {"a": _rec(rng, 10.0), "b": _rec(rng, -2.0), "c": _rec(rng, 1.0, drift=False)}
    measures = ("Spec", "Vers", "Drift")
    got = verdicts.compare_block(rows, ref, measures, n_boot=200)
    # by hand: each comparison, the ones with data only (c has no drift), then Holm over exactly those
    raw = {(k, m): c for k, rec in rows.items() for m in measures
           if (c := compare_rows(rec, ref, m, rec["aspects"], n_boot=200)) is not None}
    assert list(got) == list(raw) and ("c", "Drift") not in got
    assert [c.p_adjusted for c in got.values()] == stats.holm([c.p for c in raw.values()])
    assert all(c.correction == "holm" for c in got.values())
    assert got[("a", "Spec")].verdict == "better" and got[("a", "Spec")].delta > 0
    # the other direction (a new row against stored ones): reference - row, on the aspects given
    flipped = verdicts.compare_block(rows, ref, ("Spec",), aspects=ref["aspects"], reference_first=True, n_boot=200)
    assert flipped[("a", "Spec")].delta == pytest.approx(-got[("a", "Spec")].delta)
    assert verdicts.compare_block({}, ref, measures) == {}


def test_holm_family_keeps_the_keys():
    cs = [stats.Comparison(delta=1.0, lo=0.5, hi=1.5, se=0.25, p=p, verdict="better", mde=0.7, items=10, seeds=1,
                           items_needed=None, seeds_needed=None) for p in (0.01, 0.04, 0.03)]
    out = verdicts.holm_family(dict(zip("xyz", cs)))
    assert list(out) == ["x", "y", "z"]
    assert [out[k].p_adjusted for k in "xyz"] == pytest.approx([0.03, 0.06, 0.06])
    assert [out[k].verdict for k in "xyz"] == ["better", "undecided", "undecided"]


def test_every_report_writes_the_same_comparison_the_same_way(tmp_path):
    """cofitune - full_sft on Spec (72 vs 80 on constant items: exact, decided in any family) reads the same in
    the table, the leaderboard and the bench; positive bounds carry their sign in the table and the claims."""
    from cofitune.reporting import bench
    from cofitune.reporting.aggregate import build_table, to_markdown
    from cofitune.reporting.claims import build_claims, claims_markdown
    from cofitune.reporting.leaderboard import build_leaderboard
    from cofitune.reporting.leaderboard import to_markdown as board_markdown
    from cofitune.pipeline.artifacts import read_metrics
    from tests.unit.test_aggregate import _three

    paths = _three(tmp_path)
    full = build_table(paths, keep_records=True)
    same = "-8.00 [-8.00, -8.00] worse"
    table_md = to_markdown(full.drop(columns=["_record"]))
    block = table_md.split("## t · m: comparisons")[1]
    row = next(line for line in block.splitlines() if line.startswith("| cofitune"))
    assert row.split(" | ")[6] == same  # Spec vs full_sft (after Method and the five measures vs original)
    assert "| +32.00 [+32.00, +32.00] better |" in row  # Spec vs original: a positive bound has its sign
    board = board_markdown(build_leaderboard(full))
    row = next(line for line in board.splitlines() if line.startswith("| ") and "cofitune/v" in line)
    assert f"| {same} |" in row  # Spec vs Full SFT
    cofi, full_sft = (read_metrics(p) for p in paths[:2])
    standing = bench.standing(cofi, {"full_sft/v": full_sft}, n_boot=200)
    assert f"| {same} |" in "\n".join(bench._standing_markdown(standing))
    claims = claims_markdown(build_claims(full))  # C3: 72 - 0.9 x 80 = 0 on every item
    assert "| Spec | +0.00 [+0.00, +0.00] undecided (no difference observed; MDE 0) | **undecided** |" in claims
