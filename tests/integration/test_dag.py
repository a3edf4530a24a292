"""The real DAG end to end (real Snakemake, real lm-eval, real generation) on a tiny random Llama.

Marked ``slow``: `make test` runs it after the fast tier. The tiny model is random, so the values
pinned here are the trainable fractions and parameter sets (exact) plus the determinism of a rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cofitune.pipeline import launch

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def offline_env() -> dict[str, str]:
    """The pipeline's environment: offline hubs, this interpreter's venv first on PATH."""
    return launch.offline_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None,
              snakefile: Path = ROOT / "Snakefile") -> subprocess.CompletedProcess:
    env = {**offline_env(), **(env or {})}
    # --max-threads 1: a tiny model's job is mostly process start-up (single-threaded imports), so two
    # one-thread jobs side by side finish the DAG sooner than one two-thread job at a time.
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
           "--configfile", str(ROOT / "config/test.yaml"), "--cores", "2", "--max-threads", "1", *args]
    workdir.mkdir(parents=True, exist_ok=True)  # the cwd too: `python -m` puts it first on sys.path
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir, timeout=3600)  # a hang guard only
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("dag")
    snakemake(work)
    return work


ROWS = [("original", "base"), ("full_sft", "all"), ("coarse_only", "ffn-bottom2"),
        ("cofitune", "ffn-bottom2-grad"), ("cofitune", "ffn-bottom2-update"), ("cofitune", "searched"),
        ("l2", "to-init"), ("lora", "r4"), ("v_softmask", "grad"), ("wise_ft", "full-alpha0.5")]


def test_table_has_every_configured_row(dag_run):
    df = pd.read_csv(dag_run / "results/tables/main.csv")
    for model in ("tiny-llama-8", "tiny-llama-12"):  # the multi-scale path: both depths, every row
        sub = df[df.model == model]
        assert list(zip(sub.method, sub.variant)) == ROWS, model
    df = df[df.model == "tiny-llama-8"]
    for col in ("Spec", "Vers", "Uni", "mmlu", "arc_easy", "hellaswag", "piqa", "ifeval",
                "aspect:knowledge", "aspect:reasoning", "aspect:instruction"):
        assert df[col].between(0, 100).all(), col
    assert ((df.Spec + df.Vers) / 2 - df.Uni).abs().max() < 1e-5
    orig = df[df.method == "original"].iloc[0]
    assert orig["Vers_ret_original_%"] == pytest.approx(100.0)
    assert df["Spec_ret_full_sft_%"].isna().all()  # Full SFT's Spec is 0 on the random model: no ratio


# Golden values of the tiny random model (torch 2.13 CPU, seeds fixed): 6 items per MC suite, 3 IFEval
# prompts, so each score is a multiple of 100/6 or 100/3. A change in any stage moves these. Produced by
# `snakemake --configfile config/test.yaml --cores 2 --max-threads 1` in an empty folder (what `dag_run`
# runs), reading the tiny-llama-8 rows of results/tables/main.csv; regenerate them only on purpose.
# Accuracy alone has few states on 6 items (cofitune update scores like original): test_every_trained_row_moved
# checks that each trained row really changed.
GOLDEN = {
    ("original", "base"): {"mmlu": 100 / 6, "piqa": 50.0, "ifeval": 200 / 3, "Vers": 40.740741},
    ("full_sft", "all"): {"mmlu": 100 / 3, "piqa": 100 / 3, "ifeval": 200 / 3, "Vers": 44.444444},
    ("coarse_only", "ffn-bottom2"): {"mmlu": 100 / 3, "piqa": 100 / 3, "Vers": 44.444444},
    ("cofitune", "ffn-bottom2-grad"): {"mmlu": 100 / 3, "piqa": 100 / 3, "Vers": 44.444444},
    ("cofitune", "ffn-bottom2-update"): {"mmlu": 100 / 6, "piqa": 50.0, "Vers": 40.740741},
}


def test_pinned_values(dag_run):
    df = pd.read_csv(dag_run / "results/tables/main.csv")
    df = df[df.model == "tiny-llama-8"].set_index(["method", "variant"])
    for row, values in GOLDEN.items():
        for col, value in values.items():
            assert df.at[row, col] == pytest.approx(value, abs=1e-5), (row, col)
        assert df.at[row, "Spec"] == 0.0 and df.at[row, "arc_easy"] == pytest.approx(100 / 3)


def test_every_trained_row_moved(dag_run):
    """Each fine-tuned row changed exactly its trainable tensors, and its drift from the original is decided."""
    from safetensors.torch import load_file

    df = pd.read_csv(dag_run / "results/tables/main.csv")
    for model in ("tiny-llama-8", "tiny-llama-12"):
        sub = df[df.model == model].set_index(["method", "variant"])
        assert sub.at[("original", "base"), "Drift"] == 0.0  # the model against itself: exactly 0
        base = {}
        for path in (dag_run / "results/models" / model / "base").glob("*.safetensors"):
            base.update(load_file(str(path)))
        for method, variant in ROWS[1:]:
            assert sub.at[(method, variant), "Drift"] > 0, (model, method, variant)
            assert sub.at[(method, variant), "dDrift_vs_original_verdict"] == "worse", (model, method, variant)
            assert np.isfinite(sub.at[(method, variant), "VersM"])  # margins of the multiple-choice suites
            assert sub.at[(method, variant), "TaskDrift"] > 0, (model, method, variant)  # moved on the task's prompts
            saved = load_file(str(dag_run / "results/runs" / model / "squad" / method / variant /
                                  "checkpoint/trainable.safetensors"))
            changed = {n for n, t in saved.items() if not torch_equal(t, base[n])}
            assert changed == set(saved), (model, method, variant, sorted(set(saved) - changed)[:3])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_claims_table_lists_every_claim(dag_run):
    claims = pd.read_csv(dag_run / "results/tables/claims.csv")
    for model in ("tiny-llama-8", "tiny-llama-12"):
        sub = claims[claims.model == model]
        assert set(sub.claim) == {"C1", "C2", "C3", "C4", "C5", "C6"}
        assert set(sub.status) <= {"supported", "contradicted", "undecided", "not tested"}
        c1 = sub[(sub.claim == "C1") & (sub.measure == "Drift")].iloc[0]
        assert c1.status == "supported" and c1.effect > 0  # Full SFT moved the model: decided
    assert "C1 (paper)" in (dag_run / "results/tables/claims.md").read_text()


def test_trainable_sets_and_fractions_are_exact(dag_run):
    runs = dag_run / "results/runs/tiny-llama-8/squad"
    # 8 layers: bottom2 = layers 2, 3; FFN = up_proj (128x64) + down_proj (64x128)
    expected = {f"model.layers.{i}.mlp.{p}.weight" for i in (2, 3) for p in ("up_proj", "down_proj")}
    for variant in ("coarse_only/ffn-bottom2", "cofitune/ffn-bottom2-grad", "cofitune/ffn-bottom2-update"):
        index = json.loads((runs / variant / "checkpoint/trainable.json").read_text())
        assert set(index["names"]) == expected
        assert index["n_trainable"] == 4 * 128 * 64
    full = json.loads((runs / "full_sft/all/checkpoint/trainable.json").read_text())
    n_params = full["n_trainable"]
    metrics = json.loads((runs / "cofitune/ffn-bottom2-update/metrics.json").read_text())
    assert metrics["metrics"]["trainable_fraction"] == pytest.approx(4 * 128 * 64 / n_params)
    assert not (runs / "original/base/checkpoint").exists()


def test_metrics_carry_provenance(dag_run):
    m = json.loads((dag_run / "results/runs/tiny-llama-8/squad/cofitune/ffn-bottom2-update/metrics.json").read_text())
    meta = m["meta"]
    assert meta["versions"]["torch"].startswith("2.13") and meta["versions"]["lm_eval"] == "0.4.13"
    assert len(meta["config_sha256"]) == 64 and meta["checkpoint_sha256"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert meta["git"]["sha"] == head.stdout.strip()  # CI runs in a git checkout: a missing sha is a bug
    assert meta["wall_s"] > 0 and meta["peak_rss_mb"] > 0 and meta["generation"]["tokens_per_s"] > 0
    assert meta["train"]["tokens_per_s"] > 0 and meta["train"]["steps"] == 4
    assert m["metrics"]["suites"]["ifeval"]["n"] == 3 and m["metrics"]["suites"]["mmlu"]["n"] == 6
    assert len(meta["code_sha256"]) == 64 and m["run"]["seed"] == 1234
    # the device the job ran on: what torch sees in the jobs' environment (CUDA when a GPU is visible, as the
    # trainer and the evaluator then use it), not a fixed CPU
    assert {k: meta["device"].get(k) for k in ("cuda", "gpu")} == job_device()
    assert len(m["metrics"]["spec_nll_items"]) == 12 and m["metrics"]["spec_nll"] > 0


def job_device() -> dict:
    """``{"cuda": bool, "gpu": name or None}`` as a job of the DAG sees it (the same environment)."""
    code = ("import json, torch; c = torch.cuda.is_available(); "
            "print(json.dumps({'cuda': c, 'gpu': torch.cuda.get_device_name(0) if c else None}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=offline_env(), check=True)
    return json.loads(proc.stdout)


def test_grad_and_update_targets_train_differently(dag_run):
    from safetensors.torch import load_file

    runs = dag_run / "results/runs/tiny-llama-8/squad/cofitune"
    grad = load_file(str(runs / "ffn-bottom2-grad/checkpoint/trainable.safetensors"))
    update = load_file(str(runs / "ffn-bottom2-update/checkpoint/trainable.safetensors"))
    assert any(not (grad[k] == update[k]).all() for k in grad)


def test_rerun_is_a_no_op_and_a_deleted_run_is_reproduced_exactly(dag_run):
    proc = snakemake(dag_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    run = dag_run / "results/runs/tiny-llama-8/squad/cofitune/ffn-bottom2-update"
    before = json.loads((run / "metrics.json").read_text())["metrics"]
    weights = (run / "checkpoint/trainable.safetensors").read_bytes()
    shutil.rmtree(run / "checkpoint")
    (run / "metrics.json").unlink()
    # Snakemake rebuilds a missing intermediate only when asked for it (or when a target is stale)
    proc = snakemake(dag_run, str(run.relative_to(dag_run) / "metrics.json"))
    row = "model=tiny-llama-8, task=squad, method=cofitune, variant=ffn-bottom2-update"
    assert started_jobs(proc.stdout + proc.stderr) == {"train": [row], "evaluate": [row]}  # nothing else reran
    assert (run / "checkpoint/trainable.safetensors").read_bytes() == weights
    assert json.loads((run / "metrics.json").read_text())["metrics"] == before


def test_a_stale_metrics_file_fails_the_dag(dag_run, tmp_path):
    """The stale-metrics guard is wired into the DAG: a row's metrics.json recorded under another run
    configuration than the row's current one stops the aggregation, naming the file (in a copy of the run,
    file times kept, so only the forced aggregation runs: Snakemake itself sees nothing stale)."""
    work = tmp_path / "work"
    shutil.copytree(dag_run, work, symlinks=True)  # copy2: file times kept
    rel = "results/runs/tiny-llama-8/squad/full_sft/all/metrics.json"
    metrics = work / rel
    times = metrics.stat()
    record = json.loads(metrics.read_text())
    lr = record["meta"]["run_config"]["train"]["lr"]
    record["meta"]["run_config"]["train"]["lr"] = lr * 10  # as if the row had been trained under another lr
    metrics.write_text(json.dumps(record))
    os.utime(metrics, ns=(times.st_atime_ns, times.st_mtime_ns))
    proc = snakemake(work, "--forcerun", "aggregate_results", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert set(started_jobs(out)) == {"aggregate_results"}, out[-3000:]  # nothing re-ran that could repair it
    log = (work / "logs/aggregate_results.log").read_text()
    assert f"{rel}: row full_sft/all is stale" in log and f"train.lr: {lr * 10!r} -> {lr!r}" in log, log[-2000:]


def test_tree_search_levels_and_searched_run(dag_run):
    for model, n_layers in (("tiny-llama-8", 8), ("tiny-llama-12", 12)):
        base = dag_run / "results/search" / model / "squad"
        levels = [json.loads((base / f"level{k}.json").read_text()) for k in (1, 2, 3)]
        assert [len(lv["visited"]) for lv in levels] == [3, 2, 3]  # <= 10 nodes visited
        assert levels[0]["parent"] == "mha+ffn@all"
        assert levels[1]["parent"] == levels[0]["chosen"]["node"]
        assert levels[2]["parent"] == levels[1]["chosen"]["node"]
        assert {v["modules"] for v in levels[2]["visited"]} == {"mha", "ffn", "mha+ffn"}
        for lv in levels:  # criterion uni rejects no child: the choice is the max-Uni child (first on ties);
            # at level 3 that child may be mha+ffn on the parent's range, the parent's own id
            best = max(lv["visited"], key=lambda v: v["uni"])
            assert not lv["stopped"] and lv["chosen"]["node"] == best["node"]
        chosen = json.loads((base / "chosen.json").read_text())["chosen"]
        assert chosen == levels[2]["chosen"]
        searched = json.loads((dag_run / "results/runs" / model / "squad/cofitune/searched/metrics.json").read_text())
        params = searched["run"]["params"]  # the table's setting: the region trained, not the config default
        assert (params["layers"], params["modules"]) == (chosen["layers"], chosen["modules"])
        # the row's own configs say so (rule resolve_region): what evaluated it, and what trained it
        resolved = {view: json.loads((dag_run / f"results/config/resolved/{view}/{model}/squad/cofitune/searched.json")
                                     .read_text()) for view in ("run", "train")}
        assert resolved["run"]["region"] == chosen["node"] and searched["meta"]["run_config"] == resolved["run"]
        assert resolved["train"]["params"] == params and "versatility" not in resolved["train"]
        index = json.loads((dag_run / "results/runs" / model / "squad/cofitune/searched/checkpoint/trainable.json")
                           .read_text())
        from cofitune.core.selection import layer_range, module_names

        layers = set(layer_range(chosen["layers"], n_layers))
        mods = set(module_names(chosen["modules"]))
        assert index["names"] and all(int(n.split(".")[2]) in layers and n.split(".")[4] in mods
                                      for n in index["names"])


def dry_run_jobs(workdir: Path, tmp_path: Path, edit: str, *args: str) -> dict[str, list[str]]:
    """rule -> wildcards of the jobs `snakemake -n` would run after a config edit, in a copy of ``workdir``
    (time stamps kept): a dry run writes the configuration files it resolves, and the module's run stays as it
    was. The copy is at ``tmp_path / "work"``."""
    copy = tmp_path / "work"
    if copy != workdir:
        shutil.copytree(workdir, copy, symlinks=True)
    extra = tmp_path / "edit.yaml"
    extra.write_text(edit)  # config files merge key by key
    proc = snakemake(copy, "-n", *args, "--configfile", str(ROOT / "config/test.yaml"), str(extra))
    jobs = started_jobs(proc.stdout + proc.stderr)
    assert jobs, proc.stdout[-2000:]
    return jobs


def started_jobs(output: str) -> dict[str, list[str]]:
    """rule -> the wildcards of each job Snakemake's output lists (started, or planned in a dry run). A job's
    header is ``rule``, ``checkpoint``, or with the local executor ``localrule`` / ``localcheckpoint``."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in output.splitlines():
        words = line.split()
        if (len(words) == 2 and words[0] in ("rule", "localrule", "checkpoint", "localcheckpoint")
                and words[1].endswith(":")):
            rule = words[1][:-1]
            jobs.setdefault(rule, [])
        elif rule and line.strip().startswith("wildcards:"):
            jobs[rule].append(line.split("wildcards:", 1)[1].strip())
    return jobs


