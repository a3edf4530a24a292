"""Holm's correction, checked against hand computations from its definition, through every layer that applies it:
:func:`stats.holm`, :func:`stats.correct_family` (verdicts) and the comparison table (``*_p_adjusted`` columns).

Holm-Bonferroni step-down, for m p-values: sort them ascending; the one of rank r (0-based) is multiplied by
m - r; the adjusted values are the running maximum of those products, each capped at 1; they are reported in
the input order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cofitune import stats
from cofitune.reporting.aggregate import build_table, to_markdown
from tests.unit.handmade import write_metrics

HAND_TABLES = [
    # m = 6. sorted:            x m-r      product   running max (adjusted)
    #   0.005 (input 3)          x 6   ->   0.030     0.030
    #   0.010 (input 0)          x 5   ->   0.050     0.050
    #   0.030 (input 2)          x 4   ->   0.120     0.120
    #   0.040 (input 1)          x 3   ->   0.120     0.120
    #   0.045 (input 5)          x 2   ->   0.090     0.120   <- the running max, not the product
    #   0.200 (input 4)          x 1   ->   0.200     0.200
    ([0.010, 0.040, 0.030, 0.005, 0.200, 0.045], [0.050, 0.120, 0.120, 0.030, 0.200, 0.120]),
    # m = 3: 0.02 x 3 = 0.06; 0.6 x 2 = 1.2 -> capped at 1.0; 0.7 x 1 = 0.7 -> running max 1.0
    ([0.6, 0.02, 0.7], [1.0, 0.06, 1.0]),
    # ties: 0.01 x 2 = 0.02, then 0.01 x 1 = 0.01 -> running max 0.02 for both
    ([0.01, 0.01], [0.02, 0.02]),
    # a family of one is not corrected
    ([0.03], [0.03]),
]


@pytest.mark.parametrize("raw,adjusted", HAND_TABLES)
def test_holm_matches_the_hand_tables(raw, adjusted):
    assert stats.holm(raw) == pytest.approx(adjusted, abs=1e-12)


def comparison(p: float, lo: float = 0.1, hi: float = 2.0) -> stats.Comparison:
    """A comparison whose CI excludes 0 (``better`` alone) with raw p-value ``p``."""
    return stats.Comparison(delta=1.0, lo=lo, hi=hi, se=0.5, p=p, verdict=stats.verdict(lo, hi), mde=1.4,
                            items=100, seeds=1, items_needed=None, seeds_needed=None)


def test_correct_family_applies_the_hand_table():
    raw, adjusted = HAND_TABLES[0]
    family = stats.correct_family([comparison(p) for p in raw])
    assert [c.p_adjusted for c in family] == pytest.approx(adjusted, abs=1e-12)
    assert [c.p for c in family] == raw and all(c.correction == "holm" for c in family)
    # decided only where the adjusted p is below 0.05: input 3 (0.030); input 0 is at 0.050, not below
    assert [c.verdict for c in family] == ["undecided"] * 3 + ["better"] + ["undecided"] * 2


def test_a_comparison_decided_alone_is_undecided_in_a_family():
    """Real comparisons: one that is decided on its own (CI excludes 0, p < 0.05) is undecided next to a second
    one as weak (Holm: 2p > 0.05), and stays decided next to a strong one (the strong one takes the x2)."""
    rng = np.random.default_rng(20)
    diff = np.round(rng.normal(5, 10, 20))  # paired item differences, mean 3.35
    base = np.tile([10.0, 20, 30, 40, 50, 60, 70, 80, 90, 40], 2)

    def mean_x(d):
        return float(d["x"].mean())

    weak = stats.compare({"x": base + diff}, {"x": base}, mean_x)
    assert weak.verdict == "better" and weak.lo > 0 and 0.025 < weak.p < 0.05  # decided alone
    strong = stats.compare({"x": base + 40}, {"x": base}, mean_x)
    assert strong.p == 0.0

    (alone,) = stats.correct_family([weak])
    assert alone.verdict == "better" and alone.p_adjusted == pytest.approx(weak.p)  # m = 1: p x 1
    pair = stats.correct_family([weak, replace(weak)])
    # sorted p: p, p -> p x 2, then max(2p, p x 1) = 2p for both
    assert [c.p_adjusted for c in pair] == pytest.approx([2 * weak.p] * 2)
    assert [c.verdict for c in pair] == ["undecided", "undecided"]
    with_strong = stats.correct_family([weak, strong])
    # sorted p: 0 (strong) x 2 = 0; p (weak) x 1 = p -> the weak one keeps its raw p and its verdict
    assert [c.p_adjusted for c in with_strong] == pytest.approx([weak.p, 0.0])
    assert [c.verdict for c in with_strong] == ["better", "better"]


# Spec items of the table test: the original's, Full SFT's (+40 on every item) and CoFiTune's (+ the paired
# differences below: mean +3.35, a CI that excludes 0 and a raw p of about 0.038).
ORIGINAL = [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 40] * 2
COFI_DIFF = [1.0, 17, 19, 8, 9, 0, -4, -4, -5, 14, 4, 6, -1, -6, -7, -3, 11, 5, 0, 3]


def test_the_table_reports_the_hand_computed_holm_p(tmp_path):
    """The comparison table's family against `original` in one block, worked by hand.

    Every row scores the same versatility items and has no VersM/Drift data, so the family is the 4 cells
    {full_sft, cofitune} x {Spec, Vers}:
      full_sft Spec: +40 on every item  -> zero-width CI, raw p = 0
      full_sft Vers: identical items    -> difference exactly 0, raw p = 1
      cofitune Spec: noisy, raw p = p*  (~0.038; the bootstrap's, recomputed below with the table's seed)
      cofitune Vers: identical items    -> raw p = 1
    sorted raw p: 0 x 4 = 0; p* x 3 = 3p*; 1 x 2 -> capped 1; 1 x 1 = 1.
    So cofitune's dSpec_vs_original_p_adjusted is 3p* (~0.115): its CI excludes 0, but it is undecided.
    """
    orig = write_metrics(tmp_path, "original", ORIGINAL)
    full = write_metrics(tmp_path, "full_sft", [x + 40 for x in ORIGINAL])
    cofi = write_metrics(tmp_path, "cofitune", [x + d for x, d in zip(ORIGINAL, COFI_DIFF)])
    # the raw p of the one noisy cell: the same paired bootstrap (items resampled, seed and n_boot of the table)
    raw = stats.compare({"spec": [x + d for x, d in zip(ORIGINAL, COFI_DIFF)]}, {"spec": ORIGINAL},
                        lambda d: float(d["spec"].mean()))
    assert raw.verdict == "better" and 0.05 / 3 < raw.p < 0.05  # decided alone; not after x3

    df = build_table([orig, full, cofi]).set_index("method")
    assert df.at["cofitune", "dSpec_vs_original"] == pytest.approx(np.mean(COFI_DIFF))
    assert (df.at["cofitune", "dSpec_vs_original_lo"], df.at["cofitune", "dSpec_vs_original_hi"]) == (
        pytest.approx(raw.lo), pytest.approx(raw.hi))
    assert df.at["cofitune", "dSpec_vs_original_p_adjusted"] == pytest.approx(3 * raw.p, rel=1e-9)
    assert df.at["cofitune", "dSpec_vs_original_verdict"] == "undecided"
    assert df.at["full_sft", "dSpec_vs_original_p_adjusted"] == 0.0
    assert df.at["full_sft", "dSpec_vs_original_verdict"] == "better"
    for method in ("full_sft", "cofitune"):
        assert df.at[method, "dVers_vs_original_p_adjusted"] == 1.0
    # the Markdown verdict cell says why a CI that excludes 0 is undecided (the comparisons block comes last)
    md = to_markdown(build_table([orig, full, cofi]))
    line = [x for x in md.split("## t · m: comparisons", 1)[1].splitlines() if x.startswith("| cofitune/v |")][0]
    assert f"Holm p {3 * raw.p:.2f}" in line and "undecided" in line
