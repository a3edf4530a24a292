"""An explicit SFT loop: forward, backward, (grad mask), clip, step, (update mask), schedule, log.

Partial methods freeze everything outside their trainable set; backward then stops at the lowest
trainable layer, which is where the speed-up of a bottom2 trial comes from.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from cofitune.core import distributed as dist_
from cofitune.core.arch import head_rows, upcast
from cofitune.core.prompt import build_prompt
from cofitune.core.recipe import TrainConfig, check_bf16
from cofitune.core.selection import freeze_all_but
from cofitune.core.softmask import SoftMask

log = logging.getLogger(__name__)
IGNORE = -100
def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` multiplies bf16 matrices in hardware, and the evidence (for logs and errors).

    CPUs without AVX512-BF16 or AMX emulate bf16 matmuls: measured on a 2-core AMD EPYC (AVX2),
    0.9 GFLOP/s in bf16 against 56 GFLOP/s in float32, so autocast there turns minutes into hours.
    """
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, f"{torch.cuda.get_device_name(device)}: native bf16 {'yes' if ok else 'no'}"
    if device.type == "cpu":
        avx512_bf16, amx = torch.cpu._is_avx512_bf16_supported(), torch.cpu._is_amx_tile_supported()
        return avx512_bf16 or amx, (f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
                                    f"AVX512-BF16 {avx512_bf16}, AMX {amx}")
    return False, f"device type {device.type!r}: native bf16 unknown"


def resolve_bf16(setting: bool | str, device: torch.device) -> bool:
    """The autocast decision for ``train.bf16`` on ``device``.

    ``"auto"`` takes bf16 exactly when the device computes it natively; ``true`` on a device that
    would only emulate it is refused (a silent 60x slowdown is a bug, not a setting); ``false`` is fp32.
    """
    check_bf16(setting)
    if setting is False:
        return False
    ok, why = native_bf16(device)
    if setting is True and not ok:
        raise ValueError(f"train.bf16 = true, but this device has no native bf16 matmul ({why}); "
                         "bf16 autocast would be emulated and run tens of times slower than float32. "
                         "Set train.bf16: auto (bf16 where native, float32 elsewhere) or false.")
    log.info("train.bf16 = %s -> %s (%s)", setting, "bf16 autocast" if ok else "float32", why)
    return ok


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
    """Right-pad a list of tokenised examples into (B, T) tensors (and their ``weight``s, when they carry one)."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"])
        labels[i, :n] = torch.tensor(it["labels"])
        mask[i, :n] = 1
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if "weight" in items[0]:  # per-example loss weights (a method's objective, e.g. FLOW)
        out["weight"] = torch.tensor([float(it["weight"]) for it in items])
    return out


def batch_indices(n: int, size: int, seed: int | None) -> Iterator[list[int]]:
    """Example indices of each micro-batch in a seeded shuffled order (no shuffle when ``seed`` is None)."""
    order = list(range(n))
    if seed is not None:
        random.Random(seed).shuffle(order)
    for start in range(0, len(order), size):
        yield order[start:start + size]


def batches(items: list[dict], size: int, pad_id: int, seed: int | None) -> Iterator[dict]:
    """Micro-batches in a seeded shuffled order (no shuffle when ``seed`` is None)."""
    for idx in batch_indices(len(items), size, seed):
        yield collate([items[i] for i in idx], pad_id)


def n_targets(items: list[dict]) -> int:
    """Label tokens the loss is summed over (shifted labels that are not IGNORE), as collate would count."""
    return sum(sum(1 for t in it["labels"][1:] if t != IGNORE) for it in items)


def local_part(micro: list[dict], rank: int, world: int) -> list[dict]:
    """This rank's disjoint part of a global micro-batch.

    A rank left without examples (micro-batch smaller than the world) gets one example with every
    label ignored: its loss and gradient are exactly zero, but it still runs the forward/backward that
    DDP/FSDP2 collectives need on every rank."""
    if world == 1:
        return micro
    part = dist_.shard(micro, rank, world)
    return part or [{**micro[0], "labels": [IGNORE] * len(micro[0]["labels"])}]  # its other fields (weight) too


def label_logits(fwd: nn.Module, model: nn.Module, batch: dict[str, torch.Tensor], *,
                 bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The float32 logits of every position whose next token is a label, those labels, and the (B, T) mask of
    the positions (row-major order: the logits of example b come before those of b + 1).

    Position t predicts token t+1, so the LM head runs only there (:func:`cofitune.core.arch.head_rows`): the
    same values as the full (B, T, V) logits at those positions, without projecting the prompt and padding
    onto the vocabulary. ``fwd`` is the module called (a DDP wrapper or ``model``); ``model`` owns the head."""
    labels = batch["labels"]
    keep = nn.functional.pad(labels[:, 1:] != IGNORE, (0, 1), value=False)  # (B, T): predicts a label
    with torch.autocast(labels.device.type, dtype=torch.bfloat16, enabled=bf16), head_rows(model, keep):
        logits = fwd(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (N, V)
    return upcast(logits), labels[:, 1:][keep[:, :-1]], keep


def sft_loss(fwd: nn.Module, model: nn.Module, batch: dict[str, torch.Tensor], n_target: int, *,
             bf16: bool = False) -> torch.Tensor:
    """Next-token cross-entropy summed over the batch's label tokens, divided by ``n_target`` (the label
    count of the whole accumulated global step, so micro-batches and ranks add up to one token-level mean).
    The same loss and gradients as a cross-entropy over the full logits with the prompt and padding ignored
    (:func:`label_logits`)."""
    logits, targets, _ = label_logits(fwd, model, batch, bf16=bf16)
    return nn.functional.cross_entropy(logits, targets, reduction="sum") / max(1, n_target)


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
    bf16: bool  # the autocast actually used (train.bf16 resolved on the training device)
    losses: list[float] = field(default_factory=list)


def step_count(n_items: int, cfg: TrainConfig) -> int:
    """Optimiser steps of a run: ``epochs`` passes of ``micro_batch``-sized micro-batches, ``grad_accum`` per
    step (at least one), capped by ``max_steps``."""
    steps = max(1, math.floor(math.ceil(n_items / cfg.micro_batch) * cfg.epochs / cfg.grad_accum))
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def _optimizer(params: list[nn.Parameter], cfg: TrainConfig, steps: int):
    """AdamW (no weight decay on vectors) and its warm-up + cosine schedule."""
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, math.ceil(cfg.warmup_ratio * steps)))


