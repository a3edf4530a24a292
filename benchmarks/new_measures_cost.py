"""Added evaluation cost of the decisive-comparison measures, side by side in one run on one checkpoint.

Runs the pipeline's own ``evaluate`` stage (``cofitune.pipeline.stages.evaluate.run``) twice on the same model and
run config: once with the drift probe off (today's evaluation: speciality generation, lm-eval suites, answer
NLL) and once with it on (plus the original's distributions on the base weights and the KL pass). The
continuous multiple-choice scores (p_gold) are read from lm-eval's per-sample outputs in both runs, so they
are inside both timings; their own cost is also timed on the real samples. Writes JSON with the ratio.

    python benchmarks/new_measures_cost.py --workdir /path/to/finished/demo --out benchmarks/new_measures_cost.json

``--workdir`` is a folder where the demo DAG has run (it needs results/models, results/data, results/probe,
results/nltk_data and the row's metrics.json, whose run config it reuses). The checkpoint defaults to the demo's cofitune row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cofitune.pipeline.io import read_json, write_json
from cofitune.pipeline.stages.evaluate import run as evaluate_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--task", default="squad")
    p.add_argument("--run", default="cofitune/ffn-bottom2-update", help="method/variant of the checkpoint")
    p.add_argument("--out", default="benchmarks/new_measures_cost.json")
    a = p.parse_args()
    w = a.workdir.resolve()
    run_dir = w / "results/runs" / a.model / a.task / a.run
    cfg = read_json(run_dir / "metrics.json")["meta"]["run_config"]  # the run config it was evaluated with
    paths = {"model_dir": w / "results/models" / a.model / "base", "checkpoint": run_dir / "checkpoint",
             "test": w / "results/data" / a.task / "test.jsonl", "nltk_dir": w / "results/nltk_data"}
    probe = w / "results/probe" / f"{a.model}.json"
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, enabled in (("without", False), ("with", True)):
            run_cfg = Path(tmp) / f"run-{name}.json"
            write_json(run_cfg, {**cfg, "drift": {**cfg["drift"], "enabled": enabled}})
            t0 = time.perf_counter()
            m = evaluate_run(run_cfg, paths["model_dir"], paths["checkpoint"], paths["test"],
                             Path(tmp) / f"metrics-{name}.json", Path(tmp) / f"pred-{name}.jsonl",
                             paths["nltk_dir"], probe=probe if enabled else None)
            timings[name] = time.perf_counter() - t0
            if enabled:
                drift = m["metrics"]["drift"]
            else:
                base_metrics = m["metrics"]
    out = {
        "what": "evaluate_run on one checkpoint, drift probe off vs on, same process, same inputs",
        "checkpoint": str(run_dir.relative_to(w)), "model": a.model,
        "probe_prompts": drift["n"], "probe_max_new_tokens": drift["max_new_tokens"],
        "evaluate_s_without_new_measures": round(timings["without"], 2),
        "evaluate_s_with_new_measures": round(timings["with"], 2),
        "added_s": round(timings["with"] - timings["without"], 2),
        "added_fraction": round(timings["with"] / timings["without"] - 1, 4),
        "target_fraction": 0.15,
        "drift_mean": drift["mean"], "vers": base_metrics["vers"], "vers_m": base_metrics["vers_m"],
        "device": "cpu", "torch_threads": __import__("torch").get_num_threads(),
    }
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
