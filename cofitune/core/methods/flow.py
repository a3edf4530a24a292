"""FLOW (Sanyal et al., "Upweighting Easy Samples in Fine-Tuning Mitigates Forgetting", ICML 2025): each
training example's loss is weighted by ``exp(-l_i / tau)``, where ``l_i`` is the original model's loss on it
(one pass before training): examples the original already finds easy weigh more, which limits the drift.

Follows the authors' language code (github.com/pbansal5/FLOW_finetuning, ``language/``): ``l_i`` is the
example's mean token cross-entropy of the response under the untrained model (``create_weighted_dataset.py``,
sequence weights), ``tau`` the median of the ``l_i`` (``get_dataset_temperature.py``; here ``tau: median`` is
the default and a number sets it, so the temperature is sweepable), and the weighted loss a token-level sum,
each token weighted by its example's ``w_i``, divided by the step's label count. The one deviation: the
weights are normalised to mean 1 over the training set (the authors use them raw), so the learning rate
keeps its meaning; under AdamW this rescales the loss only, which matters through gradient clipping.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT


def flow_weights(losses: list[float], tau: float | str = "median") -> list[float]:
    """``exp(-l / tau)`` per example, normalised to mean 1 (a pure function of the original's losses)."""
    t = statistics.median(losses) if tau == "median" else float(tau)
    if not t > 0:
        raise ValueError(f"flow: tau must be > 0, got {t} (tau={tau!r})")
    raw = [math.exp(-loss / t) for loss in losses]
    mean = sum(raw) / len(raw)
    return [w / mean for w in raw]


def example_losses(model, items: list[dict], pad_id: int, batch_size: int = 8) -> list[float]:
    """The model's mean response-token cross-entropy on each tokenised example, in order (no gradient)."""
    import torch
    import torch.nn as nn

    from cofitune.core.trainer import collate, label_logits

    device = next(model.parameters()).device
    out, was_training = [], model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = {k: v.to(device) for k, v in collate(items[start:start + batch_size], pad_id).items()}
            logits, targets, keep = label_logits(model, model, batch)
            ce = nn.functional.cross_entropy(logits, targets, reduction="none")
            counts = keep.sum(dim=1).tolist()
            out += [float(c.mean()) for c in torch.split(ce, counts)]
    model.train(was_training)
    return out


def weighted_loss(fwd, model, batch, n_target: int, *, bf16: bool = False):
    """Token cross-entropy, each token weighted by its example's ``weight``, over the step's label count."""
    import torch.nn as nn

    from cofitune.core.trainer import label_logits

    logits, targets, keep = label_logits(fwd, model, batch, bf16=bf16)
    per_token = batch["weight"].to(logits.device)[:, None].expand_as(keep)[keep]
    ce = nn.functional.cross_entropy(logits, targets, reduction="none")
    return (per_token * ce).sum() / max(1, n_target)


@register("flow")
@dataclass(frozen=True)
class FLOW(FullSFT):
    """Args: tau (the weights' temperature: ``median`` of the original's example losses, or a number)."""

    tau: float | str = "median"

    def __post_init__(self):
        if self.tau != "median" and not (isinstance(self.tau, (int, float)) and self.tau > 0):
            raise ValueError(f"tau must be 'median' or a number > 0, got {self.tau!r}")

    def objective(self, model, items, pad_id):
        for item, w in zip(items, flow_weights(example_losses(model, items, pad_id), self.tau)):
            item["weight"] = w
        return weighted_loss
