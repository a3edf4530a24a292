"""lm-eval's per-suite overhead: ``simple_evaluate`` (which appends torch's collect_env report: ``pip list``
and other subprocesses) vs the project's ``evaluators.versatility.lm_eval_run`` (the same ``evaluate`` call,
set up the same way, without that report), side by side in one run on the same suites and model, with a
check that both give the same per-item scores.

    python benchmarks/lm_eval_overhead.py --out benchmarks/lm_eval_overhead.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cofitune.pipeline.model import load_for_eval
from cofitune.pipeline.provenance import collect
from evaluators.versatility import head_sliced_lm, headline_metric, lm_eval_run, load_task_config


def simple(lm, cfg, limit):
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(model=lm, tasks=[cfg], task_manager=TaskManager(include_defaults=False),
                                   limit=limit, log_samples=True, bootstrap_iters=1000)


def items(out: dict, cfg: dict) -> list[float]:
    metric = headline_metric(cfg, cfg["task"])
    return [float(s[metric]) for s in sorted(out["samples"][cfg["task"]], key=lambda s: s["doc_id"])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--suites", nargs="+", default=["mmlu", "arc_easy", "hellaswag", "piqa"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--out", default="benchmarks/lm_eval_overhead.json")
    a = p.parse_args()
    model, tok = load_for_eval(a.model_dir, None)
    lm = head_sliced_lm(model, tok, batch_size=8)
    rows, same = [], True
    for name in a.suites:
        cfg = load_task_config(name)
        t0 = time.perf_counter()
        ours = lm_eval_run(lm, cfg, a.limit, False)
        t1 = time.perf_counter()
        theirs = simple(lm, cfg, a.limit)
        t2 = time.perf_counter()
        equal = items(ours, cfg) == items(theirs, cfg)
        same &= equal
        rows.append({"suite": name, "lm_eval_run_s": t1 - t0, "simple_evaluate_s": t2 - t1, "same_items": equal})
    total_ours, total_theirs = sum(r["lm_eval_run_s"] for r in rows), sum(r["simple_evaluate_s"] for r in rows)
    result = {"limit": a.limit, "suites": rows, "lm_eval_run_s": total_ours, "simple_evaluate_s": total_theirs,
              "saved_per_suite_s": (total_theirs - total_ours) / len(rows),
              "ratio_simple_over_ours": total_theirs / total_ours, "same_items": same, "meta": collect()}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=2))
    if not same:
        raise SystemExit("the two paths disagree on some item: see the JSON")


if __name__ == "__main__":
    main()
