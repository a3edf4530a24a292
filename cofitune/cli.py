"""``python -m cofitune <stage>``: one subcommand per DAG stage, each usable without Snakemake. A command is
a function registered with :func:`command`, its arguments declared beside it; ``build_parser`` is a loop
over the registry."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

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
    """Register the decorated function as ``python -m cofitune <name>`` with ``arguments`` (:func:`opt`, or a
    stage config class: its ``--config`` and one flag per field, :func:`cofitune.pipeline.stage_configs.add_flags`)."""
    def register(func: Callable) -> Callable:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = (func, arguments, parser_kwargs)
        return func
    return register


FIGURE = (opt("--png", required=True), opt("--svg", required=True))
SEARCH = (opt("--trials", nargs="+", required=True, help="metrics.json of the trial runs"),
          opt("--original", required=True, help="metrics.json of the original model"),
          opt("--out", required=True))


def _stage_config(a, name: str, **fallback):
    """The stage config of a command line (:func:`cofitune.pipeline.stage_configs.from_args`): ``name`` is the
    stage config class the command was registered with."""
    from cofitune.pipeline import stage_configs

    return stage_configs.from_args(getattr(stage_configs, name), a, **fallback)


@command("prepare-model",
         opt("--sheet", required=True, help="model sheet YAML"),
         opt("--name", required=True, help="model name in the sheet"),
         opt("--out", required=True, help="output folder"),
         opt("--meta", required=True, help="output JSON (sha256, sanity generation)"),
         help="materialise a model of the sheet as a safetensors folder")
def cmd_prepare_model(a) -> None:
    from cofitune.pipeline.stages import model

    model.run(a.sheet, a.name, a.out, a.meta)


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
         "DataStage",
         opt("--sheet", default=None, help="hand use: take --task's entry (the spec) from this task sheet"),
         opt("--root", default=None, help="with --sheet: the folder its data paths resolve against (default: the "
                                          "repository)"),
         opt("--out", required=True, help="output folder"),
         help="normalise a task to {instruction,input,output} JSONL splits")
def cmd_prepare_data(a) -> None:
    from cofitune import repo
    from cofitune.pipeline.stages import data
    from cofitune.pipeline.task_sheet import read_task_sheet

    fallback = {}
    if a.sheet is not None:
        tasks, task = read_task_sheet(a.sheet, a.root or repo.ROOT), a.stage_task
        if task not in tasks:
            raise ValueError(f"{a.sheet}: no task {task!r} (have {sorted(tasks)})")
        fallback["spec"] = tasks[task]
    data.run(_stage_config(a, "DataStage", **fallback), a.out)


@command("importance",
         "ImportanceStage",
         opt("--model-dir", required=True),
         opt("--data", required=True, help="normalised train.jsonl"),
         opt("--out", required=True, help="output .safetensors"),
         help="unit importance from gate gradients of the KL proxy")
def cmd_importance(a) -> None:
    from cofitune.pipeline.stages import importance

    importance.run(_stage_config(a, "ImportanceStage"), a.model_dir, a.data, a.out)


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
    from cofitune.pipeline.stages import train

    train.run(a.run_config, a.model_dir, a.data, a.out, importance=a.importance or [], sources=a.sources or [])


@command("resolve-region",
         opt("--config", required=True, help="the row's run or train config (results/config/<view>/...)"),
         opt("--chosen", required=True, help="the tree search's chosen.json"),
         opt("--out", required=True),
         help="a from_search row's run or train config with the search's chosen region written in")
def cmd_resolve_region(a) -> None:
    from cofitune.pipeline.stages import region

    region.run(a.config, a.chosen, a.out)


@command("evaluate",
         opt("--run-config", required=True),
         opt("--model-dir", required=True),
         opt("--checkpoint", nargs="*", default=[], help="partial checkpoint folder (none: the base model)"),
         opt("--test", required=True, help="normalised test.jsonl"),
         opt("--out", required=True, help="metrics.json"),
         opt("--predictions", required=True, help="predictions.jsonl"),
         opt("--nltk-dir", required=True, help="folder for the locally trained Punkt model"),
         opt("--model-meta", default=None, help="prepare-model JSON, for provenance"),
         opt("--data-meta", default=None, help="prepare-data meta.json, for provenance"),
         opt("--probe", nargs="*", default=[], help="prepare-probe JSON: measure drift from the base model"),
         opt("--task-probe", nargs="*", default=[], help="prepare-task-probe JSON: measure the task's drift"),
         help="speciality + versatility of one checkpoint -> metrics.json")
def cmd_evaluate(a) -> None:
    from cofitune.pipeline.stages import evaluate

    evaluate.run(a.run_config, a.model_dir, _at_most_one(a.checkpoint, "--checkpoint"), a.test, a.out, a.predictions,
                 a.nltk_dir, model_meta=a.model_meta, data_meta=a.data_meta, probe=_at_most_one(a.probe, "--probe"),
                 task_probe=_at_most_one(a.task_probe, "--task-probe"))


def _at_most_one(values: list[str], flag: str) -> str | None:
    """An optional path given as a list (a rule's optional input renders as nothing): none or one."""
    if len(values) > 1:
        raise ValueError(f"{flag}: at most one path, got {values}")
    return values[0] if values else None


@command("sync-readme",
         opt("--readme", nargs="+", default=None, metavar="PAGE",
             help="the pages to rewrite (default: README.md and docs/*.md under --root)"),
         opt("--root", default=".", help="the folder the blocks' file names are relative to"),
         help="rewrite the generated result blocks of the README and the docs/ pages from their files")
def cmd_sync_readme(a) -> None:
    from cofitune.reporting.readme import pages, sync

    changed = {str(p): sync(p, Path(a.root)) for p in map(Path, a.readme or pages(Path(a.root)))}
    for page, n in changed.items():
        if n:
            log.info("%s: %d generated block(s) rewritten", page, n)
    log.info("%d page(s), %d generated block(s) rewritten", len(changed), sum(changed.values()))


@command("prepare-probe",
         "ProbeStage",
         opt("--model-dir", required=True, help="prepared base model folder"),
         opt("--data-dir", required=True, help="folder of the versatility subsets (the probe prompts)"),
         opt("--out", required=True, help="probe JSON"),
         help="the original model's greedy continuations of the drift probe")
def cmd_prepare_probe(a) -> None:
    from cofitune.pipeline.stages import probe

    probe.run(_stage_config(a, "ProbeStage"), a.model_dir, a.data_dir, a.out)


@command("prepare-task-probe",
         "TaskProbeStage",
         opt("--model-dir", required=True, help="prepared base model folder"),
         opt("--train", required=True, help="the task's normalised train.jsonl (the probe's prompts)"),
         opt("--out", required=True, help="task probe JSON"),
         help="the original model's greedy continuations of the task's own training prompts (TaskDrift)")
def cmd_prepare_task_probe(a) -> None:
    from cofitune.pipeline.stages import probe

    probe.run_task(_stage_config(a, "TaskProbeStage"), a.model_dir, a.train, a.out)


@command("prepare-nltk",
         opt("--out", required=True, help="NLTK data folder"),
         help="train NLTK's Punkt model offline (IFEval sentence splitting)")
def cmd_prepare_nltk(a) -> None:
    from evaluators.punkt import ensure_punkt

    log.info("Punkt model (trained locally, offline) -> %s", ensure_punkt(Path(a.out)))


@command("search-level",
         "SearchStage",
         *SEARCH,
         opt("--previous", nargs="*", default=[],
             help="the previous level's record (none: level 1, below the root)"),
         help="decide one tree-search level")
def cmd_search_level(a) -> None:
    from cofitune.pipeline.stages import search

    search.run(_stage_config(a, "SearchStage"), a.trials, a.original, a.out,
               previous=_at_most_one(a.previous, "--previous"))


@command("search-grid", "SearchStage", *SEARCH, help="select over the exhaustive grid")
def cmd_search_grid(a) -> None:
    from cofitune.pipeline.stages import search

    search.run(_stage_config(a, "SearchStage"), a.trials, a.original, a.out, grid=True)


@command("aggregate",
         "TablesStage",
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
         opt("--leaderboard-csv", default=None, help="leaderboard, every number (optional)"),
         opt("--leaderboard-md", default=None, help="leaderboard, Markdown (optional)"),
         opt("--leaderboard-verdicts-md", default=None,
             help="the leaderboard's decided verdicts only, Markdown, for the README (optional)"),
         help="derive the comparison table (and the leaderboard) from metrics files")
def cmd_aggregate(a) -> None:
    from cofitune.reporting.aggregate import refuse_stale, write_tables

    cfg = _stage_config(a, "TablesStage")
    if a.run_configs is not None:
        refuse_stale(a.metrics, a.run_configs)
    df = write_tables(a.metrics, a.csv, a.md, a.tex, a.html, uni=cfg.uni, claims_csv=a.claims_csv,
                      claims_md=a.claims_md, references=cfg.references,
                      leaderboard_csv=a.leaderboard_csv, leaderboard_md=a.leaderboard_md,
                      leaderboard_verdicts_md=a.leaderboard_verdicts_md)
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
    from cofitune.reporting.plots import pareto_from_files

    pareto_from_files(a.table, a.model, a.task, a.metrics, a.png, a.svg)


@command("plot-search",
         opt("--levels", nargs="+", required=True),
         opt("--title", required=True),
         *FIGURE,
         help="tree-search plot from level JSON files (or grid.json)")
def cmd_plot_search(a) -> None:
    from cofitune.reporting.plots import search_from_files

    search_from_files(a.levels, a.png, a.svg, title=a.title)


@command("plot-importance",
         opt("--importance", required=True),
         opt("--title", required=True),
         *FIGURE,
         help="importance heatmaps (layer x unit) from an importance file")
def cmd_plot_importance(a) -> None:
    from cofitune.reporting.plots import importance_heatmap, load_importance_for_plot

    importance_heatmap(load_importance_for_plot(a.importance), a.png, a.svg, title=a.title)


@command("bench-gate",
         opt("--config", required=True, help="the bench stage config (results/config/bench/all.json)"),
         opt("--metrics", nargs="+", required=True, help="the candidate's metrics.json per (model, task)"),
         opt("--json", required=True),
         opt("--md", required=True),
         help="gate the bench candidate against the suite's stored baselines (rule bench_verdict)")
def cmd_bench_gate(a) -> None:
    from cofitune.reporting import bench

    verdict = bench.gate(a.config, a.metrics)
    bench.write_verdict(verdict, a.json, a.md)
    log.info("bench %s/%s on suite %s: %s -> %s", verdict["method"], verdict["variant"], verdict["suite"],
             "PASS" if verdict["passed"] else "FAIL", a.json)


@command("fingerprint",
         opt("--parts", action="store_true", help="also each part's hash, one `<sha256>  <part>` line each"),
         help="the hash of the code that determines the numbers (stored bench baselines are keyed by it)",
         description="Print the numerics fingerprint of this checkout: one SHA-256 over what trains, evaluates "
                     "and scores (without docstrings and comments) and the rules that make metrics files; the "
                     "parts and the files each covers are cofitune.pipeline.fingerprint.PARTS.")
def cmd_fingerprint(a) -> None:
    from cofitune import repo
    from cofitune.pipeline.fingerprint import fingerprint

    fp = fingerprint(repo.require_checkout())
    print(fp["sha256"])
    for name, sha in fp["parts"].items() if a.parts else ():
        print(f"{sha}  {name}")


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per registered command (:func:`command`), in registration order."""
    p = argparse.ArgumentParser(prog="cofitune", description="One subcommand per stage of the DAG (the Snakemake "
                                "rules call them); each runs on its own too.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (func, arguments, parser_kwargs) in COMMANDS.items():
        s = sub.add_parser(name, **parser_kwargs)
        for argument in arguments:
            if isinstance(argument, str):  # a stage config class, by name
                from cofitune.pipeline import stage_configs

                stage_configs.add_flags(s, getattr(stage_configs, argument))
            else:
                s.add_argument(*argument[0], **argument[1])
        s.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cofitune import repo

    try:
        repo.require_checkout()
    except repo.NotACheckout as err:  # a wheel install: one line, no traceback
        print(f"cofitune: {err}", file=sys.stderr)
        return 2
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
