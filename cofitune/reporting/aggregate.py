"""Comparison tables in the paper's layout, derived only from per-run ``metrics.json`` files.

One row per (model, task, method, row): a row is a configured variant; with ``seeds`` it gathers one run
per seed and reports mean and std. Columns: Spec with its 95% bootstrap CI, every versatility suite and
aspect, Vers (+CI), Uni, the relative views (ΔVers vs Full SFT %, Vers retention vs original %, Spec
retention vs Full SFT %), paired-bootstrap CIs of the differences to ``original``, the trainable fraction,
and provenance (seeds, dirty-tree flag, source files). Written as CSV (every number), Markdown and a
LaTeX ``booktabs`` table (one block per task x model, best value per column in bold).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cofitune.core.methods import describe_setting
from cofitune.pipeline.artifacts import read_metrics, read_run_config
from cofitune.pipeline.io import atomic_write_text
from cofitune.reporting import signal, verdicts
from cofitune.reporting.references import reference_row
from cofitune.stats.measures import MEASURES, compare_rows, variance_split
from cofitune.stats.measures import record as measures_record
from cofitune.stats import uni_score

KEYS = ["model", "task", "method", "variant"]
REFERENCES = ("original", "full_sft")
#: training wall time and tokens/s of a row (mean over seeds): in the leaderboard, never in the table
# Columns where higher is better and the best value is marked (fine-tuned rows only: `original` is the
# reference, not a competitor).
BEST = ("Spec", "Vers", "Uni", "dVers_vs_full_sft_%", "Vers_ret_original_%", "Spec_ret_full_sft_%")


COMPARISON_FIELDS = ("lo", "hi", "verdict", "p_adjusted", "mde", "items_needed", "seeds_needed")


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _row(group: list[tuple[Path, dict]], uni: dict | None) -> dict:
    """One table row from the metrics files of one (model, task, method, row), one per seed."""
    runs = [m for _, m in sorted(group, key=lambda pm: pm[1]["run"]["seed"])]
    first = runs[0]["run"]
    mets = [r["metrics"] for r in runs]
    aspects = mets[0]["aspects_tasks"]
    for r in runs[1:]:
        if r["metrics"]["aspects_tasks"] != aspects or r["run"]["params"] != first["params"]:
            raise ValueError(f"{first['model']}/{first['task']}/{first['method']}: seeds of one row differ in "
                             f"params or suites: {[str(p) for p, _ in group]}")
    row = {"model": first["model"], "task": first["task"], "method": first["method"],
           # files written before `seeds` existed have no `row`: each run is its own row
           "variant": first.get("row", first["variant"]),
           # in words, as the method says it (ffn@bottom2, update mask); the params themselves are in the run files
           "setting": describe_setting(first["method"], first.get("params")),
           "seeds": len(runs), "seed_list": ";".join(str(r["run"]["seed"]) for r in runs)}
    spec = [m["spec"] for m in mets]
    vers = [m["vers"] for m in mets]
    row["Spec"], row["Spec_std"] = float(np.mean(spec)), _std(spec)
    record = measures_record(runs)
    for suite in mets[0]["suites"]:
        row[suite] = float(np.mean([m["suites"][suite]["score"] for m in mets]))
        if all("cut_share" in m["suites"][suite] for m in mets):  # a generation suite: answers its budget cut
            row[f"cut_share:{suite}"] = float(np.mean([m["suites"][suite]["cut_share"] for m in mets]))
    for aspect in mets[0]["aspects"]:
        row[f"aspect:{aspect}"] = float(np.mean([m["aspects"][aspect] for m in mets]))
    row["Vers"], row["Vers_std"] = float(np.mean(vers)), _std(vers)
    for measure in MEASURES:  # every row's own CI: seeds, then items (the engine of every comparison)
        c = compare_rows(record, None, measure, aspects)  # None: VersM/Drift of files older than the measure
        if measure not in row:
            row[measure] = math.nan if c is None else c.delta
        row[f"{measure}_lo"], row[f"{measure}_hi"] = (math.nan, math.nan) if c is None else (c.lo, c.hi)
        split = variance_split(record, measure, aspects)  # several seeds: buy items or seeds?
        row[f"{measure}_sd_seed"], row[f"{measure}_sd_item"] = (
            (math.nan, math.nan) if split is None else (math.sqrt(split["seed"]), math.sqrt(split["item"])))
    unis = [uni_score(s, v, uni) for s, v in zip(spec, vers)]
    row["Uni"], row["Uni_std"] = float(np.mean(unis)), _std(unis)
    row["trainable_frac"] = float(np.mean([m["trainable_fraction"] for m in mets]))
    row["format"] = format_text(mets[0].get("format"))
    trains = [r["meta"].get("train") for r in runs]  # None: the original, a post-hoc combination
    row["git_dirty"] = any(bool(r["meta"]["git"]["dirty"]) for r in runs)
    row["git_sha"] = ";".join(sorted({str(r["meta"]["git"]["sha"]) for r in runs}))
    row["sources"] = ";".join(str(p) for p, _ in group)
    row["_record"] = {**record, "aspects": aspects, "params": first.get("params") or {},
                      "train": {r["run"]["seed"]: t for r, t in zip(runs, trains) if t}}  # cost per seed
    return row


def format_text(fmt: dict | None) -> str:
    """The prompt format a row was trained and evaluated in: ``chat`` (its tokenizer's chat template, lm-eval's too),
    ``alpaca``, or a mix (``chat; lm-eval plain``); empty for a file older than the record."""
    if not fmt:
        return ""
    lm_eval = fmt.get("apply_chat_template")
    mixed = (fmt["template"] == "chat") != bool(lm_eval)
    return fmt["template"] + (f"; lm-eval {'chat' if lm_eval else 'plain'}" if mixed else "")


def _pct(value: float, reference: float) -> float:
    """``100 * value / reference``; NaN (an empty cell) when the reference is 0."""
    return math.nan if reference == 0 else 100.0 * value / reference


def build_table(paths: list[str | Path], uni: dict[str, float] | None = None, *, keep_records: bool = False,
                references: dict[str, str] | None = None) -> pd.DataFrame:
    """The comparison table (every number) from metrics files; ``uni``: the Uni weights; ``references``: the
    reference rows by method (:func:`reference_row`). ``keep_records`` keeps each row's per-item data in a
    ``_record`` column (for :mod:`cofitune.reporting.claims` and the leaderboard)."""
    groups: dict[tuple, list] = {}
    for path in paths:
        m = read_metrics(path)
        run = m["run"]
        groups.setdefault((run["model"], run["task"], run["method"], run.get("row", run["variant"])), []).append(
            (Path(path), m))
    if not groups:
        raise ValueError("no metrics files given")
    df = pd.DataFrame([_row(g, uni) for g in groups.values()])
    for col in ("dVers_vs_full_sft_%", "Vers_ret_original_%", "Spec_ret_full_sft_%"):
        df[col] = math.nan
    for col in comparison_columns():
        df[col] = math.nan if not col.endswith("_verdict") else ""
    block_refs = {}
    for (model, task), group in df.groupby(["model", "task"], sort=False):
        ref = {meth: row for meth in REFERENCES
               if (row := reference_row(group, meth, references, f"{model}/{task}")) is not None}
        block_refs[(task, model)] = ref
        for i in group.index:
            if "full_sft" in ref:
                full = ref["full_sft"]
                df.at[i, "Spec_ret_full_sft_%"] = _pct(df.at[i, "Spec"], full["Spec"])
                df.at[i, "dVers_vs_full_sft_%"] = _pct(df.at[i, "Vers"] - full["Vers"], full["Vers"])
            if "original" in ref:
                df.at[i, "Vers_ret_original_%"] = _pct(df.at[i, "Vers"], ref["original"]["Vers"])
        for name, reference in ref.items():
            _fill_comparisons(df, group, reference, name, uni)
    df = signal.fill_signal(df, block_refs)
    order = {"original": 0, "full_sft": 1}
    df["_o"] = df.method.map(lambda x: order.get(x, 2))
    # training cost (timings) only in the records, for the leaderboard: the table itself is a pure function of
    # the results, so a re-run reproduces it bit for bit
    df = df.sort_values(["task", "model", "_o", "method", "variant"], kind="stable").drop(
        columns=["_o"] if keep_records else ["_o", "_record"])
    tail = ["trainable_frac", "format", "seeds", "seed_list", "git_dirty", "git_sha", "sources"] + (
        ["_record"] if keep_records else [])
    return df[[c for c in df.columns if c not in tail] + tail].reset_index(drop=True)


def comparison_columns() -> list[str]:
    """``d<measure>_vs_<reference>`` with its CI, verdict, Holm-adjusted p, MDE and what would settle it."""
    out = []
    for reference in REFERENCES:
        for measure in MEASURES:
            base = f"d{measure}_vs_{reference}"
            out += [base, *(f"{base}_{f}" for f in COMPARISON_FIELDS)]
    return out


def _fill_comparisons(df: pd.DataFrame, group: pd.DataFrame, reference: pd.Series, name: str,
                      uni: dict | None) -> None:
    """Every row of one block against one reference on every measure, Holm-corrected as one family."""
    rows = {i: df.at[i, "_record"] for i in group.index if i != reference.name}
    for (i, measure), c in verdicts.compare_block(rows, reference["_record"], MEASURES, uni=uni).items():
        base = f"d{measure}_vs_{name}"
        df.at[i, base] = c.delta
        for f in COMPARISON_FIELDS:
            df.at[i, f"{base}_{f}"] = getattr(c, f) if getattr(c, f) is not None else (
                "" if f == "verdict" else math.nan)


def comparison_of(row: pd.Series, measure: str, reference: str) -> dict:
    """A row's comparison with a reference on a measure, as its columns hold it (the fields of
    :func:`cofitune.reporting.verdicts.cell`)."""
    base = f"d{measure}_vs_{reference}"
    return {"delta": row.get(base), **{f: row.get(f"{base}_{f}") for f in COMPARISON_FIELDS}, "seeds": row["seeds"]}


def best_rows(block: pd.DataFrame) -> dict[str, set]:
    """Index labels holding the best (maximum) value of each BEST column among non-`original` rows."""
    out = {}
    competitors = block[block.method != "original"]
    for col in BEST:
        values = competitors[col].dropna()
        out[col] = set(values.index[values == values.max()]) if len(values) else set()
    return out


def _cell(row: pd.Series, col: str, with_ci: bool) -> str:
    value = row[col]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    digits = verdicts.measure_digits(col)
    text = f"{value:.{digits}f}"
    std = row.get(f"{col}_std")
    if std is not None and not math.isnan(std):
        return f"{text} ± {std:.2f}"
    if with_ci and not math.isnan(row.get(f"{col}_lo", math.nan)):
        lo_hi = {"Drift": 4, "TaskDrift": 4, "VersM": 3}.get(col, 1)
        return f"{text} [{row[f'{col}_lo']:.{lo_hi}f}, {row[f'{col}_hi']:.{lo_hi}f}]"
    return text


def display_blocks(df: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]], list[set]]]:
    """Per (task, model): title, header, cell strings, and per row the set of columns that are best."""
    aspects = [c for c in df.columns if c.startswith("aspect:")]
    cols = ["Spec", *aspects, "Vers", "VersM", "Drift", "TaskDrift", "Uni", "dVers_vs_full_sft_%", "Vers_ret_original_%",
            "Spec_ret_full_sft_%", "trainable_frac"]
    tail = ["Vers", "VersM", "Drift", "TaskDrift", "Uni",
              "ΔVers vs Full SFT (%)", "Vers ret. orig. (%)", "Spec ret. Full SFT (%)", "Trainable"]
    blocks = []
    for (task, model), block in df.groupby(["task", "model"], sort=False):
        best = best_rows(block)
        named = [signal.aspect_header(a.split(":", 1)[1], block.iloc[0]) for a in aspects]
        header = ["Method", "Setting", "Format", "Seeds", "Spec", *named, *tail]
        rows, marks = [], []
        for i, row in block.iterrows():
            name = f"{row.method}/{row.variant}" + (" †" if row.git_dirty else "")
            cells = [name, row.setting or "", row.get("format") or "", str(row.seeds)]
            cells += [_cell(row, c, with_ci=c in ("Spec", "Vers", "VersM", "Drift", "TaskDrift")) if c != "trainable_frac"
                      else f"{100 * row[c]:.2f}%" for c in cols]
            rows.append(cells)
            marks.append({header[4 + k] for k, c in enumerate(cols) if i in best.get(c, set())})
        blocks.append((f"{task} · {model}", header, rows, marks))
    return blocks


FOOTNOTE = ("Spec, Vers, VersM (continuous Vers: the gold choice's log-likelihood margin over the best distractor on "
            "the scale each multiple-choice suite's headline ranks; > 0 exactly when the item is right) and Drift "
            "(mean per-token KL(p_original || p_row) on the 220-prompt probe, nats): mean [95% bootstrap CI over "
            "test items], or mean ± std over seeds. Best value per column among fine-tuned rows in bold. "
            "† = produced from a dirty git tree (uncommitted code).")
COMPARISON_NOTE = ("Paired differences (row - reference) with their paired-bootstrap 95% CI (seeds, then items) and a "
                   "verdict oriented by what is better (Drift: lower). Holm's correction over each block's comparisons "
                   "with one reference; a CI touching 0 is undecided. Undecided cells give the minimum detectable "
                   "effect at 80% power and the items per test set (or seeds) that would settle the observed difference.")


SEEDS_NOTE = ("Rows with several seeds: the standard deviation of one seed's value that comes from the training "
              "seed (sd seed) and from the finite test items (sd item). More items shrink only sd item; more "
              "seeds shrink both. Where sd seed dominates, buy seeds, not items.")


def seed_blocks(df: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per (task, model) with multi-seed rows: the seed and item components of every measure."""
    header = ["Method", "Seeds", *[f"{m} sd seed / sd item" for m in MEASURES]]
    out = []
    for (task, model), block in df[df.seeds > 1].groupby(["task", "model"], sort=False):
        rows = []
        for _, row in block.iterrows():
            cells = []
            for m in MEASURES:
                d = verdicts.measure_digits(m)
                s_, i_ = row[f"{m}_sd_seed"], row[f"{m}_sd_item"]
                cells.append("–" if math.isnan(s_) else f"{s_:.{d}f} / {i_:.{d}f}")
            rows.append([f"{row.method}/{row.variant}", str(row.seeds), *cells])
        out.append((f"{task} · {model}: seeds vs items", header, rows))
    return out


