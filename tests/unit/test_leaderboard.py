"""The leaderboard from hand-written metrics files: ranks, verdicts against Full SFT and CoFiTune, cost."""

import json

import pandas as pd
import pytest

from cofitune.reporting.aggregate import build_table
from cofitune.reporting.leaderboard import build_leaderboard, to_markdown
from cofitune.reporting.measures import compare_rows
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
