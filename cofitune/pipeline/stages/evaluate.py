"""Stage ``evaluate``: one row's checkpoint (or the base model) scored on speciality (HF generation, or vLLM),
versatility (lm-eval) and, with a probe, drift from the original; one ``metrics.json`` with every item and the
provenance."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path

from cofitune.pipeline.artifacts import (
    CHECKPOINT_WEIGHTS,
    read_checkpoint_index,
    read_run_config,
    run_record,
    write_metrics,
)
from cofitune.pipeline.config import config_sha256
from cofitune.pipeline.io import read_json, sha256_file
from cofitune.stats import measures

log = logging.getLogger(__name__)


def _drift_summary(values: list[float], probe: dict, seed: int, n_boot: int) -> dict:
    from cofitune.stats import bootstrap_ci

    return {"mean": sum(values) / len(values), "ci95": list(bootstrap_ci(values, n_boot=n_boot, seed=seed)),
            "n": len(values), "items": values, "max_new_tokens": probe["max_new_tokens"],
            "unit": "nats/token, KL(p_original || p_run) on the original's greedy continuations"}


class _Drifts:
    """The drift probes of one evaluation (name -> probe file): the original's distributions are taken on the base
    weights before a checkpoint is merged in memory (so no second model is loaded), then each row is scored."""

    def __init__(self, probes: dict[str, str | Path | None], batch_size: int | None):
        self.probes = {name: read_json(path) for name, path in probes.items() if path}
        self.batch_size = batch_size
        self.reference: dict[str, list] = {}

    def take_reference(self, model, pad: int) -> None:
        from cofitune.pipeline.drift import reference_logprobs

        self.reference = {name: reference_logprobs(model, probe["items"], pad_id=pad, batch_size=self.batch_size)
                          for name, probe in self.probes.items()}

    def measure(self, model, pad: int, seed: int, n_boot: int) -> dict[str, dict]:
        """Per probe, the row's drift summary; a row without a reference pass is the original: 0 by definition."""
        from cofitune.pipeline.drift import drift_kl

        out = {}
        for name, probe in self.probes.items():
            reference = self.reference.pop(name, None)
            values = ([0.0] * len(probe["items"]) if reference is None else
                      drift_kl(reference, model, probe["items"], pad_id=pad, batch_size=self.batch_size))
            out[name] = _drift_summary(values, probe, seed, n_boot)
            log.info("%s = %.5f nats/token (95%% CI %.5f-%.5f) on %d prompts", name, out[name]["mean"],
                     *out[name]["ci95"], out[name]["n"])
        return out


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


def _metrics(cfg: dict, spec: dict, vers: dict, nll: list[float], drifts: dict, *, checkpoint, n_params: int,
             model_meta, data_meta, probe, task_probe, wall_s: float) -> dict:
    """The ``metrics.json`` of one row: its run (from its config), every score with its items, and the
    provenance (``meta``: timings, versions, checkpoint, model and data records)."""
    from cofitune.pipeline.provenance import collect

    vers_cfg = cfg["versatility"]
    train_info = read_checkpoint_index(checkpoint) if checkpoint else None
    return {
        "run": run_record(cfg),
        "metrics": {
            "spec": spec["score"], "spec_metric": spec["metric"], "spec_ci95": spec["ci95"],
            "spec_all": spec["metrics"], "spec_n": spec["n"],
            "spec_items": [it[spec["metric"]] for it in spec["items"]],
            # items that share a passage (SQuAD) or a document (DuReader): the bootstrap resamples them together
            **({"spec_clusters": spec["clusters"]} if spec.get("clusters") else {}),
            "format": cfg.get("format"),
            "spec_nll": sum(nll) / len(nll), "spec_nll_items": nll,
            "vers": vers["vers"], "aspects": vers["aspects"], "aspects_tasks": vers_cfg["suites"],
            "drift": drifts.get("drift"),
            "task_drift": drifts.get("task_drift"),
            # timings are not results: they go to meta, so metrics are reproducible bit for bit
            "suites": {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in vers["tasks"].items()},
            "trainable_fraction": (train_info["n_trainable"] / n_params) if train_info else 0.0,
        },
        "meta": collect(
            config_sha256=config_sha256(cfg), run_config=cfg, wall_s=round(wall_s, 2),
            generation=spec["generation"],
            train=(train_info or {}).get("train"),
            checkpoint_sha256=sha256_file(Path(checkpoint) / CHECKPOINT_WEIGHTS) if checkpoint else None,
            model=read_json(model_meta) if model_meta else None,
            data=read_json(data_meta) if data_meta else None,
            lm_eval={k: vers[k] for k in vers if k not in ("tasks", "aspects", "vers")},
            probe_sha256=sha256_file(probe) if probe else None,
            task_probe_sha256=sha256_file(task_probe) if task_probe else None,
            suite_seconds={k: v["seconds"] for k, v in vers["tasks"].items()},
        ),
    }