def _micro_batches(items: list[dict], cfg: TrainConfig) -> Iterator[list[dict]]:
    """Endless micro-batches of the tokenised examples, reshuffled with ``seed + epoch`` every epoch."""
    epoch = 0
    while True:
        for idx in batch_indices(len(items), cfg.micro_batch, cfg.seed + epoch):
            yield [items[i] for i in idx]
        epoch += 1


def _wrapped(model: nn.Module, cfg: TrainConfig, regularizer, optimizer_step) -> nn.Module:
    """The module to call forward on: ``model`` itself in one process, its DDP or FSDP2 wrapper under
    torchrun (FSDP2 shards ``model`` in place)."""
    if dist_.world_size() == 1:
        return model
    if regularizer is not None and cfg.distributed == "fsdp2":  # it holds the unsharded parameters
        raise ValueError("train.distributed = 'fsdp2' cannot train a method with a regularizer "
                         "(l1/l2); use train.distributed: ddp")
    if optimizer_step is not None and cfg.distributed == "fsdp2":  # it filters whole tensors, FSDP2 holds shards
        raise ValueError("train.distributed = 'fsdp2' cannot train a method with its own optimiser step "
                         "(mofo); use train.distributed: ddp")
    return dist_.wrap(model, cfg.distributed)


def _accumulate(fwd: nn.Module, model: nn.Module, micro: list[list[dict]], pad_id: int, *, bf16: bool,
                loss_fn=sft_loss) -> float:
    """Forward + backward of one optimiser step's micro-batches (this rank's part of each); the summed loss.

    The loss is divided by the step's *global* label count (every rank holds the whole step's batch), so the
    gradients summed over ranks equal the single-process gradient."""
    rank, world = dist_.rank(), dist_.world_size()
    device = next(model.parameters()).device
    n_target = sum(n_targets(m) for m in micro)
    step_loss = 0.0
    for i, m in enumerate(micro):
        b = {k: v.to(device) for k, v in collate(local_part(m, rank, world), pad_id).items()}
        with dist_.sync_context(fwd, last=i == len(micro) - 1):
            loss = loss_fn(fwd, model, b, n_target, bf16=bf16)
            loss.backward()
        step_loss += loss.item()
    if world > 1:  # gradients are summed over ranks by now (DDP: in backward; FSDP2: reduce-scatter)
        step_loss = dist_.all_reduce_float(step_loss)
    return step_loss


