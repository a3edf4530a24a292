"""The leaderboard from hand-written metrics files: ranks, verdicts against Full SFT and CoFiTune, cost."""

import json

import pandas as pd
import pytest

from cofitune.reporting.aggregate import build_table
from cofitune.reporting.leaderboard import build_leaderboard, to_markdown, verdicts_markdown
from cofitune.stats.measures import compare_rows
from tests.unit.test_aggregate import _metrics, _three


def _with_train(path, wall, tps):
    m = json.loads(path.read_text())
    m["meta"]["train"] = {"wall_s": wall, "tokens_per_s": tps}
    path.write_text(json.dumps(m))
    return path


def _board(tmp_path, extra=()):
    cofi, full, orig = _three(tmp_path)
    _with_train(cofi, 50.0, 300.0)
    _with_train(full, 100.0, 200.0)
    table = build_table([cofi, full, orig, *extra], keep_records=True)
    return table, build_leaderboard(table)


def test_rows_are_ranked_by_uni_with_spec_and_vers_ranks(tmp_path):
    table, board = _board(tmp_path)
    assert list(board["rank"]) == [1, 2, 3]
    assert list(board.Uni) == sorted(table.Uni, reverse=True)
    by = board.set_index("method")
    # Spec: full_sft 80 > cofitune 72 > original 40; Vers: original 62.5 > cofitune 56.25 > full_sft 37.5
    assert (by.at["full_sft", "Spec_rank"], by.at["cofitune", "Spec_rank"], by.at["original", "Spec_rank"]) == (1, 2, 3)
    assert (by.at["original", "Vers_rank"], by.at["cofitune", "Vers_rank"], by.at["full_sft", "Vers_rank"]) == (1, 2, 3)


def test_verdicts_are_the_paired_comparisons_with_each_judge(tmp_path):
    table, board = _board(tmp_path)
    rows = table.set_index("method")
    by = board.set_index("method")
    for judge in ("full_sft", "cofitune"):
        for measure in ("Spec", "Vers", "Uni"):
            c = compare_rows(rows.at["original", "_record"], rows.at[judge, "_record"], measure,
                             rows.at["original", "_record"]["aspects"])
            assert by.at["original", f"{measure}_vs_{judge}_delta"] == pytest.approx(c.delta)
            assert (by.at["original", f"{measure}_vs_{judge}_lo"], by.at["original", f"{measure}_vs_{judge}_hi"]) == \
                pytest.approx((c.lo, c.hi))
            assert by.at["original", f"{measure}_vs_{judge}_verdict"] == c.verdict
    assert by.at["original", "Spec_vs_full_sft_delta"] == pytest.approx(40.0 - 80.0)
    assert pd.isna(by.at["full_sft", "Spec_vs_full_sft_verdict"])  # a judge is not judged against itself


def test_cost_is_read_from_the_metrics_and_relative_to_full_sft(tmp_path):
    _, board = _board(tmp_path)
    by = board.set_index("method")
    assert by.at["cofitune", "train_wall_s"] == 50.0 and by.at["cofitune", "train_tokens_per_s"] == 300.0
    assert by.at["cofitune", "cost_vs_full_sft"] == pytest.approx(0.5)
    assert pd.isna(by.at["original", "train_wall_s"])
    md = to_markdown(board)
    assert "50 s (0.50x), 300 tok/s" in md and "| 1 |" in md


def test_a_second_full_sft_row_needs_the_configured_reference(tmp_path):
    lr = _with_train(_metrics(tmp_path, "full_sft", 60.0, {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 1],
                                                            "piqa": [1, 0, 1, 0]}, 1.0, row="lr-tenth"), 90.0, 210.0)
    cofi, full, orig = _three(tmp_path)
    with pytest.raises(ValueError, match=r"2 'full_sft' rows.*references.full_sft = None"):
        build_table([cofi, full, orig, lr], keep_records=True)
    table = build_table([cofi, full, orig, lr], keep_records=True, references={"full_sft": "v"})
    board = build_leaderboard(table, references={"full_sft": "v"}).set_index("variant")
    assert board.at["lr-tenth", "Spec_vs_full_sft_delta"] == pytest.approx(60.0 - 80.0)


