"""Provenance attached to every number: versions, git state, hashes, device, resources."""

from __future__ import annotations

import importlib.metadata
import platform
import resource
import subprocess
from pathlib import Path

from cofitune import repo
from cofitune.pipeline.fingerprint import fingerprint

PACKAGES = ("cofitune", "torch", "transformers", "lm_eval", "datasets", "pandas", "snakemake", "peft",
            "accelerate", "gguf", "nltk")
REPO = repo.ROOT


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(repo: Path = REPO) -> dict[str, str | bool | None]:
    """Commit sha and whether the tracked tree differs from it (None outside a git checkout)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)

    sha = git("rev-parse", "HEAD")
    if sha.returncode != 0:
        return {"sha": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def code_sha256(root: Path = REPO) -> str:
    """One hash over the method and evaluator sources byte for byte, so an uncommitted edit is visible in every
    result. A witness only: what gates stored numbers is the numerics fingerprint (:mod:`.fingerprint`)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted([*root.glob("cofitune/**/*.py"), *root.glob("evaluators/**/*.py"),
                        *root.glob("evaluators/**/*.yaml")]):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_info() -> dict:
    """The machine a result came from; ``cpu`` names its bf16 hardware (AVX512-BF16, AMX), which sets the
    speed of a CPU run: timings from machines that differ there are not comparable."""
    import torch

    from cofitune.core.trainer import native_bf16

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "cpu": native_bf16(torch.device("cpu"))[1],
            "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def collect(**extra) -> dict:
    """The ``meta`` block of a results file."""
    return {"versions": package_versions(), "git": git_state(), "code_sha256": code_sha256(),
            "fingerprint": fingerprint(REPO), "device": device_info(),
            "peak_rss_mb": round(peak_rss_mb(), 1), **extra}
