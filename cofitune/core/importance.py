"""Fine level, part 1: unit importance from gate gradients of a label-free KL proxy (docs/method.md section 3).

Gates are all-ones tensors attached with forward hooks (no copied model class):

* ``head``         ``[L, n_heads]``  scales each head's attention output before ``o_proj``;
* ``intermediate`` ``[L, d_ff]``     scales ``up_proj(x)`` before the product with ``act(gate_proj(x))``;
* ``output``       ``[L, d_model]``  scales ``down_proj(...)``.

Stock Llama has no dropout, so two train-mode passes would be identical and every gradient zero; dropout
``p`` is injected for this pass only, on attention probabilities and on the MLP output.

Under torchrun (an initialised process group) each rank runs a strided shard of the batches and the
gate-gradient sums and token counts are summed over ranks, so the result does not depend on the world
size. That needs per-batch dropout streams (``seed``): one global random stream would hand each rank a
different sequence of dropout masks than a single process draws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sized

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from cofitune.core import distributed
from cofitune.core.arch import decoder_layers, head_rows, upcast

UNIT_TYPES = ("head", "intermediate", "output")


def unit_shapes(config) -> dict[str, tuple[int, int]]:
    """Expected importance shapes for a model config."""
    n = config.num_hidden_layers
    return {
        "head": (n, config.num_attention_heads),
        "intermediate": (n, config.intermediate_size),
        "output": (n, config.hidden_size),
    }


def make_gates(config, dtype=torch.float32) -> dict[str, torch.Tensor]:
    return {k: torch.ones(shape, dtype=dtype, requires_grad=True) for k, shape in unit_shapes(config).items()}


@contextlib.contextmanager
def gated(model: nn.Module, gates: dict[str, torch.Tensor], dropout: float = 0.0) -> Iterator[None]:
    """Attach gate hooks (and optional injected dropout) for the duration of the block."""
    handles, saved = [], []
    for i, layer in enumerate(decoder_layers(model)):
        attn, mlp = layer.self_attn, layer.mlp
        head_dim = attn.head_dim

        def head_gate(_mod, args, i=i, head_dim=head_dim):
            (x,) = args  # (B, T, H*Dh), concatenated head outputs
            shape = x.shape
            x = x.view(*shape[:-1], -1, head_dim) * gates["head"][i].to(x)[:, None]
            return (x.view(shape),)

        def int_gate(_mod, _args, out, i=i):
            return out * gates["intermediate"][i].to(out)  # (B, T, d_ff)

        def out_gate(_mod, _args, out, i=i):
            return out * gates["output"][i].to(out)  # (B, T, d_model)

        handles += [
            attn.o_proj.register_forward_pre_hook(head_gate),
            mlp.up_proj.register_forward_hook(int_gate),
            mlp.down_proj.register_forward_hook(out_gate),
        ]
        if dropout > 0:
            if not hasattr(attn, "attention_dropout"):  # assigning would silently do nothing
                raise TypeError(f"{type(attn).__name__} has no attention_dropout; cannot inject dropout")
            saved.append((attn, attn.attention_dropout))
            attn.attention_dropout = dropout
            handles.append(mlp.register_forward_hook(
                lambda _m, _a, out: F.dropout(out, p=dropout, training=True)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for attn, p in saved:
            attn.attention_dropout = p


@contextlib.contextmanager
def _batch_rng(seed: int | None, index: int, device: torch.device) -> Iterator[None]:
    """Seed the global RNG with ``seed + index`` for one batch and restore it after (no-op for None)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed + index)
        yield


def proxy_loss(model: nn.Module, batch: dict[str, torch.Tensor], kl_weight: float = 0.1) -> torch.Tensor:
    """``kl_weight * KL(p2 || p1)`` between two dropout passes of the same batch, summed over non-pad
    positions and vocab, divided by the batch size (``batchmean``). Both passes carry gradient. The LM head
    runs on the non-pad positions only (:func:`cofitune.core.arch.head_rows`)."""
    mask = batch["attention_mask"].bool()  # (B, T)
    with head_rows(model, mask):
        logits1 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (N_tok, V)
        logits2 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp1 = F.log_softmax(upcast(logits1), dim=-1)
    logp2 = F.log_softmax(upcast(logits2), dim=-1)
    kl = F.kl_div(logp1, logp2, reduction="sum", log_target=True)
    return kl_weight * kl / batch["input_ids"].shape[0]


