"""lm-eval loglikelihood suites on the demo model: HFLM (the vocabulary projection and log-softmax at every
position) next to cofitune's head-sliced wrapper (only the continuation-predicting positions), side by
side in one run on the same items. Records each suite's wall time under both, the largest per-item
difference of the gold choice's loglikelihood, and whether every item's accuracy is the same.

    python benchmarks/loglikelihood_cost.py --model-dir results/models/smollm2-135m/base \\
        --nltk-dir results/nltk_data --out benchmarks/loglikelihood_cost.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from cofitune.pipeline.model import load_base
from evaluators import versatility as V

LIMITS = {"mmlu": 80, "arc_easy": 80, "hellaswag": 60, "piqa": 80}  # config/config.yaml's demo limits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default="benchmarks/loglikelihood_cost.json")
    a = p.parse_args()
    from lm_eval.models.huggingface import HFLM

    model, tok = load_base(a.model_dir)
    model.eval()
    wrappers = {"hflm": HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch_size),
                "head_sliced": V.head_sliced_lm(model, tok, a.batch_size)}
    suites = {}
    for name, limit in LIMITS.items():
        cfg = V.load_task_config(name)
        runs = {}
        for key, lm in wrappers.items():
            t0 = time.perf_counter()
            runs[key] = V._run_task(lm, name, cfg, limit, apply_chat_template=False)
            runs[key]["wall_s"] = time.perf_counter() - t0
        h, s = runs["hflm"], runs["head_sliced"]
        suites[name] = {"items": h["n"], "hflm_s": round(h["wall_s"], 2), "head_sliced_s": round(s["wall_s"], 2),
                        "speedup": round(h["wall_s"] / s["wall_s"], 3),
                        "same_item_scores": h["items"] == s["items"],
                        "max_abs_ll_gold_diff": max(abs(x - y) for x, y in zip(h["ll_gold"], s["ll_gold"]))}
        print(name, suites[name], flush=True)
    total_h = sum(v["hflm_s"] for v in suites.values())
    total_s = sum(v["head_sliced_s"] for v in suites.values())
    out = {"what": "lm-eval loglikelihood suites, HFLM vs head-sliced HFLM, same process, same items",
           "model_dir": a.model_dir, "batch_size": a.batch_size, "torch_threads": torch.get_num_threads(),
           "suites": suites, "hflm_total_s": round(total_h, 2), "head_sliced_total_s": round(total_s, 2),
           "speedup": round(total_h / total_s, 3)}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
