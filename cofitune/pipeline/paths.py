"""The ``results/`` tree, in one place: every file a stage writes, as a template whose braces are Snakemake
wildcards. The rules (``rules/*.smk``) take their outputs from here and their inputs from other rules'
outputs; the package formats the same templates (:func:`fill`). Relative to the working directory."""

from __future__ import annotations

#: one table row: a (model, task, method, variant)
RUN_ID = "{model}/{task}/{method}/{variant}"
RUN = f"results/runs/{RUN_ID}"
METRICS = f"{RUN}/metrics.json"
PREDICTIONS = f"{RUN}/predictions.jsonl"
CHECKPOINT = f"{RUN}/checkpoint"

#: a stage's resolved configuration (``cofitune.pipeline.config.STAGE_KEYS`` names each kind's key)
STAGE_CONFIG = "results/config/{kind}/{key}.json"
#: a from_search row's run or train config with the search's chosen region written in
RESOLVED_CONFIG = f"results/config/resolved/{{view}}/{RUN_ID}.json"

MODEL = "results/models/{model}/base"
MODEL_META = "results/models/{model}/base.json"
#: one task's prepared splits: train.jsonl, test.jsonl and meta.json
DATA = "results/data/{task}"
NLTK = "results/nltk_data"
IMPORTANCE = "results/importance/{model}/{task}.safetensors"
PROBE = "results/probe/{model}.json"
#: the task drift probe: one task's training prompts with the original's greedy continuations
TASK_PROBE = "results/probe/{model}/{task}.json"

SEARCH = "results/search/{model}/{task}"
SEARCH_LEVEL = f"{SEARCH}/level{{level}}.json"
SEARCH_GRID = f"{SEARCH}/grid.json"
CHOSEN = f"{SEARCH}/chosen.json"

#: main.{csv,md,tex,html} and claims.{csv,md}
TABLES = "results/tables"
#: the bench gate's verdict on the candidate row (rules/bench.smk), .json and .md
BENCH_VERDICT = "results/bench/verdict"
#: one (task, model)'s figures: pareto, search, importance (.png and .svg)
PLOTS = "results/plots/{task}/{model}"


def fill(template: str, **wildcards: str) -> str:
    """``template`` with ``wildcards`` filled in; a wildcard left unnamed is an error (a half-filled path
    would match nothing, silently)."""
    try:
        return template.format(**wildcards)
    except KeyError as err:
        raise ValueError(f"path {template!r} needs wildcard {err.args[0]!r}; given {sorted(wildcards)}") from None
