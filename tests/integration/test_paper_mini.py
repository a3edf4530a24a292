"""The paper's configuration executed, in miniature: `config/paper.yaml` with the overlay
`config/paper_mini.yaml` (a tiny random Llama for the Qwen scales, a few items per split, short generations)
through the real DAG to the table, plots and report. Every speciality task (law, math_zh, cag) with its loader
and scorer, every versatility suite (CMMLU, C-Eval, LogiQA-zh, XCOPA-zh), every method row and the adaptive
tree search are the paper config's own. `test_dag.py::test_paper_config_plans_three_scales_by_three_tasks`
plans the full-size config; this runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.integration.test_dag import ROOT, offline_env

pytestmark = pytest.mark.slow
PAPER = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
MINI = yaml.safe_load((ROOT / "config/paper_mini.yaml").read_text())
MODEL = MINI["models"][0]


def paper_rows() -> list[tuple[str, str]]:
    """(method, variant) of every table row of config/paper.yaml, read from the file (a sweep: one per value)."""
    rows = []
    for entry in PAPER["methods"]:
        values = [(k, v) for k, vs in entry.get("sweep", {}).items() for v in vs]
        rows += [(entry["method"], f"{entry['variant']}-{k}{v}") for k, v in values] or [(entry["method"],
                                                                                          entry["variant"])]
    return rows


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper-mini")
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(ROOT / "config/paper.yaml"), str(ROOT / "config/paper_mini.yaml")]
    for args in (["--cores", "2", "--max-threads", "1"], ["--cores", "1", "--report", "results/report.html"]):
        proc = subprocess.run(base + args, capture_output=True, text=True, env=offline_env(), timeout=3600)
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return work


def test_the_table_has_every_task_by_method_row_of_the_paper_config(paper_run):
    df = pd.read_csv(paper_run / "results/tables/main.csv")
    assert set(df.model) == {MODEL} and len(paper_rows()) == 13  # 11 entries, Wise-FT swept over 3 alphas
    for task in PAPER["tasks"]:
        sub = df[df.task == task]
        assert sorted(zip(sub.method, sub.variant)) == sorted(paper_rows()), task
        assert sub.Spec.between(0, 100).all() and sub.Vers.between(0, 100).all(), task


def test_every_versatility_suite_of_the_paper_scores_every_row(paper_run):
    df = pd.read_csv(paper_run / "results/tables/main.csv")
    suites = PAPER["evaluation"]["versatility"]["suites"]
    for aspect, names in suites.items():
        assert df[f"aspect:{aspect}"].between(0, 100).all(), aspect
        for name in names:
            assert df[name].between(0, 100).all(), name
    for task in PAPER["tasks"]:
        m = json.loads((paper_run / "results/runs" / MODEL / task / "full_sft/all/metrics.json").read_text())
        got = {name: s["n"] for name, s in m["metrics"]["suites"].items()}
        assert got == {n: MINI["evaluation"]["versatility"]["limit"] for ns in suites.values() for n in ns}, task


def test_each_task_is_scored_by_its_own_loader_and_scorer(paper_run):
    from cofitune.pipeline.task_sheet import read_task_sheet
    from evaluators.speciality import get_scorer

    sheet = read_task_sheet(ROOT / PAPER["tasks_sheet"], ROOT)
    for task in PAPER["tasks"]:
        meta = json.loads((paper_run / "results/data" / task / "meta.json").read_text())
        assert meta["loader"] == sheet[task]["loader"], task
        n_test = MINI.get("task_overrides", {}).get(task, {}).get("n_test", MINI["data"]["n_test"])
        m = json.loads((paper_run / "results/runs" / MODEL / task / "original/base/metrics.json").read_text())
        assert m["metrics"]["spec_metric"] == get_scorer(sheet[task]["evaluator"]).PRIMARY, task
        assert m["metrics"]["spec_n"] == n_test, task


def test_the_tree_search_ran_per_task_and_trained_the_searched_row(paper_run):
    for task in PAPER["tasks"]:
        base = paper_run / "results/search" / MODEL / task
        chosen = json.loads((base / "chosen.json").read_text())["chosen"]
        assert (base / "level1.json").is_file(), task
        searched = json.loads((paper_run / "results/runs" / MODEL / task / "cofitune/searched/metrics.json")
                              .read_text())
        assert (searched["run"]["params"]["layers"], searched["run"]["params"]["modules"]) == (
            chosen["layers"], chosen["modules"]), task


def test_plots_and_report_cover_every_task(paper_run):
    for task in PAPER["tasks"]:
        for plot in ("pareto.png", "search.png", "importance.png"):
            assert (paper_run / "results/plots" / task / MODEL / plot).stat().st_size > 1000, (task, plot)
    assert (paper_run / "results/report.html").stat().st_size > 100_000
