"""The leaderboard: every row of a (model, task) ranked on Uni, with its Spec and Vers ranks, its paired
verdicts against Full SFT and against CoFiTune (Spec, Vers, Uni: the difference with its paired-bootstrap 95%
CI, ``better`` / ``worse`` / ``undecided`` and, when undecided, what would settle it; Holm-corrected over each
judge's comparisons in a block, as the table corrects each reference's), its trainable fraction
and its training cost (wall time and tokens/s from the metrics, and the wall time relative to Full SFT's).
Built from the comparison table with its per-item records (:func:`cofitune.reporting.aggregate.build_table`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cofitune.pipeline.io import atomic_write_text
from cofitune.reporting import verdicts
from cofitune.reporting.references import reference_row

#: the rows every other row is judged against (with their names in prose), and the measures of each verdict
JUDGES = ("full_sft", "cofitune")
JUDGE_NAMES = {"full_sft": "Full SFT", "cofitune": "CoFiTune"}
VERDICT_MEASURES = ("Spec", "Vers", "Uni")


def _verdicts(group: pd.DataFrame, ref: pd.Series | None, uni) -> dict[tuple, dict]:
    """Every row of a block against one judge on every verdict measure, Holm-corrected as one family: a board of
    20 rows makes 57 comparisons per judge, and uncorrected, 1 in 20 of those with no real difference would read
    decided by chance."""
    if ref is None:
        return {}
    rows = {i: row["_record"] for i, row in group.iterrows() if i != ref.name}
    return {key: {"delta": c.delta, "lo": c.lo, "hi": c.hi, "p_adjusted": c.p_adjusted, "verdict": c.verdict,
                  "settle": verdicts.settle_text(c.as_dict())}
            for key, c in verdicts.compare_block(rows, ref["_record"], VERDICT_MEASURES, uni=uni).items()}


def _cost_of(row: pd.Series, ref_seeds: list) -> tuple[float, float]:
    """A row's training (wall s, tokens/s): of its runs with Full SFT's seeds where it has them, else of all its
    runs. Like for like: the extra seeds of a strong row may have trained later, on another machine."""
    per_seed = row["_record"].get("train") or {}
    runs = [per_seed[s] for s in ref_seeds if s in per_seed] or list(per_seed.values())
    if not runs:
        return math.nan, math.nan
    return (float(sum(t["wall_s"] for t in runs) / len(runs)), float(sum(t["tokens_per_s"] for t in runs) / len(runs)))


def _block(group: pd.DataFrame, uni, references) -> list[dict]:
    model, task = group.iloc[0].model, group.iloc[0].task
    judges = {j: reference_row(group, j, references, f"{model}/{task}") for j in JUDGES}
    verdicts = {j: _verdicts(group, ref, uni) for j, ref in judges.items()}
    ref_seeds = judges["full_sft"]["_record"]["seeds"] if judges["full_sft"] is not None else []
    costs = {i: _cost_of(row, ref_seeds) for i, row in group.iterrows()}
    full_wall = costs[judges["full_sft"].name][0] if judges["full_sft"] is not None else math.nan
    ranked = group.sort_values("Uni", ascending=False, kind="stable")
    out = []
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        entry = {"model": model, "task": task, "rank": rank, "method": row.method, "variant": row.variant,
                 "setting": row.setting, "seeds": row.seeds, "Uni": row.Uni,
                 "Spec": row.Spec, "Spec_lo": row.Spec_lo, "Spec_hi": row.Spec_hi,
                 "Vers": row.Vers, "Vers_lo": row.Vers_lo, "Vers_hi": row.Vers_hi,
                 "Spec_rank": int((group.Spec > row.Spec).sum()) + 1,
                 "Vers_rank": int((group.Vers > row.Vers).sum()) + 1,
                 "trainable_frac": row.trainable_frac, "train_wall_s": costs[row.name][0],
                 "train_tokens_per_s": costs[row.name][1],
                 "cost_vs_full_sft": costs[row.name][0] / full_wall if full_wall > 0 else math.nan}
        for judge in JUDGES:
            for measure in VERDICT_MEASURES:
                for k, v in verdicts[judge].get((row.name, measure), {}).items():
                    entry[f"{measure}_vs_{judge}_{k}"] = v
        out.append(entry)
    return out


def build_leaderboard(table: pd.DataFrame, uni: dict[str, float] | None = None,
                      references: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per table row, ranked within its (model, task) by Uni; ``table`` keeps its ``_record`` column."""
    rows = [r for _, g in table.groupby(["model", "task"], sort=False) for r in _block(g, uni, references)]
    return pd.DataFrame(rows)


