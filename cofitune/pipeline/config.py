"""Pipeline configuration: validation beyond the JSON schema, and the resolved per-run config.

The Snakemake config is validated against ``workflow/schemas/config.schema.yaml`` (which fills
defaults and rejects unknown keys); :func:`check_config` then checks what a schema cannot: method names
and parameters against the registry, model and task names against their sheets. Each run's resolved
config is a file (:func:`stage_config_path`, rewritten only when it changes) that training and evaluation take
as input and hash into their results.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from cofitune.core.methods import get_method, load_plugins
from cofitune.core.recipe import config_from_dict
from cofitune.core.region import Region
from cofitune.pipeline import paths
from cofitune.pipeline.io import sha256_text, write_json
from cofitune.pipeline.runs import configured_runs, plugin_paths, run_entry, run_sources
from cofitune.pipeline.sheets import read_sheet
from cofitune.pipeline.task_sheet import config_tasks, task_size
from evaluators.versatility import check_suite, resolve_task_name

log = logging.getLogger(__name__)


def check_config(config: dict, root: str | Path = ".") -> None:
    """Raise ``ValueError`` naming the config key for anything the schema cannot check."""
    load_plugins(plugin_paths(config, root))
    models = read_sheet(Path(root) / config["models_sheet"])
    tasks = config_tasks(config, root)
    for key, names, sheet in (("models", config["models"], models), ("tasks", config["tasks"], tasks)):
        for name in names:
            if name not in sheet:
                raise ValueError(f"config key {key}: {name!r} is not in the sheet ({sorted(sheet)})")
    for name in unused_limits(config, root):
        log.warning("config key evaluation.versatility.limit.%s: no aspect runs suite %r; its limit is ignored",
                    name, name)
    for task in config["tasks"]:
        evaluator = tasks[task]["evaluator"]
        if importlib.util.find_spec(f"evaluators.speciality.{evaluator}") is None:
            raise ValueError(f"task {task}: evaluator {evaluator!r} is not a speciality evaluator (no "
                             f"evaluators/speciality/{evaluator}.py; task sheet {config['tasks_sheet']})")
    search = config.get("search", {})
    if search.get("enabled") and search.get("criterion") == "spec_at_vers" and (
            search.get("min_vers_pct") is None):
        raise ValueError("config key search.min_vers_pct: criterion spec_at_vers needs it (Vers >= x% of the "
                         "original's); give a number")
    _check_runs(config)
    warn_suites_at_chance(config, root)


def suites_at_chance(metrics: dict, suites: set[str]) -> list[str]:
    """Of ``suites``, those on which this (original) row is not decidedly above its chance level."""
    from cofitune.stats import measures

    rec = measures.record(metrics)
    out = []
    for suite in sorted(suites & set(rec["chance"])):
        c = measures.over_chance(rec, suite, rec["chance"][suite], rec["clusters"].get(f"s:{suite}"))
        if c is not None and c.verdict != "better":
            out.append(suite)
    return out


def warn_suites_at_chance(config: dict, root: str | Path = ".") -> list[str]:
    """Warn, where an original row was already evaluated (its ``metrics.json`` exists), about the configured suites
    it is not decidedly above chance on, and loudly when that is every suite: Vers would then carry no signal.
    Returns the warnings (for tests)."""
    from cofitune.pipeline.io import read_json

    suites = _suite_names(config, root)
    warnings = []
    originals = [r["variant"] for r in configured_runs(config) if r["method"] == "original"]
    for model in config["models"]:
        for task in config["tasks"]:
            for variant in originals:
                path = Path(paths.fill(paths.METRICS, model=model, task=task, method="original", variant=variant))
                if not path.is_file():
                    continue
                flat = suites_at_chance(read_json(path), suites)
                if flat:
                    every = set(flat) == suites
                    warnings.append(f"{path}: the original is not decidedly above chance on "
                                    f"{'EVERY suite' if every else 'suite(s)'} {flat} of evaluation.versatility.suites"
                                    f"{': Vers carries no signal' if every else ''} (choose suites above chance; "
                                    f"docs/statistics.md)")
    for w in warnings:
        log.warning(w)
    return warnings


def _check_runs(config: dict) -> None:
    """Every row's method, params and train overrides; no duplicate row; every source and reference row exists."""
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
    for method, variant in config.get("references", {}).items():
        rows = sorted({run["row"] for run in runs if run["method"] == method})
        if len(rows) > 1 and variant not in rows:
            raise ValueError(f"config key references.{method}: {variant!r} is none of the {len(rows)} {method} rows "
                             f"{rows}; name the one the others are compared with")


