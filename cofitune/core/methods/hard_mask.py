"""Hard mask: the hard twin of CoFiTune's soft mask, in the spirit of SSU (ACL 2026) and LoKI (AAAI 2026):
inside the coarse region, the rows of each masked projection whose unit importance is in the top ``p``
fraction are frozen (weight rows and bias entries bit-identical after training; their gradients are zeroed
before clipping, so the clip norm sees only what trains, as under ``requires_grad=False``) and every other
row trains unmasked.

Deviations from those papers: the importance is this project's (gate gradients of the KL proxy, the same file
CoFiTune reads), ranked per projection matrix, with the exact count ``ceil(p * rows)`` frozen (rows of one
attention head share its importance; ``topk`` breaks the tie); SSU and LoKI score parameters with their own
importance measures and choose across layers. ``p = 0`` trains the region as coarse_only does, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.coarse_only import CoarseOnly
from cofitune.core.methods.cofitune import check_mask_units, mask_words, masked_units


class RowFreeze:
    """Frozen rows per parameter (name -> bool row mask), restored after every optimiser step; the soft
    mask's ``mask_grads`` / ``snapshot`` / ``mask_update`` interface, so the trainer treats it alike."""

    def __init__(self, frozen: dict):
        self.frozen = frozen

    @staticmethod
    def _params(model) -> dict:
        params = dict(model.named_parameters())
        if any(hasattr(p, "to_local") for p in params.values()):  # FSDP2 DTensors: the rows are sharded
            raise ValueError("hard_mask freezes whole rows and cannot train under train.distributed = 'fsdp2'; "
                             "use train.distributed: ddp")
        return params

    def mask_grads(self, model) -> None:
        params = self._params(model)
        for name, rows in self.frozen.items():
            if params[name].grad is not None:
                params[name].grad[rows] = 0.0

    def snapshot(self, model) -> dict:
        params = self._params(model)
        return {n: params[n].detach()[rows].clone() for n, rows in self.frozen.items()}

    def mask_update(self, model, before: dict) -> None:
        import torch

        params = self._params(model)
        with torch.no_grad():
            for name, rows in self.frozen.items():
                params[name][rows] = before[name]


def top_rows(importance_rows, p: float):
    """Bool mask of the ``ceil(p * rows)`` rows of highest importance."""
    import torch

    k = math.ceil(p * importance_rows.numel())
    mask = torch.zeros(importance_rows.numel(), dtype=torch.bool)
    mask[torch.topk(importance_rows, k, sorted=False).indices] = True
    return mask


@register("hard_mask")
@dataclass(frozen=True)
class HardMask(CoarseOnly):
    """Args: layers, modules (the coarse region, or from_search); p (fraction of each masked projection's rows
    frozen, by importance; 0 = coarse_only); mask_units (as CoFiTune: default the region's FFN projections)."""

    p: float = 0.1
    mask_units: tuple[str, ...] | None = None
    needs_importance = True

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {self.p}")
        check_mask_units(self.mask_units, "hard_mask")

    @property
    def units(self) -> tuple[str, ...]:
        return masked_units(self.modules, self.mask_units)

    def setting(self) -> str:
        """``ffn@bottom2, hard mask p=0.25`` (``on <units>`` when they are not the region's own)."""
        return super().setting() + f", hard mask p={self.p:g}" + mask_words(self.modules, self.mask_units)

    def softmask(self, model, names, importance):
        from cofitune.core.selection import LAYER_PARAM
        from cofitune.core.softmask import row_scale

        if self.p == 0.0:
            return None
        frozen = {}
        for name in sorted(names):
            m = LAYER_PARAM.search(name)
            if m is not None and m.group(2) in self.units:  # a projection's weight rows and bias entries alike
                frozen[name] = top_rows(1.0 - row_scale(model, name, importance), self.p)
        if not frozen:
            raise ValueError(f"hard_mask: mask_units {list(self.units)} match no trainable parameter")
        return RowFreeze(frozen)