def comparison_blocks(df: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per (task, model): the verdict table (every non-reference row against original and Full SFT)."""
    header = ["Method", *[f"{m} vs {r}" for r in REFERENCES for m in MEASURES]]
    out = []
    for (task, model), block in df.groupby(["task", "model"], sort=False):
        rows = [[f"{row.method}/{row.variant}", *[verdicts.cell(comparison_of(row, m, r), verdicts.measure_digits(m))
                                                  for r in REFERENCES for m in MEASURES]]
                for _, row in block.iterrows() if row.method != "original"]
        out.append((f"{task} · {model}: comparisons", header, rows))
    return out


def to_markdown(df: pd.DataFrame) -> str:
    out = ["# cofitune: comparison table", "", FOOTNOTE, ""]
    for title, header, rows, marks in display_blocks(df):
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cells, best in zip(rows, marks):
            shown = [f"**{c}**" if h in best else c for h, c in zip(header, cells)]
            out.append("| " + " | ".join(shown) + " |")
        out.append("")
    out += [COMPARISON_NOTE, ""]
    seeds = seed_blocks(df)
    for title, header, rows in (comparison_blocks(df) + [("signal", [], [])] + signal.signal_blocks(df)
                                + ([("", [], [])] if seeds else []) + seeds):
        if title == "signal":
            out += [signal.SIGNAL_NOTE, ""]
            continue
        if not title:
            out += [SEEDS_NOTE, ""]
            continue
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in rows]
        out.append("")
    return "\n".join(out)


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("†", r"$^\dagger$"), ("–", "--")):
        text = text.replace(a, b)
    return text


def to_latex(df: pd.DataFrame) -> str:
    """One ``booktabs`` table per (task, model); needs ``\\usepackage{booktabs}``."""
    out = [f"% {FOOTNOTE}"]
    for title, header, rows, marks in display_blocks(df):
        out += [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}",
                r"\toprule", " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
        for cells, best in zip(rows, marks):
            shown = [rf"\textbf{{{_tex(c)}}}" if h in best else _tex(c) for h, c in zip(header, cells)]
            out.append(" & ".join(shown) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(title)}}}", r"\end{table}", ""]
    return "\n".join(out)


def to_html(df: pd.DataFrame) -> str:
    """A self-contained HTML page (the Snakemake report shows it in its viewer)."""
    from html import escape

    style = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:2em}"
             "th,td{padding:3px 8px;text-align:right;border-bottom:1px solid #ddd}"
             "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}"
             "thead th{border-bottom:2px solid #333}caption{text-align:left;font-weight:bold;padding:4px 0}")
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>cofitune table</title><style>{style}</style>"
           "</head><body><h1>cofitune: comparison table</h1>", f"<p>{escape(FOOTNOTE)}</p>"]
    for title, header, rows, marks in display_blocks(df):
        out.append(f"<table><caption>{escape(title)}</caption><thead><tr>"
                   + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for cells, best in zip(rows, marks):
            out.append("<tr>" + "".join(f"<td><b>{escape(c)}</b></td>" if h in best else f"<td>{escape(c)}</td>"
                                        for h, c in zip(header, cells)) + "</tr>")
        out.append("</tbody></table>")
    for note, blocks in ((COMPARISON_NOTE, comparison_blocks(df)), (signal.SIGNAL_NOTE, signal.signal_blocks(df))):
        out.append(f"<p>{escape(note)}</p>")
        for title, header, rows in blocks:
            out.append(f"<table><caption>{escape(title)}</caption><thead><tr>"
                       + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>" for cells in rows]
            out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


def refuse_stale(metrics: list[str | Path], run_configs: list[str | Path]) -> None:
    """Refuse a ``metrics.json`` whose recorded run configuration is not the current one (``run_configs``,
    the rows' current config files, in the same order): a table never mixes stale rows with fresh ones.

    Raises:
        ValueError: naming the file, the row and every differing key.
    """
    from cofitune.pipeline.io import config_differences

    if len(metrics) != len(run_configs):
        raise ValueError(f"{len(metrics)} metrics files but {len(run_configs)} run configs: give one per row")
    for path, cfg_path in zip(metrics, run_configs):
        recorded, current = read_metrics(path)["meta"]["run_config"], read_run_config(cfg_path)
        changed = config_differences(recorded, current)
        if changed:
            raise ValueError(f"{path}: row {current['method']}/{current['variant']} is stale: it was computed under "
                             f"another configuration than the current one ({'; '.join(changed)}). Re-run it "
                             f"(snakemake re-runs it), or restore the configuration it was made with")


def write_tables(paths: list[str | Path], csv: str | Path, md: str | Path, tex: str | Path | None = None,
                 html: str | Path | None = None, uni: dict[str, float] | None = None,
                 claims_csv: str | Path | None = None, claims_md: str | Path | None = None,
                 references: dict[str, str] | None = None, leaderboard_csv: str | Path | None = None,
                 leaderboard_md: str | Path | None = None, leaderboard_verdicts_md: str | Path | None = None
                 ) -> pd.DataFrame:
    from cofitune.reporting.claims import build_claims, claims_markdown

    full = build_table(paths, uni, keep_records=True, references=references)
    if any(p is not None for p in (leaderboard_csv, leaderboard_md, leaderboard_verdicts_md)):
        from cofitune.reporting.leaderboard import write_leaderboard

        write_leaderboard(full, leaderboard_csv, leaderboard_md, uni=uni, references=references,
                          verdicts_md=leaderboard_verdicts_md)
    df = full.drop(columns=["_record"])
    if claims_csv is not None or claims_md is not None:
        claims = build_claims(full, uni)
        if claims_csv is not None:
            atomic_write_text(claims_csv, claims.to_csv(index=False, float_format="%.6f"))
        if claims_md is not None:
            atomic_write_text(claims_md, claims_markdown(claims))
    atomic_write_text(csv, df.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(md, to_markdown(df))
    if tex is not None:
        atomic_write_text(tex, to_latex(df))
    if html is not None:
        atomic_write_text(html, to_html(df))
    return df
