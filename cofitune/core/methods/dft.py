"""DFT, Dynamic Fine-Tuning (Wu et al., "On the Generalization of SFT: A Reinforcement Learning Perspective with
Reward Rectification", 2025): each label token's cross-entropy is scaled by the token's probability under the
model, with the gradient stopped through the scale: ``loss = sum_t sg(p_t) * (-log p_t) / n``.

Follows the paper's token-level form (their Eq. for L_DFT); ``n`` is this project's global label count of the
step, as for every loss here. Trains every parameter, as Full SFT.
"""

from __future__ import annotations

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT


def dft_loss(fwd, model, batch, n_target: int, *, bf16: bool = False):
    import torch.nn as nn

    from cofitune.core.trainer import label_logits

    logits, targets, _ = label_logits(fwd, model, batch, bf16=bf16)
    ce = nn.functional.cross_entropy(logits, targets, reduction="none")
    return (ce.detach().neg().exp() * ce).sum() / max(1, n_target)


@register("dft")
@dataclass(frozen=True)
class DFT(FullSFT):
    """No parameters: the token weights are the model's own probabilities."""

    def objective(self, model, items, pad_id):
        return dft_loss