def _suite_names(config: dict, root: str | Path) -> set[str]:
    """The short names of the suites the aspects run (config key ``evaluation.versatility.suites``).

    Raises:
        ValueError: an unknown suite, naming the config key.
    """
    names = set()
    for aspect, suites in config["evaluation"]["versatility"]["suites"].items():
        for name in suites:
            try:
                short = resolve_task_name(name, Path(root) / "evaluators" / "tasks")
                check_suite(short, Path(root) / "evaluators" / "tasks")
                names.add(short)
            except ValueError as err:
                raise ValueError(f"config key evaluation.versatility.suites.{aspect}: {err}") from err
    return names


def unused_limits(config: dict, root: str | Path = ".") -> list[str]:
    """The suites ``evaluation.versatility.limit`` caps that no aspect runs (an overlay cannot drop a key of the
    base config's mapping: Snakemake merges mappings, so a swapped suite leaves its limit behind)."""
    limit = config["evaluation"]["versatility"].get("limit")
    if not isinstance(limit, dict):
        return []
    run, unused = _suite_names(config, root), []
    for name in limit:
        try:
            short = resolve_task_name(name, Path(root) / "evaluators" / "tasks")
        except ValueError as err:
            raise ValueError(f"config key evaluation.versatility.limit.{name}: {err}") from err
        if short not in run:
            unused.append(name)
    return sorted(unused)


def versatility_view(config: dict, root: str | Path = ".") -> dict:
    """Config key ``evaluation.versatility`` as a run depends on it: the limits of suites no aspect runs left out."""
    vers = dict(config["evaluation"]["versatility"])
    dropped = set(unused_limits(config, root))
    if dropped:
        vers["limit"] = {k: v for k, v in vers["limit"].items() if k not in dropped}
    return vers


def row_format(config: dict, model: str, run: dict | None = None, root: str | Path = ".") -> dict:
    """The prompt format of one row (or, without ``run``, the model's default): ``template``, the row's
    ``train.template`` override or config key ``train.template``, with ``auto`` resolved by the model sheet's
    ``chat`` flag; ``apply_chat_template``, config key ``evaluation.versatility.apply_chat_template`` with
    ``auto`` following the template (chat -> lm-eval's chat template too); and the system-prompt policy."""
    from cofitune.core.prompt import SYSTEM_PROMPT_POLICY, resolve_template
    from cofitune.pipeline.sheets import is_chat

    chosen = {**config["train"], **((run or {}).get("train") or {})}["template"]
    template = resolve_template(chosen, is_chat(read_sheet(Path(root) / config["models_sheet"]), model))
    lm_eval_chat = config["evaluation"]["versatility"]["apply_chat_template"]
    return {"template": template,
            "apply_chat_template": template == "chat" if lm_eval_chat == "auto" else bool(lm_eval_chat),
            "system_prompt": SYSTEM_PROMPT_POLICY if template == "chat" or lm_eval_chat is True else None}


