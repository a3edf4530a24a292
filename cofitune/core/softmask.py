"""Fine level, part 2: soft-masking trainable weights by ``(1 - I)`` along output rows.

``up_proj.weight[j, :]`` uses ``1 - I_intermediate[l, j]``, ``down_proj.weight[i, :]`` uses
``1 - I_output[l, i]``, q/k/v rows of head ``h`` use ``1 - I_head[l, h]``. For grouped-query k/v the rows
of a key/value head take the max importance of the query heads that share it (protect if any needs it).

Targets (docs/method.md section 3):

* ``grad``   scale the gradient after backward, before clipping and the optimiser step (the paper's);
* ``update`` scale the optimiser's update: ``theta <- theta_before + (1 - I) * (theta_after - theta_before)``.
  Adam normalises a constant per-element gradient scale away, so only this target protects units
  under AdamW.

``layout="tiled"`` emulates the authors' release, which multiplied the *flattened* gradient by the 1-D
mask tiled end to end (element ``k`` gets ``mask[k mod len(mask)]``) at world size 1.

Multi-rank training (:mod:`cofitune.core.distributed`): under DDP parameters are replicated and gradients
already summed over ranks when masking runs, so the full mask applies. Under FSDP2 a parameter (and its
gradient) is a DTensor sharded on dim 0: each rank holds a block of output rows and gets the matching
block of the mask (:func:`local_view`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from cofitune.core.arch import decoder_layers
from cofitune.core.distributed import row_block
from cofitune.core.selection import LAYER_PARAM, LAYOUTS, MASKABLE, TARGETS


def row_scale(model: nn.Module, name: str, importance: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-output-row multiplier ``1 - I`` for one q/k/v/up/down parameter (shape ``[rows]``)."""
    m = LAYER_PARAM.search(name)
    if m is None or m.group(2) not in MASKABLE:
        raise ValueError(f"{name!r} is not a maskable projection; maskable: {MASKABLE}")
    layer, proj = int(m.group(1)), m.group(2)
    if proj == "up_proj":
        imp = importance["intermediate"][layer]
    elif proj == "down_proj":
        imp = importance["output"][layer]
    else:
        attn = decoder_layers(model)[layer].self_attn
        heads = importance["head"][layer]  # (H,)
        if proj in ("k_proj", "v_proj"):
            n_kv = model.config.num_key_value_heads
            heads = heads.view(n_kv, -1).amax(dim=1)  # (H_kv,) query heads grouped by kv head
        imp = heads.repeat_interleave(attn.head_dim)
    return 1.0 - imp.float()


def tiled(row_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The release's flat tiling: element ``k`` of the flattened weight gets ``row_mask[k mod len]``."""
    numel = int(torch.tensor(shape).prod()) if len(shape) else 1
    idx = torch.arange(numel) % row_mask.numel()
    return row_mask[idx].view(shape)


def local_view(t: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tensor this rank updates in place and the matching rows of ``scale`` (on its device).

    A plain tensor is itself with the whole ``scale``; an FSDP2 DTensor sharded on dim 0 gives its local
    shard and ``scale[start:end]``, the rows that shard holds.
    """
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(t, DTensor):
        return t, scale.to(t.device)
    if t.device_mesh.ndim != 1 or tuple(t.placements) != (Shard(0),):
        raise ValueError(f"soft-mask needs parameters sharded on dim 0 of a 1-D mesh (FSDP2); "
                         f"got placements {t.placements} on a {t.device_mesh.ndim}-D mesh")
    local = t.to_local()
    rows = row_block(t.shape[0], t.device_mesh.get_local_rank(), t.device_mesh.size())
    if local.shape[0] != rows.stop - rows.start:
        raise RuntimeError(f"local shard has {local.shape[0]} rows, expected rows {rows.start}:{rows.stop}")
    return local, scale[rows].to(local.device)


@dataclass
class SoftMask:
    """Per-parameter multipliers, applied either to gradients or to optimiser updates."""

    scales: dict[str, torch.Tensor]  # name -> tensor broadcastable to the parameter
    target: str = "grad"

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"softmask target must be one of {TARGETS}, got {self.target!r}")

    @classmethod
    def build(cls, model: nn.Module, names: set[str], importance: dict[str, torch.Tensor], *,
              units: tuple[str, ...], target: str = "grad", layout: str = "rows") -> "SoftMask":
        """Masks for the trainable ``names`` whose projection is in ``units`` (e.g. up/down only)."""
        bad = [u for u in units if u not in MASKABLE]
        if bad:
            raise ValueError(f"unknown softmask unit(s) {bad}; expected a subset of {MASKABLE}")
        if layout not in LAYOUTS:
            raise ValueError(f"softmask layout must be one of {LAYOUTS}, got {layout!r}")
        params = dict(model.named_parameters())
        scales = {}
        for name in sorted(names):
            m = LAYER_PARAM.search(name)
            if m is None or m.group(2) not in units:
                continue
            rows = row_scale(model, name, importance)
            p = params[name]
            if layout == "tiled":
                scales[name] = tiled(rows, p.shape).to(p.dtype)
            else:
                scales[name] = rows.to(p.dtype).view(-1, *([1] * (p.dim() - 1)))
        matched = {LAYER_PARAM.search(n).group(2) for n in scales}
        missing = [u for u in units if u not in matched]
        if missing:  # e.g. mask_units q_proj with modules=ffn: say so instead of ignoring it
            raise ValueError(f"softmask unit(s) {missing} match no trainable parameter")
        return cls(scales, target)

    def mask_grads(self, model: nn.Module) -> None:
        """``grad`` target: call after backward, before clipping."""
        if self.target != "grad":
            return
        params = dict(model.named_parameters())
        for name, scale in self.scales.items():
            g = params[name].grad
            if g is not None:
                local, s = local_view(g, scale)
                local.mul_(s)

    def snapshot(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """``update`` target: copy the masked parameters before ``optimizer.step()``."""
        if self.target != "update":
            return None
        params = dict(model.named_parameters())
        return {name: local_view(params[name].detach(), scale)[0].clone() for name, scale in self.scales.items()}

    @torch.no_grad()
    def mask_update(self, model: nn.Module, before: dict[str, torch.Tensor] | None) -> None:
        """``update`` target: call after ``optimizer.step()`` with the snapshot taken before it."""
        if before is None:
            return
        params = dict(model.named_parameters())
        for name, scale in self.scales.items():
            p, s = local_view(params[name], scale)
            p.copy_(before[name] + s * (p - before[name]))