def test_verdicts_are_holm_corrected_over_each_judges_comparisons(tmp_path):
    """A row whose every Spec item beats Full SFT's has a CI that excludes 0 on its own, but one lucky item
    carries the difference (p about 0.2): among the judge's 9 comparisons it reads undecided, and says why."""
    full_suites = {"mmlu": [1, 0, 0, 0], "arc": [1, 1, 0, 1], "piqa": [0, 0, 1, 0]}
    lucky = _metrics(tmp_path, "dft", 82.575, full_suites, 1.0, spec_items=[80.1, 80.1, 80.1, 90.0])
    table, board = _board(tmp_path, extra=[lucky])
    rows, by = table.set_index("method"), board.set_index("method")
    raw = compare_rows(rows.at["dft", "_record"], rows.at["full_sft", "_record"], "Spec",
                       rows.at["dft", "_record"]["aspects"])
    assert raw.lo > 0 and raw.verdict == "better" and raw.p > 0.05
    assert by.at["dft", "Spec_vs_full_sft_verdict"] == "undecided"
    assert by.at["dft", "Spec_vs_full_sft_p_adjusted"] >= raw.p
    assert by.at["dft", "Spec_vs_full_sft_settle"].startswith("Holm p ")
    # a difference on every item with no spread stays decided after the correction (p = 0)
    assert by.at["original", "Spec_vs_full_sft_verdict"] == "worse"
    assert by.at["original", "Spec_vs_full_sft_p_adjusted"] == 0.0


def test_the_verdicts_summary_lists_exactly_the_decided_cells(tmp_path):
    """What the README quotes: each reference and measure with the rows decided better or worse; the lucky row,
    undecided against Full SFT after the correction, is in none of Full SFT's lines."""
    full_suites = {"mmlu": [1, 0, 0, 0], "arc": [1, 1, 0, 1], "piqa": [0, 0, 1, 0]}
    lucky = _metrics(tmp_path, "dft", 82.575, full_suites, 1.0, spec_items=[80.1, 80.1, 80.1, 90.0])
    _, board = _board(tmp_path, extra=[lucky])
    md = verdicts_markdown(board)
    # ranked by Uni: cofitune 64.13, dft 60.04, full_sft 58.75, original 51.25; constant Spec items
    assert "| Full SFT | Spec | – | cofitune/v -8.00 [-8.00, -8.00]; original/v -40.00 [-40.00, -40.00] |" in md
    # against CoFiTune (72 on every item) the lucky row's Spec lead holds on every item and every resample
    assert "| CoFiTune | Spec | dft/v +10.57 [+8.10, " in md
    assert not any("dft/" in line for line in md.splitlines() if line.startswith("| Full SFT"))
    cells = [c for c in board.columns if c.endswith("_verdict")]
    decided = int(sum(board[c].isin(["better", "worse"]).sum() for c in cells))
    listed = sum(line.count("/v ") for line in md.splitlines() if line.startswith(("| Full SFT", "| CoFiTune")))
    assert listed == decided
    undecided = int(sum((board[c] == "undecided").sum() for c in cells))
    assert f"4 rows; {undecided} of {undecided + decided} cells undecided." in md


def test_cost_compares_the_run_with_full_sfts_seed(tmp_path):
    """A row with several seeds is costed by its run with Full SFT's seed, not by a mean over runs that may
    have trained on other machines; a row without that seed, by the mean of its runs."""
    suites = {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]}
    same = _with_train(_metrics(tmp_path, "dft", 70.0, suites, 1.0, seed=1), 80.0, 250.0)
    later = _with_train(_metrics(tmp_path, "dft", 71.0, suites, 1.0, seed=2), 240.0, 85.0)
    other = [_with_train(_metrics(tmp_path, "hft", 70.0, suites, 0.5, seed=s), w, 100.0)
             for s, w in ((2, 60.0), (3, 90.0))]
    _, board = _board(tmp_path, extra=[same, later, *other])
    by = board.set_index("method")
    assert (by.at["dft", "train_wall_s"], by.at["dft", "train_tokens_per_s"]) == (80.0, 250.0)
    assert by.at["dft", "cost_vs_full_sft"] == pytest.approx(0.8)
    assert by.at["hft", "train_wall_s"] == pytest.approx(75.0)
