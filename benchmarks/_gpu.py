"""Shared bits of the GPU benchmarks: a CUDA check that says why, peak FLOPs, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

# dense bf16 tensor-core peaks (TFLOP/s) for MFU; pass --peak-tflops for other cards
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def require_cuda(script: str) -> torch.device:
    if not torch.cuda.is_available():
        sys.exit(f"{script}: needs a CUDA GPU (none here); nothing measured, no JSON written")
    return torch.device("cuda")


def peak_tflops(override: float | None) -> float | None:
    if override:
        return override
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def write(out: str, result: dict) -> None:
    from cofitune.pipeline.provenance import collect

    result["meta"] = collect(gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=2))
