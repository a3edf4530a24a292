"""``python -m cofitune <stage>``: one subcommand per DAG stage, each usable without Snakemake. A command is
a function registered with :func:`command`, its arguments declared beside it; ``build_parser`` is a loop
over the registry."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cofitune.pipeline.config import schema_default

log = logging.getLogger("cofitune")


def _offline() -> None:
    from cofitune.pipeline.launch import go_offline

    go_offline()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: command name -> (function, its arguments, add_parser keywords), in the order of this file
COMMANDS: dict[str, tuple[Callable, tuple, dict]] = {}


def opt(*flags: str, **options) -> tuple[tuple[str, ...], dict]:
    """One argument of a command, as ``argparse.ArgumentParser.add_argument`` takes it."""
    return flags, options


def command(name: str, *arguments: tuple, **parser_kwargs):
    """Register the decorated function as ``python -m cofitune <name>`` with ``arguments`` (:func:`opt`)."""
    def register(func: Callable) -> Callable:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = (func, arguments, parser_kwargs)
        return func
    return register


UNI = (opt("--uni-weights", type=float, nargs=2, metavar=("SPEC", "VERS"),
           default=(schema_default("uni", "spec"), schema_default("uni", "vers")),
           help=f"Uni = SPEC * Spec + VERS * Vers (default {schema_default('uni', 'spec')} "
                f"{schema_default('uni', 'vers')})"),)
FIGURE = (opt("--png", required=True), opt("--svg", required=True))
SEARCH = (opt("--trials", nargs="+", required=True, help="metrics.json of the trial runs"),
          opt("--original", required=True, help="metrics.json of the original model"),
          opt("--criterion", choices=("uni", "spec_at_vers"), default=schema_default("search", "criterion")),
          opt("--min-vers-pct", type=float, default=None, help="spec_at_vers: Vers >= x%% of original"),
          *UNI, opt("--out", required=True))


@command("prepare-model",
         opt("--sheet", required=True, help="model sheet YAML"),
         opt("--name", required=True, help="model name in the sheet"),
         opt("--out", required=True, help="output folder"),
         opt("--meta", required=True, help="output JSON (sha256, sanity generation)"),
         help="materialise a model of the sheet as a safetensors folder")
def cmd_prepare_model(a) -> None:
    from cofitune.pipeline.model import prepare_model
    from cofitune.pipeline.sheets import read_sheet

    meta = prepare_model(a.name, read_sheet(a.sheet), a.out, a.meta, sheet_path=a.sheet)
    log.info("prepared %s (%d layers, %.1fM params); sanity answer: %r", a.name, meta["n_layers"],
             meta["n_params"] / 1e6, meta["sanity"]["answer"])


@command("fetch-models",
         opt("--sheet", required=True, help="model sheet YAML (e.g. config/paper_models.yaml)"),
         opt("--name", nargs="+", default=None, help="only these entries (default: every hub entry)"),
         help="download the sheet's hub models into the HF cache (needs internet)",
         description="Download the model sheet's `source: hub` entries (safetensors weights, configs, "
                     "tokenizer files) into the Hugging Face cache, on a node with internet. The "
                     "pipeline itself never downloads: prepare-model reads hub entries from this cache "
                     "(HF_HOME / HF_HUB_CACHE, shared with the compute nodes).")
def cmd_fetch_models(a) -> None:
    from cofitune.pipeline.model import fetch_models

    for name, folder in fetch_models(a.sheet, a.name).items():
        log.info("fetched %s -> %s", name, folder)


@command("prepare-data",
         opt("--sheet", required=True, help="task sheet YAML"),
         opt("--root", default=".", help="folder that relative data paths resolve against"),
         opt("--task", required=True),
         opt("--n-train", type=int, required=True),
         opt("--n-test", type=int, required=True),
         opt("--seed", type=int, default=schema_default("seed")),
         opt("--out", required=True, help="output folder"),
         help="normalise a task to {instruction,input,output} JSONL splits")
def cmd_prepare_data(a) -> None:
    from cofitune.pipeline.config import read_task_sheet
    from cofitune.pipeline.data import prepare_task

    sheet = read_task_sheet(a.sheet, a.root)
    if a.task not in sheet:
        raise ValueError(f"{a.sheet}: no task {a.task!r} (have {sorted(sheet)})")
    meta = prepare_task(sheet[a.task], a.out, n_train=a.n_train, n_test=a.n_test, seed=a.seed)
    log.info("task %s: %s", a.task, {k: v["n"] for k, v in meta["splits"].items()})


@command("importance",
         opt("--model-dir", required=True),
         opt("--data", required=True, help="normalised train.jsonl"),
         opt("--out", required=True, help="output .safetensors"),
         opt("--n-examples", type=int, default=None, help="first N training examples (default all)"),
         opt("--batch-size", type=int, default=schema_default("importance", "batch_size")),
         opt("--max-length", type=int, default=schema_default("train", "max_length")),
         opt("--template", default=schema_default("train", "template")),
         opt("--dropout", type=float, default=schema_default("importance", "dropout"),
             help="injected dropout p (0 gives zero importance)"),
         opt("--kl-weight", type=float, default=schema_default("importance", "kl_weight")),
         opt("--abs-grad", action="store_true", help="accumulate |grad| (DAS) instead of signed sums"),
         opt("--seed", type=int, default=schema_default("seed")),
         help="unit importance from gate gradients of the KL proxy")
def cmd_importance(a) -> None:
    import torch

    from cofitune.core import distributed
    from cofitune.core.importance import compute_importance
    from cofitune.core.recipe import TrainConfig
    from cofitune.core.trainer import batches, tokenize_example
    from cofitune.pipeline.artifacts import save_importance
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.model import load_base

    with distributed.session() as multi:  # torchrun: each rank takes a shard of the batches
        torch.manual_seed(a.seed)
        model, tok = load_base(a.model_dir)
        model.to(distributed.device())
        examples = read_examples(a.data)[: a.n_examples]
        cfg = TrainConfig(max_length=a.max_length, template=a.template, train_on_prompt=True)
        items = [t for t in (tokenize_example(e, tok, cfg) for e in examples) if t is not None]
        t0 = time.perf_counter()
        # several ranks need per-batch dropout streams; one process keeps the single global stream
        raw = compute_importance(model, list(batches(items, a.batch_size, tok.pad_token_id, seed=None)),
                                 dropout=a.dropout, kl_weight=a.kl_weight, abs_grad=a.abs_grad,
                                 seed=a.seed if multi else None, progress=distributed.is_main())
        meta = {"n_examples": len(items), "dropout": a.dropout, "kl_weight": a.kl_weight, "abs_grad": a.abs_grad,
                "wall_s": round(time.perf_counter() - t0, 2), "data": a.data}
        if multi:
            meta |= {"world_size": distributed.world_size(), "dropout_seed": f"per batch: {a.seed} + index"}
        if distributed.is_main():
            save_importance(a.out, {k: v.cpu() for k, v in raw.items()}, meta)
            log.info("importance over %d examples in %.1fs -> %s", len(items), meta["wall_s"], a.out)
        distributed.barrier()


@command("train",
         opt("--run-config", required=True,
             help="the row's resolved run config (results/config/run/<model>/<task>/<method>/<variant>.json)"),
         opt("--model-dir", required=True),
         opt("--data", required=True, help="normalised train.jsonl"),
         opt("--importance", nargs="*", help="importance files, max-merged (explicit list)"),
         opt("--sources", nargs="*", help="source checkpoints of a post-hoc method (Wise-FT)"),
         opt("--out", required=True, help="checkpoint folder"),
         help="train one run (method/variant) and save its trainable tensors")
def cmd_train(a) -> None:
    from cofitune.core import distributed
    from cofitune.pipeline.io import read_json
    from cofitune.pipeline.runner import combine_run, train_run

    with distributed.session():  # torchrun: train.distributed (ddp | fsdp2) over all ranks; rank 0 saves
        kind = read_json(a.run_config)["kind"]
        if kind == "trained":
            train_run(a.run_config, a.model_dir, a.data, a.importance or [], a.out)
        elif kind == "post_hoc" and a.sources:
            if distributed.is_main():  # post-hoc: nothing to parallelise
                combine_run(a.run_config, a.model_dir, a.sources, a.out)
            distributed.barrier()
        else:
            raise ValueError(f"{a.run_config}: a {kind} run has no checkpoint to build"
                             + (" (post_hoc: --sources is empty)" if kind == "post_hoc" else ""))


@command("resolve-region",
         opt("--config", required=True, help="the row's run or train config (results/config/<view>/...)"),
         opt("--chosen", required=True, help="the tree search's chosen.json"),
         opt("--out", required=True),
         help="a from_search row's run or train config with the search's chosen region written in")
def cmd_resolve_region(a) -> None:
    from cofitune.pipeline.config import resolve_region
    from cofitune.pipeline.io import read_json, write_json

    resolved = resolve_region(read_json(a.config), read_json(a.chosen), where=a.chosen)
    write_json(a.out, resolved)
    log.info("%s/%s trains %s (%s)", resolved["method"], resolved["variant"], resolved["region"], a.chosen)


@command("evaluate",
         opt("--run-config", required=True),
         opt("--model-dir", required=True),
         opt("--checkpoint", default=None, help="partial checkpoint folder (none: the base model)"),
         opt("--test", required=True, help="normalised test.jsonl"),
         opt("--out", required=True, help="metrics.json"),
         opt("--predictions", required=True, help="predictions.jsonl"),
         opt("--nltk-dir", required=True, help="folder for the locally trained Punkt model"),
         opt("--model-meta", default=None, help="prepare-model JSON, for provenance"),
         opt("--data-meta", default=None, help="prepare-data meta.json, for provenance"),
         opt("--probe", default=None, help="prepare-probe JSON: measure drift from the base model"),
         help="speciality + versatility of one checkpoint -> metrics.json")
def cmd_evaluate(a) -> None:
    from cofitune.pipeline.runner import evaluate_run

    evaluate_run(a.run_config, a.model_dir, a.checkpoint, a.test, a.out, a.predictions, a.nltk_dir,
                 model_meta=a.model_meta, data_meta=a.data_meta, probe=a.probe)


@command("sync-readme",
         opt("--readme", default="README.md"),
         opt("--root", default=".", help="the folder the blocks' file names are relative to"),
         help="rewrite the README's generated result blocks from their files")
def cmd_sync_readme(a) -> None:
    from cofitune.reporting.readme import sync

    log.info("%s: %d generated block(s) rewritten", a.readme, sync(Path(a.readme), Path(a.root)))


@command("prepare-probe",
         opt("--model-dir", required=True, help="prepared base model folder"),
         opt("--data-dir", required=True, help="folder of the versatility subsets (the probe prompts)"),
         opt("--max-new-tokens", type=int, required=True),
         opt("--max-prompt-tokens", type=int, required=True, help="keep the last N tokens of a longer prompt"),
         opt("--batch-size", type=int, required=True),
         opt("--out", required=True, help="probe JSON"),
         help="the original model's greedy continuations of the drift probe")
def cmd_prepare_probe(a) -> None:
    from cofitune.pipeline.runner import probe_run

    probe_run(a.model_dir, a.data_dir, a.out, max_new_tokens=a.max_new_tokens, max_prompt_tokens=a.max_prompt_tokens,
              batch_size=a.batch_size)


@command("prepare-nltk",
         opt("--out", required=True, help="NLTK data folder"),
         help="train NLTK's Punkt model offline (IFEval sentence splitting)")
def cmd_prepare_nltk(a) -> None:
    from evaluators.versatility import ensure_punkt

    log.info("Punkt model (trained locally, offline) -> %s", ensure_punkt(Path(a.out)))


def _uni(a) -> dict[str, float]:
    return {"spec": a.uni_weights[0], "vers": a.uni_weights[1]}


def _read_trials(paths: list[str]) -> dict:
    from cofitune.pipeline.io import read_json
    from cofitune.pipeline.search import trial_node

    trials = {}
    for path in paths:
        m = read_json(path)
        node = trial_node(m, path)
        if node in trials:
            raise ValueError(f"{path}: a second trial of region {node.id}")
        trials[node] = m
    return trials


def _log_decision(what: str, record: dict) -> None:
    log.info("%s: %s -> %s", what, [v["node"] for v in record["visited"]], record["chosen"]["node"])
    margin = record["margin"]
    if margin is not None:
        lo, hi = margin["ci95"]
        (log.warning if margin["within_noise"] else log.info)(
            "%s: lead over %s on %s = %.2f, paired-bootstrap 95%% CI [%.2f, %.2f]%s", what, margin["runner_up"],
            margin["key"], margin["delta"], lo, hi, " -- within noise" if margin["within_noise"] else "")


@command("search-level",
         *SEARCH,
         opt("--level", type=int, required=True),
         opt("--parent", default=None, help="previous level's chosen node id (modules@layers)"),
         opt("--order", choices=("range-first", "module-first"), default=schema_default("search", "order")),
         help="decide one tree-search level")
def cmd_search_level(a) -> None:
    from cofitune.core.search import ROOT, Node
    from cofitune.pipeline.io import read_json, write_json
    from cofitune.pipeline.search import decide_level

    parent = ROOT if a.parent is None else Node.parse(a.parent)
    record = decide_level(a.level, parent, _read_trials(a.trials), read_json(a.original), criterion=a.criterion,
                          min_vers_pct=a.min_vers_pct, order=a.order, uni=_uni(a))
    write_json(a.out, record)
    _log_decision(f"level {a.level}", record)


@command("search-grid", *SEARCH, help="select over the exhaustive grid")
def cmd_search_grid(a) -> None:
    from cofitune.pipeline.io import read_json, write_json
    from cofitune.pipeline.search import decide_grid

    record = decide_grid(_read_trials(a.trials), read_json(a.original), criterion=a.criterion,
                         min_vers_pct=a.min_vers_pct, uni=_uni(a))
    write_json(a.out, record)
    _log_decision("grid", record)


@command("aggregate",
         opt("--metrics", nargs="+", required=True),
         opt("--run-configs", nargs="+", default=None,
             help="each row's current run config (same order as --metrics): a metrics file made under "
                  "another configuration is refused, naming the differing keys"),
         opt("--csv", required=True),
         opt("--md", required=True),
         opt("--tex", default=None, help="LaTeX booktabs table (optional)"),
         opt("--html", default=None, help="HTML table for the Snakemake report (optional)"),
         opt("--claims-csv", default=None, help="claims table, every number (optional)"),
         opt("--claims-md", default=None, help="claims table, Markdown (optional)"),
         *UNI,
         help="derive the comparison table from metrics files")
def cmd_aggregate(a) -> None:
    from cofitune.reporting.aggregate import refuse_stale, write_tables

    if a.run_configs is not None:
        refuse_stale(a.metrics, a.run_configs)
    df = write_tables(a.metrics, a.csv, a.md, a.tex, a.html, uni=_uni(a), claims_csv=a.claims_csv,
                      claims_md=a.claims_md)
    log.info("table with %d rows -> %s", len(df), a.md)


@command("plot-pareto",
         opt("--table", required=True),
         opt("--model", required=True),
         opt("--task", required=True),
         opt("--metrics", nargs="+", required=True,
             help="the rows' metrics.json files: each row's run parameters (Wise-FT's alpha and source)"),
         *FIGURE,
         help="Spec-vs-Vers Pareto plot of one (model, task) from the table CSV")
def cmd_plot_pareto(a) -> None:
    import pandas as pd

    from cofitune.pipeline.io import read_json
    from cofitune.reporting.plots import pareto_plot

    df = pd.read_csv(a.table, dtype={"setting": str})
    block = df[(df.model == a.model) & (df.task == a.task)]
    if block.empty:
        raise ValueError(f"{a.table}: no rows for model {a.model!r} and task {a.task!r}")
    runs = [read_json(p)["run"] for p in a.metrics]
    params = {(r["method"], r["variant"]): r["params"] for r in runs if (r["model"], r["task"]) == (a.model, a.task)}
    pareto_plot(block, a.png, a.svg, title=f"{a.task} · {a.model}: speciality vs versatility", params=params)


@command("plot-search",
         opt("--levels", nargs="+", required=True),
         opt("--title", required=True),
         *FIGURE,
         help="tree-search plot from level JSON files (or grid.json)")
def cmd_plot_search(a) -> None:
    from cofitune.pipeline.io import read_json
    from cofitune.reporting.plots import search_plot

    records = [read_json(p) for p in a.levels]
    search_plot(records[0] if len(records) == 1 and "parent" not in records[0] else records, a.png, a.svg,
                title=a.title)


@command("plot-importance",
         opt("--importance", required=True),
         opt("--title", required=True),
         *FIGURE,
         help="importance heatmaps (layer x unit) from an importance file")
def cmd_plot_importance(a) -> None:
    from cofitune.reporting.plots import importance_heatmap, load_importance_for_plot

    importance_heatmap(load_importance_for_plot(a.importance), a.png, a.svg, title=a.title)


@command("report-capture",
         opt("--report", required=True, help="report.html from `snakemake --report`"),
         opt("--result", required=True, help="the result's path suffix, e.g. pareto.png"),
         opt("--png", required=True, help="screenshot to write"),
         opt("--skip-without-browser", action="store_true",
             help="without Chromium on PATH, say so in one line and exit 0 (the demo; tests require it)"),
         help="screenshot one result of a Snakemake report in headless Chromium")
def cmd_report_capture(a) -> None:
    from cofitune.reporting.report import capture, find_chromium, shown_payloads

    if a.skip_without_browser:
        try:
            find_chromium()
        except RuntimeError as err:
            log.warning("report screenshot skipped (%s); %s is complete; with Chromium installed, `make screenshot` "
                        "takes it", err, a.report)
            return
    dom = capture(a.report, a.result, a.png)
    shown = shown_payloads(dom)
    if not shown:
        raise RuntimeError(f"{a.report}: Chromium rendered no image or page for {a.result!r}")
    log.info("%s shows %s -> %s", a.report, [(m, len(b)) for m, b in shown], a.png)


@command("parity",
         opt("--model-dir", required=True),
         opt("--checkpoint", default=None, help="a run's checkpoint folder (default: the base model)"),
         opt("--test", required=True, help="prepared test.jsonl"),
         opt("--evaluator", default="squad"),
         opt("--template", default="alpaca"),
         opt("--n", type=int, default=100),
         opt("--max-new-tokens", type=int, default=32),
         opt("--repetition-penalty", type=float, default=1.2),
         opt("--dtype", default="float32", help="vLLM dtype (float32 matches HF's CPU-exact weights)"),
         opt("--out", required=True, help="parity JSON"),
         help="compare HF and vLLM greedy generation on N test items (GPU, or vLLM's CPU build)")
def cmd_parity(a) -> None:
    from cofitune.core.distributed import device
    from cofitune.core.prompt import build_prompt
    from cofitune.pipeline import vllm_backend
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.evaluate import generate
    from cofitune.pipeline.io import write_json
    from cofitune.pipeline.model import load_for_eval
    from evaluators.speciality import get_scorer

    vllm_backend.require_vllm("parity (--backend vllm)")
    examples = read_examples(a.test)[: a.n]
    scorer = get_scorer(a.evaluator)
    model, tok = load_for_eval(a.model_dir, a.checkpoint)
    model = model.to(device())  # the GPU, or the host for vLLM's CPU build
    prompts = [build_prompt(e, a.template, tok) for e in examples]
    hf_texts, _ = generate(model, tok, prompts, max_new_tokens=a.max_new_tokens,
                           repetition_penalty=a.repetition_penalty)
    with vllm_backend.exported(model, tok) as folder:
        vllm_texts, _, _ = vllm_backend.generate(vllm_backend.make_llm(folder, dtype=a.dtype), prompts,
                                                 max_new_tokens=a.max_new_tokens,
                                                 repetition_penalty=a.repetition_penalty)

    def scores(texts):
        return [scorer.score(scorer.extract(t), e.get("references") or [e["output"]])[scorer.PRIMARY]
                for t, e in zip(texts, examples)]

    report = vllm_backend.parity(hf_texts, vllm_texts, scores(hf_texts), scores(vllm_texts))
    write_json(a.out, {**report, "metric": scorer.PRIMARY, "model_dir": str(a.model_dir),
                       "checkpoint": a.checkpoint and str(a.checkpoint), "max_new_tokens": a.max_new_tokens,
                       "repetition_penalty": a.repetition_penalty})
    log.info("HF vs vLLM on %d items: exact match %.1f%%, %s diff %+.3f -> %s", report["n"],
             100 * report["exact_match_rate"], scorer.PRIMARY, report["metric_diff"], a.out)


@command("bench",
         opt("--suite", required=True, help="suite name under config/bench/ or a YAML path"),
         opt("--method", help="registered method name (add --plugin for a method in its own file)"),
         opt("--variant", default="bench", help="variant name of the new row (default: bench)"),
         opt("--params", help="method params as a JSON object"),
         opt("--train", help="train overrides for this row as a JSON object, e.g. '{\"lr\": 1e-4}'"),
         opt("--seed", type=int, default=None, help="training seed of the new row (default: the suite's)"),
         opt("--plugin", action="append", default=[], help="method file to load (repeatable)"),
         opt("--cores", type=int, default=2),
         opt("--workdir", type=Path, default=None,
             help="Snakemake working directory (default: results/bench/<suite>/<method>-<variant>)"),
         opt("--refresh", action="store_true", help="re-run the suite's methods and store their metrics"),
         help="regression-benchmark a method against a suite's stored baselines",
         description="Run one method through a bench suite (config/bench/<suite>.yaml) and gate it "
                     "against the suite's stored reference: writes verdict.json and verdict.md, "
                     "exits 0 on pass and 1 on fail. --refresh re-runs and stores the baselines.")
def cmd_bench(a) -> int:
    from cofitune.reporting import bench

    if a.refresh:
        out = bench.refresh(a.suite, cores=a.cores, workdir=a.workdir)
        log.info("stored baselines of suite %s -> %s", a.suite, out)
        return 0
    if not a.method:
        raise ValueError("cofitune bench: give --method NAME (or --refresh to store the suite's baselines)")
    verdict = bench.run_bench(a.suite, a.method, variant=a.variant, params=bench.parse_mapping(a.params, "--params"),
                              train=bench.parse_mapping(a.train, "--train"), seed=a.seed, plugins=a.plugin,
                              cores=a.cores,
                              workdir=a.workdir)
    print(bench.to_markdown(verdict))
    return 0 if verdict["passed"] else 1


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per registered command (:func:`command`), in registration order."""
    p = argparse.ArgumentParser(prog="cofitune", description="One subcommand per stage of the DAG (the Snakemake "
                                "rules call them); each runs on its own too.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (func, arguments, parser_kwargs) in COMMANDS.items():
        s = sub.add_parser(name, **parser_kwargs)
        for flags, options in arguments:
            s.add_argument(*flags, **options)
        s.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get("COFITUNE_THREADS"):  # one torch thread pool per job, sized by Snakemake's threads
        import torch

        torch.set_num_threads(int(os.environ["COFITUNE_THREADS"]))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command != "fetch-models":  # the one command that downloads; everything else stays offline
        _offline()
    try:
        status = args.func(args)
    except (ValueError, FileNotFoundError) as err:  # user errors: one clear line; bugs keep their traceback
        log.error("%s failed: %s", args.command, err)
        return 2
    return status or 0  # commands with a verdict (bench) return 1 on fail


if __name__ == "__main__":
    sys.exit(main())
