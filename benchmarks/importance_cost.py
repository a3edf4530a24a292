"""Cost of the importance pass (two gated forward passes + backward to the gates, docs/method.md section 3)
next to one Full SFT step over the same batches, side by side in one run. Runs on CUDA when present,
else on CPU (`--device cpu` to force), and says which in the JSON.

    python benchmarks/importance_cost.py --out benchmarks/importance_cost.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from cofitune.core.importance import compute_importance
from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import batches, tokenize_example, train
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.model import load_base


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--data", default="results/data/squad/train.jsonl")
    p.add_argument("--n-examples", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="benchmarks/importance_cost.json")
    a = p.parse_args()
    device = torch.device(a.device)
    model, tok = load_base(a.model_dir)
    model.to(device)
    cfg = TrainConfig(micro_batch=a.batch_size, grad_accum=1, epochs=1, lr=1e-5, max_length=512)
    examples = read_examples(a.data)[: a.n_examples]
    items = [t for t in (tokenize_example(e, tok, cfg) for e in examples) if t is not None]
    n_tokens = sum(len(t["input_ids"]) for t in items)
    on_device = [{k: v.to(device) for k, v in b.items()} for b in batches(items, a.batch_size, tok.pad_token_id, None)]

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    imp_s = timed(lambda: compute_importance(model, on_device, progress=False, seed=0))
    names = {n for n, _ in model.named_parameters()}
    sft_s = timed(lambda: train(model, tok, examples, names, cfg, progress=False))
    result = {"device": str(device), "n_examples": len(items), "tokens": n_tokens,
              "importance_s": imp_s, "importance_tokens_per_s": n_tokens / imp_s,
              "full_sft_epoch_s": sft_s, "full_sft_tokens_per_s": n_tokens / sft_s,
              "ratio_importance_over_full_sft_time": imp_s / sft_s}
    from cofitune.pipeline.provenance import collect

    result["meta"] = collect()
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=2))


if __name__ == "__main__":
    main()
