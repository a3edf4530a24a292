"""Pipeline configuration: validation beyond the JSON schema, and the resolved per-run config.

The Snakemake config is validated against ``workflow/schemas/config.schema.yaml`` (which fills
defaults and rejects unknown keys); :func:`check_config` then checks what a schema cannot: method names
and parameters against the registry, model and task names against their sheets. Each run's resolved
config is a file (:func:`stage_config_path`, rewritten only when it changes) that training and evaluation take
as input and hash into their results.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml

from cofitune.core.methods import get_method, load_plugins
from cofitune.core.recipe import config_from_dict
from cofitune.core.search import SEARCH_TRIAL_METHOD, Node, node_from_variant, node_variant
from cofitune.pipeline import paths
from cofitune.pipeline.io import sha256_text, write_json
from cofitune.pipeline.loaders import loader_names
from cofitune.pipeline.sheets import read_sheet
from evaluators.versatility import resolve_task_name

TASK_KEYS = {"loader", "train", "test", "instruction", "evaluator", "max_input_chars", "max_new_tokens",
             "description", "licence", "n_train", "n_test"}  # n_train/n_test override config key data


#: the config schema: every configurable default is written there, once (``schema_default``)
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_default(*keys: str):
    """The schema's default at ``keys`` (e.g. ``schema_default("importance", "dropout")``): command-line
    flags that mirror a config key take their default from here, so it is written in one place."""
    node = _schema()
    for key in keys:
        node = node["properties"][key]
    return node["default"]


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


def _subschemas(node: dict) -> list[dict]:
    return [node, *node.get("oneOf", []), *node.get("anyOf", [])]


def _child_schema(node: dict, key) -> dict | None:
    """Schema of ``key`` inside an object (or of an item inside an array) described by ``node``."""
    for sub in _subschemas(node):
        if isinstance(key, int):
            if isinstance(sub.get("items"), dict):
                return sub["items"]
        elif key in sub.get("properties", {}):
            return sub["properties"][key]
        elif isinstance(sub.get("additionalProperties"), dict):
            return sub["additionalProperties"]
    return None


def coerce_cli_scalars(config: dict, schema: dict) -> list[str]:
    """Type the strings that ``snakemake --config`` leaves in nested values, where the schema says so.

    Snakemake parses ``--config key=VALUE`` with YAML's BaseLoader, so inside a mapping every scalar
    stays a string: ``--config 'search={enabled: true, mode: exhaustive}'`` gives ``enabled: "true"``,
    which the schema then rejects. A string that the schema rejects at its place, and whose reading as
    an int, a float or YAML (``10``, ``1e-4``, ``true``, ``null``) it accepts, is replaced by that
    reading; every other value is left as it is, so a genuinely bad value still fails validation with
    its key named. Returns the key paths that were typed (for the log).
    """
    from jsonschema import Draft7Validator

    typed: list[str] = []

    def walk(value, node: dict, path: str):
        if isinstance(value, str):
            if Draft7Validator(node).is_valid(value):
                return value
            for parse in (int, float, yaml.safe_load):  # Snakemake's order for top-level values
                try:
                    parsed = parse(value)
                except (ValueError, yaml.YAMLError):
                    continue
                if not isinstance(parsed, str) and Draft7Validator(node).is_valid(parsed):
                    typed.append(path)
                    return parsed
            return value
        if isinstance(value, dict):
            for k, v in value.items():
                child = _child_schema(node, k)
                if child is not None:
                    value[k] = walk(v, child, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            child = _child_schema(node, 0)
            if child is not None:
                value[:] = [walk(v, child, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    walk(config, schema, "")
    return typed


def check_config(config: dict, root: str | Path = ".") -> None:
    """Raise ``ValueError`` naming the config key for anything the schema cannot check."""
    load_plugins(plugin_paths(config, root))
    models = read_sheet(Path(root) / config["models_sheet"])
    tasks = config_tasks(config, root)
    for key, names, sheet in (("models", config["models"], models), ("tasks", config["tasks"], tasks)):
        for name in names:
            if name not in sheet:
                raise ValueError(f"config key {key}: {name!r} is not in the sheet ({sorted(sheet)})")
    for aspect, names in config["evaluation"]["versatility"]["suites"].items():
        for name in names:
            try:
                resolve_task_name(name, Path(root) / "evaluators" / "tasks")
            except ValueError as err:
                raise ValueError(f"config key evaluation.versatility.suites.{aspect}: {err}") from err
    config_from_dict(config["train"], where="config key train")
    runs = configured_runs(config)
    seen = set()
    for run in runs:
        where = f"config key methods[{run['_index']}]"
        get_method(run["method"]).from_params(run.get("params"), where=f"{where}.params")
        config_from_dict({**config["train"], **run.get("train", {})}, where=f"{where}.train")
        ident = (run["method"], run["variant"])
        if ident in seen:
            raise ValueError(f"{where}: duplicate (method, variant) {ident}")
        seen.add(ident)
    for run in runs:
        for source in run_sources(config, run["method"], run["variant"]):
            if tuple(source) not in seen:
                raise ValueError(f"config key methods[{run['_index']}]: source run {'/'.join(source)} is not "
                                 f"configured under methods")


def plugin_paths(config: dict, root: str | Path = ".") -> list[str]:
    return [str((Path(root) / p).resolve()) for p in config.get("method_plugins", [])]


def seed_suffix(seed: int | None, base_seed: int | None = None) -> str:
    """The variant suffix of a seeded run: none for unseeded runs and for the config's own ``seed`` (that run
    is the unseeded row's run, so adding seeds to a finished run reuses it)."""
    return "" if seed is None or seed == base_seed else f"{SEED_PREFIX}{seed}"


