"""The leaderboard: every row of a (model, task) ranked on Uni, with its Spec and Vers ranks, its paired
verdicts against Full SFT and against CoFiTune (Spec, Vers, Uni: the difference with its paired-bootstrap 95%
CI, ``better`` / ``worse`` / ``undecided`` and, when undecided, what would settle it), its trainable fraction
and its training cost (wall time and tokens/s from the metrics, and the wall time relative to Full SFT's).
Built from the comparison table with its per-item records (:func:`cofitune.reporting.aggregate.build_table`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cofitune.pipeline.io import atomic_write_text
from cofitune.reporting.measures import compare_rows
from cofitune.reporting.references import reference_row

#: the rows every other row is judged against, and the measures of each verdict
JUDGES = ("full_sft", "cofitune")
VERDICT_MEASURES = ("Spec", "Vers", "Uni")


def _verdict(row: pd.Series, ref: pd.Series | None, measure: str, uni) -> dict:
    if ref is None or row.name == ref.name:
        return {}
    c = compare_rows(row["_record"], ref["_record"], measure, row["_record"]["aspects"], uni)
    if c is None:
        return {}
    return {"delta": c.delta, "lo": c.lo, "hi": c.hi, "verdict": c.verdict, "settle": c.settle_text()}


def _block(group: pd.DataFrame, uni, references) -> list[dict]:
    model, task = group.iloc[0].model, group.iloc[0].task
    judges = {j: reference_row(group, j, references, f"{model}/{task}") for j in JUDGES}
    full_wall = judges["full_sft"]["train_wall_s"] if judges["full_sft"] is not None else math.nan
    ranked = group.sort_values("Uni", ascending=False, kind="stable")
    out = []
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        entry = {"model": model, "task": task, "rank": rank, "method": row.method, "variant": row.variant,
                 "setting": row.setting, "seeds": row.seeds, "Uni": row.Uni,
                 "Spec": row.Spec, "Spec_lo": row.Spec_lo, "Spec_hi": row.Spec_hi,
                 "Vers": row.Vers, "Vers_lo": row.Vers_lo, "Vers_hi": row.Vers_hi,
                 "Spec_rank": int((group.Spec > row.Spec).sum()) + 1,
                 "Vers_rank": int((group.Vers > row.Vers).sum()) + 1,
                 "trainable_frac": row.trainable_frac, "train_wall_s": row.train_wall_s,
                 "train_tokens_per_s": row.train_tokens_per_s,
                 "cost_vs_full_sft": row.train_wall_s / full_wall if full_wall > 0 else math.nan}
        for judge, ref in judges.items():
            for measure in VERDICT_MEASURES:
                for k, v in _verdict(row, ref, measure, uni).items():
                    entry[f"{measure}_vs_{judge}_{k}"] = v
        out.append(entry)
    return out


def build_leaderboard(table: pd.DataFrame, uni: dict[str, float] | None = None,
                      references: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per table row, ranked within its (model, task) by Uni; ``table`` keeps its ``_record`` column."""
    rows = [r for _, g in table.groupby(["model", "task"], sort=False) for r in _block(g, uni, references)]
    return pd.DataFrame(rows)


def _cell(row: pd.Series, measure: str, judge: str) -> str:
    base = f"{measure}_vs_{judge}"
    if not isinstance(row.get(f"{base}_verdict"), str):
        return "–"
    text = (f"{row[base + '_delta']:+.2f} [{row[base + '_lo']:+.2f}, {row[base + '_hi']:+.2f}] "
            f"{row[base + '_verdict']}")
    return f"{text} ({row[base + '_settle']})" if row[base + "_settle"] else text


def _cost(row: pd.Series) -> str:
    if row.train_wall_s != row.train_wall_s:
        return "–" if row.method == "original" else "post-hoc"
    ratio = "" if row.cost_vs_full_sft != row.cost_vs_full_sft else f" ({row.cost_vs_full_sft:.2f}x)"
    return f"{row.train_wall_s:.0f} s{ratio}, {row.train_tokens_per_s:.0f} tok/s"


def to_markdown(board: pd.DataFrame) -> str:
    out = ["# cofitune: leaderboard", "",
           "Rows ranked by Uni within each (task, model); Spec and Vers ranks beside. Verdicts: the row minus the "
           "reference (Full SFT, CoFiTune), paired-bootstrap 95% CI over test items (and seeds), `better` / "
           "`worse` / `undecided`; an undecided cell says what would settle it. Cost: training wall time "
           "(x Full SFT's) and tokens/s from each run's metrics.", ""]
    for (task, model), block in board.groupby(["task", "model"], sort=False):
        out += [f"## {task} · {model}", "",
                "| # | Method | Setting | Uni | Spec (rank) | Vers (rank) | Vers vs Full SFT | Vers vs CoFiTune | "
                "Spec vs Full SFT | Spec vs CoFiTune | Uni vs CoFiTune | Trainable | Cost |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in block.iterrows():
            out.append(f"| {r['rank']} | {r.method}/{r.variant} | {r.setting} | {r.Uni:.2f} | "
                       f"{r.Spec:.2f} [{r.Spec_lo:.1f}, {r.Spec_hi:.1f}] ({r.Spec_rank}) | "
                       f"{r.Vers:.2f} [{r.Vers_lo:.1f}, {r.Vers_hi:.1f}] ({r.Vers_rank}) | "
                       f"{_cell(r, 'Vers', 'full_sft')} | {_cell(r, 'Vers', 'cofitune')} | "
                       f"{_cell(r, 'Spec', 'full_sft')} | {_cell(r, 'Spec', 'cofitune')} | "
                       f"{_cell(r, 'Uni', 'cofitune')} | {100 * r.trainable_frac:.2f}% | {_cost(r)} |")
        out.append("")
    return "\n".join(out)


def write_leaderboard(table: pd.DataFrame, csv: str | Path | None, md: str | Path | None, *,
                      uni: dict[str, float] | None = None, references: dict[str, str] | None = None) -> pd.DataFrame:
    board = build_leaderboard(table, uni, references)
    if csv is not None:
        atomic_write_text(csv, board.to_csv(index=False, float_format="%.6f"))
    if md is not None:
        atomic_write_text(md, to_markdown(board))
    return board
