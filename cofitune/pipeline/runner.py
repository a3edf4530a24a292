"""Run-level stages: train one (method, variant) and evaluate one checkpoint, with provenance."""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

from cofitune.pipeline.config import config_sha256
from cofitune.pipeline.io import atomic_path, publish, read_json, sha256_file, write_json
from cofitune.reporting import measures

log = logging.getLogger(__name__)


def _trained_method(cfg: dict, where) -> tuple:
    """The method instance and training recipe of a run config that trains, checked before anything loads."""
    from cofitune.core.methods import get_method, load_plugins
    from cofitune.core.recipe import config_from_dict

    load_plugins(cfg.get("plugins", []))
    method = get_method(cfg["method"]).from_params(cfg["params"], where=f"{where}: params")
    if method.kind != "trained":
        raise ValueError(f"{where}: method {cfg['method']!r} is {method.kind}: it does not train")
    if method.from_search and "region" not in cfg:
        raise ValueError(f"{where}: a from_search row's config has no region: resolve it with the search's "
                         "chosen.json first (python -m cofitune resolve-region)")
    return method, config_from_dict(cfg["train"], where=f"{where}: train")


def _train_summary(result) -> dict:
    """What a checkpoint records of its training (the per-step losses are in its train_log.jsonl)."""
    summary = {k: v for k, v in vars(result).items() if k != "losses"}
    summary["trainable_fraction"] = result.n_trainable / result.n_params
    log.info("trained %d steps, %.0f tok/s, %d/%d params (%.2f%%), final loss %.4f", result.steps,
             result.tokens_per_s, result.n_trainable, result.n_params, 100 * summary["trainable_fraction"],
             result.final_loss)
    return summary


def train_run(run_config: str | Path, model_dir: str | Path, data: str | Path,
              importance: list[str | Path], out: str | Path) -> dict:
    """Train the run described by its run config (the train view) and save only its trainable tensors into ``out``.

    A ``from_search`` row's config must be resolved first (:func:`cofitune.pipeline.config.resolve_region`:
    the search's chosen region written into its params). Under torchrun (an initialised process group) every
    rank trains; rank 0 alone writes the log and the checkpoint (FSDP2: the trained tensors are gathered and
    loaded into a fresh base model on rank 0), the others wait at a barrier and return ``{}``.
    """
    from cofitune.core import distributed
    from cofitune.core.recipe import describe
    from cofitune.core.trainer import train
    from cofitune.pipeline.artifacts import load_importance
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.model import load_base, save_trainable
    from cofitune.pipeline.provenance import collect

    cfg = read_json(run_config)
    method, train_cfg = _trained_method(cfg, run_config)
    multi, main = distributed.world_size() > 1, distributed.is_main()
    model, tok = load_base(model_dir)
    target = distributed.device()  # this rank's device; one process: the GPU when there is one
    moved = target.type != "cpu" or multi
    if moved:  # before prepare/regularizer/softmask, so everything they capture lives on this device
        model.to(target)
    model = method.prepare(model)
    names = method.trainable(model)
    mask = None
    if method.needs_importance:
        if not importance:
            raise ValueError(f"method {cfg['method']!r} needs --importance files")
        mask = method.softmask(model, names, load_importance(importance, model.config))
    log.info("training %d tensors (%s ...)", len(names), ", ".join(sorted(names)[:3]))
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    result = train(model, tok, read_examples(data), names, train_cfg, softmask=mask,
                   regularizer=method.regularizer(model, names), log_path=tmp / "train_log.jsonl" if main else None,
                   progress=main)
    if multi and train_cfg.distributed == "fsdp2":
        # collective: all ranks gather; rank 0 gets a fresh CPU model holding the trained tensors
        model = distributed.gather_to_main(model, names, lambda: method.prepare(load_base(model_dir)[0]))
    if not main:
        distributed.barrier()  # rank 0 saves and publishes, then joins this barrier
        return {}
    model, saved = method.finalize(model.cpu(), names) if moved else method.finalize(model, names)
    extra = {"run": cfg, "train": _train_summary(result), "train_config": describe(train_cfg),
             "importance": [str(p) for p in importance],
             "meta": collect(config_sha256=config_sha256(cfg))}
    if multi:
        extra["meta"]["world_size"] = distributed.world_size()
    save_trainable(model, saved, tmp, extra, n_trainable=result.n_trainable)
    publish(tmp, out)
    distributed.barrier()
    return extra


def combine_run(run_config: str | Path, model_dir: str | Path, sources: list[str | Path], out: str | Path) -> dict:
    """Post-hoc methods (Wise-FT): build weights from source checkpoints, save like a trained run."""
    from cofitune.core.methods import get_method, load_plugins
    from cofitune.pipeline.model import load_base, load_trainable, save_trainable
    from cofitune.pipeline.provenance import collect

    cfg = read_json(run_config)
    load_plugins(cfg.get("plugins", []))
    method = get_method(cfg["method"]).from_params(cfg["params"], where=f"{run_config}: params")
    model, _ = load_base(model_dir)
    names = method.combine(model, [load_trainable(s) for s in sources])
    extra = {"run": cfg, "sources": [str(s) for s in sources], "train": None,
             "meta": collect(config_sha256=config_sha256(cfg))}
    with atomic_path(out) as tmp:
        save_trainable(model, names, tmp, extra, n_trainable=0)
    return extra