def expand_runs(methods: list[dict], seeds: list[int] | None = None, base_seed: int | None = None) -> list[dict]:
    """Expand ``sweep: {param: [v1, v2]}`` entries into one run per value (cartesian over params).

    The variant becomes ``<variant>-<param><value>`` so every row records its setting. With ``seeds``
    (config key ``seeds``), every run that trains or combines trained checkpoints is repeated once per
    seed as ``<variant>-seed<s>`` (``<variant>`` for ``base_seed``, the config's ``seed``); ``row`` keeps the
    unseeded variant that the table groups by. A row's own ``seeds`` list replaces the config's for that row
    (e.g. 3 seeds for the strongest rows only); a row's ``seed`` trains it under that one seed, unrepeated.
    """
    runs = []
    for i, run in enumerate(methods):
        if "seed" in run and "seeds" in run:
            raise ValueError(f"config key methods[{i}] ({run['method']}/{run['variant']}): give `seed` (one run) "
                             f"or `seeds` (one run per seed), not both")
        row_seeds = run.get("seeds", seeds)
        sweep = run.get("sweep") or {}
        combos = [{}]
        for key, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"config key methods[{i}].sweep.{key} must be a non-empty list")
            combos = [{**c, key: v} for c in combos for v in values]
        for combo in combos:
            variant = run["variant"] + "".join(f"-{k}{v}" for k, v in combo.items())
            entry = {"method": run["method"], "variant": variant, "row": variant, "_index": i, "seed": run.get("seed"),
                     "params": {**(run.get("params") or {}), **combo}, "train": run.get("train", {})}
            if row_seeds and entry["seed"] is None and _seeded(entry):
                runs += [{**entry, "variant": variant + seed_suffix(s, base_seed), "seed": s,
                          "seed_suffix": seed_suffix(s, base_seed)} for s in row_seeds]
            else:
                runs.append(entry)
    return runs


SEED_PREFIX = "-seed"


def _seeded(run: dict) -> bool:
    """Runs whose result depends on the training seed: trained ones and combinations of trained ones."""
    return get_method(run["method"]).kind != "reference"


def configured_runs(config: dict) -> list[dict]:
    """Every configured row of the table (sweeps and seeds expanded)."""
    return expand_runs(config["methods"], config.get("seeds"), config.get("seed"))


def run_sources(config: dict, method: str, variant: str) -> list[tuple[str, str]]:
    """(method, variant) of the checkpoints a post-hoc run combines, seeded like the run itself."""
    run = run_entry(config, method, variant)
    suffix = run.get("seed_suffix", "")
    return [(m, v + suffix) for m, v in get_method(method).from_params(run.get("params")).sources()]


