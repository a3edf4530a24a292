"""Stages ``prepare-probe`` and ``prepare-task-probe``: the drift probes of one model, their prompts and the base
model's greedy continuations (token ids), which ``evaluate`` scores every row against. The general probe's prompts
come from the versatility subsets; the task probe's are the speciality task's own training prompts."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cofitune.pipeline.io import write_json
from cofitune.pipeline.stage_configs import ProbeStage, TaskProbeStage

log = logging.getLogger(__name__)


def _continue(model_dir: str | Path, prompts: list[dict], out: str | Path, *, max_new_tokens: int,
              max_prompt_tokens: int | None, batch_size: int, render=None) -> dict:
    """The base model's greedy continuations of ``prompts`` (each rendered by ``render(text, tokenizer)``, or as
    it is), written with the settings and the provenance."""
    from cofitune.core.distributed import device
    from cofitune.pipeline.drift import greedy_continuations
    from cofitune.pipeline.model import load_base
    from cofitune.pipeline.provenance import collect

    t0 = time.perf_counter()
    model, tok = load_base(model_dir)
    model.to(device()).eval()
    texts = [p["prompt"] if render is None else render(p, tok) for p in prompts]
    items = greedy_continuations(model, tok, texts, max_new_tokens=max_new_tokens,
                                 max_prompt_tokens=max_prompt_tokens, batch_size=batch_size)
    n_tokens = sum(len(it["continuation_ids"]) for it in items)
    log.info("probe: %d prompts, %d continuation tokens (max %d each)", len(items), n_tokens, max_new_tokens)
    kept = [{k: v for k, v in p.items() if k != "example"} for p in prompts]  # the ids say which example
    probe = {"items": [{**p, **it} for p, it in zip(kept, items)], "max_new_tokens": max_new_tokens,
             "max_prompt_tokens": max_prompt_tokens, "meta": collect(wall_s=round(time.perf_counter() - t0, 2))}
    write_json(out, probe)
    return probe


def _chat_turn(prompt: dict, tok) -> str:
    return tok.apply_chat_template([{"role": "user", "content": prompt["prompt"]}], tokenize=False,
                                   add_generation_prompt=True)


def run(cfg: ProbeStage, model_dir: str | Path, data_dir: str | Path, out: str | Path) -> dict:
    """The drift probe of one model: its general prompts (each a user turn of the chat template when the model's
    format is chat) and the base model's greedy continuations."""
    from cofitune.pipeline.probe import probe_prompts

    return _continue(model_dir, probe_prompts(data_dir), out, max_new_tokens=cfg.max_new_tokens,
                     max_prompt_tokens=cfg.max_prompt_tokens, batch_size=cfg.batch_size,
                     render=_chat_turn if cfg.chat else None)


def run_task(cfg: TaskProbeStage, model_dir: str | Path, train: str | Path, out: str | Path) -> dict:
    """The task drift probe of one (model, task): the first ``n_prompts`` training prompts (all of them, said in
    the log and counted in every row's ``task_drift.n``, when the split is smaller) in the model's format, whole,
    and the base model's greedy continuations."""
    from cofitune.core.prompt import build_prompt
    from cofitune.pipeline.data import read_examples

    examples = read_examples(train)
    if len(examples) < cfg.n_prompts:
        log.warning("%s: the task probe takes up to %d training prompts (evaluation.drift.task_prompts); the split "
                    "has %d, so it takes them all", train, cfg.n_prompts, len(examples))
    prompts = [{"source": "task", "id": ex.get("id"), "example": ex} for ex in examples[:cfg.n_prompts]]
    probe = _continue(model_dir, prompts, out, max_new_tokens=cfg.max_new_tokens, max_prompt_tokens=None,
                      batch_size=cfg.batch_size, render=lambda p, tok: build_prompt(p["example"], cfg.template, tok))
    return probe
