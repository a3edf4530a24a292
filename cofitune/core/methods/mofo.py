"""MoFO (Chen et al., "MoFO: Momentum-Filtered Optimizer for Mitigating Forgetting in LLM Fine-Tuning", TMLR
2025): Adam's moments are updated for every entry, but each step moves, in each parameter matrix, only the
``fraction`` of entries with the largest momentum magnitude; the others keep their values.

Follows the authors' ``AdamW_MoFO`` (their open-instruct code) in the moments, the filter by ``|m_t|`` per
parameter tensor and the unfiltered vectors (norms, biases). Deviations: the filtered update is this project's
AdamW step (same betas, eps, bias correction, decoupled weight decay, warm-up + cosine schedule) restricted to
the chosen entries, so the decay too moves only those (the authors decay every entry); exactly
``ceil(fraction * n)`` entries are chosen (``topk``; the authors threshold at the k-th value, so ties can move
more); ``fraction = 1`` is AdamW bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT


def momentum_filter_step(opt, fraction: float) -> None:
    """One AdamW step of ``opt`` that keeps, in every matrix, all but the ``ceil(fraction * n)`` entries of
    largest ``|exp_avg|`` (the momentum after this step's update) at their previous values."""
    import torch

    matrices = [p for group in opt.param_groups for p in group["params"] if p.grad is not None and p.dim() >= 2]
    before = [p.detach().clone() for p in matrices]
    opt.step()
    with torch.no_grad():
        for p, old in zip(matrices, before):
            m = opt.state[p]["exp_avg"].abs().reshape(-1)
            chosen = torch.topk(m, math.ceil(fraction * m.numel()), sorted=False).indices
            flat = p.view(-1)
            moved = flat[chosen]  # gather the chosen entries' new values, restore all, scatter them back:
            flat.copy_(old.view(-1))  # 7x faster than a boolean-mask assignment over the other 85% on CPU
            flat[chosen] = moved


@register("mofo")
@dataclass(frozen=True)
class MoFO(FullSFT):
    """Args: fraction (entries of each parameter matrix updated per step; the authors recommend 0.05-0.2;
    1 is AdamW). Trains every parameter, as Full SFT, through the filtered step."""

    fraction: float = 0.15

    def __post_init__(self):
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")

    def optimizer_step(self, opt):
        momentum_filter_step(opt, self.fraction)