def run_entry(config: dict, method: str, variant: str) -> dict:
    """A configured run, or a tree-search trial (``coarse_only`` / ``node.<modules>.<layers>``)."""
    node = node_from_variant(variant)
    if node is not None and method == SEARCH_TRIAL_METHOD:
        return {"method": method, "variant": variant, "row": variant, "seed": None,
                "params": {"layers": node.layers, "modules": node.modules}}
    for run in configured_runs(config):
        if run["method"] == method and run["variant"] == variant:
            return run
    raise KeyError(f"no run {method}/{variant} in config key methods")


def trial_variant(config: dict, node: Node) -> str:
    """The run that trains a tree-search trial's region.

    A configured ``coarse_only`` row with exactly the node's region (same resolved params, no per-row
    ``train`` override, unseeded) trains what the trial would, so the trial is that row and the DAG
    trains the region once; otherwise the trial is its own run ``node.<modules>.<layers>``.
    """
    method = get_method(SEARCH_TRIAL_METHOD)
    want = method.from_params({"layers": node.layers, "modules": node.modules}).describe()
    for run in configured_runs(config):
        if (run["method"] == SEARCH_TRIAL_METHOD and run["seed"] is None and not run.get("train")
                and method.from_params(run["params"]).describe() == want):
            return run["variant"]
    return node_variant(node)


def reference_variant(config: dict, method: str) -> str:
    """The variant of the single configured run of ``method`` (e.g. the ``original`` reference)."""
    variants = [r["variant"] for r in configured_runs(config) if r["method"] == method]
    if len(variants) != 1:
        raise ValueError(f"config key methods: need exactly one {method!r} run as reference, found {variants}")
    return variants[0]


def method_for(config: dict, method: str, variant: str):
    """The configured method instance of a run."""
    return get_method(method).from_params(run_entry(config, method, variant).get("params"))


def run_config(config: dict, model: str, task: str, method: str, variant: str, root: str | Path = ".") -> dict:
    """Everything one run depends on, resolved (defaults filled), as written to its stage config file."""
    run = run_entry(config, method, variant)
    task_spec = config_tasks(config, root)[task]
    instance = get_method(method).from_params(run.get("params"))
    seed = config["seed"] if run.get("seed") is None else run["seed"]
    # Only the sections a run depends on: editing train.lr re-runs trained rows, never `original`.
    resolved = {
        "model": model, "task": task, "method": method, "variant": variant, "row": run["row"],
        "params": instance.describe(),
        "kind": instance.kind, "needs_importance": instance.needs_importance,
        "sources": [list(s) for s in run_sources(config, method, variant)],
        "from_search": instance.from_search,
        "seed": seed,
        "plugins": plugin_paths(config, root),
        "template": config["train"]["template"],  # the prompt format, shared by training and evaluation
        "speciality": {**config["evaluation"]["speciality"], "evaluator": task_spec["evaluator"],
                       "max_new_tokens": task_spec.get("max_new_tokens",
                                                       config["evaluation"]["speciality"]["max_new_tokens"])},
        "versatility": config["evaluation"]["versatility"],
        "drift": config["evaluation"]["drift"],
    }
    if instance.kind == "trained":
        resolved["train"] = {**config["train"], **run.get("train", {}), "seed": seed}
    return json.loads(json.dumps(resolved))


def resolve_region(cfg: dict, chosen: dict, where: str) -> dict:
    """A ``from_search`` row's run (or train) config with the tree search's choice written in: ``params``
    with the chosen ``layers`` and ``modules`` (checked by the method) and ``region`` naming the node. The
    row's config then says what it trains, as every other row's does (``rules/search.smk``: resolve_region).

    Raises:
        ValueError: the row is not a ``from_search`` row, or the chosen region is not valid for its method
            (the message names ``where``, the chosen.json file).
    """
    ident = f"{cfg['method']}/{cfg['variant']}"
    if not cfg.get("from_search"):
        raise ValueError(f"{ident}: not a from_search row; only those take the search's chosen region")
    node = chosen["chosen"]
    load_plugins(cfg.get("plugins", []))
    try:
        instance = get_method(cfg["method"]).from_params(
            {**cfg["params"], "layers": node["layers"], "modules": node["modules"]}, where=f"{ident}.params")
    except ValueError as err:
        raise ValueError(f"{where}: the chosen region (layers={node['layers']!r}, modules={node['modules']!r}) "
                         f"does not fit {ident}: {err}") from err
    return json.loads(json.dumps({**cfg, "params": instance.describe(), "region": node["node"]}))


