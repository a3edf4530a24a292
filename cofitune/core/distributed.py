"""Multi-process training and importance under ``torchrun`` (docs/method.md section 4, GPU scale).

``python -m cofitune train|importance ...`` runs as one process as before; launched by
``torchrun --nproc_per_node=N -m cofitune ...`` it joins a process group (NCCL on CUDA, gloo on CPU) and
splits every micro-batch (training) or the list of batches (importance) across ranks. Rank 0 alone
writes files.

Two training strategies (``train.distributed``):

* ``ddp``: parameters replicated; gradients summed by an all-reduce inside backward.
* ``fsdp2``: ``torch.distributed.fsdp.fully_shard`` per decoder layer and on the root. Each parameter
  becomes a DTensor sharded on dim 0, i.e. every rank holds a contiguous block of *output rows*.

Why FSDP2 and not DeepSpeed ZeRO-3: it is native torch (no extra dependency, launcher or JSON config,
works with plain ``torchrun``), and its per-parameter DTensor sharding on dim 0 means a rank's shard is
a block of whole rows, so the row soft-mask is applied by slicing the mask, exactly. ZeRO-3 shards a
flattened concatenation of parameters; masking that flat partition per unit needs index bookkeeping,
and doing it naively is the release's defect 1 (docs/method.md section 6, ``mask_layout: tiled``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

from cofitune.core.arch import decoder_layers
from cofitune.core.recipe import STRATEGIES

log = logging.getLogger(__name__)

ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
T = TypeVar("T")


def launch_env() -> tuple[int, int, int] | None:
    """``(rank, local_rank, world)`` from torchrun's environment, or None when not launched by it."""
    present = [k for k in ENV if k in os.environ]
    if not present:
        return None
    if len(present) != len(ENV):
        missing = sorted(set(ENV) - set(present))
        raise RuntimeError(f"partial torchrun environment: {present} set but {missing} missing")
    return int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])


def init() -> bool:
    """Join the default process group when torchrun launched more than one process.

    Backend: ``nccl`` when CUDA is available (device ``cuda:LOCAL_RANK``), else ``gloo``. A failed
    initialisation with ``WORLD_SIZE > 1`` raises: a silent single-process fallback would train N
    independent copies.

    Returns:
        True when a process group is (now) initialised, False for a single-process run.
    """
    if dist.is_initialized():
        return True
    env = launch_env()
    if env is None or env[2] == 1:
        return False
    rank, local_rank, world = env
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend)
    except Exception as err:  # noqa: BLE001 - re-raised with the launch context
        raise RuntimeError(f"torchrun launched WORLD_SIZE={world} but init_process_group(backend={backend!r}) "
                           f"failed on rank {rank}: {err}") from err
    log.info("process group: backend %s, rank %d/%d, local rank %d", backend, rank, world, local_rank)
    return True


def destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session() -> Iterator[bool]:
    """``init()`` on entry, destroy the process group on exit (CLI stages)."""
    active = init()
    try:
        yield active
    finally:
        destroy()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def device() -> torch.device:
    """The device this rank computes on: ``cuda:LOCAL_RANK`` under NCCL, CPU under gloo; a single
    process uses the GPU when there is one."""
    if dist.is_initialized():
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def all_reduce_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place (no-op at world size 1); CPU tensors travel via the GPU under NCCL."""
    if world_size() == 1:
        return t
    dev = device()
    buf = t if t.device == dev else t.to(dev)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    if buf is not t:
        t.copy_(buf)
    return t


def all_reduce_float(x: float) -> float:
    """Sum a Python number over ranks (float64)."""
    return float(all_reduce_(torch.tensor([x], dtype=torch.float64))[0]) if world_size() > 1 else x


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Strided shard ``items[rank::world]``: disjoint, covering, sizes differ by at most one."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard: need 0 <= rank < world, got rank={rank}, world={world}")
    return list(items[rank::world])


def row_block(n_rows: int, rank: int, world: int) -> slice:
    """Rows held by ``rank`` of a dim-0 DTensor shard (``torch.chunk`` semantics: ceil-sized blocks,
    trailing ranks may hold fewer or none)."""
    size = math.ceil(n_rows / world)
    start = min(rank * size, n_rows)
    return slice(start, min(start + size, n_rows))


def _sum_allreduce_hook(_state, bucket):  # no annotation: DDP rejects the string one of __future__
    """DDP comm hook returning ``Future[Tensor]``: SUM (DDP's default averages over ranks; our loss is
    already normalised by the global label count)."""
    fut = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def _decoder_layers(model: nn.Module) -> list[nn.Module]:

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wrapper
    return list(decoder_layers(base))


def wrap(model: nn.Module, strategy: str) -> nn.Module:
    """Prepare a frozen-as-intended model for multi-rank training; returns the module to call forward on.

    ``ddp``: a ``DistributedDataParallel`` wrapper (``model`` keeps its parameter names); gradients are
    summed, not averaged. ``fsdp2``: ``model`` itself, sharded in place (parameters become DTensors;
    build the optimiser afterwards); gradients are reduce-scattered as sums.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"train.distributed must be one of {STRATEGIES}, got {strategy!r}")
    dev = device()
    model.to(dev)
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        ddp.register_comm_hook(None, _sum_allreduce_hook)
        return ddp
    from torch.distributed.fsdp import fully_shard

    layers = _decoder_layers(model)
    for layer in layers:
        fully_shard(layer)
    fully_shard(model)
    for unit in (*layers, model):  # both setters act on one unit's parameter group, not recursively
        unit.set_gradient_divide_factor(1.0)  # sum over ranks, not mean
        unit.set_force_sum_reduction_for_comms(True)  # plain SUM collectives (gloo has no PREMUL_SUM)
    return model


def sync_context(module: nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """Gradient-accumulation context: DDP all-reduces only on the last micro-batch of a step.

    FSDP2 reduce-scatters every micro-batch instead (its no-sync mode would keep full unsharded
    gradients on every rank, which is what sharding is meant to avoid)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return module.no_sync() if isinstance(module, DDP) and not last else contextlib.nullcontext()


def full_tensors(model: nn.Module, names: set[str]) -> dict[str, torch.Tensor]:
    """Full CPU copies of ``names``; sharded DTensors are all-gathered (every rank must call this)."""
    from torch.distributed.tensor import DTensor

    out = {}
    for name, p in model.named_parameters():
        if name in names:
            t = p.detach()
            out[name] = (t.full_tensor() if isinstance(t, DTensor) else t).cpu().clone()
    return out


def gather_to_main(model: nn.Module, names: set[str], fresh: Callable[[], nn.Module]) -> nn.Module | None:
    """After FSDP2 training: all-gather ``names`` (every rank must call this); rank 0 copies them into
    ``fresh()`` (an unsharded model of the same structure, e.g. the base reloaded on CPU), so saving and
    merging see plain tensors. Other ranks get None."""
    trained = full_tensors(model, names)
    if not is_main():
        return None
    plain = fresh()
    params = dict(plain.named_parameters())
    with torch.no_grad():
        for name, t in trained.items():
            params[name].copy_(t)
    return plain
