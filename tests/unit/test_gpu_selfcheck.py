"""The GPU self-check's CPU-side parts: its arguments, the commands of its stages, and the one JSON it
writes, from a real run of the stages that run without a GPU (train needs CUDA and must fail, named)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks/gpu_selfcheck.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_selfcheck  # noqa: E402


def test_a_model_source_and_an_out_file_are_required(capsys):
    with pytest.raises(SystemExit):
        gpu_selfcheck.parse_args(["--out", "x.json"])
    assert "one of the arguments --model-dir --random-from is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_selfcheck.parse_args(["--model-dir", "m", "--random-from", "r", "--out", "x.json"])
    with pytest.raises(SystemExit):
        gpu_selfcheck.parse_args(["--model-dir", "m", "--out", "x.json", "--budget-s", "0"])


def test_every_stage_has_one_command_writing_its_own_json(tmp_path):
    a = gpu_selfcheck.parse_args(["--model-dir", "m", "--out", "x.json", "--device", "cpu", "--steps", "3"])
    cmds = gpu_selfcheck.stage_commands(a, Path("m"), tmp_path)
    assert tuple(cmds) == gpu_selfcheck.STAGES == ("data", "train", "importance", "evaluate", "throughput")
    assert gpu_selfcheck.stage_output("data", tmp_path) == tmp_path / "data/meta.json"  # prepare-data's own
    assert cmds["data"][cmds["data"].index("--out") + 1] == str(tmp_path / "data")
    for stage in gpu_selfcheck.STAGES[1:]:
        out = cmds[stage][cmds[stage].index("--out") + 1]
        assert out == str(tmp_path / f"{stage}.json") == str(gpu_selfcheck.stage_output(stage, tmp_path)), stage
        assert cmds[stage][1] == str(ROOT / "benchmarks" / Path(cmds[stage][1]).name) and Path(cmds[stage][1]).is_file()
    assert cmds["train"][cmds["train"].index("--steps") + 1] == "3"
    assert cmds["importance"][-3:-2] == ["cpu"] and cmds["evaluate"][-3:-2] == ["cpu"]


def test_without_cuda_it_refuses_and_writes_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model-dir", "m", "--out", str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "no CUDA GPU here" in proc.stderr and not out.exists()


def test_a_cpu_run_writes_one_json_with_every_stage(tmp_path, word_tokenizer):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the train stage would pass, not fail")
    from tests.conftest import tiny_llama

    src = tmp_path / "shape"
    tiny_llama(vocab=len(word_tokenizer)).config.save_pretrained(src)  # the shape only, as the lease carries it
    word_tokenizer.save_pretrained(src)
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--random-from", str(src), "--out", str(out), "--device",
                           "cpu", "--n-train", "16", "--n-test", "4", "--limit", "4", "--steps", "1",
                           "--micro-batch", "2"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # train failed: it needs CUDA
    report = json.loads(out.read_text())
    stages = report["stages"]
    assert list(stages) == list(gpu_selfcheck.STAGES) and report["ok"] is False and report["device"] == "cpu"
    assert stages["train"]["status"] == "failed" and "needs a CUDA GPU" in stages["train"]["output_tail"]
    for stage in ("data", "importance", "evaluate"):
        assert stages[stage]["status"] == "ok", (stage, stages[stage])
    assert stages["importance"]["result"]["device"] == "cpu" and stages["importance"]["result"]["tokens"] > 0
    ev = stages["evaluate"]["result"]
    assert ev["speciality"]["n"] == 4 and ev["versatility"]["n"] == 4 and ev["versatility"]["suite"] == "arc_easy"
    assert stages["throughput"]["status"] == "skipped" and "vLLM" in stages["throughput"]["reason"]
    assert report["meta"] and report["model"]["random_from"] == str(src)
