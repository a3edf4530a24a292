"""GPU training throughput and MFU: a CoFiTune trial (FFN in bottom2, update-target soft-mask) vs Full
SFT, side by side in one run, bf16 autocast. MFU uses the standard 6 * N * tokens model FLOPs of a full
training step (N = all parameters), so a partial trial's MFU shows how much of the card it keeps busy.

    python benchmarks/gpu_train_mfu.py --model-dir results/models/smollm2-135m/base --out benchmarks/gpu_train_mfu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _gpu import peak_tflops, require_cuda, write

from cofitune.core.importance import unit_shapes
from cofitune.core.methods import get_method
from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import train
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.model import load_base


def measure(model_dir, examples, method, params, steps, micro_batch, device) -> dict:
    model, tok = load_base(model_dir)
    model.to(device)
    m = get_method(method).from_params(params)
    names = m.trainable(model)
    mask = None
    if m.needs_importance:
        g = torch.Generator().manual_seed(0)
        mask = m.softmask(model, names, {k: torch.rand(s, generator=g) for k, s in unit_shapes(model.config).items()})
    cfg = TrainConfig(lr=1e-5, micro_batch=micro_batch, grad_accum=1, max_steps=steps + 1, epochs=100,
                      max_length=512, bf16=True)
    log = Path(f"/tmp/gpu_bench_{method}.jsonl")
    torch.cuda.reset_peak_memory_stats()
    train(model, tok, examples, names, cfg, softmask=mask, log_path=log, progress=False)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    tokens, wall = rows[-1]["tokens"] - rows[0]["tokens"], rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    n_params = sum(p.numel() for p in model.parameters())
    return {"method": method, "tokens_per_s": tokens / wall, "steps_timed": steps, "n_params": n_params,
            "n_trainable": sum(p.numel() for n, p in model.named_parameters() if n in names),
            "model_tflops_per_s": 6 * n_params * tokens / wall / 1e12,
            "peak_cuda_mem_gb": torch.cuda.max_memory_allocated() / 2**30}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--data", default="results/data/squad/train.jsonl")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--peak-tflops", type=float, default=None, help="card's dense bf16 peak (default: table)")
    p.add_argument("--out", default="benchmarks/gpu_train_mfu.json")
    a = p.parse_args()
    device = require_cuda("gpu_train_mfu")
    examples = read_examples(a.data)[: a.micro_batch * (a.steps + 1)]
    t0 = time.perf_counter()
    runs = [measure(a.model_dir, examples, "full_sft", {}, a.steps, a.micro_batch, device),
            measure(a.model_dir, examples, "cofitune", {"layers": "bottom2", "modules": "ffn", "target": "update"},
                    a.steps, a.micro_batch, device)]
    peak = peak_tflops(a.peak_tflops)
    for r in runs:
        r["mfu"] = r["model_tflops_per_s"] / peak if peak else None
    write(a.out, {"runs": runs, "peak_bf16_tflops": peak, "wall_s": time.perf_counter() - t0,
                  "ratio_trial_over_full_sft": runs[1]["tokens_per_s"] / runs[0]["tokens_per_s"]})


if __name__ == "__main__":
    main()