def changed_configs(before: Path, after: Path) -> list[str]:
    """The stage config files (``results/config/<kind>/...``) whose content differs between two workdirs."""
    base = after / "results/config"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.json")
                  if not (before / "results/config" / p.relative_to(base)).is_file()
                  or p.read_text() != (before / "results/config" / p.relative_to(base)).read_text())


# the default triggers, and the SLURM profile's (workflow/profiles/slurm: file times only): a job's configuration
# is an input file named by its content's hash, so an edit is a missing input under either
TRIGGERS = pytest.mark.parametrize("triggers", [(), ("--rerun-triggers", "mtime")], ids=["default", "mtime"])


@TRIGGERS
def test_editing_evaluation_settings_never_retrains(dag_run, tmp_path, triggers):
    jobs = dry_run_jobs(dag_run, tmp_path, "evaluation: {versatility: {max_gen_toks: 9}}\n", *triggers)
    assert len(jobs["evaluate"]) >= 2 * 10 and "compute_importance" not in jobs
    # the only re-training: the searched rows, whose region the (re-evaluated) tree search picks
    assert all("method=cofitune, variant=searched" in wc for wc in jobs.get("train", [])), jobs.get("train")
    changed = changed_configs(dag_run, tmp_path / "work")
    assert changed and {c.split("/")[0] for c in changed} == {"run"}, changed