def run(run_config: str | Path, model_dir: str | Path, checkpoint: str | Path | None, test: str | Path,
        out: str | Path, predictions: str | Path, nltk_dir: str | Path, *, model_meta: str | Path | None = None,
        data_meta: str | Path | None = None, probe: str | Path | None = None,
        task_probe: str | Path | None = None) -> dict:
    """Load the model once, score speciality, versatility and (with ``probe`` / ``task_probe``) drift from the
    original on the general probe and on the task's own prompts, write ``metrics.json``."""
    from cofitune.core.distributed import device
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.evaluate import answer_nll, write_predictions
    from cofitune.pipeline.model import load_base, merge_trainable
    from evaluators.speciality import get_scorer

    t0 = time.perf_counter()
    cfg = read_run_config(run_config)
    spec_cfg, drift_cfg = cfg["speciality"], cfg["drift"]
    if drift_cfg["enabled"] != (probe is not None):
        raise ValueError(f"{run_config}: drift.enabled is {drift_cfg['enabled']} but --probe was "
                         f"{'given' if probe else 'not given'}")
    wants_task = bool(drift_cfg["enabled"] and drift_cfg.get("task_prompts"))
    if wants_task != (task_probe is not None):
        raise ValueError(f"{run_config}: drift.task_prompts is {drift_cfg.get('task_prompts')} (drift.enabled "
                         f"{drift_cfg['enabled']}) but --task-probe was {'given' if task_probe else 'not given'}")
    scorer = get_scorer(spec_cfg["evaluator"])
    model, tok = load_base(model_dir)
    model.to(device()).eval()
    drifts = _Drifts({"drift": probe, "task_drift": task_probe}, drift_cfg.get("batch_size"))  # None: no probe
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if checkpoint is not None:  # the original itself has no second pass: its drift is 0
        drifts.take_reference(model, pad)
        merge_trainable(model, checkpoint)
    spec, vers = _spec_and_vers(model, tok, cfg, test, nltk_dir, scorer)
    log.info("speciality %s = %.2f (95%% CI %.2f-%.2f)", spec["metric"], spec["score"], *spec["ci95"])
    nll = answer_nll(model, tok, read_examples(test), template=cfg["template"], batch_size=spec_cfg["batch_size"])
    log.info("answer NLL = %.4f nats/token", sum(nll) / len(nll))
    log.info("versatility = %.2f %s", vers["vers"], vers["aspects"])
    measured = drifts.measure(model, pad, cfg["seed"], spec_cfg["n_bootstrap"])
    metrics = _metrics(cfg, spec, vers, nll, measured, checkpoint=checkpoint,
                       n_params=sum(p.numel() for p in model.parameters()), model_meta=model_meta,
                       data_meta=data_meta, probe=probe, task_probe=task_probe, wall_s=time.perf_counter() - t0)
    metrics["metrics"]["vers_m"] = measures.value(metrics, "VersM")
    write_predictions(predictions, spec["items"])
    write_metrics(out, metrics)
    return metrics