@contextlib.contextmanager
def _gates_only(model: nn.Module) -> Iterator[None]:
    """Inside the block the model's weights are frozen and it is in train mode (dropout on); its
    ``requires_grad`` flags and mode are restored afterwards, whatever happens."""
    was_training = model.training
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    model.train()
    try:
        yield
    finally:
        model.train(was_training)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])


def compute_importance(
    model: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    dropout: float = 0.003,
    kl_weight: float = 0.1,
    abs_grad: bool = False,
    progress: bool = True,
    seed: int | None = None,
) -> dict[str, torch.Tensor]:
    """Accumulate gate gradients over ``batches`` and divide by the number of non-pad tokens.

    Weights are frozen for the pass (only gates get gradients) and restored afterwards.

    Args:
        seed: when given, batch ``i`` draws its dropout masks from ``torch.manual_seed(seed + i)`` (the
            global RNG state is restored afterwards), making the result independent of how batches are
            split over ranks. None keeps the single global stream (the single-process behaviour).
            Required under a process group of more than one rank.

    Returns:
        Raw importance ``{"head": [L, H], "intermediate": [L, d_ff], "output": [L, d_model]}``.
        Signed sums by default (as the release); ``abs_grad=True`` accumulates ``|grad|`` (DAS).
    """
    rank, world = distributed.rank(), distributed.world_size()
    if world > 1 and seed is None:
        raise ValueError("compute_importance under torchrun needs seed= (per-batch dropout streams)")
    indexed = enumerate(batches) if world == 1 else distributed.shard(list(enumerate(batches)), rank, world)
    gates = make_gates(model.config)
    total = {k: torch.zeros_like(g) for k, g in gates.items()}
    n_tokens = 0
    with _gates_only(model), gated(model, gates, dropout=dropout):
        device = next(model.parameters()).device
        n_batches = len(indexed) if isinstance(indexed, list) else (
            len(batches) if isinstance(batches, Sized) else None)
        for i, batch in tqdm(indexed, desc="importance", total=n_batches, disable=not progress or rank != 0):
            batch = {k: v.to(device) for k, v in batch.items()}
            with _batch_rng(seed, i, device):
                loss = proxy_loss(model, batch, kl_weight)
                grads = torch.autograd.grad(loss, list(gates.values()), allow_unused=True)
            for key, g in zip(gates, grads):
                if g is None:  # a hook that never fired would leave these units unprotected
                    raise RuntimeError(f"importance: the {key!r} gates received no gradient")
                total[key] += g.abs() if abs_grad else g
            n_tokens += int(batch["attention_mask"].sum())
    if world > 1:
        for v in total.values():
            distributed.all_reduce_(v)
        n_tokens = int(distributed.all_reduce_float(n_tokens))
    if n_tokens == 0:
        raise ValueError("importance pass saw no tokens")
    if dropout > 0:
        zero = [k for k, v in total.items() if torch.count_nonzero(v) == 0]
        if zero:  # all-zero importance would make every mask 1: CoFiTune silently = coarse-only
            raise RuntimeError(f"importance is all zero for {zero} despite dropout={dropout}")
    return {k: v / n_tokens for k, v in total.items()}


def normalise(raw: torch.Tensor) -> torch.Tensor:
    """Per layer (row): ``|tanh((x - mean) / std)|`` in [0, 1).

    A layer whose units are all equal (std 0) carries no ranking, so its units get importance 0
    (no protection) rather than NaN.
    """
    mean = raw.mean(dim=-1, keepdim=True)
    std = raw.std(dim=-1, keepdim=True)
    z = torch.where(std > 0, (raw - mean) / std.clamp_min(torch.finfo(raw.dtype).tiny), torch.zeros_like(raw))
    return torch.tanh(z).abs()


def max_merge(sources: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise max over several normalised importance dicts with identical shapes."""
    if not sources:
        raise ValueError("max_merge needs at least one importance source")
    merged = {}
    for key in sources[0]:
        shapes = {tuple(s[key].shape) for s in sources}
        if len(shapes) != 1:
            raise ValueError(f"importance sources disagree on the shape of {key!r}: {sorted(shapes)}")
        merged[key] = torch.stack([s[key] for s in sources]).amax(dim=0)
    return merged
