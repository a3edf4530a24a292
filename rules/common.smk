import os

from cofitune.pipeline.config import STAGE_KEYS, check_config, stage_config, stage_config_path, sync_stage_config
from cofitune.pipeline.runs import configured_runs, method_for, run_sources
from cofitune.pipeline.probe import PROBE_SOURCES
from cofitune.pipeline.launch import OFFLINE, launch_command
from cofitune.pipeline import paths as P
from cofitune.core.methods import get_method, method_names

# No network at run time: every stage reads local files only.
os.environ.update(OFFLINE)

ROOT = workflow.basedir
check_config(config, ROOT)  # method params, sheet names: fail before any job runs
# sheets resolve against the repository, so `--directory elsewhere` keeps working
MODELS_SHEET = os.path.join(ROOT, config["models_sheet"])
TASKS_SHEET = os.path.join(ROOT, config["tasks_sheet"])

PY = "python -m cofitune"
RUN_ID = P.RUN_ID  # logs/ and benchmarks/ mirror the results/ tree (cofitune.pipeline.paths)
RUN = P.RUN

wildcard_constraints:
    model="[A-Za-z0-9_.-]+",
    level="[123]",
    task="[A-Za-z0-9_.-]+",
    method="|".join(method_names()),
    variant="[A-Za-z0-9_.+-]+",


def all_runs():
    """(model, task, method, variant) for every configured row."""
    return [
        dict(model=m, task=t, method=r["method"], variant=r["variant"])
        for m in config["models"]
        for t in config["tasks"]
        for r in configured_runs(config)
    ]


def has_checkpoint(w):
    """Trained runs and post-hoc combinations (Wise-FT) have a checkpoint; `original` does not."""
    return method_for(config, w.method, w.variant).kind != "reference"


def source_inputs(w):
    """Checkpoints a post-hoc method combines (explicit list, read from the method)."""
    sources = run_sources(config, w.method, w.variant)
    return [P.fill(P.CHECKPOINT, model=w.model, task=w.task, method=m, variant=v) for m, v in sources]


def search_targets():
    if not config["search"]["enabled"]:
        return []
    return expand(P.CHOSEN, model=config["models"], task=config["tasks"])


def row_config(view):
    """A row's run or train config: the resolved one for a from_search row (rule resolve_region: the search's
    chosen region written in), the configured one for every other row. The function takes wildcards or a
    mapping of them."""
    def path(w):
        method, variant = w["method"], w["variant"]
        if method_for(config, method, variant).from_search:
            return P.fill(P.RESOLVED_CONFIG, view=view, model=w["model"], task=w["task"], method=method,
                          variant=variant)
        return config_input(view)(w)
    return path


def importance_inputs(w):
    if get_method(w.method).needs_importance:
        return [P.fill(P.IMPORTANCE, model=w.model, task=w.task)]
    return []


def probe_input(w):
    """The model's drift probe and the task's, when drift is measured (an empty list renders as no path)."""
    drift = config["evaluation"]["drift"]
    return {"probe": [P.fill(P.PROBE, model=w.model)] if drift["enabled"] else [],
            "task_probe": [P.fill(P.TASK_PROBE, model=w.model, task=w.task)]
            if drift["enabled"] and drift["task_prompts"] else []}


def config_input(kind):
    """A job's configuration as an input file, (re)written while the DAG is built only when its content
    changes: its time stamp tracks its content, so an edit re-runs the job under every rerun trigger,
    mtime-only included. A dry run writes it too, so what it lists is what a real run would do."""
    def path(w):
        key = STAGE_KEYS[kind].format(**w)
        out = stage_config_path(kind, key)
        sync_stage_config(out, stage_config(config, kind, key, ROOT))
        return out
    return path


def checkpoint_input(w):
    return {"ckpt": [P.CHECKPOINT.format(**w)] if has_checkpoint(w) else []}