EVAL_KEYS = ("speciality", "versatility", "drift")


def train_view(cfg: dict) -> dict:
    """The part of a run config that training depends on (its ``train`` stage config): evaluation settings are left
    out, so editing them re-runs evaluations but never training."""
    return {k: v for k, v in cfg.items() if k not in EVAL_KEYS}


def config_sha256(cfg: dict) -> str:
    return sha256_text(json.dumps(cfg, sort_keys=True))


# --------------------------------------------------------------------------- stage configs
# Every job's configuration is an input file, rewritten when the DAG is built only when its content changes
# (:func:`sync_stage_config`), so its time stamp tracks its content: an edit re-runs what depends on it under
# every rerun trigger, mtime-only included (the SLURM profile's).

#: stage kind -> the key that names one job's configuration (Snakemake wildcards)
STAGE_KEYS = {"run": "{model}/{task}/{method}/{variant}", "train": "{model}/{task}/{method}/{variant}",
              "data": "{task}", "importance": "{model}/{task}", "probe": "{model}", "search": "{model}/{task}",
              "tables": "all", "bench": "all"}


def stage_config(config: dict, kind: str, key: str, root: str | Path = ".") -> dict:
    """What the jobs of one stage depend on in the config, resolved: the content of their config input.

    ``run``: :func:`run_config` (evaluation); ``train``: its :func:`train_view`; ``data``: the split sizes
    and sampling seed of one task; ``importance``: the importance pass's settings; ``probe``: the drift
    probe's generation settings; ``search``: the tree search's settings and Uni's weights; ``tables``: Uni's
    weights (the table's Uni column); ``bench``: the suite's gates, candidate row and stored baselines."""
    parts = key.split("/")
    if kind in ("run", "train"):
        cfg = run_config(config, *parts, root=root)
        return cfg if kind == "run" else train_view(cfg)
    if kind == "data":
        spec = config_tasks(config, root)[key]
        return {"task": key, "n_train": task_size(config, spec, "n_train"),
                "n_test": task_size(config, spec, "n_test"), "seed": config["seed"]}
    if kind == "importance":
        return {"model": parts[0], "task": parts[1], **config["importance"], "seed": config["seed"],
                "max_length": config["train"]["max_length"], "template": config["train"]["template"]}
    if kind == "probe":
        return {"model": key, **{k: v for k, v in config["evaluation"]["drift"].items() if k != "enabled"}}
    if kind == "search":
        return {"model": parts[0], "task": parts[1], **config["search"], "uni": config["uni"]}
    if kind == "tables":
        return {"uni": config["uni"], "references": config["references"]}
    if kind == "bench":
        return {"models": config["models"], "tasks": config["tasks"], "bench": config["bench"]}
    raise ValueError(f"unknown stage config kind {kind!r}; known: {sorted(STAGE_KEYS)}")


def stage_config_path(kind: str, key: str) -> str:
    """``results/config/<kind>/<key>.json`` (:data:`cofitune.pipeline.paths.STAGE_CONFIG`)."""
    return paths.fill(paths.STAGE_CONFIG, kind=kind, key=key)


def sync_stage_config(path: str | Path, content: dict) -> bool:
    """Write ``content`` to ``path`` (atomically) unless the file already holds it; True when it wrote.

    An unchanged configuration keeps its file and its time stamp, so nothing downstream re-runs; a changed
    one gets a new time stamp, so everything downstream does, whatever the rerun triggers."""
    path = Path(path)
    if path.is_file():
        try:
            if json.loads(path.read_text(encoding="utf-8")) == content:
                return False
        except json.JSONDecodeError:
            pass  # a torn or hand-edited file is replaced by the resolved configuration
    write_json(path, content)
    return True
