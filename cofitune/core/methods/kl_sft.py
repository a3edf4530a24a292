"""KL-anchored SFT: ``loss = CE + beta * KL(p_original || p_theta)`` on the training batch's label positions,
the original's distributions from a frozen copy of the untrained model (one extra forward per micro-batch).

The anchor is the forward KL of the original's next-token distribution to the model's, at the positions the
cross-entropy scores, summed and divided by the step's label count like the cross-entropy (a token-level
mean): the standard KL-to-the-base-model regulariser of the forgetting literature, in this project's own
form. ``beta = 0`` is Full SFT bit for bit (no copy, no extra forward).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT


def kl_to_reference(logits, reference_logits):
    """Summed ``KL(softmax(reference) || softmax(logits))`` over the rows (float32)."""
    import torch.nn as nn

    ref = nn.functional.log_softmax(reference_logits.float(), dim=-1)
    return nn.functional.kl_div(nn.functional.log_softmax(logits.float(), dim=-1), ref, log_target=True,
                                reduction="sum")


def kl_anchored_loss(reference, beta: float):
    """The loss: cross-entropy plus ``beta`` times the KL to the frozen ``reference`` model's distributions."""
    import torch
    import torch.nn as nn

    from cofitune.core.trainer import label_logits

    def loss(fwd, model, batch, n_target: int, *, bf16: bool = False):
        logits, targets, _ = label_logits(fwd, model, batch, bf16=bf16)
        with torch.no_grad():
            ref_logits, _, _ = label_logits(reference, reference, batch, bf16=bf16)
        ce = nn.functional.cross_entropy(logits, targets, reduction="sum")
        return (ce + beta * kl_to_reference(logits, ref_logits)) / max(1, n_target)

    return loss


@register("kl_sft")
@dataclass(frozen=True)
class KLSFT(FullSFT):
    """Args: beta (weight of the KL anchor; 0 is Full SFT)."""

    beta: float = 0.5

    def __post_init__(self):
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    def objective(self, model, items, pad_id):
        if self.beta == 0.0:
            return None
        reference = copy.deepcopy(model).eval()
        reference.requires_grad_(False)
        return kl_anchored_loss(reference, self.beta)
