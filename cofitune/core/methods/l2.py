"""L2 to the initial weights: ``loss + lam * sum((theta - theta0)^2)`` over the trainable params."""

from __future__ import annotations

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT


def distance_penalty(model, names: set[str], lam: float, power: int):
    """``lam * sum(|theta - theta0|^power)`` over ``names`` (power 1 or 2); theta0 is copied now (before training).

    The returned callable adds the penalty's gradient to each parameter's ``.grad`` in closed form
    (``2 lam (theta - theta0)``, or ``lam sign(theta - theta0)``, the subgradient autograd takes at 0) and returns
    the penalty's value: no autograd graph over every weight on every step."""
    import torch

    if power not in (1, 2):
        raise ValueError(f"distance penalty power must be 1 or 2, got {power}")
    params = {n: p for n, p in model.named_parameters() if n in names}
    theta0 = {n: p.detach().clone() for n, p in params.items()}

    @torch.no_grad()
    def penalty() -> float:
        total = 0.0
        for n, p in params.items():
            d = p.detach() - theta0[n]
            if power == 2:
                total += float(d.square().sum())
                grad = d.mul_(2.0 * lam)
            else:
                total += float(d.abs().sum())
                grad = d.sign_().mul_(lam)
            if p.grad is None:
                p.grad = grad
            else:
                p.grad.add_(grad)
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