@TRIGGERS
def test_editing_train_lr_reruns_training_and_its_evaluations_only(dag_run, tmp_path, triggers):
    jobs = dry_run_jobs(dag_run, tmp_path, "train: {lr: 0.03}\n", *triggers)
    assert {c.split("/")[0] for c in changed_configs(dag_run, tmp_path / "work")} == {"run", "train"}
    # every fine-tuned row of both models and the search's level-1 trials: exactly those, each once, and the
    # evaluation of each (only those: the original is not re-evaluated)
    assert sorted(jobs["train"]) == sorted(retrained_jobs()), jobs["train"]
    assert sorted(jobs["evaluate"]) == sorted(jobs["train"])
    levels = [f"model={m}, task=squad, level={k}" for m in ("tiny-llama-8", "tiny-llama-12") for k in (1, 2, 3)]
    assert sorted(jobs["search_level"]) == sorted(levels)  # each level's trials retrain: every level re-runs
    assert all("method=original" not in wc for wcs in jobs.values() for wc in wcs)
    for untouched in ("prepare_model", "prepare_data", "compute_importance", "plot_importance", "prepare_nltk"):
        assert untouched not in jobs, untouched


def retrained_jobs() -> list[str]:
    """The wildcards of the train jobs a dry run plans after an edit of the ``train`` section: per model, every
    row but the original (the trained rows, and Wise-FT's combination, which the train rule builds from its
    retrained source), and the tree search's level-1 trials (:func:`cofitune.core.search.children` of the root;
    a trial is the configured coarse_only row of its region when there is one). Levels 2 and 3 descend from the
    level before, which re-runs (a checkpoint): Snakemake adds their trials only once it has."""
    import yaml

    from cofitune.core.search import ROOT as TREE_ROOT, SEARCH_TRIAL_METHOD, children

    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    regions = {(r["params"]["layers"], r["params"]["modules"]): r["variant"] for r in cfg["methods"]
               if r["method"] == SEARCH_TRIAL_METHOD and set(r.get("params", {})) == {"layers", "modules"}}
    trials = {(SEARCH_TRIAL_METHOD, regions.get((n.layers, n.modules), n.variant))
              for n in children(TREE_ROOT, 1, cfg["search"]["order"])}
    rows = {(m, v) for m, v in ROWS if m != "original"} | trials
    return [f"model={model}, task=squad, method={m}, variant={v}" for model in cfg["models"] for m, v in sorted(rows)]


