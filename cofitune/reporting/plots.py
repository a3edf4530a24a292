"""Figures: Spec-vs-Vers Pareto plot, tree-search trace, and importance heatmaps.

Every function draws one figure and writes it twice, as a PNG (150 dpi) and an SVG (text kept as
text, so labels stay searchable), each through a temporary file in the target folder and a rename,
so a failed run never leaves a half-written figure. Bad input raises ``ValueError`` naming what is
wrong; no row, node or matrix is silently dropped.
"""

from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # SVG keeps labels as <text>, not glyph paths
matplotlib.rcParams["svg.hashsalt"] = "cofitune"  # reproducible SVG element ids

import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cofitune.core.region import RECORD_KEYS, Region  # noqa: E402
from cofitune.pipeline.artifacts import read_metrics, read_search_record  # noqa: E402
from cofitune.pipeline.io import atomic_path  # noqa: E402

DPI = 150
VERS_LABEL = "Vers (%, mean of aspect scores)"
SPEC_LABEL = "Spec (%, task metric)"
PARETO_COLUMNS = ("method", "variant", "Spec", "Spec_lo", "Spec_hi", "Vers", "Vers_lo", "Vers_hi")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
UNIT_TITLES = {"head": "attention heads", "intermediate": "FFN neurons (up_proj)",
               "output": "FFN outputs (down_proj)"}


# ---- saving ----------------------------------------------------------------------------------------

def _save(fig, png: str | Path, svg: str | Path) -> None:
    """Render ``fig`` to ``png`` and ``svg`` atomically (both or neither), close the figure."""
    try:
        with ExitStack() as stack:
            for path, fmt in ((Path(png), "png"), (Path(svg), "svg")):
                tmp = stack.enter_context(atomic_path(path))
                meta = {"Date": None} if fmt == "svg" else None
                fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=meta)
    finally:
        plt.close(fig)


@contextmanager
def _figure(*args, **kwargs) -> Iterator[tuple[Any, Any]]:
    """``plt.subplots(...)`` whose figure is closed on exit, also when drawing raises."""
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def _finite(value: Any, what: str) -> float:
    """``value`` as a finite float, or a ValueError saying which value is bad."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


# ---- Pareto plot ------------------------------------------------------------------------------------

def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, maximising both x (Vers) and y (Spec).

    A point is dominated when another is at least as good on both axes and strictly better on one;
    exact duplicates therefore do not dominate each other and are all kept. The result is sorted by x
    ascending (then by index).
    """
    pts = [(_finite(x, f"point {i} x"), _finite(y, f"point {i} y")) for i, (x, y) in enumerate(points)]
    front = [i for i, (x, y) in enumerate(pts)
             if not any(ox >= x and oy >= y and (ox > x or oy > y) for ox, oy in pts)]
    return sorted(front, key=lambda i: (pts[i][0], i))


def _whisker(row: pd.Series, col: str, label: str) -> list[list[float]] | None:
    """Asymmetric error bar ``[[below], [above]]`` from ``<col>_lo/_hi``; None when a bound is NaN."""
    value = float(row[col])
    if pd.isna(row[f"{col}_lo"]) or pd.isna(row[f"{col}_hi"]):
        return None
    lo, hi = (_finite(row[c], f"row {label}: {c}") for c in (f"{col}_lo", f"{col}_hi"))
    tol = 1e-9 * max(1.0, abs(value))
    if not lo - tol <= value <= hi + tol:
        raise ValueError(f"row {label}: {col}={value} lies outside its CI [{col}_lo={lo}, {col}_hi={hi}]")
    return [[max(value - lo, 0.0)], [max(hi - value, 0.0)]]


def _anchor(df: pd.DataFrame, method: str, variant: str | None, what: str) -> pd.Series | None:
    """The row that anchors one end of a Wise-FT curve (``variant`` None: the method's only row), or None
    when the table has none."""
    rows = df[(df["method"] == method) & ((df["variant"] == variant) if variant is not None else True)]
    if len(rows) > 1:
        raise ValueError(f"Wise-FT {what} end is ambiguous: {method} rows {sorted(map(str, rows['variant']))}")
    return rows.iloc[0] if len(rows) else None


