"""Comparison tables derived only from per-run ``metrics.json`` files.

One row per (model, task, method, variant): Spec (+95% CI), each versatility suite and aspect, Vers,
Uni = (Spec + Vers) / 2, Vers relative to ``original`` and Spec relative to ``full_sft`` (%), paired
bootstrap CIs of the differences to ``original``, and the trainable-parameter fraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cofitune.io import atomic_write_text, read_json
from cofitune.stats import paired_bootstrap_ci

KEYS = ["model", "task", "method", "variant"]


def vers_from_items(suites: dict, aspects: dict[str, list[str]], idx: dict[str, np.ndarray] | None = None) -> float:
    """Vers = mean over aspects of the mean of their suite scores (optionally on resampled items)."""
    def suite_score(name):
        items = np.asarray(suites[name]["items"], dtype=float)
        return 100.0 * (items[idx[name]] if idx else items).mean()
    return float(np.mean([np.mean([suite_score(t) for t in tasks]) for tasks in aspects.values()]))


def paired_vers_delta_ci(a: dict, b: dict, aspects: dict[str, list[str]], n_boot: int = 1000,
                         seed: int = 1234) -> tuple[float, float]:
    """95% CI of Vers(a) - Vers(b), resampling each suite's items with the same indices for a and b."""
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_boot):
        idx = {}
        for tasks in aspects.values():
            for t in tasks:
                n = len(a[t]["items"])
                if n != len(b[t]["items"]):
                    raise ValueError(f"suite {t}: runs scored different item counts ({n} vs {len(b[t]['items'])})")
                idx[t] = rng.integers(0, n, size=n)
        deltas.append(vers_from_items(a, aspects, idx) - vers_from_items(b, aspects, idx))
    lo, hi = np.quantile(deltas, [0.025, 0.975])
    return float(lo), float(hi)


def _row(path: str | Path) -> dict:
    m = read_json(path)
    run, met = m["run"], m["metrics"]
    row = {k: run[k] for k in KEYS}
    row["setting"] = ";".join(f"{k}={v}" for k, v in sorted((run.get("params") or {}).items()))
    row["Spec"] = met["spec"]
    row["Spec_ci95"] = "[{:.1f}, {:.1f}]".format(*met["spec_ci95"])
    for suite, res in met["suites"].items():
        row[suite] = res["score"]
    for aspect, value in met["aspects"].items():
        row[f"aspect:{aspect}"] = value
    row["Vers"] = met["vers"]
    row["Uni"] = (met["spec"] + met["vers"]) / 2
    row["trainable_frac"] = met["trainable_fraction"]
    row["git_dirty"] = m["meta"]["git"]["dirty"]
    row["source"] = str(path)
    row["_m"] = m
    return row


def _pct(value: float, reference: float) -> float | None:
    """``100 * value / reference``; None (an empty cell) when the reference is 0."""
    return None if reference == 0 else 100.0 * value / reference


def build_table(paths: list[str | Path]) -> pd.DataFrame:
    rows = [_row(p) for p in paths]
    df = pd.DataFrame(rows)
    for col in ("Vers_rel_original_%", "Spec_rel_full_sft_%", "dVers_vs_original", "dVers_ci95",
                "dSpec_vs_original", "dSpec_ci95"):
        df[col] = None
    for (model, task), group in df.groupby(["model", "task"]):
        ref = {}
        for meth in ("original", "full_sft"):
            rows = group[group.method == meth]
            if len(rows) > 1:  # which one would be the reference is ambiguous: refuse to guess
                raise ValueError(f"{model}/{task}: {len(rows)} '{meth}' rows; relative columns need exactly one")
            if len(rows) == 1:
                ref[meth] = rows.iloc[0]
        for i in group.index:
            m = df.at[i, "_m"]["metrics"]
            if "full_sft" in ref:
                df.at[i, "Spec_rel_full_sft_%"] = _pct(df.at[i, "Spec"], ref["full_sft"]["Spec"])
            if "original" in ref:
                o = ref["original"]["_m"]["metrics"]
                df.at[i, "Vers_rel_original_%"] = _pct(df.at[i, "Vers"], o["vers"])
                df.at[i, "dVers_vs_original"] = m["vers"] - o["vers"]
                df.at[i, "dVers_ci95"] = "[{:+.1f}, {:+.1f}]".format(
                    *paired_vers_delta_ci(m["suites"], o["suites"], m["aspects_tasks"]))
                df.at[i, "dSpec_vs_original"] = m["spec"] - o["spec"]
                df.at[i, "dSpec_ci95"] = "[{:+.1f}, {:+.1f}]".format(
                    *paired_bootstrap_ci(m["spec_items"], o["spec_items"]))
    order = {"original": 0, "full_sft": 1}
    df["_o"] = df.method.map(lambda x: order.get(x, 2))
    df = df.sort_values(["model", "task", "_o", "method", "variant"]).drop(columns=["_o", "_m"])
    return df.reset_index(drop=True)


def write_tables(paths: list[str | Path], csv: str | Path, md: str | Path) -> pd.DataFrame:
    df = build_table(paths)
    atomic_write_text(csv, df.to_csv(index=False, float_format="%.6f"))
    shown = df.drop(columns=["source"])
    atomic_write_text(md, "# cofitune: comparison table\n\n" + shown.to_markdown(index=False, floatfmt=".2f") + "\n")
    return df

