"""Training throughput on the real model, measured side by side in one run.

Writes JSON with tokens/s of ``full_sft`` vs ``cofitune`` (FFN in bottom2, update-target soft-mask) and
of bf16 autocast vs fp32, plus the ratios. bf16 training is measured only where the CPU computes bf16
natively (AVX512-BF16/AMX: ``cofitune.core.trainer.native_bf16``); elsewhere the JSON records why, next to a
1024x1024 matmul in both dtypes, which shows the emulation cost that makes ``train.bf16: true`` an error
there. Usage (after ``make demo`` prepared the model and data):

    .venv/bin/python benchmarks/train_throughput.py --out benchmarks/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from cofitune.core.importance import unit_shapes
from cofitune.core.methods import get_method
from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import native_bf16, train
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.model import load_base
from cofitune.pipeline.provenance import collect


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of an n x n matmul in ``dtype`` on the CPU (after one warm-up product)."""
    a = torch.randn(n, n).to(dtype)
    a @ a
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ a
        reps += 1
    return reps * 2 * n**3 / (time.perf_counter() - t0) / 1e9


def measure(model_dir, examples, method, params, bf16, steps, micro_batch) -> dict:
    model, tok = load_base(model_dir)
    m = get_method(method).from_params(params)
    names = m.trainable(model)
    mask = None
    if m.needs_importance:  # uniform random importance: the cost of masking, not its effect
        g = torch.Generator().manual_seed(0)
        imp = {k: torch.rand(s, generator=g) for k, s in unit_shapes(model.config).items()}
        mask = m.softmask(model, names, imp)
    cfg = TrainConfig(lr=1e-4, micro_batch=micro_batch, grad_accum=1, max_steps=steps + 1, epochs=100,
                      max_length=512, bf16=bf16)
    # first step is warm-up (allocator, kernels): time steps 2..N+1 from the per-step log
    log = Path(f"/tmp/bench_{method}_{bf16}.jsonl")
    train(model, tok, examples, names, cfg, softmask=mask, log_path=log, progress=False)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    tokens = rows[-1]["tokens"] - rows[0]["tokens"]
    wall = rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    return {"method": method, "bf16": bf16, "steps_timed": steps, "tokens": tokens, "wall_s": wall,
            "tokens_per_s": tokens / wall, "n_trainable": sum(p.numel() for n, p in model.named_parameters() if n in names)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--data", default="results/data/squad/train.jsonl")
    p.add_argument("--steps", type=int, default=4, help="timed optimiser steps per configuration")
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--out", default="benchmarks/train_throughput.json")
    a = p.parse_args()
    torch.manual_seed(0)
    examples = read_examples(a.data)[: a.micro_batch * (a.steps + 1)]
    cofi = {"layers": "bottom2", "modules": "ffn", "target": "update"}
    native, why = native_bf16(torch.device("cpu"))
    runs = [measure(a.model_dir, examples, "full_sft", {}, False, a.steps, a.micro_batch),
            measure(a.model_dir, examples, "cofitune", cofi, False, a.steps, a.micro_batch)]
    if native:
        runs.append(measure(a.model_dir, examples, "full_sft", {}, True, a.steps, a.micro_batch))
    gflops = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    result = {
        "runs": runs,
        "ratio_cofitune_over_full_sft": runs[1]["tokens_per_s"] / runs[0]["tokens_per_s"],
        "ratio_bf16_over_fp32_full_sft": runs[2]["tokens_per_s"] / runs[0]["tokens_per_s"] if native else None,
        "bf16_native": native, "bf16_evidence": why,
        "matmul_gflops_1024": gflops, "ratio_matmul_bf16_over_fp32": gflops["bfloat16"] / gflops["float32"],
        "machine": platform.processor() or platform.machine(),
        "meta": collect(model_dir=a.model_dir, data=a.data),
    }
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.startswith("ratio") or k.startswith("bf16")}, indent=2))
    for r in runs:
        print(f"{r['method']:10s} bf16={r['bf16']!s:5s} {r['tokens_per_s']:8.1f} tok/s")


if __name__ == "__main__":
    main()
