"""How a stage is launched: one process, or torchrun with one worker per GPU (SLURM `gpu` resource)."""

from __future__ import annotations


def launch_command(n_gpu: int) -> str:
    """The command prefix for ``cofitune <stage>``: torchrun when a job holds more than one GPU.

    One SLURM task starts torchrun, which starts ``n_gpu`` workers on the node (never one task per GPU).
    """
    if not isinstance(n_gpu, int) or n_gpu < 0:
        raise ValueError(f"resource gpu must be a non-negative integer, got {n_gpu!r}")
    if n_gpu <= 1:
        return "python -m cofitune"
    return f"torchrun --standalone --nproc_per_node={n_gpu} -m cofitune"