def test_exhaustive_mode_is_a_static_dag_of_the_whole_grid(tmp_path):
    """`search: {mode: exhaustive}` plans all 8 ranges x 3 module sets per model up front (no checkpoint
    level), one grid decision and one chosen region per model; the trial whose region is the configured
    coarse_only row is that row, trained once."""
    from cofitune.core.search import all_nodes

    work = tmp_path / "work"
    work.mkdir()
    jobs = dry_run_jobs(work, tmp_path, "search: {enabled: true, mode: exhaustive}\n")
    assert "search_level" not in jobs
    for model in ("tiny-llama-8", "tiny-llama-12"):
        trained = sorted(wc.split("variant=")[1] for wc in jobs["train"]
                         if f"model={model}," in wc and "method=coarse_only," in wc)
        want = sorted("ffn-bottom2" if (n.modules, n.layers) == ("ffn", "bottom2") else f"node.{n.modules}.{n.layers}"
                      for n in all_nodes())
        assert len(want) == 24 and trained == want, model
        assert [wc for wc in jobs["search_grid"] if f"model={model}," in wc] == [f"model={model}, task=squad"]
        assert [wc for wc in jobs["choose_region"] if f"model={model}," in wc] == [f"model={model}, task=squad"]


def test_paper_config_plans_three_scales_by_three_tasks(tmp_path):
    """`snakemake -n --configfile config/paper.yaml` (hub ids, GPU settings) plans here without error."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(ROOT / "config/paper.yaml"), "-n", "--cores", "2"],
                          capture_output=True, text=True, env=offline_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {w[0]: int(w[1]) for w in (line.split() for line in proc.stdout.splitlines())
              if len(w) == 2 and w[1].isdigit()}
    assert counts["prepare_model"] == 3 and counts["prepare_data"] == 3
    assert counts["compute_importance"] == 9 and counts["choose_region"] == 9  # 3 models x 3 tasks
    assert counts["evaluate"] == 9 * 16  # every table row of config/paper.yaml, per model and task
    for model in ("qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-7b-instruct"):
        for task in ("law", "math_zh", "cag"):
            assert f"results/runs/{model}/{task}/original/" in proc.stdout, (model, task)


def test_report_opens_in_chromium_with_table_and_pareto_plot(dag_run):
    from PIL import Image

    from tools.report_capture import capture, shown_payloads

    proc = snakemake(dag_run, "--report", "results/report.html")
    report = dag_run / "results/report.html"
    assert report.stat().st_size > 100_000, proc.stderr[-2000:]
    shot = dag_run / "results/report_pareto.png"
    dom = capture(report, "tiny-llama-8/pareto.png", shot)
    pareto = (dag_run / "results/plots/squad/tiny-llama-8/pareto.png").read_bytes()
    assert ("image/png", pareto) in shown_payloads(dom)  # the browser shows exactly the plot file
    image = Image.open(shot)
    assert image.size == (1600, 1000) and len(set(image.convert("L").getdata())) > 20  # not a blank page
    dom = capture(report, "tables/main.html")
    table = (dag_run / "results/tables/main.html").read_bytes()
    assert ("text/html", table) in shown_payloads(dom)
    assert b"<table>" in table and b"cofitune/ffn-bottom2-update" in table
    for name in ("search.png", "importance.png"):
        assert any(mime == "image/png" for mime, _ in shown_payloads(capture(report, f"tiny-llama-12/{name}")))


def test_unknown_config_key_fails_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config/test.yaml").read_text().replace("seed: 1234", "seed: 1234\nsede: 1"))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(bad), "--cores", "1"], capture_output=True,
                          text=True, env=env)
    assert proc.returncode != 0
    assert "'sede' was unexpected" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_cli_bad_input_exits_nonzero_with_place_and_no_output(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"context": "c", "question": "q", "answers": ["a"]}\n{"context": "c"}\n')
    sheet = tmp_path / "tasks.yaml"
    sheet.write_text(f"t:\n  loader: squad\n  train: {raw}\n  test: {raw}\n  instruction: i\n  evaluator: squad\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cofitune", "prepare-data", "--sheet", str(sheet), "--task", "t",
                           "--n-train", "1", "--n-test", "1", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{raw}:2: missing field 'question'" in proc.stderr
    assert not out.exists()
    shutil.rmtree(tmp_path)


def test_a_hard_killed_run_resumes_after_unlock_to_the_same_table(dag_run, tmp_path):
    """SIGKILL of the whole run mid-training leaves Snakemake's lock: the rerun is refused until `--unlock`,
    then finishes without redoing finished jobs, and its table equals, cell for cell, the table of the same
    rows of an uninterrupted run."""
    import signal
    import time

    extra = tmp_path / "small.yaml"
    extra.write_text("models: [tiny-llama-8]\nsearch: {enabled: false}\n"
                     "methods:\n  - {method: original, variant: base}\n  - {method: full_sft, variant: all}\n")
    work = tmp_path / "work"
    args = ["--configfile", str(ROOT / "config/test.yaml"), str(extra)]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--max-threads", "1", *args]
    proc = subprocess.Popen(cmd, env=offline_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    train_log = work / "logs/train/tiny-llama-8/squad/full_sft/all.log"
    deadline = time.monotonic() + 1200  # a hang guard only
    while not (train_log.exists() and " training " in train_log.read_text()) and proc.poll() is None:
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (work / "results/runs/tiny-llama-8/squad/full_sft/all/checkpoint/trainable.safetensors").exists()
    assert list((work / ".snakemake/locks").iterdir()), "the killed run left no lock"
    # incomplete outputs are the other leftover (the job killed mid-write, and any running beside it): even
    # a rerun that would redo them is refused while the lock stands
    refused = snakemake(work, *args, "--rerun-incomplete", check=False)
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
    snakemake(work, *args, "--unlock")
    resumed = snakemake(work, *args, "--rerun-incomplete")
    jobs = resumed.stdout + resumed.stderr
    assert "rule train:" in jobs and "rule prepare_model:" not in jobs and "rule prepare_data:" not in jobs
    # the uninterrupted reference: the same two rows of the module's full run, aggregated alone
    runs = [f"results/runs/tiny-llama-8/squad/{r}/metrics.json" for r in ("original/base", "full_sft/all")]
    ref = tmp_path / "ref.csv"
    subprocess.run([sys.executable, "-m", "cofitune", "aggregate", "--metrics", *(str(dag_run / r) for r in runs),
                    "--csv", str(ref), "--md", str(tmp_path / "ref.md")], check=True, env=offline_env())
    got = pd.read_csv(work / "results/tables/main.csv").drop(columns=["sources"])
    want = pd.read_csv(ref).drop(columns=["sources"])
    pd.testing.assert_frame_equal(got, want)
