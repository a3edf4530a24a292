"""Plots: Pareto front on hand tables, and each figure written as a PNG and a text-searchable SVG."""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from cofitune.reporting.plots import (
    SPEC_LABEL,
    VERS_LABEL,
    importance_heatmap,
    load_importance_for_plot,
    margin_label,
    pareto_front,
    pareto_plot,
    search_plot,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


def _check_files(tmp_path, stem: str) -> str:
    """Both files exist, the PNG is a PNG, no temp file is left; returns the SVG text."""
    png, svg = tmp_path / "out" / f"{stem}.png", tmp_path / "out" / f"{stem}.svg"
    assert png.read_bytes()[:8] == PNG_MAGIC
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text
    assert not list((tmp_path / "out").glob("*.tmp"))
    return text


def _paths(tmp_path, stem: str):
    return tmp_path / "out" / f"{stem}.png", tmp_path / "out" / f"{stem}.svg"


# ---- pareto_front ------------------------------------------------------------------------------------

def test_pareto_front_excludes_dominated_point():
    # (Vers, Spec): index 1 is beaten by index 2 on both axes
    assert pareto_front([(50, 10), (20, 20), (30, 40), (10, 60)]) == [3, 2, 0]


def test_pareto_front_keeps_exact_ties():
    assert pareto_front([(30, 30), (30, 30), (10, 10)]) == [0, 1]


def test_pareto_front_equal_on_one_axis_is_dominated():
    assert pareto_front([(30, 30), (30, 20), (20, 30)]) == [0]


def test_pareto_front_single_point():
    assert pareto_front([(1.5, 2.5)]) == [0]


def test_pareto_front_rejects_nan():
    with pytest.raises(ValueError, match="point 1"):
        pareto_front([(1, 1), (NAN, 2)])


# ---- pareto_plot -------------------------------------------------------------------------------------

def _row(method, variant, spec, vers, ci=2.0):
    return {"model": "m", "task": "t", "method": method, "variant": variant,
            "Spec": spec, "Spec_lo": spec - ci, "Spec_hi": spec + ci,
            "Vers": vers, "Vers_lo": vers - ci, "Vers_hi": vers + ci}


ALPHAS = (0.75, 0.25, 0.5)
#: the Wise-FT rows' run parameters, as their metrics.json record them
WISE_PARAMS = {("wise_ft", f"full-alpha{a}"): {"alpha": a, "source": ["full_sft", "all"]} for a in ALPHAS}


def _table(with_wise: bool = False) -> pd.DataFrame:
    rows = [_row("original", "base", 10.0, 60.0),
            _row("full_sft", "all", 50.0, 30.0),
            _row("lora", "r8", 40.0, 45.0),
            _row("cofitune", "best", 48.0, 50.0)]
    rows[3]["Vers_lo"] = rows[3]["Vers_hi"] = NAN  # no Vers whisker on this row
    if with_wise:
        rows += [_row("wise_ft", f"full-alpha{a}", 10 + 40 * a, 60 - 30 * a) for a in ALPHAS]
    return pd.DataFrame(rows)


def test_pareto_plot_writes_png_and_svg_with_labels(tmp_path):
    pareto_plot(_table(), *_paths(tmp_path, "pareto"), title="m / t")
    svg = _check_files(tmp_path, "pareto")
    assert plt.get_fignums() == []
    for text in ("original/base", "full_sft/all", "lora/r8", "cofitune/best", VERS_LABEL, SPEC_LABEL,
                 "Pareto front", "m / t"):
        assert text in svg, text
    assert "Wise-FT" not in svg


def test_pareto_plot_numbers_points_and_keys_them_in_the_legend(tmp_path):
    pareto_plot(_table(), *_paths(tmp_path, "keyed"), title="keyed")
    svg = _check_files(tmp_path, "keyed")
    for k, label in enumerate(("original/base", "full_sft/all", "lora/r8", "cofitune/best"), start=1):
        assert f"{k}. {label}" in svg, label  # the legend key
    bold = re.findall(r"<text style=\"[^\"]*font-weight: 700[^\"]*\"[^>]*>([^<]*)</text>", svg)
    assert bold == ["1", "2", "3", "4"]  # the numbers beside the points, in table order


def test_pareto_plot_draws_wise_ft_curve_from_the_run_parameters(tmp_path, monkeypatch):
    """The curve runs original (alpha 0) -> the rows by their recorded alpha -> the source row (alpha 1)."""
    drawn = []
    real_plot = plt.Axes.plot
    monkeypatch.setattr(plt.Axes, "plot", lambda ax, *a, **k: drawn.append((a, k)) or real_plot(ax, *a, **k))
    pareto_plot(_table(with_wise=True), *_paths(tmp_path, "wise"), title="wise", params=WISE_PARAMS)
    svg = _check_files(tmp_path, "wise")
    assert "Wise-FT (alpha)" in svg and "wise_ft/full-alpha0.5" in svg
    (xs, ys, _), = [a for a, k in drawn if k.get("label") == "Wise-FT (alpha)"]
    assert list(xs) == [60.0, 60 - 30 * 0.25, 60 - 30 * 0.5, 60 - 30 * 0.75, 30.0]  # original, 0.25 .. 0.75, full_sft
    assert list(ys) == [10.0, 20.0, 30.0, 40.0, 50.0]


@pytest.mark.parametrize("params", [None, {k: {"source": ["full_sft", "all"]} for k in WISE_PARAMS}])
def test_pareto_plot_wise_ft_without_its_run_parameters_raises(tmp_path, params):
    with pytest.raises(ValueError, match="alpha"):
        pareto_plot(_table(with_wise=True), *_paths(tmp_path, "bad"), title="t", params=params)


@pytest.mark.parametrize("column", ["Spec_hi", "method"])
def test_pareto_plot_missing_column_named(tmp_path, column):
    with pytest.raises(ValueError, match=column):
        pareto_plot(_table().drop(columns=[column]), *_paths(tmp_path, "bad"), title="t")
    assert not (tmp_path / "out").exists()


def test_pareto_plot_empty_table_raises(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        pareto_plot(_table().iloc[0:0], *_paths(tmp_path, "empty"), title="t")


def test_pareto_plot_nan_point_raises(tmp_path):
    table = _table()
    table.loc[2, "Spec"] = NAN
    with pytest.raises(ValueError, match="lora/r8"):
        pareto_plot(table, *_paths(tmp_path, "nan"), title="t")


# ---- search_plot -------------------------------------------------------------------------------------

def _node(layers, modules, spec, vers):
    return {"spec": spec, "vers": vers, "uni": (spec + vers) / 2, "node": f"{modules}@{layers}",
            "layers": layers, "modules": modules}


def _levels(stopped_last: bool):
    l1 = [_node("bottom-plus", "mha+ffn", 30.1, 25.2), _node("middle-plus", "mha+ffn", 28.0, 27.0),
          _node("top-plus", "mha+ffn", 26.0, 24.0)]
    l2 = [_node("bottom2", "mha+ffn", 29.0, 28.5), _node("middle", "mha+ffn", 27.5, 29.0)]
    l3 = [_node("middle", "mha", 20.0, 31.0), _node("middle", "ffn", 29.5, 30.0),
          _node("middle", "mha+ffn", 27.5, 29.0)]
    common = {"criterion": "uni", "min_vers_pct": None, "order": "range-first"}
    last_chosen = "mha+ffn@middle" if stopped_last else "ffn@middle"
    return [
        {"level": 1, "parent": "mha+ffn@all", **common, "stopped": False, "visited": l1,
         "chosen": {"node": "mha+ffn@middle-plus", "layers": "middle-plus", "modules": "mha+ffn"}},
        {"level": 2, "parent": "mha+ffn@middle-plus", **common, "stopped": False, "visited": l2,
         "chosen": {"node": "mha+ffn@middle", "layers": "middle", "modules": "mha+ffn"}},
        {"level": 3, "parent": "mha+ffn@middle", **common, "stopped": stopped_last, "visited": l3,
         "chosen": {"node": last_chosen}},
    ]


@pytest.mark.parametrize("stopped", [False, True])
def test_search_plot_three_levels(tmp_path, stopped):
    levels = _levels(stopped)
    search_plot(levels, *_paths(tmp_path, "search"), title="tree search")
    svg = _check_files(tmp_path, "search")
    for level in levels:
        for v in level["visited"]:
            assert v["node"] in svg, v["node"]
    assert "level 1" in svg and "level 2" in svg
    assert ("(stopped: parent kept)" in svg) == stopped


def test_search_plot_writes_each_decisions_margin_under_its_level(tmp_path):
    levels = _levels(False)
    levels[0]["margin"] = {"runner_up": "mha+ffn@bottom-plus", "key": "uni", "delta": 0.36,
                           "ci95": [-1.04, 1.72], "within_noise": True}
    levels[1]["margin"] = {"runner_up": "mha+ffn@bottom2", "key": "uni", "delta": 0.27,
                           "ci95": [0.12, 0.4], "within_noise": False}
    levels[2]["margin"] = {"runner_up": None, "key": "uni", "delta": None, "ci95": None, "within_noise": None}
    search_plot(levels, *_paths(tmp_path, "margin"), title="t")
    svg = _check_files(tmp_path, "margin")
    assert "+0.4 uni over mha+ffn@bottom-plus, 95% CI [-1.0, +1.7]: within noise" in svg
    assert "+0.3 uni over mha+ffn@bottom2, 95% CI [+0.1, +0.4]" in svg
    assert svg.count("within noise") == 1


def test_margin_label_empty_without_a_runner_up():
    assert margin_label(None) == ""
    assert margin_label({"runner_up": None, "key": "uni", "delta": None, "ci95": None, "within_noise": None}) == ""
    with pytest.raises(ValueError, match="margin.ci95"):
        margin_label({"runner_up": "a", "key": "uni", "delta": 1.0, "ci95": [NAN, 1.0], "within_noise": True})


def test_search_plot_level_one_stopped_at_root(tmp_path):
    levels = _levels(False)[:1]
    levels[0] |= {"stopped": True, "chosen": {"node": "mha+ffn@all"}}
    search_plot(levels, *_paths(tmp_path, "root"), title="t")
    assert "(stopped: parent kept)" in _check_files(tmp_path, "root")


def test_search_plot_grid_mode(tmp_path):
    grid = {"mode": "exhaustive", "criterion": "uni", "visited": _levels(False)[0]["visited"],
            "chosen": {"node": "mha+ffn@middle-plus"}}
    search_plot(grid, *_paths(tmp_path, "grid"), title="grid")
    svg = _check_files(tmp_path, "grid")
    assert ">top-plus<" in svg and ">mha+ffn<" in svg and "grid (exhaustive)" in svg
    grid["margin"] = {"runner_up": "mha+ffn@bottom-plus", "key": "uni", "delta": 0.36, "ci95": [-1.04, 1.72],
                      "within_noise": True}
    search_plot(grid, *_paths(tmp_path, "grid"), title="grid")
    assert "+0.4 uni over mha+ffn@bottom-plus, 95% CI [-1.0, +1.7]: within noise" in _check_files(tmp_path, "grid")


def test_search_plot_grid_colours_by_module_set_and_labels_ranges(tmp_path):
    visited = [_node(r, m, 20.0 + i, 25.0 + i / 10) for i, (m, r) in
               enumerate((m, r) for m in ("mha", "ffn", "mha+ffn") for r in ("bottom1", "top-plus"))]
    grid = {"mode": "exhaustive", "criterion": "uni", "visited": visited, "chosen": {"node": "ffn@top-plus"}}
    search_plot(grid, *_paths(tmp_path, "modgrid"), title="grid")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", _check_files(tmp_path, "modgrid"))
    assert [t for t in texts if t in ("mha", "ffn", "mha+ffn")] == ["mha", "ffn", "mha+ffn"]  # one legend entry each
    assert texts.count("bottom1") == 3 and texts.count("top-plus") == 3  # points carry their range only
    assert not any("@" in t for t in texts)


def test_search_plot_missing_key_named(tmp_path):
    levels = _levels(False)
    del levels[1]["visited"][0]["vers"]
    with pytest.raises(ValueError, match="vers"):
        search_plot(levels, *_paths(tmp_path, "bad"), title="t")
    levels = _levels(False)
    del levels[2]["chosen"]
    with pytest.raises(ValueError, match="chosen"):
        search_plot(levels, *_paths(tmp_path, "bad"), title="t")
    levels = _levels(False)
    levels[0]["visited"].append(dict(levels[0]["visited"][0]))
    with pytest.raises(ValueError, match=r"mha\+ffn@bottom-plus"):
        search_plot(levels, *_paths(tmp_path, "bad"), title="t")
    with pytest.raises(ValueError, match="non-empty list"):
        search_plot([], *_paths(tmp_path, "bad"), title="t")


def test_search_plot_chosen_not_visited_raises(tmp_path):
    levels = _levels(False)
    levels[1]["chosen"] = {"node": "ffn@top"}
    with pytest.raises(ValueError, match="ffn@top"):
        search_plot(levels, *_paths(tmp_path, "bad"), title="t")
    assert plt.get_fignums() == []  # the half-drawn figure was closed


# ---- importance --------------------------------------------------------------------------------------

def _importance(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"head": rng.random((8, 4)), "intermediate": rng.random((8, 128)), "output": rng.random((8, 64))}


def test_importance_heatmap_writes_files(tmp_path):
    imp = _importance()
    imp["head"] = torch.from_numpy(imp["head"]).float()  # tensors and arrays both accepted
    importance_heatmap(imp, *_paths(tmp_path, "imp"), title="importance")
    svg = _check_files(tmp_path, "imp")
    for text in ("attention heads", "FFN neurons (up_proj)", "FFN outputs (down_proj)", "importance |tanh(z)|"):
        assert text in svg, text


def test_importance_heatmap_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="raw.head"):
        importance_heatmap({**_importance(), "raw.head": np.zeros((8, 4))}, *_paths(tmp_path, "bad"), title="t")
    with pytest.raises(ValueError, match="'output'"):
        importance_heatmap({"output": np.full((8, 4), 2.0)}, *_paths(tmp_path, "bad"), title="t")


def _write_importance(path, keys=("head", "intermediate", "output")):
    imp = {k: torch.from_numpy(v).float() for k, v in _importance(1).items()}
    tensors = {f"raw.{k}": v * 10 for k, v in imp.items()} | {k: imp[k] for k in keys}
    save_file(tensors, str(path))
    return imp


def test_load_importance_for_plot_returns_normalised_keys(tmp_path):
    imp = _write_importance(tmp_path / "imp.safetensors")
    got = load_importance_for_plot(tmp_path / "imp.safetensors")
    assert set(got) == {"head", "intermediate", "output"}
    for k, v in got.items():
        assert isinstance(v, np.ndarray)
        np.testing.assert_allclose(v, imp[k].numpy())
    importance_heatmap(got, *_paths(tmp_path, "loaded"), title="t")
    _check_files(tmp_path, "loaded")


def test_load_importance_for_plot_missing_head(tmp_path):
    path = tmp_path / "nohead.safetensors"
    _write_importance(path, keys=("intermediate", "output"))
    with pytest.raises(ValueError, match="head") as err:
        load_importance_for_plot(path)
    assert "nohead.safetensors" in str(err.value)


def test_pareto_plot_marks_rows_distinguishable_from_full_sft(tmp_path):
    from cofitune.reporting.plots import versus_full_sft

    df = _table()
    df["dSpec_vs_full_sft_verdict"] = ["worse", "", "undecided", "undecided"]
    df["dVers_vs_full_sft_verdict"] = ["better", "", "undecided", "better"]
    df["dDrift_vs_full_sft_verdict"] = ["undecided", "", "undecided", "better"]
    assert [versus_full_sft(r) for _, r in df.iterrows()] == ["Spec worse, Vers better", "reference", "",
                                                              "Vers better, Drift better"]
    pareto_plot(df, *_paths(tmp_path, "vs"), title="vs")
    svg = _check_files(tmp_path, "vs")
    assert "3. lora/r8 (≈ Full SFT)" in svg and "4. cofitune/best (Vers better, Drift better vs Full SFT)" in svg
    assert "2. full_sft/all" in svg and "full_sft/all (" not in svg
