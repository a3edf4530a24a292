"""Hand-made ``metrics.json`` and run-config files for the reporting tests (no pipeline run needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["arc", "piqa"]}
#: the versatility items every hand-made row scores unless told otherwise (identical rows: dVers is exactly 0)
SUITES = {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]}


def run_config(method: str, variant: str, seed: int = 1, **train) -> dict:
    """A resolved run config with the fields a reader checks, and a ``train`` section."""
    return {"model": "m", "task": "t", "method": method, "variant": variant, "row": variant, "kind": "trained",
            "params": {"layers": "bottom2"}, "seed": seed, "train": {"lr": 0.02, "epochs": 2, **train}}


def write_metrics(folder: Path, method: str, spec_items: list[float], *, seed: int = 1, row: str = "v",
                  suites: dict | None = None, run_cfg: dict | None = None) -> Path:
    """``<folder>/<method>/<row>/seed<seed>/metrics.json`` with Spec = mean(spec_items) and the given suites'
    0/1 items; ``meta.run_config`` is ``run_cfg`` (default: :func:`run_config` of this row)."""
    suites = {name: {"score": 100 * float(np.mean(v)), "items": list(v)} for name, v in (suites or SUITES).items()}
    aspects = {a: float(np.mean([suites[t]["score"] for t in ts])) for a, ts in ASPECTS.items()}
    variant = row if seed == 1 else f"{row}-seed{seed}"
    m = {"run": {"model": "m", "task": "t", "method": method, "variant": variant, "row": row, "seed": seed,
                 "params": {"layers": "bottom2"}},
         "metrics": {"spec": float(np.mean(spec_items)), "spec_items": list(spec_items), "suites": suites,
                     "aspects": aspects, "aspects_tasks": ASPECTS, "vers": float(np.mean(list(aspects.values()))),
                     "trainable_fraction": 0.0 if method == "original" else 0.5},
         "meta": {"git": {"sha": "abc", "dirty": False},
                  "run_config": run_cfg if run_cfg is not None else run_config(method, variant, seed)}}
    path = folder / method / row / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m))
    return path


def write_json(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path
