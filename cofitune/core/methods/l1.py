"""L1 to the initial weights: ``loss + lam * sum(|theta - theta0|)`` over the trainable params."""

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.l2 import L2, distance_penalty


@register("l1")
@dataclass(frozen=True)
class L1(L2):
    """Args: lam (penalty strength; 0 is plain Full SFT)."""

    def regularizer(self, model, names):
        return distance_penalty(model, names, self.lam, power=1)
