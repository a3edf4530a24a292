"""Pipeline configuration: validation beyond the JSON schema, and the resolved per-run config.

The Snakemake config is validated against ``workflow/schemas/config.schema.yaml`` (which fills
defaults and rejects unknown keys); :func:`check_config` then checks what a schema cannot: method names
and parameters against the registry, model and task names against their sheets. Each run's resolved
config is a file (``run.json``) that training and evaluation take as input and hash into their results.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cofitune.data import LOADERS
from cofitune.io import sha256_text
from cofitune.methods import get_method
from cofitune.model import read_sheet
from cofitune.trainer import config_from_dict

TASK_KEYS = {"loader", "train", "test", "instruction", "evaluator", "max_input_chars", "max_new_tokens",
             "description", "licence"}


def read_task_sheet(path: str | Path, root: str | Path = ".") -> dict:
    """Read the task sheet (YAML name -> spec); relative data paths resolve against ``root``."""
    path = Path(path)
    sheet = yaml.safe_load(path.read_text()) or {}
    for name, spec in sheet.items():
        unknown = sorted(set(spec) - TASK_KEYS)
        if unknown:
            raise ValueError(f"{path}: {name}: unknown key(s) {unknown}; allowed: {sorted(TASK_KEYS)}")
        for key in ("loader", "train", "test", "instruction", "evaluator"):
            if key not in spec:
                raise ValueError(f"{path}: {name}: missing key {key!r}")
        if spec["loader"] not in LOADERS:
            raise ValueError(f"{path}: {name}.loader = {spec['loader']!r}; expected one of {sorted(LOADERS)}")
        for split in ("train", "test"):
            spec[split] = str(Path(root) / spec[split])
    return sheet


def check_config(config: dict, root: str | Path = ".") -> None:
    """Raise ``ValueError`` naming the config key for anything the schema cannot check."""
    models = read_sheet(Path(root) / config["models_sheet"])
    tasks = read_task_sheet(Path(root) / config["tasks_sheet"], root)
    for key, names, sheet in (("models", config["models"], models), ("tasks", config["tasks"], tasks)):
        for name in names:
            if name not in sheet:
                raise ValueError(f"config key {key}: {name!r} is not in the sheet ({sorted(sheet)})")
    config_from_dict(config["train"], where="config key train")
    seen = set()
    for i, run in enumerate(config["methods"]):
        where = f"config key methods[{i}]"
        cls = get_method(run["method"])
        cls.from_params(run.get("params"), where=f"{where}.params")
        ident = (run["method"], run["variant"])
        if ident in seen:
            raise ValueError(f"{where}: duplicate (method, variant) {ident}")
        seen.add(ident)


def run_entry(config: dict, method: str, variant: str) -> dict:
    for run in config["methods"]:
        if run["method"] == method and run["variant"] == variant:
            return run
    raise KeyError(f"no run {method}/{variant} in config key methods")


def run_config(config: dict, model: str, task: str, method: str, variant: str, root: str | Path = ".") -> dict:
    """Everything one run depends on, resolved (defaults filled), as written to ``run.json``."""
    run = run_entry(config, method, variant)
    task_spec = read_task_sheet(Path(root) / config["tasks_sheet"], root)[task]
    cls = get_method(method)
    resolved = {
        "model": model, "task": task, "method": method, "variant": variant,
        "params": cls.from_params(run.get("params")).describe(),
        "trains": cls.trains, "needs_importance": cls.needs_importance,
        "seed": config["seed"],
        "train": {**config["train"], **run.get("train", {}), "seed": config["seed"]},
        "speciality": {**config["evaluation"]["speciality"], "evaluator": task_spec["evaluator"],
                       "max_new_tokens": task_spec.get("max_new_tokens",
                                                       config["evaluation"]["speciality"]["max_new_tokens"])},
        "versatility": config["evaluation"]["versatility"],
    }
    return json.loads(json.dumps(resolved))


def config_sha256(cfg: dict) -> str:
    return sha256_text(json.dumps(cfg, sort_keys=True))