def run_record(cfg: dict) -> dict:
    """The ``run`` block of ``metrics.json``: the row's identity and parameters, from its run config (a
    ``from_search`` row's config is resolved: its params name the region it trained)."""
    return {k: cfg[k] for k in ("model", "task", "method", "variant", "row", "params", "seed")}


def probe_run(model_dir, data_dir, out, *, max_new_tokens: int, max_prompt_tokens: int | None, batch_size: int) -> dict:
    """The drift probe of one model: its prompts and the base model's greedy continuations (token ids)."""
    from cofitune.core.distributed import device
    from cofitune.pipeline.drift import greedy_continuations
    from cofitune.pipeline.model import load_base
    from cofitune.pipeline.probe import probe_prompts
    from cofitune.pipeline.provenance import collect

    t0 = time.perf_counter()
    prompts = probe_prompts(data_dir)
    model, tok = load_base(model_dir)
    model.to(device()).eval()
    items = greedy_continuations(model, tok, [p["prompt"] for p in prompts], max_new_tokens=max_new_tokens,
                                 max_prompt_tokens=max_prompt_tokens, batch_size=batch_size)
    n_tokens = sum(len(it["continuation_ids"]) for it in items)
    log.info("drift probe: %d prompts, %d continuation tokens (max %d each)", len(items), n_tokens, max_new_tokens)
    probe = {"items": [{**p, **it} for p, it in zip(prompts, items)], "max_new_tokens": max_new_tokens,
             "max_prompt_tokens": max_prompt_tokens,
             "meta": collect(wall_s=round(time.perf_counter() - t0, 2))}
    write_json(out, probe)
    return probe


def _drift_summary(values: list[float], probe: dict, seed: int, n_boot: int) -> dict:
    from cofitune.reporting.stats import bootstrap_ci

    return {"mean": sum(values) / len(values), "ci95": list(bootstrap_ci(values, n_boot=n_boot, seed=seed)),
            "n": len(values), "items": values, "max_new_tokens": probe["max_new_tokens"],
            "unit": "nats/token, KL(p_original || p_run) on the original's greedy continuations"}


def _spec_and_vers(model, tok, cfg: dict, test, nltk_dir, scorer) -> tuple[dict, dict]:
    """Speciality (generation through HF, or vLLM where the config says so) and versatility (lm-eval) of the
    model as it is in memory."""
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.evaluate import evaluate_speciality
    from evaluators.versatility import evaluate_versatility

    spec_cfg, vers_cfg = cfg["speciality"], cfg["versatility"]
    with ExitStack() as stack:
        llm = gen_lm = None
        spec_vllm = spec_cfg.get("backend", "hf") == "vllm"
        vers_vllm = vers_cfg.get("generation_backend", "hf") == "vllm"
        if spec_vllm or vers_vllm:  # lazily: vLLM is an optional GPU extra, never a silent fallback
            from cofitune.pipeline import vllm_backend

            if spec_vllm:
                vllm_backend.require_vllm("evaluation.speciality.backend")
            if vers_vllm:
                vllm_backend.require_vllm("evaluation.versatility.generation_backend", lm_eval=True)
            folder = stack.enter_context(vllm_backend.exported(model, tok))
            llm = vllm_backend.make_llm(folder, seed=cfg["seed"]) if spec_vllm else None
        spec = evaluate_speciality(
            model, tok, read_examples(test), scorer, template=cfg["template"],
            batch_size=spec_cfg["batch_size"], max_new_tokens=spec_cfg["max_new_tokens"],
            repetition_penalty=spec_cfg["repetition_penalty"], n_bootstrap=spec_cfg["n_bootstrap"],
            seed=cfg["seed"], llm=llm)
        del llm  # free the engine's GPU memory before lm-eval's
        if vers_vllm:
            gen_lm = vllm_backend.lm_eval_model(folder, seed=cfg["seed"], max_gen_toks=vers_cfg["max_gen_toks"])
        vers = evaluate_versatility(model, tok, vers_cfg["suites"], limit=vers_cfg["limit"],
                                    batch_size=vers_cfg["batch_size"], max_gen_toks=vers_cfg["max_gen_toks"],
                                    nltk_dir=Path(nltk_dir), apply_chat_template=vers_cfg["apply_chat_template"],
                                    generation_lm=gen_lm)
    return spec, vers


