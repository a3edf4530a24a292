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

from cofitune.io import atomic_write_text, read_json
from cofitune.stats import bootstrap_ci, paired_bootstrap_ci, uni_score

KEYS = ["model", "task", "method", "variant"]
REFERENCES = ("original", "full_sft")
# Columns where higher is better and the best value is marked (fine-tuned rows only: `original` is the
# reference, not a competitor).
BEST = ("Spec", "Vers", "Uni", "dVers_vs_full_sft_%", "Vers_ret_original_%", "Spec_ret_full_sft_%")


def vers_from_items(suites: dict, aspects: dict[str, list[str]], idx: dict[str, np.ndarray] | None = None) -> float:
    """Vers = mean over aspects of the mean of their suite scores (optionally on resampled items)."""
    def suite_score(name):
        items = np.asarray(suites[name]["items"], dtype=float)
        return 100.0 * (items[idx[name]] if idx else items).mean()
    return float(np.mean([np.mean([suite_score(t) for t in tasks]) for tasks in aspects.values()]))


def _suite_indices(rng, a: dict, b: dict | None, aspects: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """One bootstrap draw of item indices per suite (the same indices serve both runs of a pair)."""
    idx = {}
    for tasks in aspects.values():
        for t in tasks:
            n = len(a[t]["items"])
            if b is not None and n != len(b[t]["items"]):
                raise ValueError(f"suite {t}: runs scored different item counts ({n} vs {len(b[t]['items'])})")
            idx[t] = rng.integers(0, n, size=n)
    return idx


def _vers_boot(a: dict, b: dict | None, aspects: dict[str, list[str]], n_boot: int, seed: int) -> tuple[float, float]:
    """95% CI of Vers(a) [- Vers(b)], resampling each suite's items (the same indices for a and b)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = _suite_indices(rng, a, b, aspects)
        v = vers_from_items(a, aspects, idx)
        values.append(v if b is None else v - vers_from_items(b, aspects, idx))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def vers_ci(suites: dict, aspects: dict[str, list[str]], n_boot: int = 1000, seed: int = 1234) -> tuple[float, float]:
    """95% bootstrap CI of Vers."""
    return _vers_boot(suites, None, aspects, n_boot, seed)


def paired_vers_delta_ci(a: dict, b: dict, aspects: dict[str, list[str]], n_boot: int = 1000,
                         seed: int = 1234) -> tuple[float, float]:
    """95% CI of Vers(a) - Vers(b), resampling each suite's items with the same indices for a and b."""
    return _vers_boot(a, b, aspects, n_boot, seed)


def paired_uni_delta_ci(a: dict, b: dict, uni: dict[str, float] | None = None, n_boot: int = 1000,
                        seed: int = 1234) -> tuple[float, float]:
    """95% CI of Uni(a) - Uni(b) for two runs' ``metrics`` mappings scored on the same items.

    One draw resamples the Spec items and every versatility suite's items, with the same indices for
    ``a`` and ``b`` (a paired bootstrap, stratified by suite), and recomputes both Uni scores from them.
    """
    sa, sb = np.asarray(a["spec_items"], dtype=float), np.asarray(b["spec_items"], dtype=float)
    if sa.shape != sb.shape:
        raise ValueError(f"speciality: runs scored different item counts ({sa.size} vs {sb.size})")
    aspects = a["aspects_tasks"]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        i = rng.integers(0, sa.size, size=sa.size)
        idx = _suite_indices(rng, a["suites"], b["suites"], aspects)
        values.append(uni_score(sa[i].mean(), vers_from_items(a["suites"], aspects, idx), uni)
                      - uni_score(sb[i].mean(), vers_from_items(b["suites"], aspects, idx), uni))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def _mean_items(runs: list[dict]) -> tuple[list[float], dict]:
    """Per-item scores averaged over a row's seeds (the same test items in every seed)."""
    spec = np.mean([r["metrics"]["spec_items"] for r in runs], axis=0)
    suites = {name: {"items": np.mean([r["metrics"]["suites"][name]["items"] for r in runs], axis=0)}
              for name in runs[0]["metrics"]["suites"]}
    return spec.tolist(), suites


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
    spec_items, suites = _mean_items(runs)
    row = {"model": first["model"], "task": first["task"], "method": first["method"],
           # files written before `seeds` existed have no `row`: each run is its own row
           "variant": first.get("row", first["variant"]),
           # unset options (None: e.g. LoRA on every layer) are left out rather than printed as "None"
           "setting": ";".join(f"{k}={v}" for k, v in sorted((first.get("params") or {}).items()) if v is not None),
           "seeds": len(runs), "seed_list": ";".join(str(r["run"]["seed"]) for r in runs)}
    spec = [m["spec"] for m in mets]
    vers = [m["vers"] for m in mets]
    row["Spec"], row["Spec_std"] = float(np.mean(spec)), _std(spec)
    row["Spec_lo"], row["Spec_hi"] = bootstrap_ci(spec_items)
    for suite in mets[0]["suites"]:
        row[suite] = float(np.mean([m["suites"][suite]["score"] for m in mets]))
    for aspect in mets[0]["aspects"]:
        row[f"aspect:{aspect}"] = float(np.mean([m["aspects"][aspect] for m in mets]))
    row["Vers"], row["Vers_std"] = float(np.mean(vers)), _std(vers)
    row["Vers_lo"], row["Vers_hi"] = vers_ci(suites, aspects)
    unis = [uni_score(s, v, uni) for s, v in zip(spec, vers)]
    row["Uni"], row["Uni_std"] = float(np.mean(unis)), _std(unis)
    row["trainable_frac"] = float(np.mean([m["trainable_fraction"] for m in mets]))
    row["git_dirty"] = any(bool(r["meta"]["git"]["dirty"]) for r in runs)
    row["git_sha"] = ";".join(sorted({str(r["meta"]["git"]["sha"]) for r in runs}))
    row["sources"] = ";".join(str(p) for p, _ in group)
    row["_items"] = (spec_items, suites, aspects)
    return row


def _pct(value: float, reference: float) -> float:
    """``100 * value / reference``; NaN (an empty cell) when the reference is 0."""
    return math.nan if reference == 0 else 100.0 * value / reference


def build_table(paths: list[str | Path], uni: dict[str, float] | None = None) -> pd.DataFrame:
    """The comparison table (every number) from metrics files; ``uni``: the Uni weights."""
    groups: dict[tuple, list] = {}
    for path in paths:
        m = read_json(path)
        run = m["run"]
        groups.setdefault((run["model"], run["task"], run["method"], run.get("row", run["variant"])), []).append(
            (Path(path), m))
    if not groups:
        raise ValueError("no metrics files given")
    df = pd.DataFrame([_row(g, uni) for g in groups.values()])
    for col in ("dVers_vs_full_sft_%", "Vers_ret_original_%", "Spec_ret_full_sft_%",
                "dVers_vs_original", "dVers_lo", "dVers_hi", "dSpec_vs_original", "dSpec_lo", "dSpec_hi"):
        df[col] = math.nan
    for (model, task), group in df.groupby(["model", "task"], sort=False):
        ref = {}
        for meth in REFERENCES:
            rows = group[group.method == meth]
            if len(rows) > 1:  # which one would be the reference is ambiguous: refuse to guess
                raise ValueError(f"{model}/{task}: {len(rows)} '{meth}' rows; relative columns need exactly one")
            if len(rows) == 1:
                ref[meth] = rows.iloc[0]
        for i in group.index:
            spec_items, suites, aspects = df.at[i, "_items"]
            if "full_sft" in ref:
                full = ref["full_sft"]
                df.at[i, "Spec_ret_full_sft_%"] = _pct(df.at[i, "Spec"], full["Spec"])
                df.at[i, "dVers_vs_full_sft_%"] = _pct(df.at[i, "Vers"] - full["Vers"], full["Vers"])
            if "original" in ref:
                o_spec, o_suites, _ = ref["original"]["_items"]
                df.at[i, "Vers_ret_original_%"] = _pct(df.at[i, "Vers"], ref["original"]["Vers"])
                df.at[i, "dVers_vs_original"] = df.at[i, "Vers"] - ref["original"]["Vers"]
                df.at[i, "dVers_lo"], df.at[i, "dVers_hi"] = paired_vers_delta_ci(suites, o_suites, aspects)
                df.at[i, "dSpec_vs_original"] = df.at[i, "Spec"] - ref["original"]["Spec"]
                df.at[i, "dSpec_lo"], df.at[i, "dSpec_hi"] = paired_bootstrap_ci(spec_items, o_spec)
    order = {"original": 0, "full_sft": 1}
    df["_o"] = df.method.map(lambda x: order.get(x, 2))
    df = df.sort_values(["task", "model", "_o", "method", "variant"], kind="stable").drop(columns=["_o", "_items"])
    tail = ["trainable_frac", "seeds", "seed_list", "git_dirty", "git_sha", "sources"]
    return df[[c for c in df.columns if c not in tail] + tail].reset_index(drop=True)


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
    text = f"{value:.2f}"
    std = row.get(f"{col}_std")
    if std is not None and not math.isnan(std):
        return f"{text} ± {std:.2f}"
    if with_ci and not math.isnan(row.get(f"{col}_lo", math.nan)):
        return f"{text} [{row[f'{col}_lo']:.1f}, {row[f'{col}_hi']:.1f}]"
    return text


def display_blocks(df: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]], list[set]]]:
    """Per (task, model): title, header, cell strings, and per row the set of columns that are best."""
    aspects = [c for c in df.columns if c.startswith("aspect:")]
    cols = ["Spec", *aspects, "Vers", "Uni", "dVers_vs_full_sft_%", "Vers_ret_original_%",
            "Spec_ret_full_sft_%", "trainable_frac"]
    header = ["Method", "Setting", "Seeds", "Spec", *[a.split(":", 1)[1] for a in aspects], "Vers", "Uni",
              "ΔVers vs Full SFT (%)", "Vers ret. orig. (%)", "Spec ret. Full SFT (%)", "Trainable"]
    blocks = []
    for (task, model), block in df.groupby(["task", "model"], sort=False):
        best = best_rows(block)
        rows, marks = [], []
        for i, row in block.iterrows():
            name = f"{row.method}/{row.variant}" + (" †" if row.git_dirty else "")
            cells = [name, row.setting or "", str(row.seeds)]
            cells += [_cell(row, c, with_ci=c in ("Spec", "Vers")) if c != "trainable_frac"
                      else f"{100 * row[c]:.2f}%" for c in cols]
            rows.append(cells)
            marks.append({header[3 + k] for k, c in enumerate(cols) if i in best.get(c, set())})
        blocks.append((f"{task} · {model}", header, rows, marks))
    return blocks


FOOTNOTE = ("Spec and Vers: mean [95% bootstrap CI over test items], or mean ± std over seeds. Best value per "
            "column among fine-tuned rows in bold. † = produced from a dirty git tree (uncommitted code).")


def to_markdown(df: pd.DataFrame) -> str:
    out = ["# cofitune: comparison table", "", FOOTNOTE, ""]
    for title, header, rows, marks in display_blocks(df):
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cells, best in zip(rows, marks):
            shown = [f"**{c}**" if h in best else c for h, c in zip(header, cells)]
            out.append("| " + " | ".join(shown) + " |")
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
    out.append("</body></html>")
    return "\n".join(out)


def write_tables(paths: list[str | Path], csv: str | Path, md: str | Path, tex: str | Path | None = None,
                 html: str | Path | None = None, uni: dict[str, float] | None = None) -> pd.DataFrame:
    df = build_table(paths, uni)
    atomic_write_text(csv, df.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(md, to_markdown(df))
    if tex is not None:
        atomic_write_text(tex, to_latex(df))
    if html is not None:
        atomic_write_text(html, to_html(df))
    return df
