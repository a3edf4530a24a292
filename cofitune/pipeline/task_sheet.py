"""The task sheet (``config/tasks.yaml``): each speciality task's loader, data files, instruction and evaluator,
checked when the DAG is parsed; data paths resolve against the repository root."""

from __future__ import annotations

from pathlib import Path

import yaml

from cofitune.pipeline.loaders import loader_names

TASK_KEYS = {"loader", "train", "test", "instruction", "evaluator", "max_input_chars", "max_new_tokens",
             "description", "licence", "n_train", "n_test"}  # n_train/n_test override config key data


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
        if spec["loader"] not in loader_names():
            raise ValueError(f"{path}: {name}.loader = {spec['loader']!r}; expected one of {loader_names()}")
        for split in ("train", "test"):
            spec[split] = str(Path(root) / spec[split])
    return sheet


def config_tasks(config: dict, root: str | Path = ".") -> dict:
    """The configured task sheet: its entries with the config's ``task_overrides`` applied."""
    sheet = read_task_sheet(Path(root) / config["tasks_sheet"], root)
    for name, override in config.get("task_overrides", {}).items():
        if name not in sheet:
            raise ValueError(f"config key task_overrides.{name}: {name!r} is not in the task sheet "
                             f"{config['tasks_sheet']} ({sorted(sheet)})")
        sheet[name].update(override)
    return sheet


def task_size(config: dict, task_spec: dict, key: str) -> int:
    """Examples sampled for ``key`` (n_train or n_test): the task sheet's value, else ``data.<key>``."""
    return task_spec.get(key) or config["data"][key]