def versus_full_sft(row: pd.Series) -> str:
    """How a row stands against Full SFT: its decided verdicts on the table's measures, e.g. ``Vers better,
    Drift better``; ``""`` when all are undecided (the point is not distinguishable from Full SFT);
    ``reference`` for Full SFT."""
    if row["method"] == "full_sft":
        return "reference"
    decided = [f"{m} {row.get(f'd{m}_vs_full_sft_verdict')}" for m in ("Spec", "Vers", "VersM", "Drift")
               if row.get(f"d{m}_vs_full_sft_verdict") in ("better", "worse")]
    return ", ".join(decided)


def _wise_ft_curves(ax, df: pd.DataFrame, xs: list[float], ys: list[float], labels: list[str], colour,
                    params: Mapping[tuple[str, str], Mapping[str, Any]] | None) -> None:
    """One line per Wise-FT source run: original (alpha 0), the rows by their recorded alpha, the source row
    (alpha 1)."""
    groups: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for i, row in df[df["method"] == "wise_ft"].iterrows():
        run = (params or {}).get((row["method"], row["variant"]))
        if run is None or "alpha" not in run or "source" not in run:
            raise ValueError(f"row {labels[i]}: its run parameters (alpha, source) are not given: {run!r}")
        groups.setdefault(tuple(run["source"]), []).append((_finite(run["alpha"], f"row {labels[i]}: alpha"), i))
    for source, members in groups.items():
        members.sort()
        path = [(xs[i], ys[i]) for _, i in members]
        for end, at in ((_anchor(df, "original", None, "alpha=0"), 0),
                        (_anchor(df, *source, "alpha=1"), len(path) + 1)):
            if end is not None:
                path.insert(at, (float(end["Vers"]), float(end["Spec"])))
        name = "Wise-FT (alpha)" if len(groups) == 1 else f"Wise-FT (alpha) of {'/'.join(source)}"
        ax.plot(*zip(*path), "-", color=colour, lw=1.5, alpha=0.8, zorder=2, label=name)


