"""Versatility evaluation: lm-evaluation-harness suites run in-process and offline.

The model is wrapped once in lm-eval's ``HFLM`` and every requested task is run with
``lm_eval.simple_evaluate`` on the small subsets committed under
``resources/data/versatility/`` (task YAMLs in ``evaluators/tasks/``). Nothing is
downloaded: data files are local JSONL, and the NLTK Punkt model that lm-eval's IFEval
scorer needs is trained locally from ``resources/nltk/english_text.txt``.

Public entry point: :func:`evaluate_versatility`.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cofitune import repo
from evaluators.punkt import PUNKT_PROVENANCE, ensure_punkt, import_ifeval_scorer

REPO_ROOT = repo.ROOT
TASKS_DIR = REPO_ROOT / "evaluators" / "tasks"

#: Placeholder used in the task YAMLs' ``dataset_kwargs.data_files``; replaced by the
#: absolute repository root at run time (lm-eval resolves relative paths against the CWD).
REPO_ROOT_PLACEHOLDER = "{repo_root}"

#: A suite is one file, ``evaluators/tasks/cofitune_<name>.yaml``: an lm-eval task config whose
#: ``metadata.headline_metric`` names the metric reported as its ``score`` (0-100). Multiple-choice suites use
#: length-normalised ``acc_norm`` where it is the number lm-eval's docs quote (ARC-Easy, HellaSwag, PIQA,
#: LogiQA) and plain ``acc`` where the choices are single letters (MMLU, CMMLU, C-Eval) or lm-eval computes
#: only ``acc`` (XCOPA); IFEval uses the strictest prompt-level accuracy.
TASK_PREFIX = "cofitune_"


def known_tasks(tasks_dir: Path = TASKS_DIR) -> dict[str, Path]:
    """Short suite name -> its task YAML, for every ``cofitune_*.yaml`` in ``tasks_dir``."""
    return {p.stem[len(TASK_PREFIX):]: p for p in sorted(tasks_dir.glob(f"{TASK_PREFIX}*.yaml"))}


#: lm-eval's name for the unfiltered results ("<metric>,<filter>").
_FILTER = "none"



# --------------------------------------------------------------------------- task names


#: a stock lm-eval task, named as ``lm_eval:<task>@<headline metric>`` (its YAML in lm-eval's own task folder;
#: its dataset from the HF cache, which ``fetch`` commands fill on a node with internet)
STOCK_PREFIX = "lm_eval:"


def stock_task(name: str) -> tuple[str, str] | None:
    """(lm-eval task, headline metric) of a stock-task name; None for a suite of ``evaluators/tasks/``.

    Raises:
        ValueError: a stock name without its headline metric.
    """
    if not name.startswith(STOCK_PREFIX):
        return None
    task, _, metric = name[len(STOCK_PREFIX):].partition("@")
    if not task or not metric:
        raise ValueError(f"stock lm-eval task {name!r}: name it as {STOCK_PREFIX}<task>@<metric>, the metric one "
                         f"of its metric_list (e.g. {STOCK_PREFIX}arc_challenge@acc_norm)")
    return task, metric


def resolve_task_name(name: str, tasks_dir: Path = TASKS_DIR) -> str:
    """Return the short task name for ``name`` (short or ``cofitune_*`` form; a stock ``lm_eval:<task>@<metric>``
    name is its own short name, checked for its form only: lm-eval's task index is read when it is evaluated).

    Raises:
        ValueError: no ``evaluators/tasks/cofitune_<name>.yaml`` defines ``name``.
    """
    if stock_task(name):
        return name
    short = name[len(TASK_PREFIX):] if name.startswith(TASK_PREFIX) else name
    known = known_tasks(tasks_dir)
    if short not in known:
        raise ValueError(f"unknown versatility task {name!r}: no {tasks_dir / (TASK_PREFIX + short)}.yaml; "
                         f"known tasks: {sorted(known)}, or a stock lm-eval task as {STOCK_PREFIX}<task>@<metric>")
    return short


def headline_metric(cfg: Mapping[str, Any], where: Path | str) -> str:
    """The metric a task config names as its score (``metadata.headline_metric``), checked against its
    ``metric_list``.

    Raises:
        ValueError: the key is missing or names a metric the task does not compute.
    """
    metric = (cfg.get("metadata") or {}).get("headline_metric")
    computed = [m.get("metric") for m in cfg.get("metric_list", [])]
    if metric is None:
        raise ValueError(f"{where}: metadata.headline_metric is missing (one of {computed})")
    if metric not in computed:
        raise ValueError(f"{where}: metadata.headline_metric {metric!r} is not in its metric_list {computed}")
    return str(metric)


def _normalise_suites(suites: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Validate ``suites`` and map every task name to its short form."""
    if not suites:
        raise ValueError("suites is empty: give at least one aspect with one task")
    out: dict[str, list[str]] = {}
    for aspect, names in suites.items():
        if isinstance(names, str) or not names:
            raise ValueError(f"aspect {aspect!r} must map to a non-empty list of task names, got {names!r}")
        out[aspect] = [resolve_task_name(n) for n in names]
    return out


# --------------------------------------------------------------------------- task configs


def _substitute_repo_root(value: Any, repo_root: Path) -> Any:
    """Replace :data:`REPO_ROOT_PLACEHOLDER` in (nested) strings of ``value``."""
    if isinstance(value, str):
        return value.replace(REPO_ROOT_PLACEHOLDER, repo_root.as_posix())
    if isinstance(value, list):
        return [_substitute_repo_root(v, repo_root) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_repo_root(v, repo_root) for k, v in value.items()}
    return value


def _data_files(cfg: Mapping[str, Any]) -> list[Path]:
    files = cfg.get("dataset_kwargs", {}).get("data_files", {})
    values = files.values() if isinstance(files, dict) else [files]
    out: list[Path] = []
    for v in values:
        out.extend(Path(p) for p in ([v] if isinstance(v, str) else v))
    return out


def load_task_config(
    short_name: str,
    *,
    max_gen_toks: int | None = None,
    tasks_dir: Path = TASKS_DIR,
    repo_root: Path = REPO_ROOT,
) -> dict[str, Any]:
    """Load ``evaluators/tasks/<task>.yaml`` into an lm-eval task config dict.

    Uses lm-eval's own YAML loader (so ``!function`` tags resolve as in lm-eval), puts the
    absolute repository root into ``dataset_kwargs`` and, for generation tasks, sets
    ``generation_kwargs.max_gen_toks``. The dict can be passed to ``simple_evaluate``.

    Raises:
        ValueError: unknown task name.
        FileNotFoundError: the YAML or one of its data files is missing.
    """
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval 0.4.13; resolves !function

    if stock_task(short_name):
        return _stock_task_config(short_name, max_gen_toks)
    short = resolve_task_name(short_name, tasks_dir)
    task = TASK_PREFIX + short
    yaml_path = tasks_dir / f"{task}.yaml"
    cfg = load_yaml(yaml_path, resolve_func=True)
    if cfg.get("task") != task:
        raise ValueError(f"{yaml_path} defines task {cfg.get('task')!r}, expected {task!r}")
    headline_metric(cfg, yaml_path)
    suite_chance(cfg)  # a suite without its chance level is refused before any item runs
    if "dataset_kwargs" in cfg:
        cfg["dataset_kwargs"] = _substitute_repo_root(cfg["dataset_kwargs"], Path(repo_root).resolve())
    for path in _data_files(cfg):
        if not path.is_file():
            raise FileNotFoundError(f"data file of task {task} not found: {path}")
    return _cap_generation(cfg, max_gen_toks)


def _cap_generation(cfg: dict[str, Any], max_gen_toks: int | None) -> dict[str, Any]:
    if max_gen_toks is not None and cfg.get("output_type") == "generate_until":
        cfg["generation_kwargs"] = {**copy.deepcopy(cfg.get("generation_kwargs", {})), "max_gen_toks": max_gen_toks}
    return cfg


@functools.cache
def _lm_eval_index() -> dict:
    """lm-eval's index of its own task YAMLs (seconds to build: once per process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def _stock_task_config(name: str, max_gen_toks: int | None) -> dict[str, Any]:
    """The config of a stock lm-eval task (``lm_eval:<task>@<metric>``) from lm-eval's own task YAMLs, includes
    resolved, with ``metadata.headline_metric`` set to the named metric.

    Raises:
        ValueError: lm-eval has no such single task (a group, a tag or an unknown name), or the metric is not
            in its metric_list.
    """
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    task, metric = stock_task(name)
    entry = _lm_eval_index().get(task)
    if entry is None or entry.kind != Kind.TASK or entry.yaml_path is None:
        what = "no task" if entry is None else f"a {entry.kind.name.lower()}, not one YAML task"
        raise ValueError(f"stock lm-eval task {name!r}: lm-eval has {what} named {task!r} (name each task of a "
                         f"group as its own suite)")
    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    if cfg.get("task") != task:
        raise ValueError(f"stock lm-eval task {name!r}: {entry.yaml_path} defines {cfg.get('task')!r}")
    cfg["metadata"] = {**(cfg.get("metadata") or {}), "headline_metric": metric}
    headline_metric(cfg, f"{name} ({entry.yaml_path})")
    return _cap_generation(cfg, max_gen_toks)


# --------------------------------------------------------------------------- the model wrapper


def head_sliced_lm(model: Any, tokenizer: Any, batch_size: int) -> Any:
    """lm-eval's ``HFLM`` over ``model``, whose loglikelihoods project only the continuation-predicting
    positions through the LM head (:func:`cofitune.core.scoring.continuation_logits`).

    lm-eval builds, truncates and caches the requests as usual; only the model call differs. HFLM computes
    the vocabulary projection and a log-softmax at every position of every request, although a
    loglikelihood needs only the continuation's positions: on a 49k-vocabulary model the head is about a
    fifth of the forward FLOPs. One-token continuations of one context (MMLU's letters) share one forward,
    as HFLM's ``logits_cache`` does. Log-likelihoods equal HFLM's up to float noise from the different
    batch shapes (``tests/unit/test_versatility.py``); ``benchmarks/loglikelihood_cost.py`` times both.
    """
    from lm_eval.models.huggingface import HFLM

    class HeadSlicedHFLM(HFLM):
        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
            return _sliced_loglikelihoods(self, requests, disable_tqdm)

    return HeadSlicedHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def _sliced_loglikelihoods(lm: Any, requests: list, disable_tqdm: bool) -> list[tuple[float, bool]]:
    import torch
    import torch.nn.functional as F

    from cofitune.core.scoring import continuation_logits

    sequences: list[tuple[list[int], int]] = []
    which: list[int] = []  # request -> its sequence
    shared: dict[tuple[int, ...], int] = {}  # one-token continuations of one context share a forward
    for _, context_enc, continuation_enc in requests:
        if not context_enc or not continuation_enc:
            raise ValueError("loglikelihood request without context or continuation tokens")
        full = (context_enc + continuation_enc)[-(lm.max_length + 1):]  # HFLM truncates from the left too
        n_prompt = len(full) - len(continuation_enc)
        key = tuple(full[:-1]) if len(continuation_enc) == 1 else None
        if key is not None and key in shared:
            which.append(shared[key])
            continue
        which.append(len(sequences))
        if key is not None:
            shared[key] = len(sequences)
        sequences.append((full, n_prompt))
    logprobs: list = [None] * len(sequences)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    with torch.no_grad():
        for i, logits in continuation_logits(lm.model, sequences, pad_id=pad, batch_size=int(lm.batch_size),
                                             desc="loglikelihood", progress=not disable_tqdm):
            logprobs[i] = F.log_softmax(logits, dim=-1)
    out = []
    for ((request_str, _, continuation_enc), seq) in zip(requests, which):
        lp = logprobs[seq][-len(continuation_enc):]  # a shared forward scored its own last token: slice
        target = torch.tensor(continuation_enc, device=lp.device)
        answer = (float(lp.gather(1, target[:, None]).sum()), bool((lp.argmax(dim=-1) == target).all()))
        if request_str is not None:
            lm.cache_hook.add_partial("loglikelihood", request_str, answer)
        out.append(answer)
    return out


# --------------------------------------------------------------------------- running


def _as_number(value: Any) -> float | None:
    """lm-eval reports a missing stderr (e.g. n < 2) as the string 'N/A': map it to None."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


#: the seeds ``lm_eval.simple_evaluate`` sets by default (python random, numpy, torch, the few-shot sampler)
LM_EVAL_SEEDS = {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}


def lm_eval_run(lm: Any, cfg: dict[str, Any], limit: int | None, apply_chat_template: bool) -> dict | None:
    """One task config through lm-eval's ``evaluate``, set up as ``simple_evaluate`` sets it up (its default
    seeds, 0-shot where the YAML names no shot count, the few-shot seed), minus the environment report
    ``simple_evaluate`` appends: torch's ``collect_env`` runs ``pip list`` and other subprocesses for seconds,
    once per suite, and every result here carries the project's own provenance. Same requests, same scores
    (``benchmarks/lm_eval_overhead.py`` checks both paths item by item)."""
    import random

    from lm_eval.evaluator import evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import set_torch_seed

    random.seed(LM_EVAL_SEEDS["random"])
    np.random.seed(LM_EVAL_SEEDS["numpy"])
    set_torch_seed(LM_EVAL_SEEDS["torch"])
    loaded = TaskManager(include_defaults=False).load([cfg])
    for task_obj in loaded["tasks"].values():
        if task_obj.get_config("num_fewshot") is None:
            task_obj.set_config(key="num_fewshot", value=0)
        task_obj.set_fewshot_seed(seed=LM_EVAL_SEEDS["fewshot"])
    # bootstrap_iters: headline metrics are means, for which lm-eval uses the closed-form stderr
    return evaluate(lm=lm, task_dict=loaded, limit=limit, bootstrap_iters=1000, log_samples=True,
                    apply_chat_template=apply_chat_template)


def _run_task(
    lm: Any, short_name: str, cfg: dict[str, Any], limit: int | None, apply_chat_template: bool
) -> dict[str, Any]:
    """Run one task through :func:`lm_eval_run` and summarise its headline metric."""
    task = cfg["task"]
    metric = headline_metric(cfg, task)
    start = time.perf_counter()
    out = lm_eval_run(lm, cfg, limit, apply_chat_template)
    seconds = time.perf_counter() - start
    if out is None:
        raise RuntimeError(f"lm-eval returned no results for {task} (non-zero rank?)")

    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    items, clusters = item_scores(samples, metric)
    result = out["results"][task]
    score = 100.0 * float(result[f"{metric},{_FILTER}"])
    if not items or not math.isclose(score, 100.0 * sum(items) / len(items), abs_tol=1e-6):
        raise RuntimeError(f"{task}: {metric}={score} does not match the mean of its {len(items)} per-item scores")
    stderr = _as_number(result.get(f"{metric}_stderr,{_FILTER}"))
    if cfg.get("output_type") == "multiple_choice":
        extra = choice_scores(samples, metric, cfg.get("target_delimiter", " "), items, task)
    elif cfg.get("output_type") == "generate_until":
        extra = budget_cuts(lm, samples, cfg["generation_kwargs"]["max_gen_toks"])
    else:
        extra = {}
    return {
        "task": task,
        "score": score,
        "metric": metric,
        "chance": suite_chance(cfg),
        "stderr": None if stderr is None else 100.0 * stderr,
        "n": len(items),
        "items": items,
        **({"clusters": clusters} if clusters is not None else {}),
        **extra,
        "seconds": round(seconds, 3),
    }


def item_scores(samples: list[dict], metric: str) -> tuple[list[float], list[int] | None]:
    """Per-item scores of the headline metric in doc order, and their clusters: a metric lm-eval scores per
    sample as one number gives one item per doc (no clusters); one it scores as a list (IFEval's instruction
    level: one bool per instruction, aggregated over all instructions) gives one item per element, clustered by
    its doc, so that the suite's score is their mean and the bootstrap resamples whole docs."""
    values = [s[metric] for s in samples]
    if not any(isinstance(v, list) for v in values):
        return [float(v) for v in values], None
    items, clusters = [], []
    for s, v in zip(samples, values):
        flat = v if isinstance(v, list) else [v]
        items += [float(x) for x in flat]
        clusters += [int(s["doc_id"])] * len(flat)
    return items, clusters


def suite_chance(cfg: Mapping[str, Any]) -> float | None:
    """The suite's chance level (0-100, ``metadata.chance``: a uniform guess's score); None for a stock lm-eval
    task, whose YAML does not declare one (its margin over chance is then unknown, and said so)."""
    chance = (cfg.get("metadata") or {}).get("chance")
    if chance is None:
        if str(cfg.get("task", "")).startswith(TASK_PREFIX):
            raise ValueError(f"{cfg['task']}: metadata.chance is missing (the score of a uniform guess, 0-100)")
        return None
    if not isinstance(chance, (int, float)) or not 0 <= chance <= 100:
        raise ValueError(f"{cfg.get('task')}: metadata.chance = {chance!r}; expected a number in 0-100")
    return float(chance)


def budget_cuts(lm: Any, samples: list[dict], max_gen_toks: int) -> dict:
    """Which generations the budget cut: a response of ``max_gen_toks`` tokens or more did not end by itself (an
    answer cut short can fail an instruction it was about to follow). ``cut``: one bool per doc;
    ``cut_share``: their share (0-1)."""
    cut = []
    for s in samples:
        response = s["resps"][0][0] if isinstance(s["resps"][0], list) else s["resps"][0]
        cut.append(len(lm.tok_encode(response)) >= max_gen_toks)
    return {"cut": cut, "cut_share": sum(cut) / len(cut), "max_gen_toks": max_gen_toks}


def _gold_index(target: Any, choices: list[str], where: str) -> int:
    if isinstance(target, (int, np.integer)):
        return int(target)
    if isinstance(target, str) and target.strip().isdigit():
        return int(target)
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    raise ValueError(f"{where}: cannot read a gold choice index from target {target!r}")


def choice_scores(samples: list[dict], metric: str, delimiter: str, items: list[float], task: str) -> dict:
    """Per-item continuous scores of a multiple-choice suite, from lm-eval's own per-sample loglikelihoods.

    ``margin``: the gold choice's score minus the best distractor's, on the scale the headline metric ranks
    (``acc``: the loglikelihoods, nats; ``acc_norm``: loglikelihood / choice length in characters, as lm-eval
    normalises, nats per character). It is positive exactly when the item is right (0 is a tie, which lm-eval
    breaks by the first choice), and it moves with how far the model is from flipping the item.
    ``ll_choices``: every choice's loglikelihood, ``choice_chars`` their lengths and ``gold`` the gold choice's
    index, so another score can be recomputed from the file. Nothing is recomputed by a model; every item's sign is checked against lm-eval's
    own accuracy for that item.
    """
    if metric not in ("acc", "acc_norm"):
        raise ValueError(f"{task}: continuous scores need an acc or acc_norm headline metric, got {metric!r}")
    margins, lls_all, chars_all, golds = [], [], [], []
    for s, item in zip(samples, items):
        where = f"{task} doc {s['doc_id']}"
        lls = np.array([float(r[0]) for r in s["filtered_resps"]])
        conts = [str(args[1]) for args in s["arguments"]]
        choices = [c[len(delimiter):] if delimiter and c.startswith(delimiter) else c for c in conts]
        gold = _gold_index(s["target"], choices, where)
        chars = [len(c) for c in choices]
        z = lls / np.array(chars, dtype=float) if metric == "acc_norm" else lls
        margin = float(z[gold] - np.delete(z, gold).max())
        # a tie at the top makes lm-eval's argmax and ours agree by construction (both take the first)
        if (int(np.argmax(z)) == gold) != (item == 1.0) or (margin > 0) != (item == 1.0) and margin != 0:
            raise RuntimeError(f"{where}: the choice scores disagree with lm-eval's {metric} ({item})")
        margins.append(margin)
        lls_all.append(lls.tolist())
        chars_all.append(chars)
        golds.append(gold)
    return {"margin": margins, "margin_unit": "nats/char" if metric == "acc_norm" else "nats",
            "ll_choices": lls_all, "choice_chars": chars_all, "gold": golds}


def check_suite(short_name: str, tasks_dir: Path = TASKS_DIR) -> None:
    """A suite's YAML declares its headline metric and its chance level, read without importing anything (the
    config check runs this at DAG parse, so a suite that lacks them is refused before any job runs).

    Raises:
        ValueError: naming the YAML and the missing or wrong key.
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    if stock_task(short_name):
        return
    path = tasks_dir / f"{TASK_PREFIX}{resolve_task_name(short_name, tasks_dir)}.yaml"
    cfg = load_yaml(path, resolve_func=False)
    headline_metric(cfg, path)
    try:
        suite_chance(cfg)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def uses_ifeval_scorer(short_name: str, tasks_dir: Path = TASKS_DIR) -> bool:
    """Whether a suite is scored by lm-eval's IFEval code (its ``process_results``, through its own YAML or one it
    includes), which needs the locally trained Punkt model before its YAML is loaded (importing the scorer makes
    NLTK look for it). Read without resolving ``!function`` tags, so nothing is imported."""
    from lm_eval.tasks._yaml_loader import load_yaml

    if stock_task(short_name):
        return stock_task(short_name)[0].startswith("ifeval")
    cfg = load_yaml(tasks_dir / f"{TASK_PREFIX}{resolve_task_name(short_name, tasks_dir)}.yaml", resolve_func=False)
    return "lm_eval.tasks.ifeval" in str(cfg.get("process_results", ""))


def _limits(limit: int | Mapping[str, int] | None, tasks: list[str]) -> dict[str, int | None]:
    """Per-task item caps from an int (all tasks), a mapping (named tasks) or None."""
    caps = dict(limit) if isinstance(limit, Mapping) else {t: limit for t in tasks}
    unknown = sorted(set(caps) - set(tasks))
    if unknown:
        raise ValueError(f"limit names task(s) {unknown} that no suite runs; suites run {tasks}")
    for task, cap in caps.items():
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"limit for {task!r} must be a positive int or None, got {cap!r}")
    return {t: caps.get(t) for t in tasks}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def evaluate_versatility(model: Any, tokenizer: Any, suites: dict[str, list[str]], *,
                         limit: int | Mapping[str, int] | None = None, batch_size: int = 8, max_gen_toks: int = 256,
                         nltk_dir: Path, apply_chat_template: bool = False, generation_lm: Any = None) -> dict:
    """Evaluate ``model`` on the versatility suites, in-process and offline.

    Args:
        model: a loaded ``transformers`` causal LM (e.g. on CPU, fp32); wrapped once in
            lm-eval's ``HFLM``.
        tokenizer: its tokenizer.
        suites: aspect -> task names, e.g. ``{"knowledge": ["mmlu"], "reasoning":
            ["arc_easy", "hellaswag", "piqa"], "instruction": ["ifeval"]}``. Short names
            (:func:`known_tasks`) or the ``cofitune_*`` names. A task listed in several
            aspects is run once.
        limit: evaluate only the first ``limit`` items of each task (None: all); a mapping
            gives per-task caps (short names) and leaves unnamed tasks uncapped.
        batch_size: HFLM batch size.
        max_gen_toks: generation cap for generation tasks (IFEval).
        nltk_dir: folder used as ``NLTK_DATA``; the local Punkt model is trained into it
            if missing (only when IFEval is requested).
        apply_chat_template: wrap every prompt in the tokenizer's chat template (lm-eval's
            ``apply_chat_template``); off by default, as in lm-eval's own runs.
        generation_lm: an lm-eval model for ``generate_until`` tasks (e.g. lm-eval's vLLM wrapper over
            the same weights); None runs them on the HF model like the loglikelihood tasks.

    Returns:
        A JSON-serialisable dict: ``tasks`` (short name -> ``{"task", "score" (0-100), "metric", "stderr", "n",
        "items" (per-item scores in doc order), "seconds"}``), ``aspects`` (aspect -> mean score of its tasks),
        ``vers`` (mean of the aspects), ``headline_metrics``, ``limit``, ``max_gen_toks``,
        ``apply_chat_template``, ``generation_backend``, ``lm_eval_version``, ``nltk_punkt`` (None without IFEval).

    Raises:
        ValueError: an unknown task name or an empty suite.
    """
    suites_short = _normalise_suites(suites)
    tasks = list(dict.fromkeys(t for names in suites_short.values() for t in names))
    limits = _limits(limit, tasks)

    punkt = any(uses_ifeval_scorer(t) for t in tasks)
    if punkt:
        ensure_punkt(nltk_dir)
        import_ifeval_scorer()

    import lm_eval

    configs = {t: load_task_config(t, max_gen_toks=max_gen_toks) for t in tasks}
    lm = head_sliced_lm(model, tokenizer, batch_size)

    def lm_for(t: str) -> Any:
        generates = configs[t].get("output_type") == "generate_until"
        return generation_lm if generates and generation_lm is not None else lm

    task_results = {t: _run_task(lm_for(t), t, configs[t], limits[t], apply_chat_template) for t in tasks}
    aspects = {a: _mean([task_results[t]["score"] for t in names]) for a, names in suites_short.items()}
    return {"tasks": task_results, "aspects": aspects, "vers": _mean(list(aspects.values())),
            "headline_metrics": {t: r["metric"] for t, r in task_results.items()}, "limit": limit,
            "max_gen_toks": max_gen_toks, "apply_chat_template": apply_chat_template,
            "generation_backend": "hf" if generation_lm is None else type(generation_lm).__name__,
            "lm_eval_version": lm_eval.__version__, "nltk_punkt": PUNKT_PROVENANCE if punkt else None}
