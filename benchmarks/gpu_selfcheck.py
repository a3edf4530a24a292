"""GPU self-check, sized for a short lease (<= 8 minutes on one GPU): the project's CUDA paths, run against the
machine's own torch/transformers, each stage a benchmark script of this folder, merged into one JSON.

Stages, in order (each a subprocess with its own time limit, cut to what is left of --budget-s):
  data        prepare-data: SQuAD splits from the committed raw files
  train       gpu_train_mfu.py: bf16 Full SFT vs a CoFiTune trial, tokens/s and MFU
  importance  importance_cost.py: the importance pass next to a Full SFT epoch
  evaluate    evaluation_device.py: speciality generation + one lm-eval suite
  throughput  generation_throughput.py: HF vs vLLM generation (skipped, with the reason, without vLLM)

A stage that fails is recorded with its exit code and the tail of its output, the next stages still run, and
the script exits 1. Without CUDA it refuses to start unless --device cpu (the CPU-side check of the script).

    python benchmarks/gpu_selfcheck.py --model-dir results/models/smollm2-135m/base --out gpu_selfcheck.json
    python benchmarks/gpu_selfcheck.py --random-from .gpucheck/model --out $OUT/gpu_selfcheck.json   # no weights
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # cofitune and evaluators, from this checkout (no install needed)
from cofitune.pipeline.launch import offline_env  # noqa: E402  (stdlib only: safe before the GPU checks)

STAGES = ("data", "train", "importance", "evaluate", "throughput")
#: a stage's own time limit in seconds (the budget left cuts it further)
STAGE_LIMIT_S = {"data": 60, "train": 180, "importance": 90, "evaluate": 150, "throughput": 150}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir", type=Path, help="a prepared model folder (prepare-model's output)")
    src.add_argument("--random-from", type=Path,
                     help="a folder with config.json + tokenizer only: the model is built there with random weights "
                          "(speed and memory are those of the real shape; scores are meaningless)")
    p.add_argument("--out", type=Path, required=True, help="the one JSON this writes")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: run what runs without a GPU (the script's own check); train then fails: it needs CUDA")
    p.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget for all stages")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per method")
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-test", type=int, default=64)
    p.add_argument("--suite", default="arc_easy", help="the lm-eval suite of the evaluate stage")
    p.add_argument("--limit", type=int, default=100, help="items of that suite")
    p.add_argument("--skip", action="append", choices=STAGES, default=[], help="leave a stage out (repeatable)")
    a = p.parse_args(argv)
    if a.budget_s <= 0 or a.steps < 1 or a.micro_batch < 1:
        p.error("--budget-s, --steps and --micro-batch must be positive")
    return a


def stage_commands(a: argparse.Namespace, model_dir: Path, work: Path) -> dict[str, list[str]]:
    """stage -> the command it runs (each writes :func:`stage_output`)."""
    py, data = sys.executable, work / "data"
    return {
        "data": [py, "-m", "cofitune", "prepare-data", "--sheet", str(ROOT / "config/tasks.yaml"),
                 "--task", "squad", "--n-train", str(a.n_train), "--n-test", str(a.n_test), "--seed", "1234",
                 "--out", str(data)],
        "train": [py, str(HERE / "gpu_train_mfu.py"), "--model-dir", str(model_dir), "--data", str(data / "train.jsonl"),
                  "--steps", str(a.steps), "--micro-batch", str(a.micro_batch), "--out", str(work / "train.json")],
        "importance": [py, str(HERE / "importance_cost.py"), "--model-dir", str(model_dir), "--data",
                       str(data / "train.jsonl"), "--device", a.device, "--out", str(work / "importance.json")],
        "evaluate": [py, str(HERE / "evaluation_device.py"), "--model-dir", str(model_dir), "--test",
                     str(data / "test.jsonl"), "--n", str(a.n_test), "--suite", a.suite, "--limit", str(a.limit),
                     "--nltk-dir", str(work / "nltk_data"), "--device", a.device, "--out", str(work / "evaluate.json")],
        "throughput": [py, str(HERE / "generation_throughput.py"), "--model-dir", str(model_dir), "--test",
                       str(data / "test.jsonl"), "--n", str(a.n_test), "--out", str(work / "throughput.json")],
    }


def stage_output(stage: str, work: Path) -> Path:
    """The JSON a stage writes: prepare-data's meta.json, else ``work/<stage>.json``."""
    return work / "data" / "meta.json" if stage == "data" else work / f"{stage}.json"


def skip_reason(stage: str, a: argparse.Namespace) -> str | None:
    if stage in a.skip:
        return "left out with --skip"
    if stage == "throughput":
        from cofitune.pipeline.vllm_backend import vllm_unavailable_reason

        return vllm_unavailable_reason()
    return None


def run_stage(cmd: list[str], out: Path, limit_s: float) -> dict:
    """Run one stage: ``ok`` with its JSON, or ``failed`` with the exit code and the tail of its output."""
    t0 = time.monotonic()
    try:
        env = offline_env(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as e:
        tail = (e.stdout or b"")[-2000:]
        return {"status": "failed", "seconds": time.monotonic() - t0, "command": cmd,
                "reason": f"timed out after {limit_s:.0f} s", "output_tail": tail.decode() if isinstance(tail, bytes) else tail}
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        return {"status": "failed", "seconds": seconds, "command": cmd, "reason": f"exit code {proc.returncode}",
                "output_tail": (proc.stdout + proc.stderr)[-2000:]}
    if not out.is_file():
        return {"status": "failed", "seconds": seconds, "command": cmd, "reason": f"exit 0 but no {out.name} written"}
    return {"status": "ok", "seconds": seconds, "command": cmd, "result": json.loads(out.read_text())}


def random_model_folder(src: Path, out: Path) -> Path:
    """A model folder with ``src``'s config and tokenizer and random weights (seed 0), for a machine that has
    no copy of the weights: the speed and memory of the real shape."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(src)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def selfcheck(a: argparse.Namespace, work: Path) -> dict:
    model_dir = a.model_dir or random_model_folder(a.random_from, work / "model")
    commands = stage_commands(a, model_dir, work)
    deadline = time.monotonic() + a.budget_s
    stages: dict[str, dict] = {}
    for stage in STAGES:
        reason = skip_reason(stage, a)
        left = deadline - time.monotonic()
        if reason is None and left < 10:
            reason = f"the {a.budget_s:.0f} s budget is spent"
        if reason is not None:
            stages[stage] = {"status": "skipped", "reason": reason}
            continue
        stages[stage] = run_stage(commands[stage], stage_output(stage, work), min(STAGE_LIMIT_S[stage], left))
        print(f"gpu_selfcheck: {stage}: {stages[stage]['status']} in {stages[stage]['seconds']:.1f} s"
              + (f" ({stages[stage]['reason']})" if stages[stage]["status"] == "failed" else ""), flush=True)
    return {"device": a.device, "budget_s": a.budget_s,
            "model": {"dir": str(a.model_dir) if a.model_dir else None,
                      "random_from": str(a.random_from) if a.random_from else None},
            "stages": stages, "ok": all(s["status"] != "failed" for s in stages.values())}


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_selfcheck: no CUDA GPU here; nothing run, no JSON written (--device cpu checks the CPU-side parts)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-selfcheck-") as tmp:
        report = selfcheck(a, Path(tmp))
    report["wall_s"] = time.monotonic() - t0
    from cofitune.pipeline.provenance import collect

    report["meta"] = collect(gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"gpu_selfcheck: {'all stages ok' if report['ok'] else 'FAILED stages'} -> {a.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
