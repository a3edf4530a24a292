"""Training throughput of every trained method on the real model, measured side by side in one run.

Each method trains through the same hooks as the ``train`` stage (``prepare``, ``trainable``, ``softmask``,
``regularizer``, ``objective``, ``optimizer_step``), in rounds (every method once per round, so load on the machine
falls on all alike); the JSON has each method's tokens/s per round, the median, and the ratio to Full SFT's, in
float32 and, where the CPU computes bf16 natively, in bf16. bf16 training is measured only where the CPU computes bf16
natively (AVX512-BF16/AMX: ``cofitune.core.trainer.native_bf16``); elsewhere the JSON records why, next to a
1024x1024 matmul in both dtypes, which shows the emulation cost that makes ``train.bf16: true`` an error
there. Usage (after ``make demo`` prepared the model and data):

    .venv/bin/python benchmarks/train_throughput.py --out benchmarks/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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


#: every trained method at the leaderboard's setting (config/leaderboard.yaml)
METHODS = {
    "full_sft": {}, "coarse_only": {"layers": "bottom2", "modules": "ffn"},
    "cofitune": {"layers": "bottom2", "modules": "ffn", "target": "update"},
    "lora": {"r": 8, "alpha": 16, "modules": "mha+ffn"}, "l1": {"lam": 1e-6}, "l2": {"lam": 1e-3},
    "v_softmask": {"target": "grad"}, "mofo": {"fraction": 0.15}, "hft": {"seed": 0},
    "hard_mask": {"layers": "bottom2", "modules": "ffn", "p": 0.25}, "kl_sft": {"beta": 1.0},
    "flow": {"tau": "median"}, "dft": {},
}


def measure(model_dir, examples, method, params, bf16, steps, micro_batch) -> dict:
    model, tok = load_base(model_dir)
    m = get_method(method).from_params(params)
    model = m.prepare(model)
    names = m.trainable(model)
    mask = None
    if m.needs_importance:  # uniform random importance: the cost of masking, not its effect
        g = torch.Generator().manual_seed(0)
        imp = {k: torch.rand(s, generator=g) for k, s in unit_shapes(model.config).items()}
        mask = m.softmask(model, names, imp)
    cfg = TrainConfig(lr=1e-4, micro_batch=micro_batch, grad_accum=1, max_steps=steps + 1, epochs=100,
                      max_length=512, bf16=bf16)
    # first step is warm-up (allocator, kernels): time steps 2..N+1 from the per-step log; a method's one-off
    # work before the first step (FLOW's pass of the original, KL-SFT's frozen copy) is timed on its own
    log = Path(f"/tmp/bench_{method}_{bf16}.jsonl")
    t0 = time.perf_counter()
    result = train(model, tok, examples, names, cfg, softmask=mask, regularizer=m.regularizer(model, names),
                   objective=m.objective, optimizer_step=m.optimizer_step, log_path=log, progress=False)
    total = time.perf_counter() - t0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    tokens = rows[-1]["tokens"] - rows[0]["tokens"]
    wall = rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    return {"method": method, "bf16": bf16, "steps_timed": steps, "tokens": tokens, "wall_s": wall,
            "tokens_per_s": tokens / wall, "setup_s": total - result.wall_s, "n_trainable": result.n_trainable}


def side_by_side(model_dir, examples, bf16: bool, steps: int, micro_batch: int, rounds: int,
                 methods: list[str]) -> dict:
    """Every method once per round; per method its runs, median tokens/s and the ratio to Full SFT's."""
    runs = {name: [] for name in methods}
    for _ in range(rounds):
        for name in methods:
            runs[name].append(measure(model_dir, examples, name, METHODS[name], bf16, steps, micro_batch))
    median = {n: statistics.median(r["tokens_per_s"] for r in rs) for n, rs in runs.items()}
    return {"runs": runs, "median_tokens_per_s": median,
            "ratio_over_full_sft": {n: v / median["full_sft"] for n, v in median.items()},
            "setup_s": {n: statistics.median(r["setup_s"] for r in rs) for n, rs in runs.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--data", default="results/data/squad/train.jsonl")
    p.add_argument("--steps", type=int, default=4, help="timed optimiser steps per configuration")
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2, help="passes over every method (medians over rounds)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset to measure (Full SFT, the reference, is always measured)")
    p.add_argument("--out", default="benchmarks/train_throughput.json")
    a = p.parse_args()
    methods = ["full_sft"] + [m for m in a.methods.split(",") if m != "full_sft"]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"--methods: unknown {unknown}; known: {sorted(METHODS)}")
    torch.manual_seed(0)
    examples = read_examples(a.data)[: a.micro_batch * (a.steps + 1)]
    native, why = native_bf16(torch.device("cpu"))
    result = {"float32": side_by_side(a.model_dir, examples, False, a.steps, a.micro_batch, a.rounds, methods),
              "bfloat16": side_by_side(a.model_dir, examples, True, a.steps, a.micro_batch, a.rounds, methods) if native
              else None,
              "bf16_native": native, "bf16_evidence": why}
    gflops = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    result |= {"matmul_gflops_1024": gflops, "ratio_matmul_bf16_over_fp32": gflops["bfloat16"] / gflops["float32"],
               "machine": platform.processor() or platform.machine(),
               "meta": collect(model_dir=a.model_dir, data=a.data, steps=a.steps, micro_batch=a.micro_batch,
                               rounds=a.rounds, methods=methods)}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    for dtype in ("float32", "bfloat16"):
        if result[dtype]:
            for n, r in result[dtype]["ratio_over_full_sft"].items():
                print(f"{dtype:8s} {n:12s} {result[dtype]['median_tokens_per_s'][n]:8.1f} tok/s  {r:5.2f}x Full SFT")


if __name__ == "__main__":
    main()