def pareto_plot(table: pd.DataFrame, png: str | Path, svg: str | Path, *, title: str,
                params: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> None:
    """Spec (y) vs Vers (x) of every method row of one (model, task).

    Draws each row as a point with 95% CI whiskers (none on an axis whose bound is NaN), one colour and
    marker per method, numbered in table order; the legend keys each number to its ``method/variant``
    (labels beside the points collide once trials cluster); the Pareto front (maximise both) as a
    dashed line sorted by Vers; and the Wise-FT rows as a solid line per source run, sorted by ``alpha``,
    extended to the ``original`` row (alpha=0) and the source row (alpha=1). ``params`` maps each row's
    ``(method, variant)`` to its run parameters as the run files record them (``run.params`` of its
    ``metrics.json``); the Wise-FT rows need theirs.
    A filled marker is a row distinguishable from Full SFT (a decided paired verdict on Spec, Vers, VersM or
    Drift, named in its legend entry); a hollow marker is within noise of Full SFT on all of them.
    """
    missing = [c for c in PARETO_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"pareto_plot: table lacks column(s) {missing}")
    if table.empty:
        raise ValueError("pareto_plot: table has no rows")
    for col in ("model", "task"):
        if col in table.columns and table[col].nunique(dropna=False) > 1:
            raise ValueError(f"pareto_plot draws one (model, task); column {col!r} has "
                             f"{sorted(map(str, table[col].unique()))}")
    df = table.reset_index(drop=True)
    labels = [f"{m}/{v}" for m, v in zip(df["method"], df["variant"])]
    xs = [_finite(v, f"row {lab}: Vers") for v, lab in zip(df["Vers"], labels)]
    ys = [_finite(v, f"row {lab}: Spec") for v, lab in zip(df["Spec"], labels)]

    with _figure(figsize=(9, max(5.5, 1.5 + 0.19 * len(df)))) as (fig, ax):
        methods = list(dict.fromkeys(df["method"]))
        style = {m: (f"C{i % 10}", MARKERS[i % len(MARKERS)]) for i, m in enumerate(methods)}
        for i, row in df.iterrows():
            colour, marker = style[row["method"]]
            vs_full = versus_full_sft(row) if "dVers_vs_full_sft_verdict" in df.columns else "reference"
            note = {"reference": "", "": " (≈ Full SFT)"}.get(vs_full, f" ({vs_full} vs Full SFT)")
            ax.errorbar(xs[i], ys[i], xerr=_whisker(row, "Vers", labels[i]), yerr=_whisker(row, "Spec", labels[i]),
                        fmt=marker, color=colour, ms=6, capsize=3, elinewidth=1, zorder=3,
                        mfc=colour if vs_full else "white", label=f"{i + 1}. {labels[i]}{note}")
            ax.annotate(str(i + 1), (xs[i], ys[i]), xytext=(4, 4), textcoords="offset points", fontsize=7,
                        color=colour, fontweight="bold")

        front = pareto_front(list(zip(xs, ys)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="0.35", lw=1.2, zorder=2,
                label="Pareto front")

        _wise_ft_curves(ax, df, xs, ys, labels, style.get("wise_ft", (None,))[0], params)
        ax.set_xlabel(VERS_LABEL)
        ax.set_ylabel(SPEC_LABEL)
        ax.set_title(title)
        ax.grid(True, alpha=0.4)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
        _save(fig, png, svg)


# ---- tree-search plot -------------------------------------------------------------------------------

def _check_record(rec: Mapping, where: str, required: tuple[str, ...]) -> list[dict]:
    """Validate one level / grid record; returns its visited entries with spec/vers as floats."""
    if not isinstance(rec, Mapping):
        raise ValueError(f"{where}: expected a dict, got {type(rec).__name__}")
    missing = [k for k in required if k not in rec]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    if not isinstance(rec["visited"], list) or not rec["visited"]:
        raise ValueError(f"{where}: 'visited' must be a non-empty list")
    if not isinstance(rec["chosen"], Mapping) or "node" not in rec["chosen"]:
        raise ValueError(f"{where}: 'chosen' must be a dict with key 'node'")
    visited = []
    for j, v in enumerate(rec["visited"]):
        if not isinstance(v, Mapping):
            raise ValueError(f"{where}: visited[{j}] must be a dict")
        lack = [k for k in (*RECORD_KEYS, "spec", "vers") if k not in v]
        if lack:
            raise ValueError(f"{where}: visited[{j}] missing key(s) {lack}")
        region = Region.from_record(v, where=f"{where}: visited[{j}]")
        visited.append({"node": region.id, "region": region,
                        "spec": _finite(v["spec"], f"{where}: visited[{j}].spec"),
                        "vers": _finite(v["vers"], f"{where}: visited[{j}].vers")})
    ids = [v["node"] for v in visited]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: node ids repeat in 'visited': {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    return visited


def margin_label(margin: Mapping | None) -> str:
    """Legend text for a decision's ``margin`` block: the lead over the runner-up with its paired 95% CI,
    flagged when the CI reaches 0. Empty for records written before margins existed or without a
    runner-up (a single eligible child)."""
    if not margin or margin.get("delta") is None:
        return ""
    lo, hi = (_finite(x, "margin.ci95") for x in margin["ci95"])
    text = (f"{_finite(margin['delta'], 'margin.delta'):+.1f} {margin['key']} over {margin['runner_up']}, "
            f"95% CI [{lo:+.1f}, {hi:+.1f}]")
    return text + (": within noise" if margin["within_noise"] else "")


def _group_by_modules(visited: list[dict]) -> list[tuple[str, list[dict]]]:
    """Grid nodes grouped by module set (each record's ``modules``), in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for v in visited:
        groups.setdefault(v["region"].modules_text, []).append(v)
    return list(groups.items())


def _search_records(levels: list[dict] | dict) -> tuple[list[tuple[dict, list[dict]]], bool]:
    """``(record, its checked visited nodes)`` in level order, and whether it is the exhaustive grid."""
    if isinstance(levels, Mapping):
        records, grid = [levels], True
    elif isinstance(levels, list) and levels:
        records, grid = levels, False
        if len(levels) == 1 and isinstance(levels[0], Mapping) and "parent" not in levels[0] \
                and levels[0].get("level", "grid") == "grid":
            grid = True
    else:
        raise ValueError("search_plot: expected a non-empty list of level records or one grid dict")
    required = ("visited", "chosen") if grid else ("level", "parent", "stopped", "visited", "chosen")
    checked = []
    for n, rec in enumerate(records):
        level = rec.get("level", "?") if isinstance(rec, Mapping) else "?"
        where = "grid" if grid else f"level record {n} (level={level})"
        checked.append((rec, _check_record(rec, where, required)))
    if not grid:
        nums = [rec["level"] for rec, _ in checked]
        if any(not isinstance(k, int) or isinstance(k, bool) for k in nums) or len(set(nums)) != len(nums):
            raise ValueError(f"search_plot: 'level' values must be distinct integers, got {nums}")
        checked.sort(key=lambda item: item[0]["level"])
    return checked, grid


def search_plot(levels: list[dict] | dict, png: str | Path, svg: str | Path, *, title: str) -> None:
    """Every node the tree search evaluated, in Spec (y) vs Vers (x) space.

    ``levels`` is the list of per-level decision records (``level``, ``parent``, ``stopped``,
    ``visited``, ``chosen``): nodes are coloured by level and labelled with their id, each level's
    choice is starred, and arrows follow the chosen path from level to level. A level that kept its
    parent says so in its legend entry; a decision's margin over the runner-up (``margin_label``) is
    written under its legend entry, the grid's as well. A single dict without ``parent`` (the exhaustive
    ``grid.json``) draws all grid nodes, coloured by module set and labelled with their layer range, and
    stars the chosen one.
    """
    checked, grid = _search_records(levels)
    with _figure(figsize=(8, 5.5)) as (fig, ax):
        known: dict[str, tuple[float, float]] = {}  # node id -> (vers, spec), latest level wins
        path: list[tuple[float, float]] = []
        starred = False
        for n, (rec, visited) in enumerate(checked):
            margin = margin_label(rec.get("margin"))  # levels and the grid record both carry one
            if grid:  # 24 nodes: one colour per module set, each point labelled with its range only
                groups = _group_by_modules(visited)
                ax.plot([], [], " ", label="grid (exhaustive)" + (f"\n  {margin}" if margin else ""))
            else:
                label = f"level {rec['level']}" + (" (stopped: parent kept)" if rec["stopped"] else "")
                groups = [(label + (f"\n  {margin}" if margin else ""), visited)]
            for g, (label, members) in enumerate(groups):
                k = n + g
                ax.scatter([v["vers"] for v in members], [v["spec"] for v in members], c=f"C{k % 10}",
                           marker=MARKERS[k % len(MARKERS)], s=40, zorder=3, label=label)
            here = {v["node"]: (v["vers"], v["spec"]) for v in visited}
            layers = {v["node"]: v["region"].layers for v in visited}
            for node, point in here.items():
                if known.get(node) != point:  # a node re-used at the same spot (level-3 parent) is labelled once
                    text = layers[node] if grid else node
                    ax.annotate(text, point, xytext=(4, 4), textcoords="offset points", fontsize=7)
            chosen = Region.parse(rec["chosen"]["node"]).id
            point = here.get(chosen) or (known.get(chosen) if not grid and rec["stopped"] else None)
            known.update(here)
            if point is None:
                if grid or not rec["stopped"]:
                    raise ValueError(f"{'grid' if grid else 'level ' + str(rec['level'])}: chosen node "
                                     f"{chosen!r} is not among the visited nodes")
                continue  # parent kept at level 1: the root has no scores to draw
            ax.scatter(*point, marker="*", s=260, facecolor="none", edgecolor="black", linewidth=1.3, zorder=4,
                       label=None if starred else "chosen")
            starred = True
            if path and path[-1] != point:
                ax.annotate("", xy=point, xytext=path[-1], zorder=2,
                            arrowprops={"arrowstyle": "->", "color": "0.2", "lw": 1.3})
            path.append(point)

        ax.set_xlabel(VERS_LABEL)
        ax.set_ylabel(SPEC_LABEL)
        ax.set_title(title)
        ax.grid(True, alpha=0.4)
        handles, names = ax.get_legend_handles_labels()
        order = sorted(range(len(names)), key=lambda i: names[i] == "chosen")  # "chosen" last
        ax.legend([handles[i] for i in order], [names[i] for i in order], loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        _save(fig, png, svg)


# ---- importance heatmaps ----------------------------------------------------------------------------

def _as_matrix(value: Any, key: str) -> np.ndarray:
    """A 2-D float array with entries in [0, 1] from a tensor or array."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"importance {key!r} must be a non-empty [n_layers, n_units] matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"importance {key!r} has non-finite values")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"importance {key!r} must be normalised to [0, 1], got range "
                         f"[{arr.min():.3g}, {arr.max():.3g}]")
    return arr