def _update(model: nn.Module, params: list[nn.Parameter], opt, cfg: TrainConfig, softmask: SoftMask | None,
            regularizer, optimizer_step=None) -> float:
    """The rest of one optimiser step after the backward passes: the penalty's gradient, the gradient mask,
    clipping, the step, the update mask. Returns the penalty (0.0 without a regularizer)."""
    penalty = 0.0
    if regularizer is not None:  # replicated parameters: every rank adds the same penalty gradient once
        penalty = regularizer()  # adds its gradient to .grad, returns its value
    if softmask is not None:
        softmask.mask_grads(model)  # before clipping: the release clipped first (defect 6.7)
    if cfg.clip is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)  # global norm (FSDP2: over DTensor shards)
    before = softmask.snapshot(model) if softmask is not None else None
    opt.step() if optimizer_step is None else optimizer_step(opt)
    if softmask is not None:
        softmask.mask_update(model, before)
    return penalty


def train(model: nn.Module, tok, examples: list[dict], names: set[str], cfg: TrainConfig, *,
          softmask: SoftMask | None = None, regularizer=None, objective=None, optimizer_step=None,
          log_path: str | Path | None = None, progress: bool = True) -> TrainResult:
    """Train exactly ``names`` of ``model`` in place on ``examples``.

    Under an initialised process group (torchrun, world size > 1) every rank calls this with the same
    arguments. Each optimiser step sees the single-process global batch; each rank runs a disjoint part of
    every micro-batch, divided by the step's *global* label count (the single-process gradient). ``cfg.distributed`` picks DDP or FSDP2 (FSDP2 shards ``model`` in place:
    its parameters become DTensors, see :func:`cofitune.core.distributed.full_tensors`). Only rank 0 logs.

    Args:
        names: trainable parameter names; every other parameter is frozen and stays bit-identical.
        softmask: row mask applied to gradients (before clip) or to updates (after step).
        regularizer: callable adding a penalty's gradient (L2 to the initial weights) to ``.grad`` once per
            optimiser step, before masking and clipping, and returning its value.
        objective: ``objective(model, items, pad_id)`` on the untrained model and the tokenised examples: the
            loss to train (``sft_loss``'s signature; it may set items' ``weight``), or None for ``sft_loss``.
        optimizer_step: ``optimizer_step(opt)`` in place of ``opt.step()`` (MoFO's momentum filter).
        log_path: JSONL file receiving one line per optimiser step.
    """
    torch.manual_seed(cfg.seed)
    freeze_all_but(model, names)
    items = [t for t in (tokenize_example(e, tok, cfg) for e in examples) if t is not None]
    if not items:
        raise ValueError(f"every training example is longer than train.max_length={cfg.max_length}")
    steps = step_count(len(items), cfg)
    loss_fn = (objective(model, items, tok.pad_token_id) if objective is not None else None) or sft_loss
    fwd = _wrapped(model, cfg, regularizer, optimizer_step)
    params = [p for n, p in model.named_parameters() if n in names]  # after wrap: FSDP2 swaps in DTensors
    opt, sched = _optimizer(params, cfg, steps)
    data = _micro_batches(items, cfg)
    bf16 = resolve_bf16(cfg.bf16, next(model.parameters()).device)
    step_log = open(log_path, "w") if log_path and dist_.rank() == 0 else None
    fwd.train()
    tokens, losses, t0 = 0, [], time.perf_counter()
    try:
        for step in tqdm(range(steps), desc="train", disable=not progress or dist_.rank() != 0):
            micro = [next(data) for _ in range(cfg.grad_accum)]
            step_loss = _accumulate(fwd, model, micro, tok.pad_token_id, bf16=bf16, loss_fn=loss_fn)
            tokens += sum(len(it["input_ids"]) for m in micro for it in m)
            step_loss += _update(model, params, opt, cfg, softmask, regularizer, optimizer_step)
            lr = sched.get_last_lr()[0]  # the rate this step used
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(step_loss)
            if step_log:
                step_log.write(json.dumps({"step": step + 1, "loss": step_loss, "lr": lr,
                                           "tokens": tokens, "elapsed_s": time.perf_counter() - t0}) + "\n")
                step_log.flush()
    finally:
        if step_log:
            step_log.close()
    wall = time.perf_counter() - t0
    model.eval()
    return TrainResult(
        steps=steps, tokens=tokens, wall_s=wall, tokens_per_s=tokens / wall, n_examples=len(items),
        n_dropped_too_long=len(examples) - len(items), trainable=sorted(names),
        n_trainable=sum(p.numel() for p in params), n_params=sum(p.numel() for p in model.parameters()),
        final_loss=losses[-1], bf16=bf16, losses=losses,
    )