def run_config(config: dict, model: str, task: str, method: str, variant: str, root: str | Path = ".") -> dict:
    """Everything one run depends on, resolved (defaults filled), as written to its stage config file."""
    run = run_entry(config, method, variant)
    task_spec = config_tasks(config, root)[task]
    instance = get_method(method).from_params(run.get("params"))
    seed = config["seed"] if run.get("seed") is None else run["seed"]
    fmt = row_format(config, model, run, root)
    # Only the sections a run depends on: editing train.lr re-runs trained rows, never `original`.
    resolved = {
        "model": model, "task": task, "method": method, "variant": variant, "row": run["row"],
        "params": instance.describe(),
        "kind": instance.kind, "needs_importance": instance.needs_importance,
        "sources": [list(s) for s in run_sources(config, method, variant)],
        "from_search": instance.from_search,
        "seed": seed,
        "plugins": plugin_paths(config, root),
        "template": fmt["template"],  # the prompt format, shared by training and evaluation
        "format": fmt,
        "speciality": {**config["evaluation"]["speciality"], "evaluator": task_spec["evaluator"],
                       "max_new_tokens": task_spec.get("max_new_tokens",
                                                       config["evaluation"]["speciality"]["max_new_tokens"])},
        "versatility": {**versatility_view(config, root), "apply_chat_template": fmt["apply_chat_template"]},
        "drift": config["evaluation"]["drift"],
    }
    if instance.kind == "trained":
        resolved["train"] = {**config["train"], **run.get("train", {}), "seed": seed, "template": fmt["template"]}
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
    region = Region.from_record(chosen["chosen"], where=where)
    load_plugins(cfg.get("plugins", []))
    try:
        instance = get_method(cfg["method"]).from_params({**cfg["params"], **region.params}, where=f"{ident}.params")
    except ValueError as err:
        raise ValueError(f"{where}: the chosen region (layers={region.layers!r}, modules={region.modules!r}) "
                         f"does not fit {ident}: {err}") from err
    return json.loads(json.dumps({**cfg, "params": instance.describe(), "region": region.id}))


EVAL_KEYS = ("speciality", "versatility", "drift", "format")


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
              "data": "{task}", "importance": "{model}/{task}", "probe": "{model}", "task_probe": "{model}/{task}",
              "search": "{model}/{task}",
              "tables": "all", "bench": "all"}


def stage_config(config: dict, kind: str, key: str, root: str | Path = ".") -> dict:
    """What the jobs of one stage depend on in the config, resolved: the content of their config input.

    ``run``: :func:`run_config` (evaluation); ``train``: its :func:`train_view`; ``data``: the split sizes
    and sampling seed of one task; ``importance``: the importance pass's settings; ``probe``: the drift
    probe's generation settings; ``search``: the tree search's settings and Uni's weights; ``tables``: Uni's
    weights (the table's Uni column); ``task_probe``: the task drift probe's size, format and generation settings;
    ``bench``: the suite's gates, candidate row and stored baselines."""
    parts = key.split("/")
    if kind in ("run", "train"):
        cfg = run_config(config, *parts, root=root)
        return cfg if kind == "run" else train_view(cfg)
    if kind == "data":
        spec = config_tasks(config, root)[key]
        return {"task": key, "spec": spec, "n_train": task_size(config, spec, "n_train"),
                "n_test": task_size(config, spec, "n_test"), "seed": config["seed"]}
    if kind == "importance":
        return {"model": parts[0], "task": parts[1], **config["importance"], "seed": config["seed"],
                "max_length": config["train"]["max_length"], "template": row_format(config, parts[0], root=root)["template"]}
    if kind in ("probe", "task_probe"):
        drift = {k: config["evaluation"]["drift"][k] for k in ("max_new_tokens", "max_prompt_tokens", "batch_size")}
        fmt = row_format(config, parts[0], root=root)["template"]  # the model's own format
        if kind == "probe":
            return {"model": key, **drift, "chat": fmt == "chat"}
        return {"model": parts[0], "task": parts[1], "template": fmt, "n_prompts": config["evaluation"]["drift"][
            "task_prompts"], **{k: drift[k] for k in ("max_new_tokens", "batch_size")}}
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