def importance_heatmap(importance: Mapping[str, Any], png: str | Path, svg: str | Path, *, title: str) -> None:
    """One heatmap per unit type (``head``, ``intermediate``, ``output``) of normalised importance.

    Layer on the y axis (layer 0 at the bottom), unit index on x, one shared 0..1 colour scale with a
    colourbar "importance |tanh(z)|". Matrices thousands of units wide are drawn with
    ``imshow(aspect="auto", interpolation="nearest")``.
    """
    unknown = [k for k in importance if k not in UNIT_TITLES]
    if unknown:
        raise ValueError(f"importance_heatmap: unexpected key(s) {unknown}; expected some of "
                         f"{list(UNIT_TITLES)} (load files with load_importance_for_plot)")
    keys = [k for k in UNIT_TITLES if k in importance]
    if not keys:
        raise ValueError(f"importance_heatmap: none of the keys {list(UNIT_TITLES)} given")
    mats = {k: _as_matrix(importance[k], k) for k in keys}

    with _figure(len(keys), 1, figsize=(10, 1.2 + 2.2 * len(keys)), squeeze=False,
                 layout="constrained") as (fig, axes):
        im = None
        for ax, key in zip(axes[:, 0], keys):
            im = ax.imshow(mats[key], aspect="auto", interpolation="nearest", origin="lower", cmap="viridis",
                           vmin=0.0, vmax=1.0)
            ax.set_title(UNIT_TITLES[key], fontsize=10)
            ax.set_ylabel("layer")
            ax.set_xlabel("unit index")
            ax.yaxis.get_major_locator().set_params(integer=True)
        fig.colorbar(im, ax=axes[:, 0].tolist(), label="importance |tanh(z)|")
        fig.suptitle(title)
        _save(fig, png, svg)


