"""Evaluation on one device: speciality generation (HF, greedy, the task's scorer) and one lm-eval suite,
with their wall times and generation tokens/s. Runs on CUDA when present, else on CPU (`--device` to force),
and says which in the JSON.

    python benchmarks/evaluation_device.py --out benchmarks/evaluation_device.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _gpu import write

from cofitune.pipeline.data import read_examples
from cofitune.pipeline.launch import go_offline
from cofitune.pipeline.evaluate import evaluate_speciality
from cofitune.pipeline.model import load_for_eval
from evaluators.speciality import get_scorer
from evaluators.versatility import evaluate_versatility


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--test", default="results/data/squad/test.jsonl")
    p.add_argument("--evaluator", default="squad")
    p.add_argument("--n", type=int, default=64, help="speciality items")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--suite", default="arc_easy", help="one versatility suite (evaluators/tasks/cofitune_<name>.yaml)")
    p.add_argument("--limit", type=int, default=100, help="items of the suite")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--nltk-dir", default="results/nltk_data")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="benchmarks/evaluation_device.json")
    a = p.parse_args()
    go_offline()  # lm-eval and the hub read local files only
    model, tok = load_for_eval(a.model_dir, None)
    model.to(torch.device(a.device))
    t0 = time.perf_counter()
    spec = evaluate_speciality(model, tok, read_examples(a.test)[: a.n], get_scorer(a.evaluator), template="alpaca",
                               batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, repetition_penalty=1.2,
                               n_bootstrap=200, seed=0, progress=False)
    spec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vers = evaluate_versatility(model, tok, {"suite": [a.suite]}, limit=a.limit, batch_size=a.batch_size,
                                nltk_dir=Path(a.nltk_dir))
    vers_s = time.perf_counter() - t0
    task = vers["tasks"][a.suite]
    write(a.out, {"device": a.device, "speciality": {"n": spec["n"], "metric": spec["metric"], "score": spec["score"],
                                                     "seconds": spec_s, **spec["generation"]},
                  "versatility": {"suite": a.suite, "n": task["n"], "metric": task["metric"], "score": task["score"],
                                  "seconds": vers_s, "lm_eval_version": vers["lm_eval_version"]}})


if __name__ == "__main__":
    main()
