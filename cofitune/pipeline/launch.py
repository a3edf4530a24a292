"""How a stage is launched: one process, or torchrun with one worker per GPU (SLURM `gpu` resource), always
offline."""

from __future__ import annotations

import os
from collections.abc import Mapping

#: the environment every stage runs in: no network. Compute nodes usually have none; hub models come from the
#: HF cache, filled beforehand by ``python -m cofitune fetch-models`` on a node that has it.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def offline_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A subprocess environment: ``base`` (default: this process's) with :data:`OFFLINE` set, plus ``extra``."""
    return {**(os.environ if base is None else base), **OFFLINE, **extra}


def go_offline() -> None:
    """Set :data:`OFFLINE` in this process, unless the caller's environment already decided."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)


def launch_command(n_gpu: int) -> str:
    """The command prefix for ``cofitune <stage>``: torchrun when a job holds more than one GPU.

    One SLURM task starts torchrun, which starts ``n_gpu`` workers on the node (never one task per GPU).
    """
    if not isinstance(n_gpu, int) or n_gpu < 0:
        raise ValueError(f"resource gpu must be a non-negative integer, got {n_gpu!r}")
    if n_gpu <= 1:
        return "python -m cofitune"
    return f"torchrun --standalone --nproc_per_node={n_gpu} -m cofitune"
