"""Typed artifacts between stages, read and written here with the one atomic writer
(:func:`cofitune.pipeline.io.atomic_path`): importance files (raw and normalised unit importance).

The next to move here: the checkpoint index, run configs, metrics and search records."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cofitune.core.importance import max_merge, normalise, unit_shapes
from cofitune.pipeline.io import atomic_path


def save_importance(path: str | Path, raw: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write raw and normalised importance to one safetensors file."""
    tensors = {f"raw.{k}": v.detach().contiguous() for k, v in raw.items()}
    tensors |= {k: normalise(v.detach()).contiguous() for k, v in raw.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})


def load_importance(paths: list[str | Path], config) -> dict[str, torch.Tensor]:
    """Load normalised importance from an explicit list of files, check shapes, and max-merge."""
    expected = unit_shapes(config)
    sources = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"importance file not found: {path}")
        tensors = load_file(str(path))
        for key, shape in expected.items():
            if key not in tensors:
                raise ValueError(f"{path}: missing importance tensor {key!r}")
            if tuple(tensors[key].shape) != shape:
                raise ValueError(
                    f"{path}: importance {key!r} has shape {tuple(tensors[key].shape)}, "
                    f"model expects {shape}"
                )
        sources.append({k: tensors[k] for k in expected})
    return max_merge(sources)
