"""The SFT loss with the LM head run only where a label is predicted (``cofitune.core.trainer.sft_loss``)
against the cross-entropy over full (B, T, V) logits (the loss before), side by side in one run: seconds
per micro-batch (forward + backward), the ratio, and how far the two losses and gradients are apart.

The same micro-batches of the prepared training data, alternating the two losses, repetitions interleaved so
that machine noise hits both alike. Usage (after ``make demo`` prepared the model and data; the tiny test
model comes from any test-config workdir):

    .venv/bin/python benchmarks/train_head_rows.py --model smollm2-135m=results/models/smollm2-135m/base \\
        --model tiny-llama-8=<workdir>/results/models/tiny-llama-8/base --out benchmarks/train_head_rows.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import IGNORE, collate, n_targets, sft_loss, tokenize_example
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.model import load_base
from cofitune.pipeline.provenance import collect


def full_logits_loss(model, batch: dict, n_target: int) -> torch.Tensor:
    """The loss before: every position projected onto the vocabulary, prompt and padding ignored after."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum") / n_target


def step(model, loss_fn) -> tuple[float, float, dict[str, torch.Tensor]]:
    """(seconds, loss, gradients) of one forward + backward."""
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    loss = loss_fn()
    loss.backward()
    seconds = time.perf_counter() - t0
    return seconds, loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def measure(name: str, model_dir: str, data: str, micro_batch: int, n_batches: int, reps: int) -> dict:
    model, tok = load_base(model_dir)
    model.train()
    cfg = TrainConfig(max_length=320)
    items = [t for t in (tokenize_example(e, tok, cfg) for e in read_examples(data)) if t is not None]
    micro = [items[i:i + micro_batch] for i in range(0, micro_batch * n_batches, micro_batch)]
    times = {"full_logits": [], "head_rows": []}
    loss_diff, grad_diff = 0.0, 0.0
    for rep in range(reps):
        for part in micro:
            batch, n = collate(part, tok.pad_token_id), n_targets(part)
            s_full, l_full, g_full = step(model, lambda: full_logits_loss(model, batch, n))
            g_full = {k: v.clone() for k, v in g_full.items()}
            s_rows, l_rows, g_rows = step(model, lambda: sft_loss(model, model, batch, n))
            if rep > 0:  # the first repetition warms up both paths
                times["full_logits"].append(s_full)
                times["head_rows"].append(s_rows)
            loss_diff = max(loss_diff, abs(l_full - l_rows) / abs(l_full))
            grad_diff = max(grad_diff, max(float((g_rows[k] - g).norm() / g.norm().clamp_min(1e-30))
                                           for k, g in g_full.items()))
    positions = sum(int(collate(p, tok.pad_token_id)["input_ids"].numel()) for p in micro)
    labelled = sum(n_targets(p) for p in micro)
    full, rows = statistics.median(times["full_logits"]), statistics.median(times["head_rows"])
    return {"model": name, "model_dir": model_dir, "vocab": model.config.vocab_size,
            "hidden": model.config.hidden_size, "n_params": sum(p.numel() for p in model.parameters()),
            "micro_batch": micro_batch, "n_batches": len(micro), "timed_reps": reps - 1,
            "head_positions_full": positions, "head_positions_rows": labelled,
            "full_logits_s_per_batch": full, "head_rows_s_per_batch": rows, "speedup": full / rows,
            "max_rel_loss_diff": loss_diff, "max_rel_grad_diff": grad_diff}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="NAME=DIR", help="a prepared model folder")
    p.add_argument("--data", default="results/data/squad/train.jsonl")
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--reps", type=int, default=4, help="repetitions; the first is a warm-up, not timed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/train_head_rows.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for spec in a.model:
        name, _, model_dir = spec.partition("=")
        rows.append(measure(name, model_dir, a.data, a.micro_batch, a.batches, a.reps))
        print(json.dumps(rows[-1], indent=2))
    result = {"data": a.data, "threads": a.threads, "models": rows, "meta": collect()}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
