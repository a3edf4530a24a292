import os

from cofitune.config import check_config, run_config
from cofitune.methods import get_method, method_names

# No network at run time: every stage reads local files only.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

ROOT = workflow.basedir
check_config(config, ROOT)  # method params, sheet names: fail before any job runs
# sheets resolve against the repository, so `--directory elsewhere` keeps working
MODELS_SHEET = os.path.join(ROOT, config["models_sheet"])
TASKS_SHEET = os.path.join(ROOT, config["tasks_sheet"])

PY = "python -m cofitune"
RUN_ID = "{model}/{task}/{method}/{variant}"
RUN = f"results/runs/{RUN_ID}"

wildcard_constraints:
    model="[A-Za-z0-9_.-]+",
    task="[A-Za-z0-9_.-]+",
    method="|".join(method_names()),
    variant="[A-Za-z0-9_.+-]+",


def all_runs():
    """(model, task, method, variant) for every configured row."""
    return [
        dict(model=m, task=t, method=r["method"], variant=r["variant"])
        for m in config["models"]
        for t in config["tasks"]
        for r in config["methods"]
    ]


def trains(w):
    return get_method(w.method).trains


def importance_inputs(w):
    if get_method(w.method).needs_importance:
        return [f"results/importance/{w.model}/{w.task}.safetensors"]
    return []


def checkpoint_input(w):
    return {"ckpt": f"{RUN}/checkpoint".format(**w)} if trains(w) else {}
