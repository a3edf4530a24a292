"""Evaluation cost per checkpoint, the old versatility instrument against the new one, side by side in one run.

Runs the pipeline's own ``evaluate`` stage (``cofitune.pipeline.stages.evaluate.run``) twice on the same checkpoint
and the same test items, in one process, on one CPU:

* ``before``: the instrument up to issue 25: the Alpaca format, lm-eval without the chat template, MMLU in letter
  form, ARC-Easy, HellaSwag, PIQA and IFEval at prompt level with 96 new tokens, the general drift probe on raw
  prompts;
* ``after``: the demo's current evaluation (``config/config.yaml``, resolved for the row as the DAG resolves it):
  the model's chat format, its suites, the drift probe in the chat format and the task drift probe.

The probes are generated first (once per model in the DAG; timed apart). Writes JSON with both wall times, the
per-suite seconds, the ratio and the CPU.

    python benchmarks/instrument_cost.py --workdir /path/to/a/finished/run --run full_sft/all \\
        --out benchmarks/instrument_cost.json

``--workdir`` is a folder where the DAG has run for the row (it needs results/models, results/data and the row's
checkpoint).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml


def _old_instrument(cfg: dict) -> dict:
    """The run config as the instrument before issue 26 evaluated it."""
    vers = {**cfg["versatility"], "suites": {"knowledge": ["mmlu"], "reasoning": ["arc_easy", "hellaswag", "piqa"],
                                             "instruction": ["ifeval"]},
            "limit": {"mmlu": 80, "arc_easy": 80, "hellaswag": 60, "piqa": 80}, "max_gen_toks": 96,
            "apply_chat_template": False}
    return {**cfg, "template": "alpaca", "format": {**cfg["format"], "template": "alpaca",
                                                    "apply_chat_template": False, "system_prompt": None},
            "versatility": vers, "drift": {**cfg["drift"], "task_prompts": 0}}


def main() -> None:
    from snakemake.utils import validate

    from cofitune.pipeline.config import stage_config
    from cofitune.pipeline.io import write_json
    from cofitune.pipeline.provenance import collect
    from cofitune.pipeline.stage_configs import ProbeStage, TaskProbeStage
    from cofitune.pipeline.stages import probe as probe_stage
    from cofitune.pipeline.stages.evaluate import run as evaluate_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--task", default="squad")
    p.add_argument("--run", default="full_sft/all", help="method/variant of the checkpoint")
    p.add_argument("--out", default="benchmarks/instrument_cost.json")
    a = p.parse_args()
    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    validate(config, str(root / "workflow" / "schemas" / "config.schema.yaml"))
    method, variant = a.run.split("/")
    new = stage_config(config, "run", f"{a.model}/{a.task}/{method}/{variant}", root)
    old = _old_instrument(new)
    w = a.workdir.resolve()
    model_dir, data = w / "results/models" / a.model / "base", w / "results/data" / a.task
    checkpoint = w / "results/runs" / a.model / a.task / a.run / "checkpoint"
    timings, suites, probes = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        probe_cfg = {k: v for k, v in stage_config(config, "probe", a.model, root).items()}
        for name, chat in (("before", False), ("after", probe_cfg["chat"])):
            t0 = time.perf_counter()
            probe_stage.run(ProbeStage.from_dict({**probe_cfg, "chat": chat}, "probe"), model_dir,
                            root / "resources/data/versatility", tmp / f"probe-{name}.json")
            probes[f"drift_probe_{name}_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        probe_stage.run_task(TaskProbeStage.from_dict(stage_config(config, "task_probe", f"{a.model}/{a.task}", root),
                                                      "task_probe"), model_dir, data / "train.jsonl",
                             tmp / "task.json")
        probes["task_probe_after_s"] = round(time.perf_counter() - t0, 2)
        for name, cfg, task_probe in (("before", old, None), ("after", new, tmp / "task.json")):
            write_json(tmp / f"run-{name}.json", cfg)
            t0 = time.perf_counter()
            m = evaluate_run(tmp / f"run-{name}.json", model_dir, checkpoint, data / "test.jsonl",
                             tmp / f"metrics-{name}.json", tmp / f"pred-{name}.jsonl", w / "results/nltk_data",
                             probe=tmp / f"probe-{name}.json", task_probe=task_probe)
            timings[name] = round(time.perf_counter() - t0, 2)
            suites[name] = m["meta"]["suite_seconds"] | {"speciality_generation": m["meta"]["generation"]["wall_s"]}
    out = {"what": "evaluate_run on one checkpoint: the old instrument (before) and the new one (after), same process, "
                   "same inputs; probes generated first and timed apart",
           "checkpoint": str(checkpoint.relative_to(w)), "model": a.model, "task": a.task,
           "evaluate_s_before": timings["before"], "evaluate_s_after": timings["after"],
           "ratio_after_over_before": round(timings["after"] / timings["before"], 3),
           "seconds_by_part": suites, "probes_s": probes,
           "suites_before": old["versatility"]["suites"], "suites_after": new["versatility"]["suites"],
           "max_gen_toks": {"before": old["versatility"]["max_gen_toks"], "after": new["versatility"]["max_gen_toks"]},
           "device": collect()["device"], "torch_threads": __import__("torch").get_num_threads()}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