def _metrics(cfg: dict, spec: dict, vers: dict, nll: list[float], drift: dict | None, *, checkpoint, n_params: int,
             model_meta, data_meta, probe, wall_s: float) -> dict:
    """The ``metrics.json`` of one row: its run (from its config), every score with its items, and the
    provenance (``meta``: timings, versions, checkpoint, model and data records)."""
    from cofitune.pipeline.provenance import collect

    vers_cfg = cfg["versatility"]
    train_info = read_json(Path(checkpoint) / "trainable.json") if checkpoint else None
    return {
        "run": run_record(cfg),
        "metrics": {
            "spec": spec["score"], "spec_metric": spec["metric"], "spec_ci95": spec["ci95"],
            "spec_all": spec["metrics"], "spec_n": spec["n"],
            "spec_items": [it[spec["metric"]] for it in spec["items"]],
            "spec_nll": sum(nll) / len(nll), "spec_nll_items": nll,
            "vers": vers["vers"], "aspects": vers["aspects"], "aspects_tasks": vers_cfg["suites"],
            "drift": drift,
            # timings are not results: they go to meta, so metrics are reproducible bit for bit
            "suites": {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in vers["tasks"].items()},
            "trainable_fraction": (train_info["n_trainable"] / n_params) if train_info else 0.0,
        },
        "meta": collect(
            config_sha256=config_sha256(cfg), run_config=cfg, wall_s=round(wall_s, 2),
            generation=spec["generation"],
            train=(train_info or {}).get("train"),
            checkpoint_sha256=sha256_file(Path(checkpoint) / "trainable.safetensors") if checkpoint else None,
            model=read_json(model_meta) if model_meta else None,
            data=read_json(data_meta) if data_meta else None,
            lm_eval={k: vers[k] for k in vers if k not in ("tasks", "aspects", "vers")},
            probe_sha256=sha256_file(probe) if probe else None,
            suite_seconds={k: v["seconds"] for k, v in vers["tasks"].items()},
        ),
    }


def evaluate_run(run_config, model_dir, checkpoint, test, out, predictions, nltk_dir, *,
                 model_meta=None, data_meta=None, probe=None) -> dict:
    """Load the model once, score speciality, versatility and (with ``probe``) drift, write ``metrics.json``.

    Drift needs the original's distributions: they are computed on the base weights before the checkpoint is
    merged in memory, so no second model is loaded.
    """
    from cofitune.core.distributed import device
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.drift import drift_kl, reference_logprobs
    from cofitune.pipeline.evaluate import answer_nll, write_predictions
    from cofitune.pipeline.model import load_base, merge_trainable
    from evaluators.speciality import get_scorer

    t0 = time.perf_counter()
    cfg = read_json(run_config)
    spec_cfg, drift_cfg = cfg["speciality"], cfg["drift"]
    if drift_cfg["enabled"] != (probe is not None):
        raise ValueError(f"{run_config}: drift.enabled is {drift_cfg['enabled']} but --probe was "
                         f"{'given' if probe else 'not given'}")
    scorer = get_scorer(spec_cfg["evaluator"])
    model, tok = load_base(model_dir)
    model.to(device()).eval()
    probe_data = read_json(probe) if probe else None
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # a row without a checkpoint is the original itself: its drift is 0 by definition, no second pass
    reference = (reference_logprobs(model, probe_data["items"], pad_id=pad, batch_size=drift_cfg["batch_size"])
                 if probe_data and checkpoint is not None else None)
    if checkpoint is not None:
        merge_trainable(model, checkpoint)
    spec, vers = _spec_and_vers(model, tok, cfg, test, nltk_dir, scorer)
    log.info("speciality %s = %.2f (95%% CI %.2f-%.2f)", spec["metric"], spec["score"], *spec["ci95"])
    nll = answer_nll(model, tok, read_examples(test), template=cfg["template"], batch_size=spec_cfg["batch_size"])
    log.info("answer NLL = %.4f nats/token", sum(nll) / len(nll))
    log.info("versatility = %.2f %s", vers["vers"], vers["aspects"])
    drift = None
    if probe_data:
        values = ([0.0] * len(probe_data["items"]) if reference is None else
                  drift_kl(reference, model, probe_data["items"], pad_id=pad, batch_size=drift_cfg["batch_size"]))
        del reference
        drift = _drift_summary(values, probe_data, cfg["seed"], spec_cfg["n_bootstrap"])
        log.info("drift = %.5f nats/token (95%% CI %.5f-%.5f) on %d probe prompts", drift["mean"], *drift["ci95"],
                 drift["n"])
    metrics = _metrics(cfg, spec, vers, nll, drift, checkpoint=checkpoint,
                       n_params=sum(p.numel() for p in model.parameters()), model_meta=model_meta,
                       data_meta=data_meta, probe=probe, wall_s=time.perf_counter() - t0)
    metrics["metrics"]["vers_p"] = measures.value(metrics, "VersP")
    write_predictions(predictions, spec["items"])
    write_json(out, metrics)
    return metrics
