"""L2 to the initial weights: ``loss + lam * sum((theta - theta0)^2)`` over the trainable params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT

if TYPE_CHECKING:
    import torch


def distance_penalty(model, names: set[str], lam: float, power: int):
    """``lam * sum(|theta - theta0|^power)`` over ``names``; theta0 is copied now (before training)."""
    params = {n: p for n, p in model.named_parameters() if n in names}
    theta0 = {n: p.detach().clone() for n, p in params.items()}

    def penalty() -> torch.Tensor:
        total = sum(((p - theta0[n]).abs() ** power).sum() for n, p in params.items())
        return lam * total

    return penalty


@register("l2")
@dataclass(frozen=True)
class L2(FullSFT):
    """Args: lam (penalty strength; 0 is plain Full SFT)."""

    lam: float = 1e-3

    def __post_init__(self):
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")

    def regularizer(self, model, names):
        return distance_penalty(model, names, self.lam, power=2)
