# Coarse tree search (docs/method.md section 2). Trials are coarse_only runs named node.<modules>.<layers>
# (or the configured coarse_only row of the same region: trained once); they reuse the train/evaluate rules
# and share the model's `original` evaluation.
import json

from cofitune.pipeline.runs import SEARCH_TRIAL_METHOD, reference_variant, trial_variant
from cofitune.core.region import Region
from cofitune.core.search import ROOT as TREE_ROOT, all_nodes, children

SEARCH = config["search"]


def trial_metrics(w, nodes):
    """A trial is its own coarse_only run, or the configured coarse_only row of the same region."""
    return [P.fill(P.METRICS, model=w.model, task=w.task, method=SEARCH_TRIAL_METHOD, variant=trial_variant(config, n))
            for n in nodes]


def original_metrics(w):
    return P.fill(P.METRICS, model=w.model, task=w.task, method="original", variant=reference_variant(config, "original"))


def previous_level(w):
    """Level k descends from level k-1's choice: that level's record (a checkpoint: re-evaluates the DAG);
    level 1 has none (the root)."""
    level = int(w.level)
    if level == 1:
        return []
    return [checkpoints.search_level.get(model=w.model, task=w.task, level=str(level - 1)).output[0]]


def level_parent(w):
    previous = previous_level(w)
    if not previous:
        return TREE_ROOT
    return Region.from_record(json.loads(Path(previous[0]).read_text())["chosen"], where=previous[0])


checkpoint search_level:
    input:
        trials=lambda w: trial_metrics(w, children(level_parent(w), int(w.level), SEARCH["order"])),
        original=original_metrics,
        previous=previous_level,
        cfg=config_input("search"),
    output:
        P.SEARCH_LEVEL,
    log:
        "logs/search_level/{model}/{task}/level{level}.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} search-level --config {input.cfg} --trials {input.trials} "
        "--original {input.original} --previous {input.previous} --out {output} > {log} 2>&1"


rule search_grid:
    input:
        trials=lambda w: trial_metrics(w, all_nodes()),
        original=original_metrics,
        cfg=config_input("search"),
    output:
        P.SEARCH_GRID,
    log:
        "logs/search_grid/{model}/{task}.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} search-grid --config {input.cfg} --trials {input.trials} "
        "--original {input.original} --out {output} > {log} 2>&1"


rule choose_region:
    input:
        lambda w: (P.fill(P.SEARCH_GRID, model=w.model, task=w.task) if SEARCH["mode"] == "exhaustive"
                   else P.fill(P.SEARCH_LEVEL, model=w.model, task=w.task, level=3)),
    output:
        P.CHOSEN,
    shell:
        "cp {input} {output}"


rule resolve_region:
    """A from_search row's run or train config with the search's chosen region written in: what the row trains
    is in its own config (run.json is true for every row), and only its own view's edits re-run it."""
    input:
        cfg=lambda w: config_input(w.view)(w),
        chosen=P.CHOSEN,
    output:
        P.RESOLVED_CONFIG,
    wildcard_constraints:
        view="run|train",
    log:
        f"logs/resolve_region/{{view}}/{RUN_ID}.log",
    shell:
        "{PY} resolve-region --config {input.cfg} --chosen {input.chosen} --out {output} > {log} 2>&1"