def _fields(row: pd.Series, measure: str, judge: str) -> dict:
    """A row's verdict against a judge, as its columns hold it."""
    base = f"{measure}_vs_{judge}"
    return {f: row.get(f"{base}_{f}") for f in ("delta", "lo", "hi", "verdict", "p_adjusted", "settle")}


def _cell(row: pd.Series, measure: str, judge: str) -> str:
    fields = _fields(row, measure, judge)
    return verdicts.cell(fields, settle=fields["settle"])


def _cost(row: pd.Series) -> str:
    if row.train_wall_s != row.train_wall_s:
        return "–" if row.method == "original" else "post-hoc"
    ratio = "" if row.cost_vs_full_sft != row.cost_vs_full_sft else f" ({row.cost_vs_full_sft:.2f}x)"
    return f"{row.train_wall_s:.0f} s{ratio}, {row.train_tokens_per_s:.0f} tok/s"


def to_markdown(board: pd.DataFrame) -> str:
    out = ["# cofitune: leaderboard", "",
           "Rows ranked by Uni within each (task, model); Spec and Vers ranks beside. Verdicts: the row minus the "
           "reference (Full SFT, CoFiTune), paired-bootstrap 95% CI over test items (and seeds), `better` / "
           "`worse` / `undecided` after Holm's correction over each reference's comparisons (a CI that excludes 0 "
           "can still read undecided); an undecided cell says what would settle it. Cost: training wall time "
           "(x Full SFT's) and tokens/s from the metrics of the row's run with Full SFT's seed (all its runs "
           "where it has no such run).", ""]
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


def _decided(block: pd.DataFrame, judge: str, measure: str, verdict: str) -> str:
    column = f"{measure}_vs_{judge}_verdict"
    hits = block[block[column] == verdict] if column in block else block.iloc[:0]
    return "; ".join(f"{r.method}/{r.variant} {verdicts.difference(_fields(r, measure, judge))}"
                     + (f", {r.seeds} seeds" if r.seeds > 1 else "") for _, r in hits.iterrows()) or "–"


def verdicts_markdown(board: pd.DataFrame) -> str:
    """The board's decided cells only, one line per judge and measure: what the README quotes (through
    ``cofitune sync-readme``), so its prose on the leaderboard is generated, never typed."""
    out = ["# cofitune: the leaderboard's decided verdicts", "",
           "Every leaderboard cell whose paired verdict is decided after Holm's correction over each reference's "
           "comparisons: the row minus the reference, 95% CI. Every other cell is undecided.", ""]
    for (task, model), block in board.groupby(["task", "model"], sort=False):
        cells = [c for c in block.columns if c.endswith("_verdict")]
        undecided = int(sum((block[c] == "undecided").sum() for c in cells))
        out += [f"## {task} · {model}", "", f"{len(block)} rows; {undecided} of "
                f"{int(sum(block[c].notna().sum() for c in cells))} cells undecided.", "",
                "| Reference | Measure | better than it | worse than it |", "|---|---|---|---|"]
        out += [f"| {JUDGE_NAMES[j]} | {m} | {_decided(block, j, m, 'better')} | {_decided(block, j, m, 'worse')} |"
                for j in JUDGES for m in VERDICT_MEASURES]
        out.append("")
    return "\n".join(out)


def write_leaderboard(table: pd.DataFrame, csv: str | Path | None, md: str | Path | None, *,
                      uni: dict[str, float] | None = None, references: dict[str, str] | None = None,
                      verdicts_md: str | Path | None = None) -> pd.DataFrame:
    board = build_leaderboard(table, uni, references)
    if csv is not None:
        atomic_write_text(csv, board.to_csv(index=False, float_format="%.6f"))
    if md is not None:
        atomic_write_text(md, to_markdown(board))
    if verdicts_md is not None:
        atomic_write_text(verdicts_md, verdicts_markdown(board))
    return board