def load_importance_for_plot(path: str | Path) -> dict[str, np.ndarray]:
    """The normalised ``head`` / ``intermediate`` / ``output`` matrices of an importance file.

    The ``raw.<key>`` tensors stored alongside are ignored.
    """
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise FileNotFoundError(f"importance file not found: {path}")
    tensors = load_file(str(path))
    missing = [k for k in UNIT_TITLES if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing importance tensor(s) {missing}")
    return {k: tensors[k].detach().float().cpu().numpy() for k in UNIT_TITLES}


def pareto_from_files(table: str | Path, model: str, task: str, metrics: list[str | Path], png: str | Path,
                      svg: str | Path) -> None:
    """:func:`pareto_plot` of one (model, task) of the table CSV, each row's run parameters (Wise-FT's alpha
    and source) read from its ``metrics.json``."""
    df = pd.read_csv(table, dtype={"setting": str})
    block = df[(df.model == model) & (df.task == task)]
    if block.empty:
        raise ValueError(f"{table}: no rows for model {model!r} and task {task!r}")
    runs = [read_metrics(p)["run"] for p in metrics]
    params = {(r["method"], r["variant"]): r["params"] for r in runs if (r["model"], r["task"]) == (model, task)}
    pareto_plot(block, png, svg, title=f"{task} · {model}: speciality vs versatility", params=params)


def search_from_files(levels: list[str | Path], png: str | Path, svg: str | Path, *, title: str) -> None:
    """:func:`search_plot` of the level records (or of one ``grid.json``)."""
    records = [read_search_record(p) for p in levels]
    search_plot(records[0] if len(records) == 1 and "parent" not in records[0] else records, png, svg, title=title)

