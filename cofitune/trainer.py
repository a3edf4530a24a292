"""An explicit SFT loop: forward, backward, (grad mask), clip, step, (update mask), schedule, log.

Partial methods freeze everything outside their trainable set; backward then stops at the lowest
trainable layer, which is where the speed-up of a bottom2 trial comes from.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from cofitune.importance import _upcast
from cofitune.prompt import build_prompt
from cofitune.selection import freeze_all_but
from cofitune.softmask import SoftMask

IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe. Release defaults: lr 4e-5, 3 epochs, batch 256, max length 512 (the demo
    shrinks them to fit 2 CPU cores; see config/config.yaml)."""

    epochs: float = 3.0
    lr: float = 4e-5
    micro_batch: int = 8
    grad_accum: int = 32
    max_length: int = 512
    warmup_ratio: float = 0.03
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float | None = 1.0
    train_on_prompt: bool = False
    bf16: bool = False
    template: str = "alpaca"
    seed: int = 1234
    max_steps: int | None = None

    def __post_init__(self):
        checks = {"epochs": self.epochs > 0, "lr": self.lr > 0, "micro_batch": self.micro_batch >= 1,
                  "grad_accum": self.grad_accum >= 1, "max_length": self.max_length >= 8,
                  "warmup_ratio": 0 <= self.warmup_ratio < 1, "weight_decay": self.weight_decay >= 0,
                  "clip": self.clip is None or self.clip > 0,
                  "max_steps": self.max_steps is None or self.max_steps >= 1}
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"train.{key} = {getattr(self, key)!r} is out of range")


def tokenize_example(example: dict, tok, cfg: TrainConfig) -> dict | None:
    """Prompt + output + EOS; labels mask the prompt unless ``train_on_prompt``. None if too long."""
    prompt = build_prompt(example, cfg.template, tok)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    o_ids = tok(example["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = p_ids + o_ids
    if len(ids) > cfg.max_length:
        return None
    labels = list(ids) if cfg.train_on_prompt else [IGNORE] * len(p_ids) + o_ids
    return {"input_ids": ids, "labels": labels}


def collate(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of tokenised examples into (B, T) tensors."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"])
        labels[i, :n] = torch.tensor(it["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def batches(items: list[dict], size: int, pad_id: int, seed: int | None) -> Iterator[dict]:
    """Micro-batches in a seeded shuffled order (no shuffle when ``seed`` is None)."""
    order = list(range(len(items)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    for start in range(0, len(order), size):
        yield collate([items[i] for i in order[start:start + size]], pad_id)


def cosine_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


@dataclass
class TrainResult:
    steps: int
    tokens: int
    wall_s: float
    tokens_per_s: float
    n_examples: int
    n_dropped_too_long: int
    trainable: list[str]
    n_trainable: int
    n_params: int
    final_loss: float
    losses: list[float] = field(default_factory=list)


def train(model: nn.Module, tok, examples: list[dict], names: set[str], cfg: TrainConfig, *,
          softmask: SoftMask | None = None, regularizer=None, log_path: str | Path | None = None,
          progress: bool = True) -> TrainResult:
    """Train exactly ``names`` of ``model`` in place on ``examples``.

    Args:
        names: trainable parameter names; every other parameter is frozen and stays bit-identical.
        softmask: optional row mask applied to gradients (before clip) or to updates (after step).
        regularizer: optional callable returning a penalty (e.g. L2 to the initial weights) whose
            gradient is added once per optimiser step, before masking and clipping.
        log_path: JSONL file receiving one line per optimiser step.
    """
    torch.manual_seed(cfg.seed)
    freeze_all_but(model, names)
    items = [t for t in (tokenize_example(e, tok, cfg) for e in examples) if t is not None]
    dropped = len(examples) - len(items)
    if not items:
        raise ValueError(f"every training example is longer than train.max_length={cfg.max_length}")
    micro_per_epoch = math.ceil(len(items) / cfg.micro_batch)
    steps = max(1, math.floor(micro_per_epoch * cfg.epochs / cfg.grad_accum))
    if cfg.max_steps is not None:
        steps = min(steps, cfg.max_steps)
    params = [p for n, p in model.named_parameters() if n in names]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, math.ceil(cfg.warmup_ratio * steps)))

    def stream():
        epoch = 0
        while True:
            yield from batches(items, cfg.micro_batch, tok.pad_token_id, cfg.seed + epoch)
            epoch += 1

    data = stream()
    device = next(model.parameters()).device
    log = open(log_path, "w") if log_path else None
    model.train()
    tokens, losses, t0 = 0, [], time.perf_counter()
    try:
        for step in tqdm(range(steps), desc="train", disable=not progress):
            micro = [next(data) for _ in range(cfg.grad_accum)]
            n_target = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro)
            step_loss = 0.0
            for b in micro:
                b = {k: v.to(device) for k, v in b.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                # token-level mean over the whole accumulated batch (B*T, V) -> scalar
                loss = nn.functional.cross_entropy(
                    _upcast(logits[:, :-1]).reshape(-1, logits.shape[-1]), b["labels"][:, 1:].reshape(-1),
                    ignore_index=IGNORE, reduction="sum") / max(1, n_target)
                loss.backward()
                step_loss += loss.item()
                tokens += int(b["attention_mask"].sum())
            if regularizer is not None:
                penalty = regularizer()
                penalty.backward()
                step_loss += penalty.item()
            if softmask is not None:
                softmask.mask_grads(model)  # before clipping: the release clipped first (defect 6.7)
            if cfg.clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            before = softmask.snapshot(model) if softmask is not None else None
            opt.step()
            if softmask is not None:
                softmask.mask_update(model, before)
            lr = sched.get_last_lr()[0]  # the rate this step used
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(step_loss)
            if log:
                log.write(json.dumps({"step": step + 1, "loss": step_loss, "lr": lr,
                                      "tokens": tokens, "elapsed_s": time.perf_counter() - t0}) + "\n")
                log.flush()
    finally:
        if log:
            log.close()
    wall = time.perf_counter() - t0
    model.eval()
    return TrainResult(
        steps=steps, tokens=tokens, wall_s=wall, tokens_per_s=tokens / wall, n_examples=len(items),
        n_dropped_too_long=dropped, trainable=sorted(names),
        n_trainable=sum(p.numel() for p in params), n_params=sum(p.numel() for p in model.parameters()),
        final_loss=losses[-1], losses=losses,
    )


def config_from_dict(d: dict, where: str = "train") -> TrainConfig:
    """Build a :class:`TrainConfig`, rejecting unknown keys with the full key path."""
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return TrainConfig(**d)


def describe(cfg: TrainConfig) -> dict:
    return asdict(cfg)
